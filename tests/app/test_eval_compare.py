"""Two eval runs side by side: headline metrics and the cases whose required mentions changed."""

from __future__ import annotations

import json

import pytest

from app.eval_compare import load_metrics, mention_changes, report
from curbside.cli import main


def run(recall: float, fallback: float, missing: dict[str, int]) -> dict:
    per_case = [{"id": cid, "mention_groups": 2, "mentions_missing": [["x"]] * n} for cid, n in missing.items()]
    return {"emergency_recall": 1.0, "required_mention_recall": recall, "fallback_rate": fallback,
            "invalid_citation_count": 0, "latency_ms": {"total": {"p50": 2500.0}}, "per_case": per_case}


BASE = run(0.5, 1.0, {"c1": 1, "c2": 0, "c3": 2})
TUNED = run(0.25, 0.25, {"c1": 0, "c2": 2, "c3": 2, "c4": 0})


def test_only_cases_in_both_runs_whose_found_mentions_differ_are_listed():
    changes = mention_changes(BASE, TUNED)
    assert [(c.case_id, c.found_a, c.found_b) for c in changes] == [("c1", 1, 2), ("c2", 2, 0)]


def test_the_report_puts_the_headlines_side_by_side():
    text = report(BASE, TUNED, ("base", "adapter"))
    assert "| required-mention recall | 0.500 | 0.250 |" in text
    assert "| model answer shown (1 - fallback rate) | 0 | 0.750 |" in text
    assert "| end to end p50 (s) | 2.500 | 2.500 |" in text
    assert "changed in 2 cases (1 better in adapter, 1 worse)" in text and "- c2: 2 → 0 of 2" in text


def test_the_command_compares_two_eval_directories(tmp_path, capsys):
    for name, metrics in (("base", BASE), ("tuned", TUNED)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(metrics))
    assert main(["eval-compare", str(tmp_path / "base"), str(tmp_path / "tuned"), "--labels", "base,adapter"]) == 0
    assert "| metric | base | adapter |" in capsys.readouterr().out
    assert main(["eval-compare", str(tmp_path / "base"), str(tmp_path / "nowhere")]) == 2
    assert "holds no metrics.json" in capsys.readouterr().err


def test_a_broken_metrics_file_is_named(tmp_path):
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(ValueError, match="metrics.json is not JSON"):
        load_metrics(tmp_path)
