"""Validate and score the screening instruments of the consult contract (§2); deterministic, no model.

Item values arrive already scored (EPDS reverse-scoring applied). This module holds no questionnaire
wording: items are referred to by number only.

Flags beyond the two the contract names, and why a clinician would want each:

- `phq9_item9`: PHQ-9 item 9 > 0 (contract): suicide-risk flag whatever the total.
- `epds_item10`: EPDS item 10 > 0 (contract): self-harm flag whatever the total.
- `epds_anxiety`: EPDS items 3-5 (the EPDS-3A anxiety subscale) sum to >= 6, a common cut-off for
  perinatal anxiety that a normal total can hide.
- `auditc_item3`: AUDIT-C item 3 > 0, i.e. any heavy episodic drinking, which matters (injury,
  withdrawal, interaction with sedatives) even when the total is below the positive threshold.
- `asq_q4`: a past suicide attempt reported on the ASQ, the strongest single predictor of a future one.
- `asq_q5_without_positive`: `q5_acute` is yes although q1-q4 are all no. The contract scores this as
  negative and not acute; the answers contradict each other and a clinician should ask again.
- `cssrs_q6_not_answered`: q2 is no and q6 is absent. The screener asks q6 (behaviour) even when q2 is
  no, so an absent q6 is scored as no but flagged as unrecorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

SEXES = ("female", "male")
MDQ_PROBLEMS = ("none", "minor", "moderate", "serious")
CSSRS_RISKS = ("none", "low", "moderate", "high")
DEFAULT_PCPTSD5_THRESHOLD = 3


class InstrumentError(ValueError):
    """An instrument value is malformed; the message names the offending item or field and the fix."""


@dataclass(frozen=True)
class InstrumentResult:
    """A scored instrument; a field is None exactly when it does not apply to the instrument (§4)."""

    score: int | None = None
    band: str | None = None
    positive: bool | None = None
    risk: str | None = None
    acute: bool | None = None
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The contract §4 entry: only the fields that apply, `flags` always."""
        entry: dict[str, object] = {
            name: value
            for name, value in (
                ("score", self.score),
                ("band", self.band),
                ("positive", self.positive),
                ("risk", self.risk),
                ("acute", self.acute),
            )
            if value is not None
        }
        entry["flags"] = list(self.flags)
        return entry


@dataclass(frozen=True)
class FlagRule:
    """Raise `name` when the items numbered `items` (1-based) sum to at least `at_least`."""

    name: str
    items: tuple[int, ...]
    at_least: int = 1


@dataclass(frozen=True)
class SummedSpec:
    """A questionnaire scored as the sum of `items` integer items, each 0..`max_item`."""

    items: int
    max_item: int
    threshold: int  # positive at >= threshold (for auditc: female or sex absent)
    male_threshold: int | None = None  # set only where the threshold depends on sex
    bands: tuple[tuple[int, str], ...] = ()  # (lowest score in the band, band name), ascending
    flags: tuple[FlagRule, ...] = ()


SUMMED: dict[str, SummedSpec] = {
    "phq9": SummedSpec(
        items=9,
        max_item=3,
        threshold=10,
        bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately severe"), (20, "severe")),
        flags=(FlagRule("phq9_item9", (9,)),),
    ),
    "phq2": SummedSpec(items=2, max_item=3, threshold=3),
    "gad7": SummedSpec(
        items=7,
        max_item=3,
        threshold=10,
        bands=((0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe")),
    ),
    "epds": SummedSpec(
        items=10,
        max_item=3,
        threshold=13,
        flags=(FlagRule("epds_anxiety", (3, 4, 5), at_least=6), FlagRule("epds_item10", (10,))),
    ),
    "auditc": SummedSpec(
        items=3,
        max_item=4,
        threshold=3,
        male_threshold=4,
        flags=(FlagRule("auditc_item3", (3,)),),
    ),
}

INSTRUMENTS = ("phq9", "phq2", "gad7", "epds", "auditc", "mdq", "pcptsd5", "cssrs", "asq")


def score_instrument(
    name: str,
    value: object,
    sex: str | None = None,
    *,
    pcptsd5_threshold: int = DEFAULT_PCPTSD5_THRESHOLD,
) -> InstrumentResult:
    """Validate and score one instrument; raises InstrumentError naming what is wrong with it."""
    _check_pcptsd5_threshold(pcptsd5_threshold)
    if name in SUMMED:
        return _score_summed(SUMMED[name], value, sex)
    if name == "mdq":
        return _score_mdq(value)
    if name == "pcptsd5":
        return _score_pcptsd5(value, pcptsd5_threshold)
    if name == "cssrs":
        return _score_cssrs(value)
    if name == "asq":
        return _score_asq(value)
    raise InstrumentError(f"unknown instrument {name!r}; expected one of {', '.join(INSTRUMENTS)}")


def score_all(
    instruments: Mapping[str, object] | None,
    sex: str | None = None,
    *,
    pcptsd5_threshold: int = DEFAULT_PCPTSD5_THRESHOLD,
) -> tuple[dict[str, InstrumentResult], dict[str, str]]:
    """Score every instrument of a case: (results, errors by instrument name); one bad one spares the rest."""
    _check_pcptsd5_threshold(pcptsd5_threshold)
    if instruments is None:
        return {}, {}
    if not isinstance(instruments, Mapping):
        raise InstrumentError(f"instruments is {_describe(instruments)}; expected an object keyed by name")
    results: dict[str, InstrumentResult] = {}
    errors: dict[str, str] = {}
    for name, value in instruments.items():
        try:
            results[name] = score_instrument(name, value, sex, pcptsd5_threshold=pcptsd5_threshold)
        except InstrumentError as exc:
            errors[name] = str(exc)
    return results, errors


# --- summed questionnaires (phq9, phq2, gad7, epds, auditc) -------------------------------------------


def _score_summed(spec: SummedSpec, value: object, sex: str | None) -> InstrumentResult:
    items = _int_items(value, spec.items, spec.max_item)
    score = sum(items)
    threshold = spec.threshold
    if spec.male_threshold is not None:
        if sex is not None and sex not in SEXES:
            raise InstrumentError(f"sex is {sex!r}; expected 'female', 'male' or absent")
        if sex == "male":
            threshold = spec.male_threshold
    band = None
    for lowest, band_name in spec.bands:
        if score >= lowest:
            band = band_name
    flags = [rule.name for rule in spec.flags if sum(items[i - 1] for i in rule.items) >= rule.at_least]
    return InstrumentResult(score=score, band=band, positive=score >= threshold, flags=flags)


def _int_items(value: object, count: int, max_item: int) -> list[int]:
    items = _list_of(value, count)
    for number, item in enumerate(items, start=1):
        expected = f"expected an integer 0-{max_item}"
        if isinstance(item, bool):
            # JSON true/false is not a score: a yes/no answer in a numeric slot means the form was mis-keyed.
            raise InstrumentError(f"item {number} is {_describe(item)}; {expected}, not true/false")
        if not isinstance(item, int):
            raise InstrumentError(f"item {number} is {_describe(item)}; {expected}")
        if not 0 <= item <= max_item:
            raise InstrumentError(f"item {number} is {item}; items are scored 0-{max_item}")
    return list(items)


# --- yes/no questionnaires (mdq, pcptsd5, cssrs, asq) ---------------------------------------------------


def _score_mdq(value: object) -> InstrumentResult:
    fields = _object_with(value, required=("items", "same_period", "problem"))
    answers = _bool_items(fields["items"], 13)
    same_period = _bool_field(fields, "same_period")
    problem = fields["problem"]
    if problem not in MDQ_PROBLEMS:
        raise InstrumentError(f"problem is {_describe(problem)}; expected one of {', '.join(MDQ_PROBLEMS)}")
    count = sum(answers)
    positive = count >= 7 and same_period and problem in ("moderate", "serious")
    return InstrumentResult(score=count, positive=positive)


def _score_pcptsd5(value: object, threshold: int) -> InstrumentResult:
    # Like the screener, which skips the five items when there was no trauma exposure.
    fields = _object_with(value, required=("trauma_exposure",), optional=("items",))
    exposed = _bool_field(fields, "trauma_exposure")
    if exposed and "items" not in fields:
        raise InstrumentError("missing field 'items'")
    answers = _bool_items(fields["items"], 5) if "items" in fields else []
    score = sum(answers) if exposed else 0
    return InstrumentResult(score=score, positive=score >= threshold)


def _score_cssrs(value: object) -> InstrumentResult:
    fields = _object_with(
        value, required=("q1", "q2"), optional=("q3", "q4", "q5", "q6", "q6_past_3_months")
    )
    answers = {key: _bool_field(fields, key) for key in fields}
    flags: list[str] = []
    if answers["q2"]:
        # The screener skips q3-q5 only when q2 is no; after a yes they must have been asked.
        for key in ("q3", "q4", "q5", "q6"):
            if key not in answers:
                raise InstrumentError(f"missing field '{key}'")
    elif "q6" not in answers:
        flags.append("cssrs_q6_not_answered")
    if answers.get("q6") and "q6_past_3_months" not in answers:
        raise InstrumentError("missing field 'q6_past_3_months'")
    q3, q4, q5, q6 = (answers.get(key, False) for key in ("q3", "q4", "q5", "q6"))
    if q4 or q5 or (q6 and answers["q6_past_3_months"]):
        risk = "high"
    elif q3 or q6:
        risk = "moderate"
    elif answers["q1"] or answers["q2"]:
        risk = "low"
    else:
        risk = "none"
    return InstrumentResult(risk=risk, flags=flags)


def _score_asq(value: object) -> InstrumentResult:
    fields = _object_with(value, required=("q1", "q2", "q3", "q4"), optional=("q5_acute",))
    answers = {key: _bool_field(fields, key) for key in fields}
    positive = any(answers[key] for key in ("q1", "q2", "q3", "q4"))
    q5 = answers.get("q5_acute", False)
    flags: list[str] = []
    if answers["q4"]:
        flags.append("asq_q4")
    if q5 and not positive:
        flags.append("asq_q5_without_positive")
    return InstrumentResult(positive=positive, acute=positive and q5, flags=flags)


def _bool_items(value: object, count: int) -> list[bool]:
    items = _list_of(value, count)
    for number, item in enumerate(items, start=1):
        if not isinstance(item, bool):
            raise InstrumentError(f"item {number} is {_describe(item)}; expected true or false")
    return list(items)


def _bool_field(fields: Mapping[str, object], key: str) -> bool:
    value = fields[key]
    if not isinstance(value, bool):
        raise InstrumentError(f"{key} is {_describe(value)}; expected true or false")
    return value


# --- shapes and messages ------------------------------------------------------------------------------


def _list_of(value: object, count: int) -> list | tuple:
    if not isinstance(value, list | tuple):
        raise InstrumentError(f"expected a list of {count} items, got {_describe(value)}")
    if len(value) != count:
        raise InstrumentError(f"expected {count} items, got {len(value)}")
    return value


def _object_with(
    value: object, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping[str, object]:
    allowed = required + optional
    if not isinstance(value, Mapping):
        raise InstrumentError(f"expected an object with {', '.join(allowed)}, got {_describe(value)}")
    for key in value:
        # Rejected rather than ignored: a misspelt optional key (say 'q5') would otherwise read as "no".
        if key not in allowed:
            raise InstrumentError(f"unknown field {key!r}; expected {', '.join(allowed)}")
    for key in required:
        if key not in value:
            raise InstrumentError(f"missing field '{key}'")
    return value


def _describe(value: object) -> str:
    """A value as the clinician sent it, in JSON terms."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return repr(value)


def _check_pcptsd5_threshold(threshold: int) -> None:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or not 1 <= threshold <= 5:
        raise ValueError(f"pcptsd5_threshold is {threshold!r}; expected an integer 1-5")
