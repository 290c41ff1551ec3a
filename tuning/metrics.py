"""Task metrics for consult answers against reference answers; every fraction is in [0, 1].

All of them are computed from the chat record alone (the user message's numbered excerpts and the reference
answer), so they apply to user-supplied data as well as to generated data. Per example:

- **answerable**: the reference cites at least one excerpt. A reference without a marker is a no-answer case.
- **citation_validity**: every `[n]` in the answer names a provided excerpt (1..number of excerpts), and the
  answer cites at least one excerpt when the reference does. Averaged over all examples.
- **citation_accuracy**: (answerable only) the answer cites at least one excerpt the reference cites.
- **key_fact_recall**: (answerable only) the reference's key facts are its content tokens: lower-cased runs of
  letters and digits (keeping inner '.', '-', '/': "phq-9", "0.8", "24/7"), markers removed, a plural 's'
  stripped from words of four letters or more, minus stop words and words of fewer than three characters
  (numbers are always kept), minus every token of the question (echoing the question earns nothing). Recall is
  the fraction of those found among the answer's tokens, normalised the same way.
- **format_compliance**: answerable: the answer is structurally showable (`app.verification.check` without
  the excerpts' texts finds no problem: markers valid, at least one, every recommending sentence cited; an
  abstention does not count here) in at most six sentences; whether cited sentences say what their excerpt
  says is `citation_support`, which the app also enforces (at 60%);
  no-answer: the answer abstains in at most six sentences.
- **abstention_accuracy**: (no-answer only) the answer abstains: it says the excerpts do not answer (or cover,
  or address) the question, and cites nothing. **false_abstention_rate** is the same on answerable examples.
- **citation_support**: (answers with markers) of the answer's sentences that carry a marker, the fraction
  whose key facts (as above, against no question) are at least 80% present in an excerpt they cite: the
  sentence says what its cited excerpt says. A valid marker on an unsupported sentence counts against it.
- **urgency_lead**: (references that open "Urgency is X.") the answer's first sentence names the urgency X.
- **perplexity**: exp of the mean negative log-likelihood per reference-answer token (end-of-turn included),
  over all examples, token-weighted (computed by `tuning.evaluate`).
"""

from __future__ import annotations

import math
import re

from app.verification import abstains, check, cited_numbers, key_facts, sentences, support, tokens

EXCERPT_HEADER = re.compile(r"^\[(\d+)\] ", re.M)
URGENCY_LEAD = re.compile(r"^Urgency is (EMERGENCY|URGENT|ROUTINE)\b")
MAX_SENTENCES = 6
# Bumped whenever a metric's definition changes, so cached evaluations from the old definition are not reused.
METRICS_VERSION = 2


def excerpt_count(user_message: str) -> int:
    """How many numbered excerpts the prompt holds (the highest "[n] " heading after "Guideline excerpts:")."""
    start = user_message.find("Guideline excerpts:")
    found = [int(n) for n in EXCERPT_HEADER.findall(user_message[start if start >= 0 else 0:])]
    return max(found, default=0)


def excerpt_texts(user_message: str) -> dict[int, str]:
    """The prompt's excerpt blocks by number (heading line included)."""
    start = user_message.find("Guideline excerpts:")
    end = user_message.rfind("\n\nPatient:")
    body = user_message[start if start >= 0 else 0:end if end > 0 else len(user_message)]
    found = list(EXCERPT_HEADER.finditer(body))
    return {int(m.group(1)): body[m.start():found[i + 1].start() if i + 1 < len(found) else len(body)]
            for i, m in enumerate(found)}


def supported(sentence: str, excerpt: str, threshold: float = 0.8) -> bool:
    return bool(key_facts(sentence)) and support(sentence, excerpt) >= threshold


def citation_support(answer: str, excerpts: dict[int, str]) -> float | None:
    """Fraction of cited sentences that their cited excerpt supports; None when no sentence cites."""
    verdicts = []
    for sentence in sentences(answer):
        cited = [n for n in cited_numbers(sentence) if n in excerpts]
        if cited_numbers(sentence):
            verdicts.append(any(supported(sentence, excerpts[n]) for n in cited))
    return sum(verdicts) / len(verdicts) if verdicts else None


def question_of(user_message: str) -> str:
    at = user_message.rfind("Question:")
    return user_message[at + len("Question:"):].strip() if at >= 0 else ""


def score_example(messages: list[dict], answer: str) -> dict:
    """The per-example verdicts for one generated answer (see the module doc for the definitions)."""
    user = next((m["content"] for m in reversed(messages[:-1]) if m["role"] == "user"), "")
    reference = messages[-1]["content"]
    n_excerpts = excerpt_count(user)
    ref_cites = set(cited_numbers(reference))
    cites = cited_numbers(answer)
    answerable = bool(ref_cites)
    abstained = abstains(answer)
    n_sentences = len(sentences(answer))
    row: dict = {
        "answerable": answerable,
        "n_excerpts": n_excerpts,
        "cited": cites,
        "citation_valid": all(1 <= n <= n_excerpts for n in cites) and (bool(cites) or not answerable),
        "abstained": abstained,
    }
    row["citation_support"] = citation_support(answer, excerpt_texts(user))
    if answerable:
        facts = key_facts(reference, question_of(user))
        found = tokens(answer)
        row["citation_correct"] = bool(ref_cites & set(cites))
        row["key_facts"] = len(facts)
        row["key_fact_recall"] = (len(facts & found) / len(facts)) if facts else None
        row["format_ok"] = (check(answer, n_excerpts).reason is None and not abstained
                            and n_sentences <= MAX_SENTENCES)
    else:
        row["format_ok"] = abstained and n_sentences <= MAX_SENTENCES
    lead = URGENCY_LEAD.match(reference)
    if lead:
        first = (sentences(answer) or [""])[0]
        row["urgency_lead"] = lead.group(1).lower() in first.lower()
    return row


def _mean(values: list) -> float | None:
    values = [float(v) for v in values if v is not None]
    return round(sum(values) / len(values), 4) if values else None


def aggregate(rows: list[dict], nll_sum: float | None = None, nll_tokens: int = 0) -> dict:
    """Split-level metrics from per-example rows (None where no example applies)."""
    answerable = [r for r in rows if r["answerable"]]
    no_answer = [r for r in rows if not r["answerable"]]
    metrics = {
        "examples": len(rows),
        "answerable": len(answerable),
        "no_answer": len(no_answer),
        "citation_validity": _mean([r["citation_valid"] for r in rows]),
        "citation_accuracy": _mean([r["citation_correct"] for r in answerable]),
        "citation_support": _mean([r.get("citation_support") for r in rows]),
        "key_fact_recall": _mean([r["key_fact_recall"] for r in answerable]),
        "format_compliance": _mean([r["format_ok"] for r in rows]),
        "abstention_accuracy": _mean([r["abstained"] for r in no_answer]),
        "false_abstention_rate": _mean([r["abstained"] for r in answerable]),
        "urgency_lead": _mean([r["urgency_lead"] for r in rows if "urgency_lead" in r]),
    }
    if nll_sum is not None and nll_tokens:
        metrics["perplexity"] = round(math.exp(nll_sum / nll_tokens), 4)
    return metrics


# The selection score: what the consult pipeline needs most is answers it can show (valid citations) that say
# what the guideline says (key facts); format and abstention break near-ties.
SCORE_WEIGHTS = {"citation_validity": 0.4, "key_fact_recall": 0.4, "format_compliance": 0.1,
                 "abstention_accuracy": 0.1}


def selection_score(metrics: dict) -> float:
    """Weighted mean of SCORE_WEIGHTS' metrics, over those that apply (weights renormalised)."""
    present = {k: w for k, w in SCORE_WEIGHTS.items() if metrics.get(k) is not None}
    if not present:
        return 0.0
    return round(sum(metrics[k] * w for k, w in present.items()) / sum(present.values()), 4)
