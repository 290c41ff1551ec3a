"""Fuzz the inference server from its own OpenAPI schema for longer than the test does, and print the counts.

    .venv/bin/python tests/fuzz/fuzz_openapi.py --max-examples 300 [--url http://127.0.0.1:8000 --api-key KEY]
        [--json var/fuzz.json]

Without --url it starts `curbside serve` on a free loopback port (API key set, default token budget 8).
Exit status 1 when any request got a 5xx, hung, or answered an error outside OpenAI's shape.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for support.*

from support.fuzz import MAX_TOKENS, fuzz  # noqa: E402
from support.server import API_KEY, start_server  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-examples", type=int, default=200, help="per operation and mode (positive, negative)")
    ap.add_argument("--url", help="a running server (default: start one)")
    ap.add_argument("--api-key", help="the running server's key")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a request counts as hung")
    ap.add_argument("--seed", type=int, help="hypothesis seed (default: derandomized)")
    ap.add_argument("--json", type=Path, help="write the counts here")
    args = ap.parse_args(argv)

    server = None
    if args.url:
        url, key = args.url.rstrip("/"), args.api_key
    else:
        tmp = Path(tempfile.mkdtemp(prefix="curbside-fuzz-"))
        server = start_server(tmp, api_key=API_KEY, env={"CURBSIDE_DEFAULT_MAX_TOKENS": str(MAX_TOKENS)})
        url, key = server.url, API_KEY
        print(f"server {url} (log {server.log_path})", flush=True)
    try:
        stats = fuzz(url, key, args.max_examples, args.timeout, seed=args.seed)
    finally:
        if server is not None:
            server.stop()
    report = stats.to_dict()
    print(f"\n{'operation':<34} requests")
    for op, n in sorted(stats.by_operation.items()):
        print(f"{op:<34} {n}")
    print(f"\nrequests {stats.requests} over {len(stats.by_operation)} operations in {stats.seconds:.0f} s "
          f"(slowest {stats.slowest_s:.1f} s)")
    print("statuses " + ", ".join(f"{k}: {v}" for k, v in report["statuses"].items()))
    print(f"failures {len(stats.failures)}")
    for f in stats.failures:
        print(f"  {f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**report, "max_examples": args.max_examples}, indent=2))
    return 1 if stats.failures else 0


if __name__ == "__main__":
    sys.exit(main())
