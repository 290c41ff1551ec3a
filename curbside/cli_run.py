"""`curbside run`: the whole product on one machine: the inference server, then the Streamlit app.

Prints the app's URL and, on the very first start, where the first admin's generated password is (a 0600
file under the data directory; the password itself is never printed or logged). Ctrl-C stops both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

APP_MAIN = Path(__file__).resolve().parents[1] / "app" / "ui" / "main.py"


def _wait_ready(url: str, proc: subprocess.Popen, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} while starting")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout_s:.0f} s ({url})")


def _stop(procs: list[subprocess.Popen], grace_s: float = 15.0) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def streamlit_command(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP_MAIN), "--server.address", host,
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.showErrorDetails", "none",
            # a fixed address to print: bound to all interfaces, Streamlit would otherwise look up its
            # external IP on the internet at start
            "--browser.serverAddress", "localhost" if host in ("0.0.0.0", "::", "") else host]


def cmd_run(args) -> int:
    from app.accounts import Accounts
    from app.audit import AuditLog

    from .settings import load_settings

    settings = load_settings(data_dir=args.data_dir)
    env = dict(os.environ, CURBSIDE_DATA_DIR=str(settings.data_dir.resolve()))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    curbside = [sys.executable, "-m", "curbside"]

    # The store is built (bundled corpus embedded) before the app starts, so no clinician waits for it.
    if settings.seed_bundled_guidelines:
        subprocess.run([*curbside, "docs", "seed"], env=env, check=True)
    password_file = Accounts(settings.app_db, AuditLog(settings.app_db)).ensure_first_admin(
        settings.first_admin_password_file)

    procs: list[subprocess.Popen] = []
    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        if not args.no_server:
            procs.append(subprocess.Popen([*curbside, "serve"], env=env, start_new_session=True))
            _wait_ready(f"{settings.chat_base_url.removesuffix('/v1')}/health/ready", procs[0],
                        "the inference server", args.ready_timeout)
        app = subprocess.Popen(streamlit_command(settings.app_host, settings.app_port), env=env,
                               cwd=APP_MAIN.parents[2], start_new_session=True)
        procs.append(app)
        _wait_ready(f"http://{settings.app_host}:{settings.app_port}/_stcore/health", app, "the app", 120)
    except (RuntimeError, KeyboardInterrupt) as e:
        print(f"curbside: error: {e}", file=sys.stderr)
        _stop(procs)
        return 1

    print(f"\nCurbside is running: http://{settings.app_host}:{settings.app_port}", flush=True)
    print(f"Inference server: {settings.chat_base_url}", flush=True)
    if password_file:
        print(f"First admin account 'admin': its password is in {password_file.resolve()} (readable by you only). "
              "Sign in, change it, then delete that file.", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    status = 0
    while not stopping:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            which = "the app" if dead[0] is app else "the inference server"
            print(f"curbside: {which} exited ({dead[0].returncode}); stopping", file=sys.stderr)
            status = 1
            break
        time.sleep(0.5)
    print("Stopping…", flush=True)
    _stop(procs)
    return status


def add_commands(sub) -> None:
    r = sub.add_parser("run", help="start the inference server and the app (http://127.0.0.1:8501)")
    r.add_argument("--no-server", action="store_true",
                   help="start only the app (it uses CURBSIDE_LLM_BASE_URL, e.g. a vLLM, NIM or Triton server)")
    r.add_argument("--ready-timeout", type=float, default=300.0, help="seconds to wait for the model to load")
    r.set_defaults(func=cmd_run)
