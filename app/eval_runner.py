"""`curbside eval`: every case through the pipeline, then results.jsonl, metrics.json and report.md.

When no base URL is given, a local inference server is started on a free port for the run and stopped after.
The runner strips `expected` before a case reaches the pipeline and has no per-case logic.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from .consult import ConsultPipeline

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class LocalServer:
    base_url: str
    process: subprocess.Popen
    log_path: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base_url: str, process: subprocess.Popen, log_path: Path, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    root = base_url.removesuffix("/v1")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the local inference server exited with status {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{root}/health/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the local inference server was not ready after {timeout_s:.0f}s (log: {log_path})")


@contextmanager
def local_server(data_dir: Path, model: str, log_path: Path, extra_args: list[str] | None = None):
    """`curbside serve` on a free loopback port for the duration of the block."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "curbside.cli",
        "--data-dir",
        str(data_dir),
        "serve",
        "--model",
        model,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-embeddings",
        *(extra_args or []),
    ]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(base_url, process, log_path)
        yield LocalServer(base_url, process, log_path)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()


def without_expected(case: dict) -> dict:
    return {k: v for k, v in case.items() if k != "expected"}


def run_cases(
    pipeline: ConsultPipeline, cases: list[dict], concurrency: int = 4, on_done: Callable[[dict], None] | None = None
) -> list[dict]:
    """Results in case order; a case the pipeline cannot process becomes {"id", "error"} and the run goes on."""

    def one(case: dict) -> dict:
        try:
            result = pipeline.run(without_expected(case))
        except Exception as e:  # noqa: BLE001 - recorded in the result; one bad case never stops the run
            result = {"id": case.get("id"), "error": f"{type(e).__name__}: {e}"}
        if on_done:
            on_done(result)
        return result

    pipeline.warm_up()
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, cases))


def git_commit() -> str | None:
    try:
        return (
            subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        return None


def write_results(out_dir: Path, results: list[dict]) -> Path:
    from retrieval.durable import write_bytes_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.jsonl"
    write_bytes_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results).encode())
    return path


def run_info(cases_path: Path, base_url: str, model: str, adapter: str | None, started: datetime) -> dict:
    return {
        "cases": str(cases_path),
        "base_url": base_url,
        "model": model,
        "adapter": adapter,
        "date": started.isoformat(timespec="seconds"),
        "git_commit": git_commit(),
    }


def now() -> datetime:
    return datetime.now(UTC)
