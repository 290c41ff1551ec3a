"""Clinician questions generated deterministically from guideline statements, and the fixed answer phrasings.

A statement question names the statement's most distinctive phrase: the run of two to four words, inside
one clause, whose words are rarest across the corpus (inverse document frequency over all statements).
It is dropped into one of a few question templates, chosen by the caller's seeded random generator. A
section question asks about a passage's section heading instead. Nothing here calls a model.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterable

WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’+/.-]*[A-Za-z0-9+]|[A-Za-z0-9]")
CLAUSE_BREAK = re.compile(r"[,;:()\[\]\"“”]|\s[-–—]\s|\.\s")
# Words that may sit inside a phrase but never start or end one.
FUNCTION_WORDS = frozenset(
    """a an and are as at be been being but by can could did do does each either every for from had has have
how i if in into is it its may might more most must no nor not of on once one only or other our over per
same should so some such than that the their them then there these they this those through to too under
until up very was we were what when where which while who whom why will with within without would you your
about after again against all also any because before between both during few further here just less own
off out ever often usually typically including include includes especially than whether""".split()
)
# Words that make a poor question subject on their own (the phrase must hold something else too).
GENERIC = frozenset(
    """patient patients people person adults adult treatment care primary practice clinician clinicians
recommend recommends recommended suggest suggests suggested advises advice guideline guidelines evidence
strong conditional recommendation grade statement use used using needs need needed require requires
required start started starting give given consider""".split()
)
ORG_YEAR = re.compile(r"^[A-Z][A-Za-z-]*(?: [A-Z][A-Za-z-]*)* \(\d{4}\)$")

STATEMENT_TEMPLATES = (
    "What do the guidelines recommend about {phrase}?",
    "How should I approach {phrase} for this patient?",
    "What is the guidance on {phrase} in {topic}?",
    "What should I know about {phrase}?",
    "Can you summarise the advice on {phrase}?",
    "In {topic}, what do the guidelines say about {phrase}?",
)
SECTION_TEMPLATES = (
    "What is the guidance on {heading} in {topic}?",
    "What do the guidelines say about {heading} for {topic}?",
    "Can you outline the advice on {heading}?",
)
TOPIC_LABELS = {
    "suicide-risk": "suicide risk",
    "eating-disorders": "eating disorders",
    "collaborative-care": "collaborative care",
    "older-adults": "older adults",
    "ptsd": "PTSD",
    "adhd": "adult ADHD",
    "perinatal": "perinatal mental health",
    "opioids": "opioid use disorder",
    "alcohol": "alcohol use",
    "panic": "panic disorder",
    "anxiety": "anxiety",
    "antidepressants": "antidepressant prescribing",
    "general": "this area",
}

# The reference answer when no excerpt answers the question: no marker, and no word that
# app.verification.RECOMMENDING would count as a recommendation.
ABSTENTION = ("The guideline excerpts provided do not answer this question. "
              "Please consult the full guideline or a specialist colleague.")


def topic_label(topic: str) -> str:
    return TOPIC_LABELS.get(topic, topic.replace("-", " "))


def _norm(word: str) -> str:
    word = word.lower().strip("'’.")
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def document_frequencies(texts: Iterable[str]) -> tuple[Counter, int]:
    counts: Counter = Counter()
    n = 0
    for text in texts:
        n += 1
        counts.update({_norm(w) for w in WORD.findall(text)})
    return counts, n


class PhraseFinder:
    """The most distinctive short phrase of a statement, by inverse document frequency over the corpus."""

    def __init__(self, corpus_statements: Iterable[str]):
        self.df, self.n = document_frequencies(corpus_statements)

    def idf(self, word: str) -> float:
        return math.log((1 + self.n) / (1 + self.df.get(_norm(word), 0)))

    def phrase(self, statement: str, avoid: Iterable[str] = ()) -> str | None:
        """Two to four words from one clause, starting and ending on content words; None if nothing fits."""
        avoid_words = {_norm(w) for text in avoid for w in WORD.findall(text)}
        best: tuple[float, int, str] | None = None
        for clause in CLAUSE_BREAK.split(statement):
            words = WORD.findall(clause)
            for i in range(len(words)):
                for j in range(i + 2, min(i + 4, len(words)) + 1):
                    span = words[i:j]
                    if span[0].lower() in FUNCTION_WORDS or span[-1].lower() in FUNCTION_WORDS:
                        continue
                    content = [w for w in span if w.lower() not in FUNCTION_WORDS]
                    if all(_norm(w) in GENERIC or _norm(w) in avoid_words for w in content):
                        continue
                    if any(re.fullmatch(r"\(?\d{4}\)?", w) for w in span):  # "ACP (2023)" is a source, not a topic
                        continue
                    weights = sorted((self.idf(w) for w in content if _norm(w) not in GENERIC), reverse=True)
                    score = sum(weights[:3]) - 0.15 * len(span)
                    key = (score, -len(best[2]) if best else 0)
                    if best is None or key[0] > best[0]:
                        best = (score, i, " ".join(span))
        if best is None:
            return None
        text = best[2]
        # keep acronyms and drug names as written; lower-case an ordinary sentence-initial capital
        first = text.split()[0]
        if first[:1].isupper() and first[1:].islower():
            text = first.lower() + text[len(first):]
        return text


SOURCE_LEAD = re.compile(
    r"^(?:[A-Z][A-Za-z/-]*\s?)+(?:\(\d{4}\)\s)?(?:recommends|suggests|advises|found|states|defines)\s(?:that\s)?")
CONDITION_LEAD = re.compile(r"^((?:Before|After|When|During|In|For|If|Once|While|Until)\s[^,;:]{8,70}),\s")
SUBJECT_VERBS = frozenset(
    """is are was were has have had requires require required should can could may might must includes include
contains contain ranges uses use needs need reduces reduce increases increase gives give treats treat
makes make suggests suggest recommends recommend advises advise does do will carries carry causes cause lowers
lower raises raise helps help improves improve predicts predict begin begins occur occurs indicates indicate
warrants warrant defines define calls call covers cover asks ask affects affect remains remain involves involve
depends depend works work takes take typically usually often rarely""".split()
)
INSTRUCTION_VERBS = frozenset(
    """assess screen offer give check ask consider seek avoid use start stop refer arrange prescribe explain
review record document discuss treat monitor measure repeat advise tell against insufficient screening
lethal""".split()
)
ARTICLE = re.compile(r"^(?:the|a|an)\s", re.I)


def subject_phrase(statement: str) -> str | None:
    """What a statement is about: a conditional lead ("before starting an antidepressant"), the object of a
    source's recommendation ("USPSTF (2018) recommends screening adults ..."), or the words before the main
    verb ("The ASRS v1.1 screener has ..."); None when none of these gives two to seven words."""
    text = re.sub(r"\s*\([^)]*\)", "", statement).strip()
    lead = CONDITION_LEAD.match(text)
    if lead:
        return lead.group(1)[0].lower() + lead.group(1)[1:]
    source = SOURCE_LEAD.match(text)
    if source:
        rest = re.split(r"[,;:]|\sfor\s|\sin\s|\sas\s|\swith\s", text[source.end():])[0].split()
        words = rest[:6]
    else:
        words = []
        for w in text.split():
            if w.lower().strip(",;:") in SUBJECT_VERBS or w.endswith((",", ";", ":")):
                break
            words.append(w)
        else:
            return None
    while words and words[-1].lower().strip(",;:.") in FUNCTION_WORDS:
        words.pop()
    if not words or words[0].lower() in INSTRUCTION_VERBS or words[0].lower() in FUNCTION_WORDS - {"before", "after",
                                                                                                    "when", "if"}:
        return None
    phrase = ARTICLE.sub("", " ".join(words)).strip(" ,;:.")
    n = len(phrase.split())
    if not 2 <= n <= 7 and not (n == 1 and len(phrase) > 3 and phrase.lower() not in GENERIC):
        return None
    first = phrase.split()[0]
    if first[:1].isupper() and first[1:].islower():
        phrase = first.lower() + phrase[len(first):]
    return phrase


def question_phrase(statement: str, finder: PhraseFinder) -> str | None:
    """The subject of the statement when it has a clear one, else its most distinctive phrase."""
    return subject_phrase(statement) or finder.phrase(statement)


def heading_phrase(section: str) -> str | None:
    """The last part of a section path, as a noun phrase for a question ("Who to screen" -> "who to screen")."""
    leaf = section.split(" > ")[-1].strip() if section else ""
    leaf = re.sub(r"\s*\((?:[A-Z][A-Za-z]*\s?)+\d{4}\)$", "", leaf).strip()  # "(ACP 2023)"
    if len(leaf) < 4:
        return None
    first = leaf.split()[0]
    return (first.lower() + leaf[len(first):]) if first[1:].islower() else leaf


def _template(templates: tuple[str, ...], subject: str, topic: str, rng: random.Random) -> str:
    """A seeded template; one naming the topic only when the subject does not already name it."""
    label = topic_label(topic)
    named = {_norm(w) for w in WORD.findall(label)} & {_norm(w) for w in WORD.findall(subject)}
    choices = [t for t in templates if "{topic}" not in t] if named else list(templates)
    return rng.choice(choices).replace("{topic}", label)


def statement_question(phrase: str, topic: str, rng: random.Random) -> str:
    return _template(STATEMENT_TEMPLATES, phrase, topic, rng).format(phrase=phrase)


def section_question(heading: str, topic: str, rng: random.Random) -> str:
    return _template(SECTION_TEMPLATES, heading, topic, rng).format(heading=heading)


def safety_lead(urgency: str, safety_actions: list[str], n: int) -> list[str]:
    """The opening sentences of a flagged answer: the computed urgency, then the first safety actions, cited.

    Each action is cut to its first clause (before ':' or ';'), the instruction itself; both cite excerpt n,
    the passage of the flag's guideline topic that states the pathway.
    """
    lead = [f"Urgency is {urgency.upper()}."]
    heads = [re.split(r"[:;]", action, maxsplit=1)[0].strip().rstrip(".") for action in safety_actions[:2]]
    heads = [h for h in heads if h]
    if len(heads) == 2 and urgency == "emergency":
        lead.append(f"{heads[0]} and {heads[1][0].lower()}{heads[1][1:]} [{n}].")
    else:
        lead += [f"{h} [{n}]." for h in heads]
    return lead
