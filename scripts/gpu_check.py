#!/usr/bin/env python3
"""One command that checks the engine on a GPU: its kernels, its answers against HF transformers, its speed.

    scripts/gpu_check.sh OUT.json                  # an H100/H200: at most ~8 minutes, no downloads, no files
    python scripts/gpu_check.py OUT.json --smoke   # the same code paths on the CPU with tiny shapes (seconds)

Everything is built here from random weights and token ids (no tokenizer, no checkpoint). Sections:

  env          GPU, torch, triton and transformers versions
  kernels      every Triton kernel against the torch path it replaces (inference.kernels.verify), on the GPU
  correctness  random tiny Llama and Qwen2 in bf16, the same weights in HF transformers and in the engine:
               greedy tokens, HF's top-1 and log-probs on the engine's own tokens (teacher forcing), and the
               prefill's log-probs read chunk by chunk through the cache; for the engine with CUDA graphs,
               eager, and on the torch reference path (kernels off)
  bandwidth    device-to-device copy of a large buffer, bytes read + written per second
  bench_1b     Llama-3.2-1B shape in bf16: single-stream inter-token latency against the roofline (bytes of
               weights read per token / measured bandwidth), with and without CUDA graphs; offline throughput
               of 256 requests (128 prompt tokens, 128 output tokens, ignore_eos) against HF `generate` at
               batch 32 with a static cache, in the same run
  bench_8b     the same for the Llama-3.1-8B shape, when the time budget still allows it

Each section runs under try/except, so one failure still leaves the others; OUT.json is rewritten after every
section, so even a run killed at its limit leaves what it measured. A short table is printed last.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference import LLM, SamplingParams  # noqa: E402
from inference.quantization import weight_bytes  # noqa: E402

LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
SHAPES = {  # name: (LlamaConfig fields, llama3 rope factor)
    "llama-3.2-1b": (dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                          num_key_value_heads=8, head_dim=64, vocab_size=128256, tie_word_embeddings=True), 32.0),
    "llama-3.1-8b": (dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                          num_key_value_heads=8, head_dim=128, vocab_size=128256, tie_word_embeddings=False), 8.0),
    "tiny-tied": (dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16, vocab_size=512, tie_word_embeddings=True), 32.0),
    "tiny-untied": (dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=1, head_dim=16, vocab_size=512, tie_word_embeddings=False), 8.0),
}
# (kind, heads, kv_heads, hidden): head_dim 64 with GQA 4:1 and 128 with GQA 2:1, the sizes real models use;
# --smoke keeps the heads but shrinks hidden 4x, so the CPU run takes seconds
CORRECTNESS_MODELS = {"llama": ("llama", 8, 2, 512), "qwen2": ("qwen2", 4, 2, 512)}


class Budget:
    def __init__(self, seconds: float):
        self.start, self.seconds = time.monotonic(), seconds

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    @property
    def left(self) -> float:
        return self.seconds - self.elapsed


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def release(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def llama_config(shape: str, max_positions: int = 2048):
    from transformers import LlamaConfig

    fields, factor = SHAPES[shape]
    cfg = LlamaConfig(**fields, max_position_embeddings=max_positions, rms_norm_eps=1e-5, bos_token_id=1,
                      eos_token_id=2, pad_token_id=0)
    cfg.rope_parameters = {**LLAMA3_ROPE, "factor": factor}
    return cfg


def hf_model(cfg, dtype: torch.dtype, device: str, seed: int):
    """A randomly initialised HF model made directly on `device` (an 8B one in seconds on a GPU)."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.generation_config.eos_token_id = None  # like ignore_eos: every row runs to max_new_tokens
    return model.eval()


def random_prompts(n: int, lo: int, hi: int, vocab: int, seed: int) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(lo, hi + 1, (n,), generator=g).tolist()
    return [torch.randint(3, vocab, (k,), generator=g).tolist() for k in lens]


# --- sections -------------------------------------------------------------------------------------------


def section_env(device: str) -> dict:
    import transformers

    env = {"device": device, "python": platform.python_version(), "torch": torch.__version__,
           "transformers": transformers.__version__}
    try:
        import triton

        env["triton"] = triton.__version__
    except ImportError:
        env["triton"] = None
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count,
                   capability=f"{p.major}.{p.minor}", cuda=torch.version.cuda)
    return env


def section_kernels(device: str) -> dict:
    from dataclasses import asdict

    from inference.kernels.verify import run_all

    start = time.monotonic()
    results = run_all("cuda", quick=True)
    failed = [asdict(r) for r in results if not r.ok]
    return {"checks": len(results), "failed": failed, "ok": not failed, "seconds": time.monotonic() - start,
            "worst": max((asdict(r) for r in results), key=lambda r: r["max_abs_err"] / r["tolerance"])}


def tiny_hf_config(kind: str, heads: int, kv_heads: int, hidden: int):
    from transformers import LlamaConfig, Qwen2Config

    common = dict(vocab_size=1024, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=4,
                  num_attention_heads=heads, num_key_value_heads=kv_heads, max_position_embeddings=1024,
                  initializer_range=0.05, tie_word_embeddings=kind == "llama", eos_token_id=2, bos_token_id=1,
                  pad_token_id=0, rms_norm_eps=1e-5)
    if kind == "qwen2":
        return Qwen2Config(**common, rope_theta=1e6)
    cfg = LlamaConfig(**common)
    cfg.rope_parameters = {**LLAMA3_ROPE, "factor": 8.0, "original_max_position_embeddings": 64}
    return cfg


def teacher_forced(hf, prompts: list[list[int]], outs, device: str) -> dict:
    """HF's view of the engine's own continuations: top-1 agreement and log-prob gaps of the chosen tokens."""
    agree = total = 0
    gaps: list[float] = []
    with torch.inference_mode():
        for p, o in zip(prompts, outs, strict=True):
            ids = torch.tensor([p + o.token_ids], device=device)
            lp = hf(ids).logits[0, len(p) - 1:-1].float().log_softmax(-1)
            tokens = torch.tensor(o.token_ids, device=device)
            agree += int((lp.argmax(-1) == tokens).sum())
            total += len(o.token_ids)
            ref = lp.gather(1, tokens[:, None])[:, 0].tolist()
            gaps += [abs(a.logprob - b) for a, b in zip(o.outputs[0].logprobs, ref, strict=True)]
    return {"top1_agreement": agree / total, "max_abs_logprob_gap": max(gaps),
            "mean_abs_logprob_gap": sum(gaps) / len(gaps)}


def prefill_logprobs(llm: LLM, ids: list[int], chunk: int) -> torch.Tensor:
    """Log-probs [len(ids), vocab] from the engine with the prompt run in chunks, so later chunks read the cache."""
    from inference.engine.scheduler import ScheduledBatch
    from inference.engine.sequence import Sequence

    engine = llm.engine
    bm = engine.block_manager
    seq = Sequence("gpu-check-prefill", ids, SamplingParams())
    caching, bm.enable_prefix_caching = bm.enable_prefix_caching, False  # compute every position, from token 0
    try:
        if not bm.allocate_prompt(seq, len(ids)):
            raise RuntimeError("no KV blocks for the prefill check")
    finally:
        bm.enable_prefix_caching = caching
    rows = []
    try:
        for start in range(0, len(ids), chunk):
            n = min(chunk, len(ids) - start)
            hidden = engine.runner.hidden_states(ScheduledBatch([seq], [n]))
            seq.num_computed_tokens += n
            rows.append(engine.model.logits(hidden).log_softmax(-1))
    finally:
        engine.block_manager.free_sequence(seq)
    return torch.cat(rows)


def check_one_model(kind: str, heads: int, kv_heads: int, hidden: int, device: str, smoke: bool) -> dict:
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16
    cfg = tiny_hf_config(kind, heads, kv_heads, hidden)
    hf = hf_model(cfg, dtype, device, seed=1)
    with torch.no_grad():  # norms away from one and real biases, so every weight matters
        for name, p in hf.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
            elif name.endswith("_proj.bias"):
                p.normal_(0, 0.5)
    n_prompts, n_out, longest = (3, 8, 40) if smoke else (8, 32, 120)
    prompts = random_prompts(n_prompts, 5, longest, cfg.vocab_size, seed=2)
    with torch.inference_mode():
        hf_tokens = []
        for p in prompts:
            ids = torch.tensor([p], device=device)
            out = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n_out,
                              do_sample=False, pad_token_id=0)
            hf_tokens.append(out[0, len(p):].tolist())
        # the noise floor: how often HF in bf16 and in float32 pick the same token on HF's own continuations
        hf32 = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32).to(device).eval()
        hf32.load_state_dict({k: v.float() for k, v in hf.state_dict().items()})
        same = total = 0
        for p, t in zip(prompts, hf_tokens, strict=True):
            ids = torch.tensor([p + t], device=device)
            same += int((hf32(ids).logits[0, len(p) - 1:-1].argmax(-1) == torch.tensor(t, device=device)).sum())
            total += len(t)
        del hf32
    result = {"config": {"kind": kind, "heads": heads, "kv_heads": kv_heads, "hidden": hidden,
                         "head_dim": hidden // heads, "layers": cfg.num_hidden_layers},
              "hf_bf16_vs_fp32_top1": same / total, "engines": {}}
    cuda = device.startswith("cuda")
    variants = {"graphs": {}, "eager": {"enforce_eager": True},
                "torch_reference": {"enforce_eager": True, "use_triton_kernels": False}} if cuda else {"cpu": {}}
    long_ids = prompts[0] + hf_tokens[0]
    with torch.inference_mode():
        ref_prefill = hf(torch.tensor([long_ids], device=device)).logits[0].float().log_softmax(-1)
    for name, extra in variants.items():
        try:
            result["engines"][name] = check_engine(cfg, hf, extra, prompts, hf_tokens, ref_prefill, long_ids,
                                                   result["hf_bf16_vs_fp32_top1"], device)
        except Exception as e:  # noqa: BLE001 - the other variants (the torch reference above all) still run
            result["engines"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}",
                                       "traceback": traceback.format_exc()}
        release(device)
    result["ok"] = all(e["ok"] for e in result["engines"].values())
    return result


def check_engine(cfg, hf, extra: dict, prompts: list[list[int]], hf_tokens: list[list[int]],
                 ref_prefill: torch.Tensor, long_ids: list[int], hf_floor: float, device: str) -> dict:
    """One engine variant on the tiny model's HF weights against HF's greedy tokens and log-probs."""
    n_out = len(hf_tokens[0])
    params = SamplingParams(max_tokens=n_out, temperature=0, ignore_eos=True, logprobs=1)
    llm = LLM.from_hf_config(cfg, dict(hf.state_dict()), dtype="bfloat16", device=device,
                             kv_cache_memory="256MiB", max_num_seqs=16, max_num_batched_tokens=64, **extra)
    try:
        outs = llm.generate(prompts, params)
        tokens = [o.token_ids for o in outs]
        first_diff = [next((i for i, (a, b) in enumerate(zip(x, y, strict=True)) if a != b), n_out)
                      for x, y in zip(tokens, hf_tokens, strict=True)]
        got_prefill = prefill_logprobs(llm, long_ids, 16)
        kl = (ref_prefill.exp() * (ref_prefill - got_prefill)).sum(-1)
        r = {"sequences_equal_to_hf": sum(a == b for a, b in zip(tokens, hf_tokens, strict=True)),
             "sequences": len(prompts), "mean_tokens_before_divergence": sum(first_diff) / len(first_diff),
             **teacher_forced(hf, prompts, outs, device),
             "prefill_kl_mean": kl.mean().item(), "prefill_kl_max": kl.max().item(),
             "prefill_top1_agreement": (got_prefill.argmax(-1) == ref_prefill.argmax(-1)).float().mean().item(),
             "cuda_graphs": llm.engine.runner.graphs is not None}
        sampled = SamplingParams(max_tokens=n_out, ignore_eos=True, temperature=0.8, top_p=0.9, top_k=50, seed=7)
        twice = [[o.token_ids for o in llm.generate(prompts[:3], sampled)] for _ in range(2)]
        r["seeded_sampling_reproducible"] = twice[0] == twice[1]
    finally:
        del llm
    # bf16 noise: HF bf16 and fp32 disagree on a few percent of tokens of these random models
    r["ok"] = (r["seeded_sampling_reproducible"] and r["top1_agreement"] >= min(0.95, hf_floor - 0.03)
               and r["prefill_kl_mean"] < 0.02 and r["max_abs_logprob_gap"] < 0.25)
    return r


def section_correctness(device: str, smoke: bool) -> dict:
    out = {name: check_one_model(kind, heads, kv_heads, hidden // 4 if smoke else hidden, device, smoke)
           for name, (kind, heads, kv_heads, hidden) in CORRECTNESS_MODELS.items()}
    out["ok"] = all(m["ok"] for m in out.values())
    return out


def section_bandwidth(device: str, smoke: bool) -> dict:
    n = (64 if smoke else 2048) * 2**20
    src = torch.empty(n, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    sync(device)
    reps = 10
    start = time.perf_counter()
    for _ in range(reps):
        dst.copy_(src)
    sync(device)
    seconds = time.perf_counter() - start
    del src, dst
    release(device)
    return {"bytes_per_copy": n, "copies": reps, "gb_per_s": 2 * n * reps / seconds / 1e9}


def engine_bench(cfg, device: str, bandwidth_gbs: float | None, n_req: int, prompt_len: int, out_len: int,
                 single_out: int, kv_memory: str, **engine_args) -> dict:
    start = time.monotonic()
    llm = LLM.from_hf_config(cfg, None, dtype="bfloat16", device=device, kv_cache_memory=kv_memory,
                             max_num_seqs=256, max_num_batched_tokens=8192, seed=0, **engine_args)
    engine = llm.engine
    r: dict = {"init_s": time.monotonic() - start, "cuda_graphs": engine.runner.graphs is not None,
               "weight_bytes": weight_bytes(engine.model)}
    # a decode step reads every weight but the embedding table (one row of it)
    r["bytes_read_per_token"] = r["weight_bytes"] - engine.model.embed_tokens.weight.nbytes
    if bandwidth_gbs:
        r["roofline_itl_ms"] = r["bytes_read_per_token"] / (bandwidth_gbs * 1e9) * 1e3
    vocab = cfg.vocab_size
    greedy = SamplingParams(max_tokens=single_out, temperature=0, ignore_eos=True)
    # warm-up (Triton compiles), through the device-side sampling path with every filter
    llm.generate(random_prompts(4, prompt_len, prompt_len, vocab, 9),
                 SamplingParams(max_tokens=8, ignore_eos=True, temperature=0.8, top_p=0.9, top_k=50, seed=1))

    def single_stream(llm: LLM) -> dict:
        out = llm.generate(random_prompts(1, prompt_len, prompt_len, vocab, 10), greedy)[0]
        m = out.metrics
        itl = (m.last_token_time - m.first_token_time) / (len(out.token_ids) - 1)
        s = {"itl_ms": itl * 1e3, "tokens_per_s": 1 / itl, "ttft_ms": (m.first_token_time - m.arrival_time) * 1e3}
        if "roofline_itl_ms" in r:
            s["fraction_of_roofline"] = r["roofline_itl_ms"] / s["itl_ms"]
        return s

    r["single_stream"] = single_stream(llm)
    graphs, engine.runner.graphs = engine.runner.graphs, None
    r["single_stream_eager"] = single_stream(llm)
    engine.runner.graphs = graphs

    prompts = random_prompts(n_req, prompt_len, prompt_len, vocab, 11)
    steps = engine.stats["steps"]
    start = time.perf_counter()
    outs = llm.generate(prompts, SamplingParams(max_tokens=out_len, temperature=0, ignore_eos=True))
    elapsed = time.perf_counter() - start
    n_out = sum(len(o.token_ids) for o in outs)
    r["throughput"] = {"requests": n_req, "prompt_tokens": prompt_len, "output_tokens": out_len, "elapsed_s": elapsed,
                       "output_tokens_per_s": n_out / elapsed,
                       "total_tokens_per_s": (n_out + n_req * prompt_len) / elapsed,
                       "steps": engine.stats["steps"] - steps, "preemptions": engine.scheduler.num_preemptions}
    del llm, engine, graphs
    release(device)
    return r


def hf_bench(cfg, device: str, n_req: int, prompt_len: int, out_len: int, batch: int, compile_mode: str,
             seconds: float) -> dict:
    """HF generate over the same workload in batches (the first one warms up, compiling when HF does)."""
    hf = hf_model(cfg, torch.bfloat16, device, seed=0)
    prompts = torch.tensor(random_prompts(n_req, prompt_len, prompt_len, cfg.vocab_size, 11), device=device)
    kwargs = dict(max_new_tokens=out_len, min_new_tokens=out_len, do_sample=False, pad_token_id=0,
                  cache_implementation="static", disable_compile=compile_mode == "off")
    r = {"batch_size": batch, "cache": "static", "compile": compile_mode}
    deadline = time.monotonic() + seconds
    with torch.inference_mode():
        start = time.perf_counter()
        ids = prompts[:batch]
        hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
        sync(device)
        r["warmup_s"] = time.perf_counter() - start
        n_out, start = 0, time.perf_counter()
        batches = 0
        for i in range(batch, n_req, batch):  # the warm-up batch is not timed again
            ids = prompts[i:i + batch]
            out = hf.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs)
            n_out += (out.shape[1] - ids.shape[1]) * ids.shape[0]
            batches += 1
            if time.monotonic() > deadline:
                break
        sync(device)
        elapsed = time.perf_counter() - start
    r.update(batches_timed=batches, output_tokens=n_out, elapsed_s=elapsed, output_tokens_per_s=n_out / elapsed)
    del hf
    release(device)
    return r


def section_bench(shape: str, device: str, bandwidth_gbs: float | None, smoke: bool, compile_mode: str,
                  budget: Budget, kv_memory: str) -> dict:
    n_req, prompt_len, out_len, single_out, batch = (8, 16, 8, 16, 4) if smoke else (256, 128, 128, 256, 32)
    cfg = llama_config(shape)
    r = {"shape": shape, "requests": n_req, "prompt_len": prompt_len, "output_len": out_len}
    try:
        r["engine"] = engine_bench(cfg, device, bandwidth_gbs, n_req, prompt_len, out_len, single_out, kv_memory)
    except Exception as e:  # noqa: BLE001 - the HF half still runs
        r["engine_error"] = f"{type(e).__name__}: {e}"
        r["engine_traceback"] = traceback.format_exc()
        release(device)
        if device.startswith("cuda"):  # numbers for the torch path at least, where the kernels or graphs broke
            try:
                r["engine_torch_reference"] = engine_bench(cfg, device, bandwidth_gbs, n_req, prompt_len, out_len,
                                                           single_out, kv_memory, use_triton_kernels=False,
                                                           enforce_eager=True)
            except Exception as e2:  # noqa: BLE001
                r["engine_torch_reference_error"] = f"{type(e2).__name__}: {e2}"
                release(device)
    if budget.left < 60:
        r["hf_skipped"] = f"{budget.left:.0f} s left in the budget"
        return r
    # torch.compile of an 8B decode takes minutes: only when the budget clearly has them
    mode = compile_mode if budget.left > 240 or compile_mode == "off" else "off"
    for attempt in (mode, "off") if mode != "off" else ("off",):  # compiling is the likeliest failure
        try:
            r["hf"] = hf_bench(cfg, device, n_req, prompt_len, out_len, batch, attempt, max(budget.left - 60, 20))
            break
        except Exception as e:  # noqa: BLE001
            r[f"hf_{attempt}_error"] = f"{type(e).__name__}: {e}"
            r[f"hf_{attempt}_traceback"] = traceback.format_exc()
            release(device)
    if "engine" in r and "hf" in r:
        r["throughput_vs_hf"] = r["engine"]["throughput"]["output_tokens_per_s"] / r["hf"]["output_tokens_per_s"]
    return r


# --- driver ---------------------------------------------------------------------------------------------


def print_table(report: dict) -> None:
    env = report.get("env", {})
    print(f"\n{env.get('gpu', env.get('device'))}, torch {env.get('torch')}, triton {env.get('triton')}, "
          f"{report['elapsed_s']:.0f} s")
    k = report.get("kernels")
    if isinstance(k, dict) and "checks" in k:
        print(f"{'kernels':12} {k['checks'] - len(k['failed'])}/{k['checks']} checks passed")
    for name, m in (report.get("correctness") or {}).items():
        if isinstance(m, dict) and "engines" in m:
            for variant, e in m["engines"].items():
                if "error" in e:
                    print(f"{'correct':12} {name:6} {variant:15} ERROR {e['error'][:80]}")
                    continue
                print(f"{'correct':12} {name:6} {variant:15} top1 {e['top1_agreement']:.3f} (hf bf16/fp32 "
                      f"{m['hf_bf16_vs_fp32_top1']:.3f}) equal seqs {e['sequences_equal_to_hf']}/{e['sequences']} "
                      f"prefill KL {e['prefill_kl_mean']:.4f} {'ok' if e['ok'] else 'FAIL'}")
    bw = report.get("bandwidth")
    if isinstance(bw, dict) and "gb_per_s" in bw:
        print(f"{'bandwidth':12} {bw['gb_per_s']:.0f} GB/s (copy, read + write)")
    for key in ("bench_1b", "bench_8b"):
        b = report.get(key)
        if not isinstance(b, dict) or "shape" not in b:
            continue
        e, h = b.get("engine", {}), b.get("hf", {})
        s = e.get("single_stream", {})
        line = f"{key:12} {b['shape']:14}"
        if s:
            line += f" ITL {s['itl_ms']:.2f} ms (eager {e['single_stream_eager']['itl_ms']:.2f}"
            line += f", roofline {e['roofline_itl_ms']:.2f})" if "roofline_itl_ms" in e else ")"
        if "throughput" in e:
            line += f" | {e['throughput']['output_tokens_per_s']:.0f} out tok/s"
        if h:
            line += f" vs HF {h['output_tokens_per_s']:.0f} ({b.get('throughput_vs_hf', 0):.2f}x)"
        print(line)
    for section, err in report["errors"].items():
        print(f"{'ERROR':12} {section}: {err.splitlines()[0] if err else ''}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="write the JSON report here")
    ap.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU: checks the script, not the GPU")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --smoke")
    ap.add_argument("--budget-s", type=float, default=450, help="skip what would not finish within this")
    ap.add_argument("--hf-compile", choices=["auto", "off"], default="auto",
                    help="auto: HF's own choice (it compiles the decoding forward with a static cache on CUDA)")
    args = ap.parse_args(argv)
    device = args.device or ("cpu" if args.smoke else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device: run with --smoke for the CPU check of this script", file=sys.stderr)
        return 2
    budget = Budget(args.budget_s)
    report: dict = {"mode": "smoke" if args.smoke else "gpu", "budget_s": args.budget_s, "errors": {}, "skipped": {}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def run(name: str, fn, *fn_args) -> None:
        print(f"[{budget.elapsed:6.1f} s] {name}", flush=True)
        try:
            report[name] = fn(*fn_args)
            for key, value in report[name].items():  # a half that failed inside a section (bench: engine, HF)
                if key.endswith("_error"):
                    report["errors"][f"{name}.{key[:-6]}"] = value
        except Exception as e:  # noqa: BLE001 - one failing section must not lose the others
            report[name] = None
            report["errors"][name] = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
            release(device)
        report["elapsed_s"] = budget.elapsed
        out.write_text(json.dumps(report, indent=1, default=str))

    run("env", section_env, device)
    if device.startswith("cuda"):
        run("kernels", section_kernels, device)
    else:
        report["skipped"]["kernels"] = "no CUDA (the CPU tests run them under TRITON_INTERPRET=1)"
    run("correctness", section_correctness, device, args.smoke)
    run("bandwidth", section_bandwidth, device, args.smoke)
    bw = (report.get("bandwidth") or {}).get("gb_per_s")
    shapes = ("tiny-tied", "tiny-untied") if args.smoke else ("llama-3.2-1b", "llama-3.1-8b")
    run("bench_1b", section_bench, shapes[0], device, bw, args.smoke, args.hf_compile, budget, "64MiB" if args.smoke
        else "6GiB")
    # the 8B shape: about 40 s for the engine, 40-150 s for HF (with its compilation); skip rather than be killed
    need = 10 if args.smoke else 150
    if budget.left > need:
        run("bench_8b", section_bench, shapes[1], device, bw, args.smoke, args.hf_compile, budget,
            "64MiB" if args.smoke else "12GiB")
    else:
        report["skipped"]["bench_8b"] = f"{budget.elapsed:.0f} s elapsed, {budget.left:.0f} s left (need {need})"
    report["elapsed_s"] = budget.elapsed
    report["ok"] = not report["errors"] and bool((report.get("correctness") or {}).get("ok")) and \
        (report.get("kernels") or {"ok": True}).get("ok", False)
    out.write_text(json.dumps(report, indent=1, default=str))
    print_table(report)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
