"""Two `curbside eval` runs side by side: the headline metrics, and the cases whose required mentions changed.

Used to compare the base model with a tuned adapter on the same case file (`curbside eval-compare A B`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

# (label, how to read it from metrics.json)
HEADLINES = (
    ("emergency recall", lambda m: m.get("emergency_recall")),
    ("urgency accuracy", lambda m: m.get("urgency_accuracy")),
    ("instrument accuracy", lambda m: m.get("instrument_accuracy")),
    ("citation topic hit", lambda m: m.get("citation_topic_hit_rate")),
    ("required-mention recall", lambda m: m.get("required_mention_recall")),
    ("invalid citations", lambda m: m.get("invalid_citation_count")),
    ("forbidden mentions", lambda m: m.get("forbidden_mention_violations")),
    ("model answer shown (1 - fallback rate)",
     lambda m: None if m.get("fallback_rate") is None else 1 - m["fallback_rate"]),
    ("end to end p50 (s)", lambda m: (m.get("latency_ms") or {}).get("total", {}).get("p50", 0) / 1000 or None),
)


@dataclass(frozen=True)
class MentionChange:
    case_id: str
    groups: int
    found_a: int
    found_b: int


def load_metrics(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{run_dir} holds no metrics.json: is it a `curbside eval --out` directory?") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not JSON: {e}") from None


def headline_rows(a: dict, b: dict) -> list[tuple[str, float | None, float | None]]:
    return [(label, read(a), read(b)) for label, read in HEADLINES]


def mention_changes(a: dict, b: dict) -> list[MentionChange]:
    """Cases in both runs whose count of required-mention groups found differs, by case id."""
    cases_b = {c["id"]: c for c in b.get("per_case", [])}
    changes = []
    for case in a.get("per_case", []):
        other = cases_b.get(case["id"])
        if other is None or not case["mention_groups"]:
            continue
        found_a = case["mention_groups"] - len(case["mentions_missing"])
        found_b = other["mention_groups"] - len(other["mentions_missing"])
        if found_a != found_b:
            changes.append(MentionChange(case["id"], case["mention_groups"], found_a, found_b))
    return sorted(changes, key=lambda c: c.case_id)


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:g}" if float(value).is_integer() else f"{value:.3f}"


def report(a: dict, b: dict, labels: tuple[str, str] = ("A", "B")) -> str:
    """A Markdown comparison: the headline table, then the cases whose required mentions changed."""
    lines = [f"| metric | {labels[0]} | {labels[1]} |", "|---|---|---|"]
    lines += [f"| {label} | {_fmt(x)} | {_fmt(y)} |" for label, x, y in headline_rows(a, b)]
    changes = mention_changes(a, b)
    better = sum(c.found_b > c.found_a for c in changes)
    lines += ["", f"Required mentions changed in {len(changes)} cases ({better} better in {labels[1]}, "
                  f"{len(changes) - better} worse):"]
    lines += [f"- {c.case_id}: {c.found_a} → {c.found_b} of {c.groups}" for c in changes]
    return "\n".join(lines)
