"""The generation prompt: computed findings, numbered guideline excerpts, the case and the question."""

from __future__ import annotations

from dataclasses import dataclass

from .verification import sentences, terms

SYSTEM_PROMPT = """You are Curbside, a consultant psychiatrist advising a family doctor in primary care.
Answer the doctor's question in at most six short sentences, using only the numbered guideline excerpts.
End every sentence that recommends an action with the number of the excerpt that supports it, like [1].
The urgency and screening scores were computed by validated rules: state them as given, never lower them.
If the excerpts do not answer the question, say so instead of guessing."""

# Each excerpt is quoted to the model in at most this many characters (`focus`); the citation keeps the whole chunk.
EXCERPT_PROMPT_CHARS = 600

INSTRUMENT_NAMES = {
    "phq9": "PHQ-9",
    "phq2": "PHQ-2",
    "gad7": "GAD-7",
    "epds": "EPDS",
    "auditc": "AUDIT-C",
    "mdq": "MDQ",
    "pcptsd5": "PC-PTSD-5",
    "cssrs": "C-SSRS screener",
    "asq": "ASQ",
}


@dataclass
class Excerpt:
    n: int
    title: str
    section: str
    text: str


def describe_instrument(name: str, result) -> str:
    label = INSTRUMENT_NAMES.get(name, name)
    parts = []
    if result.score is not None:
        parts.append(f"score {result.score}")
    if result.band:
        parts.append(result.band)
    if result.risk:
        parts.append(f"{result.risk} risk")
    if result.positive is not None:
        parts.append("positive" if result.positive else "negative")
    if result.acute:
        parts.append("acute")
    if result.flags:
        parts.append("flags: " + ", ".join(result.flags))
    return f"{label}: " + ", ".join(parts)


def findings_text(urgency: str, red_flags: list, instruments: dict, instrument_errors: dict) -> str:
    lines = [f"- Urgency: {urgency.upper()}"]
    lines += [f'- Red flag: {f.kind.replace("_", " ")} ({f.urgency}), evidence: "{f.evidence}"' for f in red_flags]
    lines += [f"- {describe_instrument(name, r)}" for name, r in instruments.items()]
    lines += [f"- {INSTRUMENT_NAMES.get(n, n)} could not be scored: {msg}" for n, msg in instrument_errors.items()]
    return "\n".join(lines)


def shorten(text: str, limit: int) -> str:
    """The text cut at the last line or sentence end before `limit` characters (prompt length is latency)."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind("\n"), cut.rfind(". "))
    return cut[: end + 1].rstrip() if end > limit // 2 else cut.rstrip() + " …"


def excerpt_units(text: str) -> list[str]:
    """An excerpt's statements as the model may read them: each bullet or table row, each sentence of other
    lines; headings are dropped (the excerpt's title line already names its section)."""
    units = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        units += [line] if line[:1] in "-*•|" else sentences(line)
    return units


def focus(text: str, question: str, presentation: str, limit: int = EXCERPT_PROMPT_CHARS) -> str:
    """The part of an excerpt the model reads: all of it when it fits in `limit` characters, else the statements
    that share most terms with the question, then with the presentation (earlier first on a tie), kept in the
    excerpt's own order, as many as fit.

    A retrieval chunk runs past the prompt's budget; cutting it at the start hid the statement that answers a
    consult ("Can we start buprenorphine here?") behind the chunk's opening lines, and a small model quotes
    what it reads. The citation still opens the whole chunk."""
    if len(text) <= limit:
        return text
    units = excerpt_units(text)
    asked, patient = terms(question), terms(presentation)
    scores = [(-len(asked & terms(u)), -len(patient & terms(u)), i) for i, u in enumerate(units)]
    chosen, used = [], 0
    for _, _, i in sorted(scores):
        if used + len(units[i]) + 1 <= limit:
            chosen.append(i)
            used += len(units[i]) + 1
    return "\n".join(units[i] for i in sorted(chosen)) if chosen else shorten(text, limit)


def build_messages(question: str, presentation: str, findings: str, excerpts: list[Excerpt],
                   excerpt_chars: int = EXCERPT_PROMPT_CHARS) -> list[dict]:
    blocks = "\n\n".join(
        f"[{e.n}] {e.title}" + (f" — {e.section}" if e.section else "")
        + f"\n{focus(e.text, question, presentation, excerpt_chars)}"
        for e in excerpts
    )
    user = (
        f"Computed findings (final):\n{findings}\n\nGuideline excerpts:\n{blocks}\n\n"
        f"Patient: {presentation.strip()}\n\nQuestion: {question.strip()}"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
