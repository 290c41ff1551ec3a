"""The `curbside` command: one entry point, a subcommand per job."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .settings import Settings, load_settings, tuned_adapter

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _engine_kwargs(s: Settings) -> dict:
    return dict(dtype=s.dtype, device=s.device, data_dir=s.data_dir, max_model_len=s.max_model_len,
                max_num_seqs=s.max_num_seqs, max_num_batched_tokens=s.max_num_batched_tokens,
                block_size=s.block_size, kv_cache_memory=s.kv_cache_memory,
                gpu_memory_utilization=s.gpu_memory_utilization,
                enable_prefix_caching=s.enable_prefix_caching, threads=s.threads, quantization=s.quantization,
                kv_cache_dtype=s.kv_cache_dtype, enable_lora=s.enable_lora or bool(s.lora_modules),
                max_loras=s.max_loras, max_lora_rank=s.max_lora_rank,
                use_triton_kernels=s.use_triton_kernels, enforce_eager=s.enforce_eager)


def _settings(args) -> Settings:
    return load_settings(data_dir=getattr(args, "data_dir", None), model=getattr(args, "model", None),
                         dtype=getattr(args, "dtype", None), device=getattr(args, "device", None),
                         quantization=getattr(args, "quantization", None),
                         kv_cache_dtype=getattr(args, "kv_cache_dtype", None))


def cmd_models(args) -> int:
    from curbside import model_store

    s = _settings(args)
    if args.action == "pull":
        names = args.names or list(model_store.REGISTRY)
        for name in names:
            path = model_store.pull(name, s.model_dir)
            if model_store.REGISTRY[name].kind == "llm":
                path = model_store.resolve_model(name, s.model_dir)  # converts a GGUF once, here
            print(f"{name}: {path}")
        return 0
    rows = model_store.list_models(s.model_dir)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for r in rows:
            print(f"{r['name']:28} {r['kind']:10} {'pulled' if r['pulled'] else 'not pulled':11} {r['package']}")
    return 0


def cmd_generate(args) -> int:
    from inference import LLM, SamplingParams

    s = _settings(args)
    llm = LLM(s.model, **_engine_kwargs(s))
    params = SamplingParams(max_tokens=args.max_tokens, temperature=args.temperature, top_p=args.top_p,
                            seed=args.seed, stop=args.stop or None)
    prompts = args.prompt or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if args.chat:
        outs = llm.chat([[{"role": "user", "content": p}] for p in prompts], params)
    else:
        outs = llm.generate(prompts, params)
    for out in outs:
        if args.json:
            print(json.dumps({"text": out.text, "token_ids": out.token_ids, "finish_reason": out.finish_reason}))
        else:
            print(out.text)
    return 0


def cmd_chat(args) -> int:
    """An interactive, streaming chat in the terminal with the configured model."""
    import asyncio

    from inference import AsyncLLMEngine, EngineConfig, SamplingParams

    s = _settings(args)
    engine = AsyncLLMEngine.from_config(EngineConfig(model=s.model, **_engine_kwargs(s)))
    history: list[dict] = []
    print("Curbside chat with the local model. Empty line or Ctrl-D to quit.", flush=True)

    async def reply(messages) -> str:
        prompt = engine.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids = engine.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        text = ""
        async for out in engine.generate(ids, SamplingParams(max_tokens=args.max_tokens, temperature=0.2,
                                                             top_p=0.9, repetition_penalty=1.1)):
            print(out.delta_text, end="", flush=True)
            text = out.text
        print()
        return text

    try:
        while True:
            try:
                line = input("> ").strip()
            except EOFError:
                break
            if not line:
                break
            history.append({"role": "user", "content": line})
            history.append({"role": "assistant", "content": asyncio.run(reply(history))})
    except KeyboardInterrupt:
        print()
    finally:
        engine.shutdown()
    return 0


def cmd_serve(args) -> int:
    import logging

    from inference import EngineConfig
    from inference.server.main import InsecureBindError, serve
    from inference.server.state import ServerConfig

    s = load_settings(data_dir=args.data_dir, model=args.model, dtype=args.dtype, device=args.device,
                      host=args.host, port=args.port, api_key=args.api_key, max_num_seqs=args.max_num_seqs,
                      max_num_batched_tokens=args.max_num_batched_tokens, max_waiting=args.max_waiting,
                      quantization=args.quantization, kv_cache_dtype=args.kv_cache_dtype,
                      enable_lora=args.enable_lora or None, max_loras=args.max_loras,
                      max_lora_rank=args.max_lora_rank,
                      lora_modules=",".join(args.lora_modules) if args.lora_modules else None)
    lora_modules = {}
    for item in (s.lora_modules.split(",") if s.lora_modules else []):
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            print(f"curbside: error: --lora-modules takes NAME=PATH, got {item!r}", file=sys.stderr)
            return 2
        lora_modules[name.strip()] = path.strip()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tuned = tuned_adapter(s)
    if tuned and tuned[0] not in lora_modules:
        lora_modules[tuned[0]] = str(tuned[1])
        logging.getLogger("curbside.cli").info("serving the tuned adapter %s from %s", *tuned)
    if lora_modules:
        s = s.model_copy(update={"enable_lora": True})
    config = ServerConfig(
        engine=EngineConfig(model=s.model, **_engine_kwargs(s)),
        served_model_name=s.served_model_name or s.model,
        api_key=s.api_key, max_waiting=s.max_waiting, max_body_bytes=s.max_body_bytes,
        default_max_tokens=s.default_max_tokens, drain_timeout_s=s.drain_timeout_s,
        embedding_model=None if args.no_embeddings else s.embedding_model,
        embedding_max_batch=s.embedding_max_batch, embedding_max_delay_ms=s.embedding_max_delay_ms,
        lora_modules=lora_modules,
    )
    try:
        serve(config, s.host, s.port)
    except InsecureBindError as e:
        print(f"curbside: error: {e}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curbside", description=__doc__)
    parser.add_argument("--data-dir", help="data directory (default var/, or CURBSIDE_DATA_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    def engine_opts(p):
        p.add_argument("--model", help="model name, Hugging Face directory or GGUF file")
        p.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
        p.add_argument("--device", help="cpu, cuda, cuda:N or auto")
        p.add_argument("--quantization", choices=["int8", "int4"], help="weight-only quantization of the linears")
        p.add_argument("--kv-cache-dtype", choices=["auto", "int8", "fp8"],
                       help="KV-cache storage: auto (the model dtype), int8, or fp8 (CUDA, sm89+)")

    m = sub.add_parser("models", help="pull or list the embedded models")
    m.add_argument("action", choices=["pull", "list"])
    m.add_argument("names", nargs="*", help="models to pull (default: all)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    g = sub.add_parser("generate", help="generate text for prompts (arguments or stdin lines)")
    engine_opts(g)
    g.add_argument("prompt", nargs="*")
    g.add_argument("--chat", action="store_true", help="wrap each prompt in the model's chat template")
    g.add_argument("--max-tokens", type=int, default=64)
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--seed", type=int)
    g.add_argument("--stop", action="append")
    g.add_argument("--json", action="store_true")
    g.set_defaults(func=cmd_generate)

    sv = sub.add_parser("serve", help="the OpenAI-compatible inference server")
    engine_opts(sv)
    sv.add_argument("--host", help="address to bind (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default 8000)")
    sv.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (or CURBSIDE_API_KEY)")
    sv.add_argument("--max-num-seqs", type=int)
    sv.add_argument("--max-num-batched-tokens", type=int, help="tokens per engine step (default 128)")
    sv.add_argument("--max-waiting", type=int, help="waiting requests before 429")
    sv.add_argument("--no-embeddings", action="store_true", help="do not load the embedding model")
    sv.add_argument("--enable-lora", action="store_true", help="serve LoRA adapters (request model = adapter)")
    sv.add_argument("--max-loras", type=int, help="adapters resident at once (default 4)")
    sv.add_argument("--max-lora-rank", type=int, help="largest adapter rank accepted (default 16)")
    sv.add_argument("--lora-modules", nargs="+", metavar="NAME=PATH", help="PEFT adapters to load at start")
    sv.set_defaults(func=cmd_serve)

    from . import cli_admin, cli_consult, cli_docs, cli_run, cli_tune

    cli_docs.add_commands(sub)
    cli_consult.add_commands(sub)
    cli_admin.add_commands(sub)
    cli_run.add_commands(sub)
    cli_tune.add_commands(sub)

    c = sub.add_parser("chat", help="interactive streaming chat with the local model")
    engine_opts(c)
    c.add_argument("--max-tokens", type=int, default=256)
    c.set_defaults(func=cmd_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from curbside.errors import CurbsideError

    try:
        return args.func(args)
    except CurbsideError as e:
        print(f"curbside: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
