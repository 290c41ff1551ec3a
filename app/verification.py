"""Check a generated answer against its excerpts; fall back to the guideline statements themselves.

Every `[n]` must name a provided excerpt, a sentence that recommends an action must cite one, and a sentence
that cites must say what its excerpt says: at least 60% of its key facts (content words and numbers, see
`key_facts`) appear in one of the excerpts it cites, or in the consult's own safety actions (deterministic,
already on the clinician's screen: "do not leave the patient alone [2]" restates them), so a valid-looking
marker cannot dress up an invented dose. An answer that fails any rule is replaced by an extractive answer:
the excerpts' own statements that best match the question and the patient's presentation, each with its
marker, so no uncited or unsupported recommendation is ever presented as guidance.

In an emergency, an answer must open (within its first two sentences) by restating one of the consult's safety
actions: advice that ignores the emergency ("managing his detox at home is appropriate" beside a withdrawal
seizure) would lower the urgency in prose, which the model may never do.

Two more rules catch a small model's commonest misses: an answer must address the question (it shares a term
with the question, among the question's terms that the excerpts contain: "Can we start buprenorphine here?"
answered with the withdrawal scale's bands is grounded but not an answer), and it may not say the same sentence
twice (a degenerate loop).

An answer that says the excerpts do not answer the question, cites nothing and recommends nothing is a valid
abstention (`abstained`), not a failure; the caller shows it with the closest statements it declined to use.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
TOKEN = re.compile(r"[a-z0-9]+(?:[./-][a-z0-9]+)*")
ABSTAIN = re.compile(
    r"\b(?:do(?:es)?\s+not|do(?:es)?n[’']t|cannot|can[’']t|can\s+not)\s+(?:directly\s+)?"
    r"(?:answer|address|cover|contain)\b"
    r"|\bnot\s+(?:answered|covered|addressed)\s+(?:by|in)\b",
    re.I,
)
SUPPORT_THRESHOLD = 0.6
STOPWORDS = frozenset(
    """a an and are as at be by can do does for from has have how i if in is it its me my of on or
should so than that the their them then there these they this to was what when which who why will with would
patient patients he she his her him we our you your""".split()
)
KEY_STOPWORDS = STOPWORDS | frozenset(
    """about after also any been being both but each into may more most not only other over same such than very
within without while where whose every including include includes usually often typically guideline guidelines
excerpt excerpts recommend recommends recommended suggest suggests advise advises""".split()
)


@dataclass
class Verification:
    citations_valid: bool
    uncited_recommendations: int
    fallback_used: bool
    invalid_markers: list[int] = field(default_factory=list)
    uncited_sentences: list[str] = field(default_factory=list)
    unsupported_sentences: list[str] = field(default_factory=list)
    abstained: bool = False
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


def _norm(token: str) -> str:
    return token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token


def _words(text: str) -> list[str]:
    return TOKEN.findall(MARKER.sub(" ", text).lower())


def tokens(text: str) -> set[str]:
    """Lower-cased runs of letters and digits (keeping inner '.', '-', '/': "phq-9", "0.8"), markers removed,
    a plural 's' stripped from words of four letters or more."""
    return {_norm(t) for t in _words(text)}


def key_facts(text: str, question: str = "") -> set[str]:
    """The content tokens of `text` (no stop words, no words under three letters; numbers always kept) that
    `question` does not already contain."""
    facts = {_norm(t) for t in _words(text) if t not in KEY_STOPWORDS and (len(t) >= 3 or t[:1].isdigit())}
    return facts - tokens(question)


def support(sentence: str, excerpt: str) -> float:
    """The fraction of the sentence's key facts found in the excerpt (1.0 for a sentence without any)."""
    facts = key_facts(sentence)
    return len(facts & tokens(excerpt)) / len(facts) if facts else 1.0


def unsupported_sentences(text: str, excerpts: Sequence[str], also: str = "",
                          threshold: float = SUPPORT_THRESHOLD) -> list[str]:
    """Sentences whose markers name provided excerpts, none of which (together with `also`) supports them."""
    found = []
    for sentence in sentences(text):
        cited = [n for n in cited_numbers(sentence) if 1 <= n <= len(excerpts)]
        if cited and max(support(sentence, f"{excerpts[n - 1]}\n{also}") for n in cited) < threshold:
            found.append(sentence)
    return found


def abstains(text: str) -> bool:
    """The answer says the excerpts do not answer (cover, address) the question, and cites nothing."""
    return bool(ABSTAIN.search(text)) and not cited_numbers(text)


def leads_with_safety(text: str, safety_actions: Sequence[str]) -> bool:
    """One of the first two sentences restates a safety action (60% of its key facts are in them)."""
    actions = "\n".join(safety_actions)
    return any(key_facts(s) and support(s, actions) >= SUPPORT_THRESHOLD for s in sentences(text)[:2])


def repeated_sentence(text: str) -> str | None:
    """The first sentence the text says twice (markers, case and spacing ignored), if any."""
    seen = set()
    for sentence in sentences(text):
        key = " ".join(_words(sentence))
        if key in seen:
            return sentence
        seen.add(key)
    return None


# The talk around a consult question ("What do I do now?", "Is that OK here?"): it names nothing to answer about.
CONVERSATIONAL = frozenset(
    """now today tonight here just really ok okay need get go want think thing anything something else also please
tell say know sure way well much many still yet ever again one first next right best good fine worried happen""".split()
)


def unaddressed_terms(answer: str, question: str, excerpts: Sequence[str]) -> list[str]:
    """The question's terms (conversational words aside) that the excerpts contain, when the answer uses none of
    them (else [])."""
    asked = (terms(question) - CONVERSATIONAL) & terms("\n".join(excerpts))
    return [] if not asked or asked & terms(answer) else sorted(asked)


def check(answer: str, n_citations: int, excerpts: Sequence[str] | None = None,
          safety_actions: Sequence[str] = (), urgency: str | None = None, question: str = "") -> Verification:
    """Whether the answer may be shown as written (fallback_used is decided by the caller).

    With the excerpts' texts, every cited sentence must also be supported by an excerpt it cites, or by that
    excerpt together with the consult's safety actions, and with the `question` too, the answer must address
    it (`unaddressed_terms`). With `urgency` "emergency", the answer must also open with a safety action. An
    abstention is exempt from both: it advises nothing, and the caller shows the closest statements with it.
    """
    numbers = cited_numbers(answer)
    invalid = sorted({n for n in numbers if not 1 <= n <= n_citations})
    uncited = uncited_recommendations(answer)
    unsupported = (unsupported_sentences(answer, excerpts, "\n".join(safety_actions))
                   if excerpts is not None and not invalid else [])
    abstained = abstains(answer) and not uncited
    repeated = repeated_sentence(answer)
    unaddressed = (unaddressed_terms(answer, question, excerpts)
                   if question and excerpts is not None and not abstained else [])
    reason = None
    if not answer.strip():
        reason = "empty answer"
    elif invalid:
        reason = f"cites excerpts that were not provided: {invalid}"
    elif not numbers and not abstained:
        reason = "no citations"
    elif uncited:
        reason = f"{len(uncited)} recommendation(s) without a citation"
    elif unsupported:
        reason = f"{len(unsupported)} sentence(s) not supported by the excerpt they cite"
    elif repeated:
        reason = f"repeats a sentence: {repeated[:60]!r}"
    elif unaddressed:
        reason = f"does not address the question (uses none of {', '.join(unaddressed[:5])})"
    elif urgency == "emergency" and not abstained and not leads_with_safety(answer, safety_actions):
        reason = "an emergency answer must open with its safety actions"
    return Verification(
        citations_valid=not invalid,
        uncited_recommendations=len(uncited),
        fallback_used=False,
        invalid_markers=invalid,
        uncited_sentences=uncited,
        unsupported_sentences=unsupported,
        abstained=abstained,
        reason=reason,
    )


def terms(text: str) -> set[str]:
    return {w.rstrip("s") for w in WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1}


def statements(excerpt: str) -> list[str]:
    """An excerpt's quotable statements: its bullets, else its sentences (headings dropped)."""
    lines = [ln.strip() for ln in excerpt.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    bullets = [ln.lstrip("-*• ").strip() for ln in lines if ln[:1] in "-*•"]
    return bullets or sentences(" ".join(lines))


def extractive_answer(question: str, excerpts: list[str], max_statements: int = 5,
                      heading: str = "From the cited guidelines:", presentation: str = "") -> str:
    """The excerpt statements that share most terms with the question and the patient's presentation, each
    with its [n], in excerpt order. A vague question ("What now?") leaves the presentation to pick them."""
    wanted = terms(f"{question} {presentation}")
    scored = []
    for n, excerpt in enumerate(excerpts, 1):
        for order, statement in enumerate(statements(excerpt)):
            overlap = len(wanted & terms(statement))
            # earlier excerpts ranked higher in retrieval; earlier statements lead their section
            scored.append((-overlap, n, order, statement))
    scored.sort()
    chosen = [s for s in scored if s[0] < 0][:max_statements] or scored[: min(2, len(scored))]
    chosen.sort(key=lambda s: (s[1], s[2]))
    lines = [heading]
    lines += [f"- {statement.rstrip('.')}. [{n}]" for _, n, _, statement in chosen]
    return "\n".join(lines)
