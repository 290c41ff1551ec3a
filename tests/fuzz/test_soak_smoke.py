"""`python -m curbside.soak` for 24 seconds: the whole mixed load runs, with no error, and writes its report."""

from __future__ import annotations

import json
import subprocess
import sys

from curbside.soak import OPERATIONS


def test_a_short_soak_runs_every_operation_without_error_and_reports_percentiles_and_rss(tmp_path, repo_root):
    out = tmp_path / "soak.json"
    cmd = [sys.executable, "-m", "curbside.soak", "--minutes", "0.4", "--window-s", "8", "--chat-streams", "2",
           "--corpus-docs", "3", "--ingest-pause-s", "1", "--max-rss-growth-pct", "50",
           "--data-dir", str(repo_root / "var"), "--json", str(out)]
    run = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=420)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "PASSED" in run.stdout and "p99 ms" in run.stdout

    report = json.loads(out.read_text())
    assert report["errors"]["total"] == 0 and report["passed"]
    assert set(report["operations"]) == set(OPERATIONS)  # every operation ran at least once
    for stats in report["operations"].values():
        assert stats["count"] >= 1 and stats["errors"] == 0
        assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert len(report["windows"]) == 3
    assert all({"index", "start_s", "end_s", "operations", "server_rss_mb", "client_rss_mb"} <= set(w)
               for w in report["windows"])
    server = report["rss"]["server"]
    assert {"start_mb", "end_mb", "peak_mb", "first_window_mb", "last_window_mb", "growth_mb", "growth_pct",
            "per_window", "samples"} <= set(server)
    assert server["start_mb"] > 100 and len(server["samples"]) >= 10
    assert (tmp_path / "soak.server.log").exists()
