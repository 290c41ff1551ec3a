"""Deterministic triage: red-flag rules over free text and instrument flags give urgency (contract §3, §4)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from app.triage_rules import CLAUSE_OPENERS, CONTEXT_RULES, DRUG_CLASSES, PATIENT_SUBJECTS, TARGETS

if TYPE_CHECKING:  # spaCy is imported when the pipeline is first built, keeping `import app.triage` cheap
    from spacy.language import Language
    from spacy.tokens import Doc, Span

URGENCY_ORDER = ("routine", "urgent", "emergency")

# kind -> (urgency, guideline topic). A kind keeps one urgency, except eating-disorder instability, graded in code.
FLAG_KINDS: dict[str, tuple[str, str]] = {
    "suicidal_ideation_plan": ("emergency", "suicide-risk"),
    "suicide_preparation": ("emergency", "suicide-risk"),
    "suicide_attempt_recent": ("emergency", "suicide-risk"),
    "cssrs_high": ("emergency", "suicide-risk"),
    "asq_acute": ("emergency", "suicide-risk"),
    "homicidal_ideation_plan": ("emergency", "suicide-risk"),
    "command_hallucinations": ("emergency", "psychosis"),
    "postpartum_psychosis": ("emergency", "perinatal"),
    "mania_with_danger": ("emergency", "bipolar"),
    "alcohol_withdrawal_severe": ("emergency", "alcohol"),
    "sedative_withdrawal_severe": ("emergency", "insomnia"),
    "serotonin_syndrome": ("emergency", "antidepressants"),
    "neuroleptic_malignant_syndrome": ("emergency", "psychosis"),
    "lithium_toxicity": ("emergency", "bipolar"),
    "opioid_overdose": ("emergency", "opioids"),
    "eating_disorder_medical_instability": ("emergency", "eating-disorders"),
    "suicidal_ideation": ("urgent", "suicide-risk"),
    "suicidal_ideation_passive": ("urgent", "suicide-risk"),
    "self_harm_ideation": ("urgent", "suicide-risk"),
    "self_harm_recent": ("urgent", "suicide-risk"),
    "phq9_item9": ("urgent", "suicide-risk"),
    "epds_item10": ("urgent", "suicide-risk"),
    "cssrs_moderate": ("urgent", "suicide-risk"),
    "cssrs_low": ("urgent", "suicide-risk"),
    "asq_positive": ("urgent", "suicide-risk"),
    "asq_acute_unclear": ("urgent", "suicide-risk"),
    "homicidal_ideation": ("urgent", "suicide-risk"),
    "manic_symptoms": ("urgent", "bipolar"),
    "psychotic_symptoms": ("urgent", "psychosis"),
    "alcohol_withdrawal": ("urgent", "alcohol"),
    "lithium_level_high": ("urgent", "bipolar"),
    "delirium_suspected": ("urgent", "older-adults"),
}

POSTPARTUM_WEEKS = 12  # onset window in which new psychosis or mania is treated as postpartum psychosis
SUICIDE_CONTEXT = ("SI_PASSIVE", "SI_ACTIVE", "SELF_HARM_IDEATION", "SI_PLAN", "SUICIDE_PREP")
PSYCHOSIS = ("HALLUCINATION", "DELUSION", "PSYCHOTIC")
_DRUG_CLASS_RE = {name: re.compile(rf"\b(?:{pattern})\b", re.I) for name, pattern in DRUG_CLASSES.items()}


@dataclass(frozen=True)
class RedFlag:
    """One finding that raises urgency, with the exact text (or instrument finding) that supports it."""

    kind: str
    source: str
    evidence: str
    urgency: str
    topic: str

    def to_dict(self) -> dict[str, str]:
        """The contract §4 entry, plus the topic tag."""
        return {
            "kind": self.kind,
            "source": self.source,
            "evidence": self.evidence,
            "urgency": self.urgency,
            "topic": self.topic,
        }


@dataclass
class TriageResult:
    """Urgency, the flags behind it, the safety actions it calls for and the topics it points retrieval at."""

    urgency: str
    red_flags: list[RedFlag] = field(default_factory=list)
    safety_actions: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)


# --- the NLP pipeline -----------------------------------------------------------------------------------


def _same_clause(target: Span, modifier: Span, span_between: Span) -> bool:
    """A short negation ("no", "not", "never") stops at a new clause: "no appetite, thinks about dying"."""
    if target[0].lower_ in CLAUSE_OPENERS:
        return False
    return not any(token.lower_ in CLAUSE_OPENERS for token in span_between)


_RECENT_DATE = re.compile(
    r"\b(?:yesterday|today|last (?:night|week|weekend)|this (?:morning|week|weekend)|"
    r"(?:\d+|one|two|three|four|five|six|a few|few|couple of) (?:days?|weeks?) ago)\b",
    re.I,
)


def _not_dated_recent(target: Span, modifier: Span, span_between: Span) -> bool:
    """A recent repeat outranks a history cue: "previous overdoses, last 2 weeks ago", "3 years ago and again today"."""
    if modifier.start < target.end:
        following = target.doc[target.end : min(target.end + 8, target.sent.end)].text
        return not _RECENT_DATE.search(following)
    following = target.doc[modifier.end : min(modifier.end + 6, target.sent.end)].text
    return not (_RECENT_DATE.search(following) and re.search(r"\b(?:again|another|most recent)\b", following, re.I))


def _same_person(target: Span, modifier: Span, span_between: Span) -> bool:
    """A relative stays the subject until a pronoun brings the text back to the patient."""
    return not any(token.lower_ in PATIENT_SUBJECTS for token in span_between)


# Equal-length overlapping matches go to the label first in this list, then to the order of TARGETS.
_PRIORITY = ("IGNORE", "SI_PLAN", "SUICIDE_PREP", "ATTEMPT", "INGESTION_COUNT", "COMMAND_HALLUCINATION", "HI_INTENT")
_LABEL_RANK = {label: rank for rank, label in enumerate(dict.fromkeys(_PRIORITY + tuple(TARGETS)))}


@dataclass(frozen=True)
class _Pipeline:
    """spaCy tokens and sentences, our regex targets (longest match wins), then medspaCy's ConText."""

    nlp: Language
    targets: tuple[tuple[str, re.Pattern[str]], ...]
    context: Callable[[Doc], Doc]

    def __call__(self, text: str) -> Doc:
        doc = self.nlp(text)
        doc.ents = _longest_first(self._matches(doc))
        return self.context(doc)

    def _matches(self, doc: Doc) -> list[Span]:
        # Our own loop rather than medspaCy's TargetMatcher: its RegexMatcher rebuilds doc.text_with_ws for every
        # pattern, about 10 ms a paragraph with these ~300 patterns.
        text = doc.text  # a property that joins every token: read it once
        spans = []
        for label, regex in self.targets:
            for match in regex.finditer(text):
                span = doc.char_span(match.start(), match.end(), label=label, alignment_mode="expand")
                if span is not None and len(span):
                    spans.append(span)
        return spans


def _longest_first(spans: list[Span]) -> list[Span]:
    """Non-overlapping spans, longest first ("thought about taking an overdose" beats "overdose"); ties by label."""
    chosen: list[Span] = []
    taken: set[int] = set()
    for span in sorted(spans, key=lambda span: (-len(span), _LABEL_RANK[span.label_], span.start)):
        if taken.isdisjoint(range(span.start, span.end)):
            chosen.append(span)
            taken.update(range(span.start, span.end))
    return sorted(chosen, key=lambda span: span.start)


@lru_cache(maxsize=1)
def _pipeline() -> _Pipeline:
    """Built once per process (a few seconds, mostly importing spaCy); every call after that reuses it."""
    import spacy
    from medspacy.context import ConText, ConTextRule

    # spaCy's rule sentencizer rather than PyRuSH, which logs every token at DEBUG level and costs more than the
    # rest of the pipeline together.
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    targets = tuple((label, re.compile(pattern, re.I)) for label, patterns in TARGETS.items() for pattern in patterns)
    # Pruning modifiers that overlap a target keeps "not" in "does not want to wake up" from negating what follows.
    context = ConText(nlp, rules=None, prune_on_target_overlap=True)
    context.add([_context_rule(ConTextRule, *spec) for spec in CONTEXT_RULES])
    return _Pipeline(nlp=nlp, targets=targets, context=context)


def _context_rule(rule_class: type, pattern: str | list[dict], category: str, direction: str, options: dict) -> object:
    terminated_by = set()
    if category in ("NEGATED_EXISTENCE", "HISTORICAL", "FAMILY"):
        terminated_by.add("CLAUSE")  # a new statement ends these scopes; a hypothetical runs on ("what if she says")
    if category == "HISTORICAL":
        terminated_by.add("CURRENT")
    bound = _same_clause if options.get("clause_bound") else _same_person if options.get("person_bound") else None
    if category == "HISTORICAL":
        bound = _not_dated_recent
    return rule_class(
        literal=str(pattern),
        category=category,
        pattern=pattern,
        direction=direction,
        max_scope=options.get("max_scope"),
        terminated_by=terminated_by,
        on_modifies=bound,
    )


# --- mentions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mention:
    """A concept found in one text, with what ConText says about it."""

    label: str
    text: str
    sent: int
    negated: bool
    historical: bool
    hypothetical: bool
    other_person: bool
    chronic: bool

    @property
    def asserted(self) -> bool:
        """Present in the patient now."""
        return not (self.negated or self.historical or self.hypothetical or self.other_person)

    @property
    def applies(self) -> bool:
        """True of the patient, now or in the past: enough for background such as a drug they take."""
        return not (self.negated or self.hypothetical or self.other_person)

    @property
    def value(self) -> float | None:
        """The first number in the mention, for numeric findings ("HR 38" -> 38.0)."""
        found = re.search(r"\d+(?:\.\d+)?", self.text)
        return float(found.group()) if found else None


class Findings:
    """The mentions of one text, looked up by label, with the other text of the case as background.

    Flags take their evidence from this text only, but the setting may come from either: "on lithium" in the
    presentation and "is this toxicity?" in the question, or a coarse tremor described with the drug named only in
    the question.
    """

    def __init__(self, mentions: Iterable[Mention], other_text: Iterable[Mention] = ()):
        self.by_label: dict[str, list[Mention]] = defaultdict(list)
        for mention in mentions:
            self.by_label[mention.label].append(mention)
        self.other_text = list(other_text)

    def asserted(self, *labels: str) -> list[Mention]:
        return [m for label in labels for m in self.by_label.get(label, ()) if m.asserted]

    def applies(self, *labels: str) -> list[Mention]:
        return [m for label in labels for m in self.by_label.get(label, ()) if m.applies]

    def near(self, mention: Mention, labels: Iterable[str], window: int = 1) -> list[Mention]:
        """Asserted mentions of `labels` within `window` sentences of `mention`, other than itself."""
        return [m for m in self.asserted(*labels) if m is not mention and abs(m.sent - mention.sent) <= window]

    def drug(self, drug_class: str) -> list[Mention]:
        """Mentions (of any label, in either text) naming a drug of the class that the patient takes or took."""
        pattern = _DRUG_CLASS_RE[drug_class]
        everything = [m for ms in self.by_label.values() for m in ms] + self.other_text
        return [m for m in everything if m.applies and pattern.search(m.text)]

    def setting(self, label: str) -> list[Mention]:
        """Asserted mentions of a background label (postpartum, stopped drinking...) in either text."""
        return self.asserted(label) + [m for m in self.other_text if m.label == label and m.asserted]

    def background(self, label: str) -> list[Mention]:
        """Like `setting`, but the past counts too: "history of anorexia" still frames a faint today."""
        return self.applies(label) + [m for m in self.other_text if m.label == label and m.applies]

    def values(self, label: str) -> list[tuple[float, Mention]]:
        """(number, mention) for asserted numeric findings such as "HR 38"."""
        return [(m.value, m) for m in self.asserted(label) if m.value is not None]


def _mentions(text: str) -> list[Mention]:
    if not text or not text.strip():
        return []
    doc = _pipeline()(text)
    sent_of = {token.i: index for index, sent in enumerate(doc.sents) for token in sent}
    mentions = []
    for ent in doc.ents:
        label = ent.label_
        if label == "IGNORE" or (label == "INGESTION_COUNT" and not _large_count(ent.text)):
            continue
        categories = {modifier.category for modifier in ent._.modifiers}
        mentions.append(
            Mention(
                label="ATTEMPT" if label == "INGESTION_COUNT" else label,
                text=text[ent.start_char : ent.end_char],
                sent=sent_of[ent.start],
                negated=ent._.is_negated,
                historical=ent._.is_historical,
                hypothetical=ent._.is_hypothetical,
                other_person=ent._.is_family,
                chronic="CHRONIC" in categories,
            )
        )
    return mentions


def _large_count(text: str) -> bool:
    """ "took 20 tablets" is an overdose; "took 2 tablets" is a dose."""
    count = re.search(r"\d+", text)
    return count is not None and int(count.group()) >= 10


# --- text rules -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Case:
    """What the text rules need from outside the text."""

    postpartum_weeks: float | None = None
    drinks_heavily: bool = False  # AUDIT-C positive


class _Hit(NamedTuple):
    """A rule's finding: the flag kind, the mention that supports it, and an urgency where the kind has two."""

    kind: str
    mention: Mention
    urgency: str | None = None


def _suicide(f: Findings, case: _Case) -> list[_Hit]:
    hits = [_Hit("suicidal_ideation_plan", m) for m in f.asserted("SI_PLAN")]
    hits += [_Hit("suicide_preparation", m) for m in f.asserted("SUICIDE_PREP")]
    # "has a plan", "intends to", "going to take his wife's morphine", "gave away her dog" mean suicide only beside
    # other suicidal talk (or, for the last two kinds, each other); a bare "plan" confirms nothing.
    confirming = SUICIDE_CONTEXT + ("INTENT_WEAK", "PREP_WEAK")
    for label, kind in (
        ("PLAN_GENERIC", "suicidal_ideation_plan"),
        ("INTENT_WEAK", "suicidal_ideation_plan"),
        ("PREP_WEAK", "suicide_preparation"),
    ):
        hits += [_Hit(kind, m) for m in f.asserted(label) if f.near(m, confirming)]
    for m in f.asserted("ATTEMPT"):
        hits.append(_Hit("opioid_overdose" if _accidental_opioid(f, m) else "suicide_attempt_recent", m))
    hits += [_Hit("suicidal_ideation", m) for m in f.asserted("SI_ACTIVE")]
    hits += [_Hit("suicidal_ideation_passive", m) for m in f.asserted("SI_PASSIVE")]
    hits += [_Hit("self_harm_ideation", m) for m in f.asserted("SELF_HARM_IDEATION")]
    hits += [_Hit("self_harm_recent", m) for m in f.asserted("SELF_HARM")]
    hits += [_Hit("phq9_item9", m) for m in f.asserted("PHQ9_ITEM9_TEXT")]
    hits += [_Hit("epds_item10", m) for m in f.asserted("EPDS_ITEM10_TEXT")]
    return hits


def _accidental_opioid(f: Findings, attempt: Mention) -> bool:
    """An opioid overdose with no sign it was meant is flagged as an opioid overdose rather than an attempt."""
    opioid = any(m.sent == attempt.sent for m in f.drug("opioid"))
    meant = any(m.sent == attempt.sent for m in f.asserted(*SUICIDE_CONTEXT))
    return opioid and not meant and not re.search(r"purpose|deliberate|intentional", attempt.text, re.I)


def _violence(f: Findings, case: _Case) -> list[_Hit]:
    hits = [_Hit("command_hallucinations", m) for m in f.asserted("COMMAND_HALLUCINATION")]
    hits += [_Hit("homicidal_ideation_plan", m) for m in f.asserted("HI_INTENT")]
    for m in f.asserted("HI_THOUGHTS"):
        # Thoughts of harming someone plus a plan or a weapon at hand is intent in all but name.
        armed = f.near(m, ("PLAN_GENERIC", "INTENT_WEAK", "WEAPON"))
        hits.append(_Hit("homicidal_ideation_plan" if armed else "homicidal_ideation", m))
    return hits


def _mania(f: Findings) -> list[Mention]:
    """Evidence of a manic or hypomanic state: the word itself, or two features of which one is not about sleep."""
    explicit = [m for m in f.asserted("MANIA_EXPLICIT") if not m.chronic]
    if explicit:
        return explicit
    features = list({m.text.lower(): m for m in f.asserted("MANIA_SX")}.values())
    sleep = f.asserted("MANIA_SLEEP")
    return features + sleep if len(features) >= 2 or (features and sleep) else []


def _postpartum(f: Findings, case: _Case) -> bool:
    weeks = case.postpartum_weeks
    return (weeks is not None and 0 <= weeks <= POSTPARTUM_WEEKS) or bool(f.setting("POSTPARTUM"))


def _psychosis_and_mania(f: Findings, case: _Case) -> list[_Hit]:
    psychosis = [m for m in f.asserted(*PSYCHOSIS) if not m.chronic]
    mania = _mania(f)
    hits = []
    if _postpartum(f, case):
        # Confusion counts here only with sleep loss or mood change: "confused" alone is too often lay usage.
        confusion = (
            f.asserted("CONFUSION", "DELIRIUM") if mania or f.asserted("MANIA_SLEEP", "MANIA_SX", "SLEEP_LOSS") else []
        )
        hits += [_Hit("postpartum_psychosis", m) for m in psychosis + mania + confusion]
    if mania:
        hits += [_Hit("mania_with_danger", m) for m in f.asserted("DANGER_BEHAVIOUR")]
    hits += [_Hit("manic_symptoms", m) for m in mania]
    hits += [_Hit("psychotic_symptoms", m) for m in psychosis]
    return hits


def _toxidromes(f: Findings, case: _Case) -> list[_Hit]:
    hits = []
    fever = f.asserted("FEVER") + [m for value, m in f.values("TEMPERATURE") if _celsius(value) >= 38.0]
    if f.drug("serotonergic"):
        # Hunter criteria, simplified: clonus or hyperreflexia, or tremor or rigidity with fever.
        myoclonus = [m for m in f.asserted("MYOCLONUS") if "myoclon" in m.text.lower()]
        shaking = f.asserted("TREMOR", "RIGIDITY") if fever else []
        hits += [_Hit("serotonin_syndrome", m) for m in f.asserted("CLONUS", "HYPERREFLEXIA") + myoclonus + shaking]
    if f.drug("antipsychotic") and _nms_features(f, fever):
        hits += [_Hit("neuroleptic_malignant_syndrome", m) for m in f.asserted("RIGIDITY")]
    if f.drug("lithium"):
        # Drowsiness has too many causes to stand alone; with another sign it is part of the picture.
        signs = f.asserted(
            "COARSE_TREMOR", "ATAXIA", "SLURRED_SPEECH", "CONFUSION", "DELIRIUM", "GI_UPSET", "MYOCLONUS", "SEIZURE"
        )
        hits += [_Hit("lithium_toxicity", m) for m in signs + (f.asserted("DROWSY") if signs else [])]
    for value, m in f.values("LITHIUM_LEVEL"):
        if value >= 1.5:
            hits.append(_Hit("lithium_toxicity", m))
        elif value > 1.2:
            hits.append(_Hit("lithium_level_high", m))
    if f.drug("opioid"):
        hits += [_Hit("opioid_overdose", m) for m in f.asserted("OVERDOSE_SIGN")]
    return hits


def _celsius(value: float) -> float:
    """Temperatures above 45 can only be Fahrenheit."""
    return (value - 32) * 5 / 9 if value > 45 else value


def _nms_features(f: Findings, fever: list[Mention]) -> bool:
    """Rigidity with fever or a raised CK, or with both altered consciousness and autonomic instability."""
    if not f.asserted("RIGIDITY"):
        return False
    mental = f.asserted("CONFUSION", "DELIRIUM", "DROWSY")
    return bool(fever or f.asserted("CK_RAISED") or (mental and f.asserted("AUTONOMIC")))


def _delirium(f: Findings, case: _Case) -> list[_Hit]:
    """Acute or fluctuating confusion needs a same-day medical assessment for its cause."""
    return [_Hit("delirium_suspected", m) for m in f.asserted("DELIRIUM")]


def _withdrawal(f: Findings, case: _Case) -> list[_Hit]:
    drinking = bool(f.drug("alcohol")) or case.drinks_heavily
    sedative = bool(f.drug("sedative"))
    kind = "sedative_withdrawal_severe" if sedative and not drinking else "alcohol_withdrawal_severe"
    hits = [_Hit(kind, m) for m in f.asserted("WITHDRAWAL_SEVERE")]
    if f.setting("WITHDRAWAL_CONTEXT") + f.setting("WITHDRAWAL_TALK") and (drinking or sedative):
        hits += [_Hit(kind, m) for m in f.asserted("SEIZURE", "HALLUCINATION", "CONFUSION", "DELIRIUM")]
    if f.setting("WITHDRAWAL_CONTEXT") and drinking:
        racing = [m for value, m in f.values("HEART_RATE") if value > 100]
        hits += [_Hit("alcohol_withdrawal", m) for m in f.asserted("TREMOR", "AUTONOMIC") + racing]
    return hits


# (numeric label, emergency below, urgent below): thresholds in the spirit of the MEED/MARSIPAN risk tables.
ED_THRESHOLDS = (
    ("HEART_RATE", 40, 50),
    ("POTASSIUM", 2.5, 3.0),
    ("BMI", 13, 15),
    ("TEMPERATURE", 35.0, 35.5),
    ("BLOOD_PRESSURE", 80, 90),
)


def _eating_disorder(f: Findings, case: _Case) -> list[_Hit]:
    if not f.background("EATING_DISORDER"):
        return []
    kind = "eating_disorder_medical_instability"
    instability = f.asserted("ED_INSTABILITY")
    severe = [m for m in instability if re.search(r"QT|arrhythm|refus|hypoglyc", m.text, re.I)]
    hits = [_Hit(kind, m) for m in f.asserted("SYNCOPE") + severe]
    hits += [_Hit(kind, m, "urgent") for m in instability if m not in severe]
    for label, emergency_below, urgent_below in ED_THRESHOLDS:
        for value, m in f.values(label):
            value = _celsius(value) if label == "TEMPERATURE" else value
            if value < urgent_below:
                hits.append(_Hit(kind, m, None if value < emergency_below else "urgent"))
    return hits


TEXT_RULES: tuple[Callable[[Findings, _Case], list[_Hit]], ...] = (
    _suicide,
    _violence,
    _psychosis_and_mania,
    _toxidromes,
    _withdrawal,
    _eating_disorder,
    _delirium,
)


def _text_flags(source: str, findings: Findings, case: _Case) -> list[RedFlag]:
    return [
        _flag(hit.kind, source, hit.mention.text, hit.urgency) for rule in TEXT_RULES for hit in rule(findings, case)
    ]


def _flag(kind: str, source: str, evidence: str, urgency: str | None = None) -> RedFlag:
    default_urgency, topic = FLAG_KINDS[kind]
    return RedFlag(kind=kind, source=source, evidence=evidence, urgency=urgency or default_urgency, topic=topic)


# --- instrument rules -------------------------------------------------------------------------------------


def _field(result: object, name: str) -> object:
    """Read a scored instrument given as an InstrumentResult or as its §4 dict."""
    if isinstance(result, Mapping):
        return result.get(name)
    return getattr(result, name, None)


def _instrument_flags(instruments: Mapping[str, object]) -> list[RedFlag]:
    flags = []
    for name, result in instruments.items():
        item_flags = _field(result, "flags") or []
        score = _field(result, "score")
        total = f" (total {score})" if score is not None else ""
        if "phq9_item9" in item_flags:
            flags.append(_flag("phq9_item9", name, f"PHQ-9 item 9 (thoughts of death or self-harm) above 0{total}"))
        if "epds_item10" in item_flags:
            flags.append(_flag("epds_item10", name, f"EPDS item 10 (thoughts of self-harm) above 0{total}"))
        risk = _field(result, "risk")
        if name == "cssrs" and risk in ("low", "moderate", "high"):
            flags.append(_flag(f"cssrs_{risk}", name, f"C-SSRS screener risk: {risk}"))
        if name == "asq":
            if _field(result, "acute"):
                flags.append(_flag("asq_acute", name, "ASQ positive with current thoughts of suicide (acute)"))
            elif _field(result, "positive"):
                flags.append(_flag("asq_positive", name, "ASQ positive, not acute"))
            if "asq_q5_without_positive" in item_flags:
                flags.append(
                    _flag("asq_acute_unclear", name, "ASQ: yes to current thoughts but no to q1-q4; ask again")
                )
    return flags


# --- actions and assembly ---------------------------------------------------------------------------------

CRISIS_LINE = "Give crisis line details: 988 Suicide & Crisis Lifeline (US) or the local crisis line."
SUICIDE_KINDS = frozenset(
    {"suicidal_ideation_plan", "suicide_preparation", "suicide_attempt_recent", "cssrs_high", "asq_acute"}
)
MEDICAL_ACTIONS = {
    "serotonin_syndrome": "Medical emergency (suspected serotonin syndrome): stop all serotonergic drugs, including "
    "any newly added one, and send by ambulance to the emergency department.",
    "neuroleptic_malignant_syndrome": "Medical emergency (suspected neuroleptic malignant syndrome): stop the "
    "antipsychotic and send by ambulance to the emergency department (CK, renal function, cooling, fluids).",
    "lithium_toxicity": "Medical emergency (suspected lithium toxicity): withhold lithium and any interacting drug "
    "(NSAID, ACE inhibitor, diuretic); send to the emergency department for an urgent lithium level, U&E and eGFR.",
    "alcohol_withdrawal_severe": "Medical emergency (complicated alcohol withdrawal): not for home detox; send to the "
    "emergency department for inpatient withdrawal management (benzodiazepine regimen, parenteral thiamine).",
    "sedative_withdrawal_severe": "Medical emergency (complicated sedative withdrawal): send to the emergency "
    "department; do not restart or stop sedatives abruptly without medical supervision.",
    "opioid_overdose": "Opioid overdose: give naloxone if breathing is slowed or the patient is hard to rouse, call "
    "emergency services, and supply take-home naloxone afterwards.",
    "eating_disorder_medical_instability": "Medical instability in an eating disorder: same-day medical assessment "
    "for admission (ECG, electrolytes including potassium and phosphate, glucose, observations).",
}


def _safety_actions(flags: list[RedFlag], urgency: str) -> list[str]:
    if urgency == "emergency":
        return _emergency_actions({flag.kind for flag in flags if flag.urgency == "emergency"})
    if urgency == "urgent":
        actions = ["Arrange clinician assessment today or within days; escalate to emergency care if it worsens."]
        if any(flag.topic == "suicide-risk" for flag in flags):
            actions += [
                "Assess suicide risk today and write a collaborative safety plan with the patient.",
                CRISIS_LINE,
            ]
        return actions
    return []


def _emergency_actions(kinds: set[str]) -> list[str]:
    actions = [
        "Do not leave the patient alone: keep them supervised (staff or a trusted adult) until handed over.",
        "Arrange same-day emergency evaluation: emergency department, or call emergency services (911/999/112) "
        "if there is immediate danger; do not let the patient travel alone.",
        CRISIS_LINE,
    ]
    if kinds & SUICIDE_KINDS:
        actions.append("Remove access to lethal means (stockpiled medication, firearms, ligatures) with the family.")
    if "suicide_attempt_recent" in kinds:
        actions.append(
            "Treat any overdose as medically urgent even if the patient feels well: paracetamol and other "
            "toxicity can be delayed."
        )
    if kinds & {"homicidal_ideation_plan", "command_hallucinations"}:
        actions.append(
            "Protect others: identify the person at risk, remove access to weapons, and involve the police if harm "
            "is imminent (duty to warn or protect under local law)."
        )
    if "postpartum_psychosis" in kinds:
        actions.append(
            "Suspected postpartum psychosis: do not leave the mother alone with the baby; arrange same-day perinatal "
            "or crisis psychiatric assessment (mother and baby unit)."
        )
    if "mania_with_danger" in kinds:
        actions.append("Mania with risky behaviour: same-day psychiatric assessment; advise against driving.")
    return actions + [MEDICAL_ACTIONS[kind] for kind in sorted(kinds) if kind in MEDICAL_ACTIONS]


def _rank(urgency: str) -> int:
    return URGENCY_ORDER.index(urgency)


def _deduplicate(flags: list[RedFlag]) -> list[RedFlag]:
    """Most urgent first; one flag per kind and source, with the longest (most specific) evidence of its urgency."""
    best: dict[tuple[str, str], RedFlag] = {}
    for flag in flags:
        key = (flag.kind, flag.source)
        kept = best.get(key)
        if kept is None or (_rank(flag.urgency), len(flag.evidence)) > (_rank(kept.urgency), len(kept.evidence)):
            best[key] = flag
    return sorted(best.values(), key=lambda flag: -_rank(flag.urgency))


def triage(
    presentation: str,
    question: str = "",
    instruments: Mapping[str, object] | None = None,
    patient: Mapping[str, object] | None = None,
) -> TriageResult:
    """Urgency and red flags for one case: the maximum over text flags and instrument flags; no model involved."""
    instruments = instruments or {}
    case = _Case(
        postpartum_weeks=_number((patient or {}).get("postpartum_weeks")),
        drinks_heavily=bool(_field(instruments.get("auditc"), "positive")),
    )
    in_presentation, in_question = _mentions(presentation), _mentions(question)
    flags = _text_flags("presentation", Findings(in_presentation, in_question), case)
    flags += _text_flags("question", Findings(in_question, in_presentation), case)
    flags += _instrument_flags(instruments)
    flags = _deduplicate(flags)
    urgency = max((flag.urgency for flag in flags), key=_rank, default="routine")
    topics = list(dict.fromkeys(flag.topic for flag in flags))
    return TriageResult(urgency=urgency, red_flags=flags, safety_actions=_safety_actions(flags, urgency), topics=topics)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
