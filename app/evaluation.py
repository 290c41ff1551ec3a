"""Score consult results (contract §4) against the `expected` block of evaluation cases (contract §1)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

URGENCY_LEVELS = ("routine", "urgent", "emergency")
URGENCY_RANK = {level: rank for rank, level in enumerate(URGENCY_LEVELS)}
MISSING = "missing"  # no result at all, or a result without an urgency
ERROR = "error"  # the pipeline reported an error for the case
INVALID = "invalid"  # an urgency outside the contract's three levels

TARGETS: dict[str, float | int] = {
    "emergency_recall": 1.0,
    "urgency_accuracy": 0.9,
    "instrument_accuracy": 1.0,
    "citation_topic_hit_rate": 0.9,
    "invalid_citation_count": 0,
    "forbidden_mention_violations": 0,
}
PIPELINE_STAGES = ("triage", "retrieval", "generation", "total")
LOWER_IS_BETTER = frozenset({"invalid_citation_count", "forbidden_mention_violations"})

# [1], [2, 3] and [1][2]; each number inside the brackets is one marker.
CITATION_MARKER = re.compile(r"\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]")
# Runs of this many words shared with the case text mark a message as quoting the patient.
QUOTE_WORDS = 6
REDACTED = "[redacted: message quotes the case text]"


# --- loading ----------------------------------------------------------------------------------------------


def load_jsonl(path: str | Path) -> list[dict]:
    """One JSON object per non-blank line; a bad line raises ValueError naming the file and line."""
    path = Path(path)
    records: list[dict] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{line_no}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}")
            records.append(record)
    return records


# --- small helpers ----------------------------------------------------------------------------------------


def _dict(value: object) -> dict:
    """`value` if it is a dict, else an empty one: a malformed result must not crash the scorer."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _fmt(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _normalise(text: str) -> str:
    """Case-folded with whitespace collapsed, so phrase matching ignores line breaks and capitals."""
    return " ".join(text.casefold().split())


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def redact_case_text(message: str, case: dict) -> str:
    """`message`, or a placeholder when it quotes the case's presentation or question (reports get shared)."""
    words = _words(message)
    if len(words) < QUOTE_WORDS:
        return message
    runs = {tuple(words[i : i + QUOTE_WORDS]) for i in range(len(words) - QUOTE_WORDS + 1)}
    for field in ("presentation", "question"):
        source = _words(str(case.get(field) or ""))
        if any(tuple(source[i : i + QUOTE_WORDS]) in runs for i in range(len(source) - QUOTE_WORDS + 1)):
            return REDACTED
    return message


def _failure(result: dict | None) -> str | None:
    """Why the result cannot be scored (no result, pipeline error), or None when it can."""
    if result is None:
        return "no result"
    if "error" in result and result["error"] is not None:
        return str(result["error"]) or "unspecified error"
    return None


# --- urgency ----------------------------------------------------------------------------------------------


def _urgency_got(result: dict | None, failure: str | None) -> str:
    if result is None:
        return MISSING
    if failure is not None:
        return ERROR
    urgency = result.get("urgency")
    if urgency is None:
        return MISSING
    return urgency if isinstance(urgency, str) and urgency in URGENCY_RANK else INVALID


def _urgency_verdicts(expected: str, got: str) -> dict[str, object]:
    # A failed case raised no alarm, so for safety it ranks as routine: it under-triages, never over-triages.
    got_rank = URGENCY_RANK.get(got, 0)
    expected_rank = URGENCY_RANK[expected]
    return {
        "urgency_expected": expected,
        "urgency_got": got,
        "urgency_correct": got == expected,
        "emergency_missed": expected == "emergency" and got != "emergency",
        "over_triaged": got in URGENCY_RANK and got_rank > expected_rank,
        "under_triaged": got != expected and got_rank < expected_rank,
    }


# --- instruments ------------------------------------------------------------------------------------------


def _same(expected: object, got: object) -> bool:
    if isinstance(expected, bool):
        return got is expected  # 1 is not a valid `positive`
    if isinstance(expected, list):
        # Flag order carries no meaning.
        return isinstance(got, list) and sorted(map(str, expected)) == sorted(map(str, got))
    return expected == got


def _check_instrument(name: str, fields: dict, got: object, error: object) -> list[str]:
    """Mismatches of one expected scored instrument."""
    if not isinstance(got, dict):
        if error is not None:
            return [f"{name}: expected a scored entry, got validation error {_fmt(str(error))}"]
        return [f"{name}: expected a scored entry, got none"]
    return [
        f"{name}.{field}: expected {_fmt(value)}, got {_fmt(got[field]) if field in got else 'none'}"
        for field, value in fields.items()
        if field not in got or not _same(value, got[field])
    ]


def _check_instruments(expected: dict, result: dict) -> tuple[dict[str, bool], list[str]]:
    """Per expected entry whether it matched, and every mismatch (including unexpected validation errors)."""
    got = _dict(result.get("instruments"))
    errors = _dict(result.get("instrument_errors"))
    checks: dict[str, bool] = {}
    mismatches: list[str] = []
    for name, fields in _dict(expected.get("instruments")).items():
        problems = _check_instrument(name, _dict(fields), got.get(name), errors.get(name))
        checks[name] = not problems
        mismatches += problems
    expected_invalid = [str(name) for name in _list(expected.get("instrument_errors"))]
    for name in expected_invalid:
        reported = name in errors
        checks[name] = checks.get(name, True) and reported
        if not reported:
            what = "a scored entry" if name in got else "none"
            mismatches.append(f"{name}: expected a validation error, got {what}")
    for name, message in errors.items():
        if name not in checks:
            mismatches.append(f"{name}: unexpected validation error {_fmt(str(message))}")
    return checks, mismatches


# --- citations and answer ---------------------------------------------------------------------------------


def citation_markers(answer: str) -> list[int]:
    """Every [n] number in the answer, in order; [2, 3] gives two."""
    return [int(n) for group in CITATION_MARKER.findall(answer) for n in group.split(",")]


def _citation_numbers(citations: list) -> set[int]:
    numbers: set[int] = set()
    for citation in citations:
        try:
            numbers.add(int(_dict(citation).get("n")))
        except (TypeError, ValueError):
            continue  # a citation without a usable n cannot be named by a marker
    return numbers


def _citation_topics(citations: list) -> list[str]:
    return sorted({str(_dict(c)["topic"]) for c in citations if _dict(c).get("topic")})


def _mentions_missing(groups: list, answer: str) -> list[list[str]]:
    text = _normalise(answer)
    return [list(group) for group in groups if not any(_normalise(str(p)) in text for p in group)]


def _forbidden_found(phrases: list, answer: str) -> list[str]:
    text = _normalise(answer)
    return [str(p) for p in phrases if _normalise(str(p)) in text]


def _fallback_used(result: dict, failure: str | None) -> bool | None:
    if failure is not None:
        return None
    value = _dict(result.get("verification")).get("fallback_used")
    return value if isinstance(value, bool) else None


# --- one case ---------------------------------------------------------------------------------------------


def score_case(case: dict, result: dict | None) -> dict:
    """Verdicts for one case; a missing or errored result fails every check that needs a result."""
    expected = _dict(case.get("expected"))
    expected_urgency = expected.get("urgency")
    if expected_urgency not in URGENCY_RANK:
        raise ValueError(
            f"case {case.get('id')!r}: expected urgency {expected_urgency!r} is not one of {URGENCY_LEVELS}"
        )
    failure = _failure(result)
    usable = _dict(result) if failure is None else {}  # a failed result's partial content earns nothing
    answer = usable.get("answer") if isinstance(usable.get("answer"), str) else ""
    citations = _list(usable.get("citations"))
    checks, mismatches = _check_instruments(expected, usable)
    topics = [str(t) for t in _list(expected.get("topics"))]
    got_topics = _citation_topics(citations)
    cited = _citation_numbers(citations)
    groups = _list(expected.get("must_mention"))
    return {
        "id": case.get("id"),
        "error": None if failure is None else redact_case_text(failure, case),
        **_urgency_verdicts(expected_urgency, _urgency_got(result, failure)),
        "instruments_correct": (not mismatches) if (checks or mismatches) else None,
        "instrument_checks": checks,
        "instrument_mismatches": [redact_case_text(m, case) for m in mismatches],
        "topics_expected": topics,
        "citation_topics": got_topics,
        "citation_topic_hit": bool(set(topics) & set(got_topics)) if topics else None,
        "mention_groups": len(groups),
        "mentions_missing": _mentions_missing(groups, answer),
        "forbidden_found": _forbidden_found(_list(expected.get("must_not_mention")), answer),
        "invalid_citations": sum(1 for n in citation_markers(answer) if n not in cited),
        "fallback_used": _fallback_used(usable, failure),
    }


# --- the whole run ----------------------------------------------------------------------------------------


def _rate(numerator: int, denominator: int) -> float | None:
    """None when nothing was measured, so an empty run cannot look perfect."""
    return numerator / denominator if denominator else None


def _percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def stage_timings(timings: Iterable[object]) -> dict[str, list[float]]:
    """Every numeric value per stage key, across `timings_ms` dicts; stages sorted by name."""
    stages: dict[str, list[float]] = {}
    for timing in timings:
        for stage, value in _dict(timing).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                stages.setdefault(str(stage), []).append(float(value))
    # Pipeline order reads better than alphabetical; stages the contract does not name follow by name.
    order = {stage: i for i, stage in enumerate(PIPELINE_STAGES)}
    return dict(sorted(stages.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


def usable_timings(per_case: list[dict], results: list[dict]) -> list[object]:
    """`timings_ms` of the scored cases whose result did not fail: failed runs stop early and would flatter."""
    by_id = {r.get("id"): r for r in results}
    return [_dict(by_id.get(c["id"])).get("timings_ms") for c in per_case if c["error"] is None]


def latency_summary(timings: Iterable[object]) -> dict[str, dict[str, float]]:
    """p50/p90/p99/mean/max (and n) per stage, over every numeric key found in the timings."""
    summary: dict[str, dict[str, float]] = {}
    for stage, values in stage_timings(timings).items():
        ordered = sorted(values)
        summary[stage] = {
            "n": len(ordered),
            "p50": round(_percentile(ordered, 50), 3),
            "p90": round(_percentile(ordered, 90), 3),
            "p99": round(_percentile(ordered, 99), 3),
            "mean": round(sum(ordered) / len(ordered), 3),
            "max": round(ordered[-1], 3),
        }
    return summary


def _confusion(per_case: list[dict]) -> dict[str, dict[str, int]]:
    """Rows are expected levels, columns the three levels plus any failure label that occurred."""
    extra = sorted({c["urgency_got"] for c in per_case} - set(URGENCY_LEVELS))
    matrix = {e: {g: 0 for g in (*URGENCY_LEVELS, *extra)} for e in URGENCY_LEVELS}
    for c in per_case:
        matrix[c["urgency_expected"]][c["urgency_got"]] += 1
    return matrix


def _instrument_metrics(per_case: list[dict]) -> dict[str, object]:
    by_name: dict[str, dict[str, int]] = {}
    for c in per_case:
        for name, ok in c["instrument_checks"].items():
            entry = by_name.setdefault(name, {"n": 0, "correct": 0})
            entry["n"] += 1
            entry["correct"] += int(ok)
    total = sum(e["n"] for e in by_name.values())
    correct = sum(e["correct"] for e in by_name.values())
    return {
        "n_instrument_checks": total,
        "instrument_accuracy": _rate(correct, total),
        "instrument_accuracy_by_name": {
            name: {**e, "accuracy": e["correct"] / e["n"]} for name, e in sorted(by_name.items())
        },
        "instrument_mismatches": [f"{c['id']}: {m}" for c in per_case for m in c["instrument_mismatches"]],
    }


def _answer_metrics(per_case: list[dict]) -> dict[str, object]:
    topic_cases = [c for c in per_case if c["citation_topic_hit"] is not None]
    groups = sum(c["mention_groups"] for c in per_case)
    missing = sum(len(c["mentions_missing"]) for c in per_case)
    forbidden = [f"{c['id']}: {phrase}" for c in per_case for phrase in c["forbidden_found"]]
    return {
        "citation_topic_hit_rate": _rate(sum(c["citation_topic_hit"] for c in topic_cases), len(topic_cases)),
        "required_mention_recall": _rate(groups - missing, groups),
        "forbidden_mention_violations": len(forbidden),
        "forbidden_mentions": forbidden,
        "invalid_citation_count": sum(c["invalid_citations"] for c in per_case),
        "fallback_rate": _rate(sum(c["fallback_used"] is True for c in per_case), len(per_case)),
    }


def _urgency_metrics(per_case: list[dict]) -> dict[str, object]:
    emergencies = [c for c in per_case if c["urgency_expected"] == "emergency"]
    recalled = sum(not c["emergency_missed"] for c in emergencies)
    return {
        "urgency_accuracy": _rate(sum(c["urgency_correct"] for c in per_case), len(per_case)),
        "urgency_confusion": _confusion(per_case),
        "n_emergency": len(emergencies),
        # No emergency case means none was missed: recall is 1.0 and n_emergency says it was vacuous.
        "emergency_recall": recalled / len(emergencies) if emergencies else 1.0,
        "emergency_missed": [c["id"] for c in emergencies if c["emergency_missed"]],
        "over_triage_rate": _rate(sum(c["over_triaged"] for c in per_case), len(per_case)),
        "under_triage_count": sum(c["under_triaged"] for c in per_case),
    }


def compute_metrics(cases: list[dict], results: list[dict]) -> dict:
    """Run-level metrics over the cases that carry `expected`, matching results by id (JSON-serialisable)."""
    by_id = {r.get("id"): r for r in results}  # a duplicated id keeps the runner's last result
    scored = [c for c in cases if "expected" in c]
    per_case = [score_case(c, by_id.get(c.get("id"))) for c in scored]
    ids = {c.get("id") for c in cases}
    return {
        "n_cases": len(per_case),
        "n_errors": sum(c["error"] is not None for c in per_case),
        "n_missing": sum(by_id.get(c["id"]) is None for c in per_case),
        "n_unscored_cases": len(cases) - len(scored),
        "n_unmatched_results": sum(r.get("id") not in ids for r in by_id.values()),
        **_urgency_metrics(per_case),
        **_instrument_metrics(per_case),
        **_answer_metrics(per_case),
        "latency_ms": latency_summary(usable_timings(per_case, results)),
        "per_case": per_case,
    }


# --- targets ----------------------------------------------------------------------------------------------


def target_report(metrics: dict) -> list[tuple[str, object, object, bool]]:
    """(name, value, target, met) for every entry of TARGETS; an unmeasured value (None) is not met."""
    rows: list[tuple[str, object, object, bool]] = []
    for name, target in TARGETS.items():
        value = metrics.get(name)
        if value is None:
            met = False
        else:
            met = value <= target if name in LOWER_IS_BETTER else value >= target
        rows.append((name, value, target, met))
    return rows


def strict_failures(metrics: dict) -> list[str]:
    """Why `curbside eval --strict` fails: a missed emergency or a wrongly scored instrument, with case ids."""
    failures: list[str] = []
    per_case = metrics.get("per_case", [])
    if metrics.get("emergency_recall", 1.0) < 1.0:
        missed = [str(c["id"]) for c in per_case if c.get("emergency_missed")]
        failures.append(f"emergency recall {metrics['emergency_recall']:.3f} < 1.0: missed {', '.join(missed)}")
    accuracy = metrics.get("instrument_accuracy")
    if accuracy is not None and accuracy < 1.0:
        wrong = [str(c["id"]) for c in per_case if c.get("instruments_correct") is False]
        failures.append(f"instrument accuracy {accuracy:.3f} < 1.0: wrong in {', '.join(wrong)}")
    return failures
