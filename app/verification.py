"""Check a generated answer against its excerpts; fall back to the guideline statements themselves.

Every `[n]` must name a provided excerpt, and a sentence that recommends an action must cite one. An answer
that fails either rule is replaced by an extractive answer: the excerpts' own statements that best match
the question, each with its marker, so no uncited recommendation is ever presented as guidance.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

MARKER = re.compile(r"\[(\d+(?:\s*(?:,|-|–)\s*\d+)*)\]")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
RECOMMENDING = re.compile(
    r"\b(recommend\w*|should|must|consider|start\w*|begin|initiat\w*|offer\w*|prescrib\w*|refer\w*|increas\w*|"
    r"decreas\w*|switch\w*|titrat\w*|taper\w*|stop\w*|avoid\w*|monitor\w*|check\w*|arrange\w*|screen\w*|"
    r"assess\w*|admit\w*|give|use|add|continue|reduce|discontinu\w*|treat\w*|order)\b",
    re.IGNORECASE,
)
WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    """a an and are as at be by can do does for from has have how i if in is it its me my of on or
should so than that the their them then there these they this to was what when which who why will with would
patient patients he she his her him we our you your""".split()
)


@dataclass
class Verification:
    citations_valid: bool
    uncited_recommendations: int
    fallback_used: bool
    invalid_markers: list[int] = field(default_factory=list)
    uncited_sentences: list[str] = field(default_factory=list)
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def cited_numbers(text: str) -> list[int]:
    """Every number a marker names: [1], [1, 2], [1-3] and [1][2] all count."""
    numbers: list[int] = []
    for group in MARKER.findall(text):
        for part in re.split(r"\s*,\s*", group):
            bounds = re.split(r"\s*[-–]\s*", part)
            lo, hi = int(bounds[0]), int(bounds[-1])
            numbers += list(range(lo, hi + 1)) if hi >= lo and hi - lo < 50 else [lo, hi]
    return numbers


def sentences(text: str) -> list[str]:
    parts = []
    for line in SENTENCE_END.split(text):
        line = line.strip().lstrip("-*•0123456789. )").strip()
        if line:
            parts.append(line)
    return parts


def uncited_recommendations(text: str) -> list[str]:
    return [s for s in sentences(text) if RECOMMENDING.search(s) and not MARKER.search(s)]


def check(answer: str, n_citations: int) -> Verification:
    """Whether the answer may be shown as written (fallback_used is decided by the caller)."""
    numbers = cited_numbers(answer)
    invalid = sorted({n for n in numbers if not 1 <= n <= n_citations})
    uncited = uncited_recommendations(answer)
    reason = None
    if not answer.strip():
        reason = "empty answer"
    elif invalid:
        reason = f"cites excerpts that were not provided: {invalid}"
    elif not numbers:
        reason = "no citations"
    elif uncited:
        reason = f"{len(uncited)} recommendation(s) without a citation"
    return Verification(
        citations_valid=not invalid,
        uncited_recommendations=len(uncited),
        fallback_used=False,
        invalid_markers=invalid,
        uncited_sentences=uncited,
        reason=reason,
    )


def terms(text: str) -> set[str]:
    return {w.rstrip("s") for w in WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1}


def statements(excerpt: str) -> list[str]:
    """An excerpt's quotable statements: its bullets, else its sentences (headings dropped)."""
    lines = [ln.strip() for ln in excerpt.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    bullets = [ln.lstrip("-*• ").strip() for ln in lines if ln[:1] in "-*•"]
    return bullets or sentences(" ".join(lines))


def extractive_answer(query: str, excerpts: list[str], max_statements: int = 5) -> str:
    """The excerpt statements that share most terms with the query, best first, each with its [n]."""
    wanted = terms(query)
    scored = []
    for n, excerpt in enumerate(excerpts, 1):
        for order, statement in enumerate(statements(excerpt)):
            overlap = len(wanted & terms(statement))
            # earlier excerpts ranked higher in retrieval; earlier statements lead their section
            scored.append((-overlap, n, order, statement))
    scored.sort()
    chosen = [s for s in scored if s[0] < 0][:max_statements] or scored[: min(2, len(scored))]
    chosen.sort(key=lambda s: (s[1], s[2]))
    lines = ["From the cited guidelines:"]
    lines += [f"- {statement.rstrip('.')}. [{n}]" for _, n, _, statement in chosen]
    return "\n".join(lines)
