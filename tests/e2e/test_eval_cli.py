"""`curbside eval` end to end: a local inference server with the real model, the real store, a report."""

from __future__ import annotations

import json

from curbside.cli import main


def test_eval_runs_cases_through_a_local_server_and_writes_the_report(repo_root, tmp_path, models_dir, capsys):
    data = tmp_path / "var"
    data.mkdir()
    (data / "models").symlink_to(models_dir)
    out = tmp_path / "eval"
    code = main(["--data-dir", str(data), "eval", "--cases", str(repo_root / "data/eval/dev_cases.jsonl"),
                 "--out", str(out), "--limit", "3", "--max-tokens", "24", "--concurrency", "3"])
    stdout = capsys.readouterr().out
    assert code == 0, stdout
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in results] == ["dev-001", "dev-002", "dev-003"]
    for r in results:
        assert "error" not in r, r.get("error")
        assert r["urgency"] in ("routine", "urgent", "emergency")
        assert r["citations"] and r["answer"]
        assert set(r["timings_ms"]) >= {"triage", "retrieval", "generation", "total"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_cases"] == 3 and metrics["invalid_citation_count"] == 0
    report = (out / "report.md").read_text()
    assert "dev-001" in report or "emergency" in report.lower()
    assert list((out / "plots").glob("*.png"))
    assert "emergency_recall" in stdout
