"""Load benchmark for a running server (or one it starts), in the manner of `vllm bench serve`.

    python -m inference.bench_serve --max-concurrency 32 --num-prompts 128 --input-len 64 --output-len 64
    python -m inference.bench_serve --base-url http://127.0.0.1:8000 --request-rate 4 --dataset prompts.jsonl
    python -m inference.bench_serve --sweep --sweep-concurrency 1,8,32,64 --sweep-max-num-seqs 32,128

Requests are streamed completions (`ignore_eos`, so every request produces exactly --output-len tokens).
Reports request throughput, output tokens/s, TTFT, TPOT and ITL (mean, p50, p99) and errors. `--sweep`
starts a server per engine setting, runs every concurrency level against it, and recommends the setting
with the best throughput whose TTFT p99 stays under --ttft-p99-target-ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class RequestResult:
    ok: bool
    ttft: float = 0.0
    latency: float = 0.0
    itl: list[float] = field(default_factory=list)
    output_tokens: int = 0
    error: str = ""


def load_prompts(args) -> list[tuple[str | list[int], int]]:
    """(prompt, max_tokens) pairs: random token ids of --input-len, or a JSONL of {"prompt", "max_tokens"}."""
    rng = random.Random(args.seed)
    if args.dataset:
        rows = [json.loads(line) for line in Path(args.dataset).read_text().splitlines() if line.strip()]
        return [(r["prompt"], int(r.get("max_tokens", args.output_len))) for r in rows][: args.num_prompts]
    return [([rng.randrange(256, 49152) for _ in range(args.input_len)], args.output_len)
            for _ in range(args.num_prompts)]


async def one_request(client: httpx.AsyncClient, url: str, headers: dict, model: str, prompt, max_tokens: int
                      ) -> RequestResult:
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True,
            "ignore_eos": True, "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    res = RequestResult(ok=False)
    last = None
    try:
        async with client.stream("POST", url, json=body, headers=headers) as r:
            if r.status_code != 200:
                res.error = f"HTTP {r.status_code}: {(await r.aread())[:200]!r}"
                return res
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                data = json.loads(line[6:])
                if "error" in data:
                    res.error = data["error"]["message"]
                    return res
                if data.get("usage"):
                    res.output_tokens = data["usage"]["completion_tokens"]
                if data.get("choices") and data["choices"][0].get("text"):
                    now = time.perf_counter()
                    if last is None:
                        res.ttft = now - start
                    else:
                        res.itl.append(now - last)
                    last = now
        res.latency = time.perf_counter() - start
        res.ok = True
    except (httpx.HTTPError, json.JSONDecodeError) as e:
        res.error = f"{type(e).__name__}: {e}"
    return res


async def run_load(base_url: str, api_key: str | None, model: str, prompts, request_rate: float,
                   max_concurrency: int | None, seed: int) -> tuple[list[RequestResult], float]:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/v1/completions"
    rng = np.random.default_rng(seed)
    limit = asyncio.Semaphore(max_concurrency or len(prompts))
    limits = httpx.Limits(max_connections=(max_concurrency or len(prompts)) + 8)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0), limits=limits) as client:
        async def guarded(prompt, max_tokens):
            async with limit:
                return await one_request(client, url, headers, model, prompt, max_tokens)

        tasks = []
        start = time.perf_counter()
        for prompt, max_tokens in prompts:
            tasks.append(asyncio.create_task(guarded(prompt, max_tokens)))
            if request_rate != float("inf"):
                await asyncio.sleep(float(rng.exponential(1.0 / request_rate)))
        results = await asyncio.gather(*tasks)
        return results, time.perf_counter() - start


def stats(values: list[float]) -> dict:
    if not values:
        return {"mean": None, "p50": None, "p99": None}
    a = np.asarray(values) * 1000
    return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)), "p99": float(np.percentile(a, 99))}


def summarize(results: list[RequestResult], duration: float) -> dict:
    ok = [r for r in results if r.ok]
    out_tokens = sum(r.output_tokens for r in ok)
    tpot = [(r.latency - r.ttft) / (r.output_tokens - 1) for r in ok if r.output_tokens > 1]
    return {
        "completed": len(ok), "errors": len(results) - len(ok),
        "error_examples": sorted({r.error for r in results if not r.ok})[:3],
        "duration_s": duration, "request_throughput": len(ok) / duration,
        "output_tokens": out_tokens, "output_tokens_per_s": out_tokens / duration,
        "ttft_ms": stats([r.ttft for r in ok]), "tpot_ms": stats(tpot),
        "itl_ms": stats([x for r in ok for x in r.itl]),
    }


def print_row(label: str, s: dict) -> None:
    def f(d):
        return "-" if d["p50"] is None else f"{d['mean']:.0f}/{d['p50']:.0f}/{d['p99']:.0f}"

    print(f"{label:28} {s['completed']:5d} {s['errors']:4d} {s['request_throughput']:7.2f} "
          f"{s['output_tokens_per_s']:8.1f} {f(s['ttft_ms']):>18} {f(s['tpot_ms']):>15} {f(s['itl_ms']):>15}")


def print_header() -> None:
    print(f"{'run':28} {'ok':>5} {'err':>4} {'req/s':>7} {'tok/s':>8} {'TTFT mean/p50/p99':>18} "
          f"{'TPOT ms':>15} {'ITL ms':>15}")


class LocalServer:
    """A `curbside serve` child process on a free loopback port."""

    def __init__(self, extra_args: list[str], data_dir: str, env: dict | None = None):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "curbside.cli", "--data-dir", data_dir, "serve", "--port", str(self.port),
               "--no-embeddings", *extra_args]
        self.log = open(Path(data_dir) / f"bench-serve-{self.port}.log", "w")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT,
                                     env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log.name}")
            try:
                if httpx.get(self.url + "/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def offline_baseline(prompts, data_dir: str, max_num_seqs: int | None) -> float:
    """Output tokens/s of the offline engine (LLM.generate) on the same prompts, in a fresh process, batching
    at most `max_num_seqs` sequences (the concurrency the server is compared at)."""
    code = (
        "import json,sys,time\n"
        "from inference import LLM, SamplingParams\n"
        "rows=json.load(sys.stdin)\n"
        f"llm=LLM(data_dir={data_dir!r}{f', max_num_seqs={max_num_seqs}' if max_num_seqs else ''})\n"
        "llm.generate([rows[0][0]], SamplingParams(max_tokens=2, temperature=0, ignore_eos=True))\n"
        "ps=[SamplingParams(max_tokens=m, temperature=0, ignore_eos=True) for _, m in rows]\n"
        "t=time.perf_counter(); outs=llm.generate([p for p, _ in rows], ps); dt=time.perf_counter()-t\n"
        "print(sum(len(o.token_ids) for o in outs)/dt)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], input=json.dumps(prompts), capture_output=True,
                          text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", help="a running server; without it one is started")
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--api-key", default=os.environ.get("CURBSIDE_API_KEY"))
    ap.add_argument("--dataset", help="JSONL with {'prompt': ..., 'max_tokens': ...} per line")
    ap.add_argument("--num-prompts", type=int, default=128)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=64)
    ap.add_argument("--request-rate", type=float, default=float("inf"), help="Poisson arrivals per second")
    ap.add_argument("--max-concurrency", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--offline-baseline", action="store_true",
                    help="also time the offline engine on the same prompts (at most --max-concurrency "
                         "sequences at once) and report the ratio")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--sweep-concurrency", default="8,32,64")
    ap.add_argument("--sweep-max-num-seqs", default="32,128")
    ap.add_argument("--sweep-max-num-batched-tokens", default="128,512",
                    help="per-step token budgets to try with each max_num_seqs")
    ap.add_argument("--ttft-p99-target-ms", type=float, default=2000.0)
    ap.add_argument("--data-dir", default="var")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    prompts = load_prompts(args)
    report: dict = {"args": {k: v for k, v in vars(args).items() if k != "api_key"}, "runs": []}
    if args.offline_baseline:
        report["offline_output_tokens_per_s"] = offline_baseline(prompts, args.data_dir, args.max_concurrency)
        print(f"offline engine: {report['offline_output_tokens_per_s']:.1f} output tokens/s")

    settings = [(None, None)] if not args.sweep else [
        (int(seqs), int(budget)) for seqs in args.sweep_max_num_seqs.split(",")
        for budget in args.sweep_max_num_batched_tokens.split(",")]
    levels = ([args.max_concurrency] if not args.sweep else [int(x) for x in args.sweep_concurrency.split(",")])
    print_header()
    for max_num_seqs, budget in settings:
        server = None
        base_url = args.base_url
        if base_url is None:
            extra = ["--max-num-seqs", str(max_num_seqs)] if max_num_seqs else []
            extra += ["--max-num-batched-tokens", str(budget)] if budget else []
            server = LocalServer(extra, args.data_dir, {"CURBSIDE_API_KEY": args.api_key} if args.api_key else None)
            base_url = server.url
        try:
            for conc in levels:
                results, duration = asyncio.run(run_load(base_url, args.api_key, args.model, prompts,
                                                         args.request_rate, conc, args.seed))
                s = summarize(results, duration)
                s.update({"max_concurrency": conc, "max_num_seqs": max_num_seqs, "max_num_batched_tokens": budget,
                          "request_rate": args.request_rate})
                if "offline_output_tokens_per_s" in report:
                    s["fraction_of_offline"] = s["output_tokens_per_s"] / report["offline_output_tokens_per_s"]
                report["runs"].append(s)
                label = f"seqs={max_num_seqs or '-'} tokens={budget or '-'} conc={conc or 'all'}"
                print_row(label, s)
        finally:
            if server:
                server.stop()
    if args.sweep:
        ok = [r for r in report["runs"] if r["errors"] == 0 and r["ttft_ms"]["p99"] is not None
              and r["ttft_ms"]["p99"] <= args.ttft_p99_target_ms]
        best = max(ok, key=lambda r: r["output_tokens_per_s"], default=None)
        report["recommendation"] = best and {"max_num_seqs": best["max_num_seqs"],
                                             "max_num_batched_tokens": best["max_num_batched_tokens"],
                                             "max_concurrency": best["max_concurrency"],
                                             "output_tokens_per_s": best["output_tokens_per_s"],
                                             "ttft_p99_ms": best["ttft_ms"]["p99"]}
        print("recommendation:", json.dumps(report["recommendation"]) if best else
              f"no setting meets TTFT p99 <= {args.ttft_p99_target_ms} ms")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0 if all(r["errors"] == 0 for r in report["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
