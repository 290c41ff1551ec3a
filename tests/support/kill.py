"""Crash a child process at a chosen moment: it prints stage names, and is SIGKILLed at the one asked for."""

from __future__ import annotations

import signal
import subprocess


def sigkill_at(proc: subprocess.Popen, stage: str) -> list[str]:
    """Read the child's stdout lines until `stage` (or "done"), then SIGKILL it; returns the lines seen."""
    seen: list[str] = []
    try:
        for line in proc.stdout:
            seen.append(line.strip())
            if line.strip() in (stage, "done"):
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    return seen
