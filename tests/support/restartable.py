"""A real `curbside serve` that a fault test can kill and start again on the same loopback port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from app.eval_runner import wait_ready
from support.server import ROOT, free_port


class RestartableServer:
    def __init__(self, tmp: Path, *args: str, api_key: str | None = None, env: dict | None = None):
        self.tmp, self.args, self.api_key = tmp, args, api_key
        self.port = free_port()
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        if api_key:
            self.env["CURBSIDE_API_KEY"] = api_key
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def log_path(self) -> Path:
        return self.tmp / f"server-{self.port}-{self.starts}.log"

    def start(self, timeout: float = 240) -> RestartableServer:
        """Start (again) on the same port and wait until /health/ready is 200."""
        self.starts += 1
        cmd = [sys.executable, "-m", "curbside.cli", "--data-dir", str(ROOT / "var"), "serve", "--port",
               str(self.port), *self.args]
        self.process = subprocess.Popen(cmd, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
                                        env=self.env, cwd=ROOT)
        try:
            wait_ready(self.url, self.process, self.log_path, timeout)
        except RuntimeError:
            self.kill()
            raise
        return self

    def kill(self, sig: int = signal.SIGKILL, wait_s: float = 60) -> int | None:
        """Send `sig` and wait for the process to exit; returns its exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def generation_tokens(self) -> float:
        """curbside_generation_tokens_total from /metrics (tokens generated since this start)."""
        text = httpx.get(self.url + "/metrics", headers=self.headers(), timeout=10).text
        for line in text.splitlines():
            if line.startswith("curbside_generation_tokens_total "):
                return float(line.split()[1])
        return 0.0

    def stop(self) -> None:
        self.kill(signal.SIGTERM, wait_s=40)
