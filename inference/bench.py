"""Offline benchmark: HF transformers `generate` against our engine, same prompts, dtype and threads.

    python -m inference.bench --json var/bench.json [--num-prompts 32] [--workloads throughput,single_stream]
                              [--quantization int8|int4] [--kv-cache-dtype int8]

Each side of each workload runs in a fresh subprocess, so peak RSS is its own. Prints a table and writes
JSON with `hf`, `engine` and `ratios` sections. --quantization and --kv-cache-dtype apply to the engine
only: the HF side stays the unquantized model in --dtype, the reference the engine is measured against.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

WORKLOADS = ("throughput", "shared_prefix", "single_stream")


def make_prompts(workload: str, num_prompts: int, vocab: int, seed: int) -> tuple[list[list[int]], int]:
    """Token-id prompts and the output length for a workload (random ids away from special tokens)."""
    rng = np.random.default_rng(seed)
    lo = 256
    if workload == "throughput":
        lens = rng.integers(32, 257, size=num_prompts)
        return [rng.integers(lo, vocab, size=n).tolist() for n in lens], 128
    if workload == "shared_prefix":
        prefix = rng.integers(lo, vocab, size=384).tolist()
        lens = rng.integers(16, 65, size=num_prompts)
        return [prefix + rng.integers(lo, vocab, size=n).tolist() for n in lens], 64
    if workload == "single_stream":
        return [rng.integers(lo, vocab, size=32).tolist()], 256
    raise ValueError(f"unknown workload {workload!r}")


def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50": None, "p99": None, "mean": None}
    a = np.asarray(values) * 1000
    return {"p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99)), "mean": float(a.mean())}


def summarize(elapsed: float, n_out: int, n_req: int, ttft: list[float], tpot: list[float]) -> dict:
    return {
        "elapsed_s": elapsed,
        "output_tokens": n_out,
        "output_tokens_per_s": n_out / elapsed,
        "requests_per_s": n_req / elapsed,
        "ttft_ms": percentiles(ttft),
        "tpot_ms": percentiles(tpot),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def matmul_peak_gflops(dtype_name: str) -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
    for _ in range(2):
        a @ b
    n, t = 5, time.perf_counter()
    for _ in range(n):
        a @ b
    return 2 * 2048**3 * n / (time.perf_counter() - t) / 1e9


# --- the two sides, each run in its own process ---------------------------------------------------


def run_hf(model_path: str, dtype: str, prompts, max_out: int, batch_sizes: list[int]) -> dict:
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.generation.streamers import BaseStreamer

    class Stamps(BaseStreamer):
        def __init__(self):
            self.times: list[float] = []

        def put(self, value):
            self.times.append(time.perf_counter())

        def end(self):
            pass

    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype)).eval()
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    model.generation_config.eos_token_id = None  # like ignore_eos: every row runs to max_new_tokens
    gen = dict(do_sample=False, max_new_tokens=max_out, pad_token_id=pad)

    def batch_inputs(batch):
        width = max(len(p) for p in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, p in enumerate(batch):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        return ids, mask

    with torch.inference_mode():
        ids, mask = batch_inputs(prompts[:2])
        model.generate(input_ids=ids, attention_mask=mask, **{**gen, "max_new_tokens": 4})
        results = {}
        for bs in batch_sizes:
            ttft, tpot, n_out = [], [], 0
            start = time.perf_counter()
            for i in range(0, len(prompts), bs):
                batch = prompts[i:i + bs]
                ids, mask = batch_inputs(batch)
                stamps = Stamps()
                out = model.generate(input_ids=ids, attention_mask=mask, streamer=stamps, **gen)
                produced = out.shape[1] - ids.shape[1]
                n_out += produced * len(batch)
                first, last = stamps.times[1], stamps.times[-1]
                ttft += [first - start] * len(batch)
                tpot += [(last - first) / max(produced - 1, 1)] * len(batch)
            results[bs] = summarize(time.perf_counter() - start, n_out, len(prompts), ttft, tpot)
            results[bs]["batch_size"] = bs
    best = max(results.values(), key=lambda r: r["output_tokens_per_s"])
    best["by_batch_size"] = {str(k): v["output_tokens_per_s"] for k, v in results.items()}
    return best


def engine_flops(cfg, tokens: list[tuple[int, int]], sampled: int) -> float:
    """FLOPs of the work done: linear layers and attention for (context length, query tokens) pairs."""
    h, d = cfg.hidden_size, cfg.head_dim
    per_token_linear = 2 * cfg.num_layers * (
        h * (cfg.num_heads + 2 * cfg.num_kv_heads) * d + cfg.num_heads * d * h + 3 * h * cfg.intermediate_size)
    flops = 0.0
    for ctx, q in tokens:
        flops += q * per_token_linear
        flops += 4 * cfg.num_layers * cfg.num_heads * d * q * (ctx - (q - 1) / 2)
    return flops + sampled * 2 * h * cfg.vocab_size


def run_engine(model_path: str, dtype: str, prompts, max_out: int, engine_args: dict) -> dict:
    from inference import LLM, SamplingParams

    llm = LLM(model_path, dtype=dtype, **engine_args)
    params = SamplingParams(max_tokens=max_out, temperature=0, ignore_eos=True)
    llm.generate([prompts[0][:16]], SamplingParams(max_tokens=4, temperature=0, ignore_eos=True))
    eng = llm.engine
    eng.block_manager.prefix_queries = eng.block_manager.prefix_hits = 0
    start = time.perf_counter()
    t0 = time.monotonic()
    outs = llm.generate(prompts, params)
    elapsed = time.perf_counter() - start
    ttft = [o.metrics.first_token_time - t0 for o in outs]
    tpot = [(o.metrics.last_token_time - o.metrics.first_token_time) / max(len(o.token_ids) - 1, 1) for o in outs]
    n_out = sum(len(o.token_ids) for o in outs)
    r = summarize(elapsed, n_out, len(prompts), ttft, tpot)
    work = []
    for p, o in zip(prompts, outs, strict=True):
        cached = o.metrics.num_cached_tokens
        work.append((len(p), len(p) - cached))
        work.extend((len(p) + i + 1, 1) for i in range(len(o.token_ids) - 1))
    r["gflops_per_s"] = engine_flops(eng.model_config, work, n_out) / elapsed / 1e9
    r["prefix_cache_hit_ratio"] = eng.block_manager.prefix_hits / max(eng.block_manager.prefix_queries, 1)
    r["preemptions"] = eng.scheduler.num_preemptions
    r["engine_args"] = engine_args
    return r


def worker(spec: dict) -> dict:
    import torch

    torch.set_num_threads(spec["threads"])
    prompts, max_out = make_prompts(spec["workload"], spec["num_prompts"], spec["vocab"], spec["seed"])
    if spec["side"] == "hf":
        return run_hf(spec["model_path"], spec["dtype"], prompts, max_out, spec["hf_batch_sizes"])
    return run_engine(spec["model_path"], spec["dtype"], prompts, max_out,
                      {**spec["engine_args"], "threads": spec["threads"]})


def spawn(spec: dict) -> dict:
    done = subprocess.run([sys.executable, "-m", "inference.bench", "--_worker", json.dumps(spec)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{spec['side']} {spec['workload']} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--model", default=None, help="model name or path (default: the embedded model)")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--num-prompts", type=int, default=128, help="requests in throughput and shared_prefix")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--hf-batch-sizes", default="8,16,32")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--max-num-seqs", type=int, default=128)
    ap.add_argument("--max-num-batched-tokens", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--quantization", choices=["int8", "int4"], default=None,
                    help="engine weight quantization (the HF side stays unquantized)")
    ap.add_argument("--kv-cache-dtype", choices=["auto", "int8", "fp8"], default="auto", help="engine KV cache")
    ap.add_argument("--data-dir", default="var")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        print(json.dumps(worker(json.loads(args._worker))))
        return 0

    from pathlib import Path

    from transformers import AutoConfig

    from curbside.model_store import resolve_model

    model_path = str(resolve_model(args.model, Path(args.data_dir) / "models"))
    vocab = AutoConfig.from_pretrained(model_path).vocab_size
    import torch

    torch.set_num_threads(args.threads)
    report = {
        "machine": {"cpu": _cpu_name(), "threads": args.threads, "torch": torch.__version__},
        "model": model_path, "dtype": args.dtype, "quantization": args.quantization,
        "kv_cache_dtype": args.kv_cache_dtype,
        "matmul_peak_gflops": matmul_peak_gflops(args.dtype),
        "hf": {}, "engine": {}, "ratios": {},
    }
    engine_args = {"max_num_seqs": args.max_num_seqs, "max_num_batched_tokens": args.max_num_batched_tokens,
                   "data_dir": args.data_dir, "quantization": args.quantization,
                   "kv_cache_dtype": args.kv_cache_dtype}
    hf_best = [int(b) for b in args.hf_batch_sizes.split(",")]
    for wl in args.workloads.split(","):
        base = {"workload": wl, "num_prompts": args.num_prompts, "vocab": vocab, "seed": args.seed,
                "model_path": model_path, "dtype": args.dtype, "threads": args.threads,
                "engine_args": engine_args}
        sizes = [1] if wl == "single_stream" else hf_best
        hf = spawn({**base, "side": "hf", "hf_batch_sizes": sizes})
        if wl == "throughput":
            hf_best = [hf["batch_size"]]  # shared_prefix runs HF at the batch size that won here
        eng = spawn({**base, "side": "engine"})
        eng["roofline_fraction"] = eng["gflops_per_s"] / report["matmul_peak_gflops"]
        report["hf"][wl], report["engine"][wl] = hf, eng
        report["ratios"][wl] = eng["output_tokens_per_s"] / hf["output_tokens_per_s"]
        print(f"{wl}: engine {eng['output_tokens_per_s']:.1f} tok/s vs HF {hf['output_tokens_per_s']:.1f} "
              f"(batch {hf.get('batch_size')}) -> {report['ratios'][wl]:.2f}x", flush=True)
    print_table(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


def print_table(report: dict) -> None:
    print(f"\n{report['machine']['cpu']}, {report['machine']['threads']} threads, {report['dtype']}, "
          f"engine quantization {report.get('quantization') or 'none'}, kv cache {report.get('kv_cache_dtype')}, "
          f"matmul peak {report['matmul_peak_gflops']:.0f} GFLOP/s")
    head = f"{'workload':14} {'side':7} {'out tok/s':>10} {'req/s':>7} {'TTFT p50/p99 ms':>18} " \
           f"{'TPOT p50/p99 ms':>16} {'RSS MB':>7} {'GFLOP/s':>8}"
    print(head)
    for wl, ratio in report["ratios"].items():
        for side in ("hf", "engine"):
            r = report[side][wl]
            gf = f"{r['gflops_per_s']:.0f}" if "gflops_per_s" in r else "-"
            print(f"{wl:14} {side:7} {r['output_tokens_per_s']:10.1f} {r['requests_per_s']:7.2f} "
                  f"{r['ttft_ms']['p50']:8.0f}/{r['ttft_ms']['p99']:<8.0f} "
                  f"{r['tpot_ms']['p50']:7.1f}/{r['tpot_ms']['p99']:<7.1f} {r['peak_rss_mb']:7.0f} {gf:>8}")
        print(f"{wl:14} ratio   {ratio:10.2f}x")


if __name__ == "__main__":
    sys.exit(main())
