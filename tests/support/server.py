"""Start a real `curbside serve` process on a free loopback port for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from app.eval_runner import wait_ready

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "test-key-0123456789"
MODEL = "smollm2-135m-instruct"
EMBED = "all-minilm-l6-v2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    process: subprocess.Popen
    url: str
    api_key: str | None
    log_path: Path

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_server(tmp: Path, *args: str, api_key: str | None = None, env: dict | None = None,
                 timeout: float = 180) -> RunningServer:
    port = free_port()
    log_path = tmp / f"server-{port}.log"
    cmd = [sys.executable, "-m", "curbside.cli", "--data-dir", str(ROOT / "var"), "serve", "--port", str(port),
           *args]
    # the tests' own var/ may hold a tuned adapter (make tune); servers under test start from the base model
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "CURBSIDE_USE_TUNED_ADAPTER": "false", **(env or {})}
    if api_key:
        full_env["CURBSIDE_API_KEY"] = api_key
    process = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=full_env, cwd=ROOT)
    server = RunningServer(process, f"http://127.0.0.1:{port}", api_key, log_path)
    try:
        wait_ready(server.url, process, log_path, timeout)
    except RuntimeError:
        server.stop()
        raise
    return server
