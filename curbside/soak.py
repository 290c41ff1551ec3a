"""Soak test: mixed load against the inference server and a guideline store for a fixed time.

    python -m curbside.soak [--minutes 10] [--json var/soak.json]
    python -m curbside.soak --base-url http://127.0.0.1:8000/v1 [--api-key KEY] [--server-pid PID]

Without --base-url it starts `curbside serve` on a free loopback port and stops it at the end. The load, all
at once until the time is up:
- streaming chats through the `openai` client (`--chat-streams` of them, one request after another each);
- embeddings of 1-8 short texts;
- consults through `app.consult.ConsultPipeline` against a temporary store seeded with the bundled corpus;
- small generated Markdown guidelines ingested into that store, found by search, then deleted.

Every operation's latency and outcome is kept; the report gives errors and p50/p95/p99 per operation per
window (`--window-s`, a minute by default), and the server's resident memory (RSS, psutil) per window with the
growth from the first window to the last. Exit status 1 on any error or an RSS growth above
`--max-rss-growth-pct`.

The server it starts gets a small KV pool (`--kv-cache-memory`, 128 MiB). On the CPU the pool is calloc'd, so
its pages become resident only when a block is first written, and the block manager hands out the least
recently freed block (to keep prefix-cache hits), so it walks the whole pool: with the default 2 GiB pool
the RSS climbs by up to 2 GiB over the first tens of minutes, bounded but indistinguishable from a leak in a
ten-minute window. A small pool is resident within the first window; growth after that is a leak.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
CASES = ROOT / "data" / "eval" / "dev_cases.jsonl"
OPERATIONS = ("chat_stream", "chat_ttft", "embeddings", "consult", "ingest", "search_new", "delete")
CHAT_PROMPTS = ["What is the PHQ-9?", "Name two first-line treatments for insomnia.",
                "How often should lithium levels be checked?", "What does GAD-7 screen for?",
                "Summarise safety planning in one sentence.", "What is behavioural activation?"]
EMBED_TEXTS = ["low mood for six weeks", "early morning waking", "lithium level monitoring", "panic attacks",
               "take-home naloxone", "postpartum psychosis", "alcohol withdrawal", "sleep hygiene advice"]


@dataclass
class Sample:
    op: str
    t: float  # seconds since the start, when the operation finished
    ms: float
    ok: bool
    error: str | None = None


@dataclass
class Recorder:
    """Thread-safe list of samples and RSS readings, with the start time they are relative to."""

    start: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    rss: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, op: str, ms: float, ok: bool, error: str | None = None) -> None:
        with self._lock:
            self.samples.append(Sample(op, time.monotonic() - self.start, ms, ok, error))

    def timed(self, op: str, fn, *args, **kwargs):
        """Run fn, recording its latency and outcome; returns its value or None when it raised."""
        t0 = time.perf_counter()
        try:
            value = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - every failure is a counted, reported error
            self.add(op, (time.perf_counter() - t0) * 1000, False, f"{type(e).__name__}: {e}"[:300])
            return None
        self.add(op, (time.perf_counter() - t0) * 1000, True)
        return value


# --- the server -----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, log_path: Path, api_key: str | None, kv_cache_memory: str | None) -> tuple:
    """`curbside serve` on a free loopback port; returns (process, base URL) at once: see `wait_ready`."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if kv_cache_memory:
        env["CURBSIDE_KV_CACHE_MEMORY"] = kv_cache_memory
    if api_key:
        env["CURBSIDE_API_KEY"] = api_key
    cmd = [sys.executable, "-m", "curbside", "--data-dir", str(data_dir), "serve", "--host", "127.0.0.1",
           "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    return proc, f"http://127.0.0.1:{port}/v1"


def wait_ready(proc: subprocess.Popen, base_url: str, timeout_s: float = 300) -> None:
    """Until the started server's /health/ready is 200 (it loads while the store is seeded here)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} while loading")
        try:
            if httpx.get(base_url.removesuffix("/v1") + "/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server was not ready after {timeout_s:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- the load -------------------------------------------------------------------------------------

def chat_worker(rec: Recorder, client, model: str, max_tokens: int, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        prompt = rng.choice(CHAT_PROMPTS)

        def one(prompt=prompt):
            t0 = time.perf_counter()
            stream = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens,
                temperature=0.7, stream=True, stream_options={"include_usage": True})
            first, finish, usage = None, None, None
            for chunk in stream:
                if chunk.choices:
                    if first is None and chunk.choices[0].delta.content:
                        first = time.perf_counter()
                    finish = chunk.choices[0].finish_reason or finish
                if chunk.usage is not None:
                    usage = chunk.usage
            if finish not in ("stop", "length") or usage is None:
                raise RuntimeError(f"stream ended without a finish reason or usage (finish={finish!r})")
            if first is not None:
                rec.add("chat_ttft", (first - t0) * 1000, True)

        rec.timed("chat_stream", one)


def embed_worker(rec: Recorder, client, model: str, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        texts = rng.sample(EMBED_TEXTS, rng.randint(1, 8))

        def one(texts=texts):
            r = client.embeddings.create(model=model, input=texts, encoding_format="float")
            if len(r.data) != len(texts) or len(r.data[0].embedding) != 384:
                raise RuntimeError(f"got {len(r.data)} embeddings of {len(r.data[0].embedding)} for {len(texts)}")

        rec.timed("embeddings", one)
        stop.wait(rng.uniform(0.2, 1.0))


def consult_worker(rec: Recorder, pipeline, cases: list[dict], stop: threading.Event) -> None:
    for case in itertools.cycle(cases):
        if stop.is_set():
            return

        def one(case=case):
            result = pipeline.run(case)
            if result.get("generation_error"):
                raise RuntimeError(result["generation_error"])
            if not result["citations"] or not result["answer"]:
                raise RuntimeError("a consult came back without citations or an answer")

        rec.timed("consult", one)


def guideline(doc_id: str, word: str) -> bytes:
    return (f"---\nid: {doc_id}\ntitle: Soak {doc_id}\ntopic: general\nsource: soak test\nversion: \"1\"\n---\n\n"
            f"# {doc_id}\n\n## Advice\n\n- For {word} syndrome, review the patient every {len(word)} days and "
            f"offer the {word} leaflet.\n- Soak documents exist only to be ingested, found and deleted.\n").encode()


def ingest_worker(rec: Recorder, store, stop: threading.Event, seed: int, pause_s: float) -> None:
    """Ingest a small new document, find it by its made-up word, delete it; the library must end as it began."""
    rng = random.Random(seed)
    for i in itertools.count():
        if stop.is_set():
            return
        word = "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(4))
        doc_id = f"soak-{i}-{word}"

        def ingest(doc_id=doc_id, word=word):
            report = store.ingest_files([(f"{doc_id}.md", guideline(doc_id, word))])
            if [o.status for o in report.outcomes] != ["added"]:
                raise RuntimeError(f"ingest of {doc_id}: {[o.to_dict() for o in report.outcomes]}")
            return True

        def search(doc_id=doc_id, word=word):
            hits = store.search(f"{word} syndrome leaflet", k=3)
            if doc_id not in [h.doc_id for h in hits]:
                raise RuntimeError(f"{doc_id} not found by search after its ingest")

        if not rec.timed("ingest", ingest):
            stop.wait(pause_s)
            continue
        rec.timed("search_new", search)
        rec.timed("delete", store.delete, doc_id)
        stop.wait(pause_s)


def rss_worker(rec: Recorder, processes: dict[str, psutil.Process], stop: threading.Event, every_s: float) -> None:
    while True:
        now = time.monotonic() - rec.start
        for name, proc in processes.items():
            try:
                rss = proc.memory_info().rss
            except psutil.Error:
                continue
            with rec._lock:
                rec.rss[name].append((round(now, 2), round(rss / 2**20, 1)))
        if stop.wait(every_s):
            return


# --- the report -----------------------------------------------------------------------------------

def percentiles(values: list[float]) -> dict:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1), "p99_ms": round(float(p99), 1),
            "max_ms": round(max(values), 1)}


def op_stats(samples: list[Sample]) -> dict:
    out = {}
    for op in OPERATIONS:
        mine = [s for s in samples if s.op == op]
        if mine:
            out[op] = {"count": len(mine), "errors": sum(not s.ok for s in mine),
                       **percentiles([s.ms for s in mine if s.ok])}
    return out


def rss_summary(readings: list[tuple[float, float]], windows: list[tuple[float, float]]) -> dict:
    per_window = []
    for lo, hi in windows:
        mb = [m for t, m in readings if lo <= t < hi]
        per_window.append({"median_mb": round(float(np.median(mb)), 1) if mb else None,
                           "max_mb": max(mb) if mb else None})
    medians = [w["median_mb"] for w in per_window if w["median_mb"] is not None]
    first, last = (medians[0], medians[-1]) if medians else (None, None)
    return {"start_mb": readings[0][1] if readings else None, "end_mb": readings[-1][1] if readings else None,
            "peak_mb": max(m for _, m in readings) if readings else None,
            "first_window_mb": first, "last_window_mb": last,
            "growth_mb": round(last - first, 1) if medians else None,
            "growth_pct": round(100 * (last - first) / first, 2) if medians else None,
            "per_window": per_window, "samples": readings}


def build_report(rec: Recorder, duration_s: float, window_s: float, config: dict, max_growth_pct: float) -> dict:
    n = max(1, round(duration_s / window_s))  # the last window also takes the stragglers
    bounds = [(i * window_s, (i + 1) * window_s if i < n - 1 else float("inf")) for i in range(n)]
    windows = []
    for i, (lo, hi) in enumerate(bounds):
        inside = [s for s in rec.samples if lo <= s.t < hi]
        windows.append({"index": i, "start_s": lo, "end_s": min(hi, duration_s), "operations": op_stats(inside)})
    rss = {name: rss_summary(readings, bounds) for name, readings in rec.rss.items()}
    for name, summary in rss.items():
        for w, r in zip(windows, summary["per_window"], strict=True):
            w[f"{name}_rss_mb"] = r["median_mb"]
    errors = [s for s in rec.samples if not s.ok]
    examples = {}
    for s in errors:
        examples.setdefault(f"{s.op}: {s.error[:80]}", f"{s.op} at {s.t:.0f} s: {s.error}")
    growth = rss.get("server", {}).get("growth_pct")
    passed = not errors and (growth is None or growth <= max_growth_pct)
    return {"config": config, "duration_s": round(duration_s, 1), "window_s": window_s,
            "operations": op_stats(rec.samples), "windows": windows, "rss": rss,
            "errors": {"total": len(errors), "by_operation": dict(sorted(
                {op: sum(1 for s in errors if s.op == op) for op in {s.op for s in errors}}.items())),
                "examples": list(examples.values())[:20]},
            "max_rss_growth_pct": max_growth_pct, "passed": passed}


def fmt(v) -> str:
    return "-" if v is None else f"{v:,.0f}"


def print_report(report: dict) -> None:
    print(f"\nSoak: {report['duration_s']:.0f} s, windows of {report['window_s']:.0f} s")
    header = f"{'window':>6} {'operation':<12} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    print(header)
    print("-" * len(header))
    for w in report["windows"]:
        for op, s in w["operations"].items():
            print(f"{w['index']:>6} {op:<12} {s['count']:>6} {s['errors']:>6} {fmt(s['p50_ms']):>8} "
                  f"{fmt(s['p95_ms']):>8} {fmt(s['p99_ms']):>8}")
    print("-" * len(header))
    for op, s in report["operations"].items():
        print(f"{'all':>6} {op:<12} {s['count']:>6} {s['errors']:>6} {fmt(s['p50_ms']):>8} {fmt(s['p95_ms']):>8} "
              f"{fmt(s['p99_ms']):>8}")
    for name, r in report["rss"].items():
        per = " ".join(fmt(w["median_mb"]) for w in r["per_window"])
        print(f"\nRSS {name} (MB): start {fmt(r['start_mb'])}, end {fmt(r['end_mb'])}, peak {fmt(r['peak_mb'])}; "
              f"window medians {per}; first→last window {r['growth_mb']:+.1f} MB ({r['growth_pct']:+.2f}%)")
    e = report["errors"]
    print(f"\nerrors: {e['total']} {e['by_operation'] or ''}")
    for line in e["examples"]:
        print(f"  {line}")
    print("PASSED" if report["passed"] else "FAILED")


# --- main -----------------------------------------------------------------------------------------

def load_cases(limit: int) -> list[dict]:
    cases = [json.loads(line) for line in CASES.read_text().splitlines() if line.strip()]
    for c in cases:
        c.pop("expected", None)
    return cases[:limit]


def main(argv: list[str] | None = None) -> int:
    from curbside.settings import load_settings

    ap = argparse.ArgumentParser(prog="python -m curbside.soak", description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--window-s", type=float, default=60.0, help="latency and RSS are reported per window")
    ap.add_argument("--base-url", help="a running server's /v1 URL (default: start one)")
    ap.add_argument("--api-key", help="the running server's key; a started server gets a random one")
    ap.add_argument("--server-pid", type=int, help="the running server's pid, for its RSS")
    ap.add_argument("--data-dir", type=Path, help="where the models are (default: the settings' data dir)")
    ap.add_argument("--model", default=None, help="chat model name (default: the settings')")
    ap.add_argument("--chat-streams", type=int, default=3)
    ap.add_argument("--chat-max-tokens", type=int, default=32)
    ap.add_argument("--consult-max-tokens", type=int, default=64)
    ap.add_argument("--ingest-pause-s", type=float, default=5.0)
    ap.add_argument("--corpus-docs", type=int, default=None, help="seed only this many bundled guidelines")
    ap.add_argument("--kv-cache-memory", default="128MiB",
                    help="the started server's KV pool (see above; '' for the server's default)")
    ap.add_argument("--max-rss-growth-pct", type=float, default=10.0)
    ap.add_argument("--json", type=Path, help="write the report here")
    args = ap.parse_args(argv)

    import openai

    from app.consult import ConsultConfig, ConsultPipeline
    from curbside.embedder import Embedder
    from retrieval.ingest import bundled_guideline_paths
    from retrieval.store import GuidelineStore, StoreConfig

    settings = load_settings(data_dir=args.data_dir)
    model = args.model or settings.chat_model
    work = Path(tempfile.mkdtemp(prefix="curbside-soak-"))
    server = None
    try:
        if args.base_url:
            base_url, api_key = args.base_url.rstrip("/"), args.api_key
            server_pid = args.server_pid
        else:
            import secrets

            api_key = secrets.token_urlsafe(16)
            server, base_url = start_server(settings.data_dir.resolve(), work / "server.log", api_key,
                                            args.kv_cache_memory or None)
            server_pid = server.pid
            print(f"server {base_url} (pid {server_pid}, log {work / 'server.log'})", flush=True)

        embedder = Embedder.load(settings.embedding_model or "all-minilm-l6-v2", settings.model_dir)
        store = GuidelineStore(StoreConfig(root=work / "store", models_dir=settings.model_dir), embedder)
        report = store.ingest_paths(bundled_guideline_paths()[:args.corpus_docs])
        if report.failed:
            raise RuntimeError(f"seeding the store failed: {report.failed}")
        print(f"store {store.root}: {len(store.documents())} documents", flush=True)
        pipeline = ConsultPipeline(store, ConsultConfig(base_url=base_url, model=model, api_key=api_key,
                                                        max_tokens=args.consult_max_tokens, timeout_s=120))
        pipeline.warm_up()
        if server is not None:
            wait_ready(server, base_url)
        client = openai.OpenAI(base_url=base_url, api_key=api_key or "none", max_retries=0, timeout=120)
        embed_model = settings.embedding_model or "all-minilm-l6-v2"

        rec = Recorder()
        stop = threading.Event()
        watched = {"client": psutil.Process()}
        if server_pid:
            watched["server"] = psutil.Process(server_pid)
        workers = [threading.Thread(target=rss_worker, args=(rec, watched, stop, 2.0), name="rss")]
        workers += [threading.Thread(target=chat_worker, args=(rec, client, model, args.chat_max_tokens, stop, i),
                                     name=f"chat-{i}") for i in range(args.chat_streams)]
        workers += [threading.Thread(target=embed_worker, args=(rec, client, embed_model, stop, 100), name="embed"),
                    threading.Thread(target=consult_worker, args=(rec, pipeline, load_cases(52), stop),
                                     name="consult"),
                    threading.Thread(target=ingest_worker, args=(rec, store, stop, 200, args.ingest_pause_s),
                                     name="ingest")]
        print(f"soaking for {args.minutes:g} min: {args.chat_streams} chat streams, embeddings, consults, "
              "ingest/search/delete", flush=True)
        for w in workers:
            w.start()
        stop.wait(args.minutes * 60)
        duration = time.monotonic() - rec.start
        stop.set()
        for w in workers:
            w.join(timeout=180)
        hung = [w.name for w in workers if w.is_alive()]
        if hung:
            rec.add("chat_stream" if any(h.startswith("chat") for h in hung) else "consult", 0, False,
                    f"workers still busy 180 s after the end: {hung}")
        leftover = [d.doc_id for d in store.documents() if d.doc_id.startswith("soak-")]
        if leftover:
            rec.add("delete", 0, False, f"soak documents left in the store: {leftover}")
        config = {"minutes": args.minutes, "kv_cache_memory": args.kv_cache_memory if server else None,
                  "chat_streams": args.chat_streams, "chat_max_tokens": args.chat_max_tokens,
                  "consult_max_tokens": args.consult_max_tokens, "base_url": base_url, "model": model,
                  "corpus_documents": len(store.documents()), "cpu_count": os.cpu_count()}
        result = build_report(rec, duration, args.window_s, config, args.max_rss_growth_pct)
        print_report(result)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2))
            if server is not None:  # the work directory goes; the server's log stays beside the report
                shutil.copy(work / "server.log", args.json.with_suffix(".server.log"))
        return 0 if result["passed"] else 1
    finally:
        if server is not None:
            stop_server(server)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
