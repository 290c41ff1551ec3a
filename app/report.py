"""Write an evaluation run's metrics.json, report.md and plots; case ids only, never patient text."""

from __future__ import annotations

import io
import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from app.evaluation import (
    URGENCY_LEVELS,
    redact_case_text,
    stage_timings,
    strict_failures,
    target_report,
    usable_timings,
)

RUN_INFO_LABELS = {
    "model": "Model",
    "base_url": "Base URL",
    "date": "Date",
    "case_file": "Case file",
    "git_commit": "Git commit",
}
# Latency plots switch to a log axis when the slowest stage is this many times the fastest.
LOG_SCALE_SPREAD = 100


# --- files ------------------------------------------------------------------------------------------------


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside `path`, then rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its 0600 mode would make a report meant for sharing unreadable to others.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("xb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --- plots ------------------------------------------------------------------------------------------------


def _fraction(value: object) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def _label(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else ("n/a" if value is None else str(value))


def _bars(plt, title: str, values: dict[str, object], ylabel: str, unit_scale: bool):
    """A labelled bar chart; `unit_scale` fixes the axis at 0-1 for rates."""
    fig, ax = plt.subplots(figsize=(max(4.0, 1.4 * len(values) + 2), 3.6))
    heights = [_fraction(v) for v in values.values()]
    bars = ax.bar(list(values), heights, color="#4c72b0")
    ax.bar_label(bars, labels=[_label(v) for v in values.values()], padding=2)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if unit_scale:
        ax.set_ylim(0, 1.12)
    else:
        ax.set_ylim(0, max([*heights, 1.0]) * 1.15)
        ax.yaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def _plot_confusion(plt, metrics: dict, results: list[dict]):
    matrix = metrics["urgency_confusion"]
    rows = list(matrix)
    columns = list(matrix[rows[0]])
    counts = [[matrix[r][c] for c in columns] for r in rows]
    fig, ax = plt.subplots(figsize=(1.3 * len(columns) + 2.5, 3.8))
    image = ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("got")
    ax.set_ylabel("expected")
    ax.set_title("Urgency confusion matrix")
    peak = max((n for row in counts for n in row), default=0)
    for i, row in enumerate(counts):
        for j, n in enumerate(row):
            # White text on the darkest cells keeps the count readable.
            ax.text(j, i, str(n), ha="center", va="center", color="white" if n > peak / 2 else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    return fig


def _plot_urgency(plt, metrics: dict, results: list[dict]):
    values = {
        "emergency recall": metrics["emergency_recall"],
        "urgency accuracy": metrics["urgency_accuracy"],
        "over-triage rate": metrics["over_triage_rate"],
    }
    return _bars(plt, "Triage", values, "rate", unit_scale=True)


def _plot_instruments(plt, metrics: dict, results: list[dict]):
    by_name = metrics.get("instrument_accuracy_by_name") or {}
    if not by_name:
        return None
    values = {name: entry["accuracy"] for name, entry in by_name.items()}
    return _bars(plt, "Instrument accuracy per instrument", values, "accuracy", unit_scale=True)


def _plot_grounding(plt, metrics: dict, results: list[dict]):
    values = {
        "citation topic hit rate": metrics["citation_topic_hit_rate"],
        "required-mention recall": metrics["required_mention_recall"],
    }
    return _bars(plt, "Citations and required mentions", values, "rate", unit_scale=True)


def _plot_violations(plt, metrics: dict, results: list[dict]):
    values = {
        "forbidden mentions": metrics["forbidden_mention_violations"],
        "invalid citations": metrics["invalid_citation_count"],
    }
    return _bars(plt, "Violations (target 0)", values, "count", unit_scale=False)


def _plot_latency(plt, metrics: dict, results: list[dict]):
    stages = stage_timings(usable_timings(metrics.get("per_case", []), results))
    if not stages:
        return None
    fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(stages) + 2), 4.0))
    ax.boxplot(list(stages.values()), tick_labels=list(stages))
    positive = [v for values in stages.values() for v in values if v > 0]
    everything = [v for values in stages.values() for v in values]
    # A log axis only works when every value is positive; it is needed when stages differ by orders of magnitude.
    if positive and len(positive) == len(everything) and max(positive) / min(positive) >= LOG_SCALE_SPREAD:
        ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.set_title("Latency per stage")
    fig.tight_layout()
    return fig


PlotFn = Callable[..., object]
PLOTS: tuple[tuple[str, str, PlotFn], ...] = (
    ("urgency_confusion.png", "Urgency confusion matrix", _plot_confusion),
    ("triage.png", "Emergency recall, urgency accuracy and over-triage rate", _plot_urgency),
    ("instruments.png", "Instrument accuracy per instrument", _plot_instruments),
    ("grounding.png", "Citation topic hit rate and required-mention recall", _plot_grounding),
    ("violations.png", "Forbidden-mention violations and invalid citations", _plot_violations),
    ("latency.png", "Latency per stage (ms)", _plot_latency),
)


def _write_plots(plot_dir: Path, metrics: dict, results: list[dict]) -> list[tuple[str, str]]:
    """Render every plot that has data; returns (file name, caption) of those written."""
    import matplotlib

    matplotlib.use("Agg")  # headless: evaluation runs on servers without a display
    import matplotlib.pyplot as plt

    written: list[tuple[str, str]] = []
    for name, caption, plot in PLOTS:
        fig = plot(plt, metrics, results)
        if fig is None:
            # A plot left over from an earlier run in the same folder would now be wrong.
            (plot_dir / name).unlink(missing_ok=True)
            continue
        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format="png", dpi=110)
        finally:
            plt.close(fig)
        _write_atomic(plot_dir / name, buffer.getvalue())
        written.append((name, caption))
    return written


# --- markdown ---------------------------------------------------------------------------------------------


def _cell(value: object) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}"
    elif value is None:
        text = "n/a"
    elif isinstance(value, dict):
        text = ", ".join(f"{k}: {v}" for k, v in value.items() if v is not None)
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _header(run_info: dict, metrics: dict) -> list[str]:
    info = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), **run_info}
    keys = [k for k in RUN_INFO_LABELS if k in info] + [k for k in info if k not in RUN_INFO_LABELS]
    rows = [[RUN_INFO_LABELS.get(k, k), info[k]] for k in keys if info[k] not in (None, "")]
    summary = (
        f"Scored cases: {metrics['n_cases']}; failed (pipeline error or no result): {metrics['n_errors']}; "
        f"emergency cases: {metrics['n_emergency']}."
    )
    return ["# Curbside evaluation report", "", *_table(["run", ""], rows), "", summary, ""]


def _targets(metrics: dict) -> list[str]:
    rows = [[name, value, target, "✓" if met else "✗"] for name, value, target, met in target_report(metrics)]
    lines = ["## Targets", "", *_table(["metric", "value", "target", "met"], rows), ""]
    failures = strict_failures(metrics)
    lines += ["`--strict` would fail:", "", *[f"- {f}" for f in failures]] if failures else ["`--strict` passes."]
    others = [
        "over_triage_rate",
        "under_triage_count",
        "required_mention_recall",
        "fallback_rate",
        "n_errors",
        "n_unmatched_results",
    ]
    return [*lines, "", "Other metrics:", "", *_table(["metric", "value"], [[k, metrics.get(k)] for k in others]), ""]


def _confusion_table(metrics: dict) -> list[str]:
    matrix = metrics["urgency_confusion"]
    columns = list(next(iter(matrix.values())))
    rows = [[expected, *matrix[expected].values()] for expected in matrix]
    return ["## Urgency confusion", "", *_table(["expected \\ got", *columns], rows), ""]


def _latency_table(metrics: dict) -> list[str]:
    latency = metrics.get("latency_ms") or {}
    if not latency:
        return ["## Latency (ms)", "", "No timings reported.", ""]
    fields = ["n", "p50", "p90", "p99", "mean", "max"]
    # One decimal of a millisecond is all the precision a latency deserves.
    rows = [[stage, stats.get("n"), *(f"{stats[f]:.1f}" for f in fields[1:])] for stage, stats in latency.items()]
    return ["## Latency (ms)", "", *_table(["stage", *fields], rows), ""]


def _plots(written: list[tuple[str, str]]) -> list[str]:
    lines = ["## Plots", ""]
    for name, caption in written:
        lines += [f"### {caption}", "", f"![{caption}](plots/{name})", ""]
    return lines


def _quoted(phrases: list[str]) -> str:
    return ", ".join(json.dumps(p, ensure_ascii=False) for p in phrases)


def _case_problems(entry: dict) -> list[str]:
    """One line per problem of a scored case, expected vs got; empty when the case passed everything."""
    problems: list[str] = []
    if entry.get("error"):
        problems.append(f"failed: {entry['error']}")
    if not entry["urgency_correct"]:
        if entry["urgency_got"] not in URGENCY_LEVELS:
            note = " (no usable triage)"
        elif entry["emergency_missed"]:
            note = " (missed emergency)"
        else:
            note = " (over-triaged)" if entry["over_triaged"] else " (under-triaged)"
        problems.append(f"urgency: expected {entry['urgency_expected']}, got {entry['urgency_got']}{note}")
    problems += [f"instrument: {m}" for m in entry["instrument_mismatches"]]
    if entry["citation_topic_hit"] is False:
        got = ", ".join(entry["citation_topics"]) or "no citations"
        problems.append(f"citation topics: expected any of {', '.join(entry['topics_expected'])}, got {got}")
    problems += [f"missing mention: expected any of {_quoted(group)}" for group in entry["mentions_missing"]]
    problems += [f"forbidden mention: {_quoted([phrase])}" for phrase in entry["forbidden_found"]]
    if entry["invalid_citations"]:
        problems.append(f"invalid citation markers: {entry['invalid_citations']}")
    return problems


def _missed_cases(metrics: dict, cases_by_id: dict[object, dict]) -> list[str]:
    lines = ["## Cases that missed", ""]
    for entry in metrics.get("per_case", []):
        case = cases_by_id.get(entry["id"], {})
        # Redact again here: metrics may come from elsewhere, and messages are the one place case text could leak.
        problems = [redact_case_text(p, case) for p in _case_problems(entry)]
        if problems:
            lines += [f"### {entry['id']}", "", *[f"- {p}" for p in problems], ""]
    if len(lines) == 2:
        lines += ["None: every scored case passed every check.", ""]
    return lines


def render_report(
    metrics: dict, cases: list[dict], written_plots: list[tuple[str, str]], run_info: dict | None = None
) -> str:
    """report.md's text."""
    cases_by_id = {c.get("id"): c for c in cases}
    sections = [
        _header(run_info or {}, metrics),
        _targets(metrics),
        _confusion_table(metrics),
        _latency_table(metrics),
        _plots(written_plots),
        _missed_cases(metrics, cases_by_id),
    ]
    return "\n".join(line for section in sections for line in section)


def _model_from_results(results: list[dict]) -> str | None:
    """The model the first successful result names (with its adapter), for when the caller did not say."""
    model = next((r["model"] for r in results if r.get("model") and not r.get("error")), None)
    if not isinstance(model, dict):
        return None if model is None else str(model)
    adapter = model.get("adapter")
    return f"{model.get('name')} (adapter {adapter})" if adapter else str(model.get("name"))


def write_report(
    out_dir: Path, cases: list[dict], results: list[dict], metrics: dict, run_info: dict | None = None
) -> Path:
    """Write metrics.json, plots/*.png and report.md under `out_dir`; returns the report's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_info = {"model": _model_from_results(results), **(run_info or {})}
    _write_atomic(out_dir / "metrics.json", (json.dumps(metrics, indent=2, ensure_ascii=False) + "\n").encode())
    written = _write_plots(out_dir / "plots", metrics, results)
    report = out_dir / "report.md"
    _write_atomic(report, render_report(metrics, cases, written, run_info).encode())
    return report
