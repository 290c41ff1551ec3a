"""The image's HEALTHCHECK: exit 0 when the role running in this container answers its health endpoint.

One image runs either role, so the URL follows what runs: the app (`curbside run --no-server`, a Streamlit
process) is checked on `/_stcore/health` at CURBSIDE_APP_PORT, the engine (`curbside serve`) on its
readiness endpoint `/health/ready` at CURBSIDE_PORT (no API key needed there). A URL given as the first
argument, or in CURBSIDE_HEALTHCHECK_URL, wins. Standard library only; any proxy settings are ignored.
"""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

ENGINE_HEALTH_PATH = "/health/ready"
APP_HEALTH_PATH = "/_stcore/health"


def engine_url(env: dict) -> str:
    return f"http://127.0.0.1:{env.get('CURBSIDE_PORT') or 8000}{ENGINE_HEALTH_PATH}"


def app_url(env: dict) -> str:
    return f"http://127.0.0.1:{env.get('CURBSIDE_APP_PORT') or 8501}{APP_HEALTH_PATH}"


def runs_app(proc: Path = Path("/proc")) -> bool:
    """Whether a Streamlit process runs in this container (the app role); the engine never starts one."""
    for cmdline in proc.glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended while we looked
            continue
        if b"streamlit" in args:
            return True
    return False


def target_url(argv: list[str], env: dict, proc: Path = Path("/proc")) -> str:
    if len(argv) > 1:
        return argv[1]
    if env.get("CURBSIDE_HEALTHCHECK_URL"):
        return env["CURBSIDE_HEALTHCHECK_URL"]
    return app_url(env) if runs_app(proc) else engine_url(env)


def main() -> int:
    url = target_url(sys.argv, dict(os.environ))
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except Exception as e:  # noqa: BLE001 - any failure is "unhealthy", with the reason in the health log
        print(f"unhealthy: {url}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
