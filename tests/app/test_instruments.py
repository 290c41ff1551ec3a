"""Instrument scoring as the consult contract (§2, §4) specifies it; each table row is one rule."""

import dataclasses

import pytest

from app.instruments import (
    INSTRUMENTS,
    SUMMED,
    InstrumentError,
    InstrumentResult,
    score_all,
    score_instrument,
)


def items_summing_to(total: int, count: int, max_item: int = 3, last: int | None = None) -> list[int]:
    """`count` item values summing to `total`, filled from item 1; `last` pins the final item."""
    values = [0] * count
    remaining = total - (last or 0)
    for i in range(count - (1 if last is not None else 0)):
        values[i] = min(max_item, remaining)
        remaining -= values[i]
    assert remaining == 0, "total out of reach"
    if last is not None:
        values[-1] = last
    return values


def mdq(yes: int = 7, same_period: bool = True, problem: str = "moderate") -> dict:
    return {"items": [True] * yes + [False] * (13 - yes), "same_period": same_period, "problem": problem}


def cssrs(**answers: bool) -> dict:
    return {"q1": False, "q2": False, **answers}


def asq(**answers: bool) -> dict:
    return {"q1": False, "q2": False, "q3": False, "q4": False, **answers}


# --- bands ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "score, band",
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately severe"),
        (19, "moderately severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_phq9_band_follows_total_at_every_edge(score, band):
    result = score_instrument("phq9", items_summing_to(score, 9, last=0 if score <= 24 else 3))
    assert (result.score, result.band) == (score, band)


@pytest.mark.parametrize(
    "score, band",
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_gad7_band_follows_total_at_every_edge(score, band):
    result = score_instrument("gad7", items_summing_to(score, 7))
    assert (result.score, result.band) == (score, band)


# --- positive thresholds of the summed questionnaires ---------------------------------------------------


@pytest.mark.parametrize(
    "name, score, positive",
    [
        ("phq9", 9, False),
        ("phq9", 10, True),
        ("phq2", 2, False),
        ("phq2", 3, True),
        ("gad7", 9, False),
        ("gad7", 10, True),
        ("epds", 12, False),
        ("epds", 13, True),
    ],
)
def test_summed_instrument_is_positive_from_its_threshold(name, score, positive):
    spec = SUMMED[name]
    result = score_instrument(name, items_summing_to(score, spec.items, spec.max_item, last=0))
    assert (result.score, result.positive) == (score, positive)


@pytest.mark.parametrize(
    "items, sex, positive",
    [
        ([1, 1, 1], "male", False),  # 3: below the male threshold of 4
        ([2, 1, 1], "male", True),  # 4
        ([1, 1, 0], "female", False),  # 2: below the female threshold of 3
        ([1, 1, 1], "female", True),  # 3
        ([1, 1, 0], None, False),  # sex absent uses the female threshold
        ([2, 1, 0], None, True),
    ],
)
def test_auditc_threshold_depends_on_sex(items, sex, positive):
    assert score_instrument("auditc", items, sex=sex).positive is positive


def test_auditc_items_go_up_to_4():
    assert score_instrument("auditc", [4, 4, 4], sex="male").score == 12


def test_sex_only_matters_to_auditc():
    assert score_instrument("phq9", [1] * 9, sex="male") == score_instrument("phq9", [1] * 9, sex="female")


# --- MDQ ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, positive",
    [
        (mdq(yes=7, same_period=True, problem="moderate"), True),
        (mdq(yes=13, same_period=True, problem="serious"), True),
        (mdq(yes=6, same_period=True, problem="serious"), False),  # too few symptoms
        (mdq(yes=7, same_period=False, problem="serious"), False),  # not in the same period
        (mdq(yes=7, same_period=True, problem="minor"), False),  # not enough impairment
        (mdq(yes=13, same_period=True, problem="none"), False),
    ],
)
def test_mdq_is_positive_only_when_all_three_conditions_hold(value, positive):
    result = score_instrument("mdq", value)
    assert result.positive is positive
    assert result.score == sum(value["items"])


# --- PC-PTSD-5 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "yes, positive",
    [(2, False), (3, True), (5, True)],
)
def test_pcptsd5_is_positive_from_three_yes_answers(yes, positive):
    value = {"trauma_exposure": True, "items": [True] * yes + [False] * (5 - yes)}
    result = score_instrument("pcptsd5", value)
    assert (result.score, result.positive) == (yes, positive)


def test_pcptsd5_scores_zero_without_trauma_exposure_whatever_the_items():
    result = score_instrument("pcptsd5", {"trauma_exposure": False, "items": [True] * 5})
    assert (result.score, result.positive) == (0, False)


def test_pcptsd5_items_may_be_skipped_without_trauma_exposure():
    assert score_instrument("pcptsd5", {"trauma_exposure": False}).score == 0


@pytest.mark.parametrize("threshold, positive", [(3, False), (4, False), (2, True)])
def test_pcptsd5_threshold_is_configurable(threshold, positive):
    value = {"trauma_exposure": True, "items": [True, True, False, False, False]}
    assert score_instrument("pcptsd5", value, pcptsd5_threshold=threshold).positive is positive


@pytest.mark.parametrize("threshold", [0, 6, True, "3"])
def test_pcptsd5_threshold_outside_1_to_5_is_a_configuration_error(threshold):
    with pytest.raises(ValueError, match="pcptsd5_threshold"):
        score_instrument("pcptsd5", {"trauma_exposure": False}, pcptsd5_threshold=threshold)


# --- C-SSRS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, risk",
    [
        (cssrs(q6=False), "none"),
        (cssrs(q1=True, q6=False), "low"),
        (cssrs(q1=True, q2=True, q3=False, q4=False, q5=False, q6=False), "low"),
        (cssrs(q1=True, q2=True, q3=True, q4=False, q5=False, q6=False), "moderate"),
        (cssrs(q6=True, q6_past_3_months=False), "moderate"),  # behaviour, but longer ago
        (cssrs(q6=True, q6_past_3_months=True), "high"),  # behaviour in the past 3 months
        (cssrs(q1=True, q2=True, q3=True, q4=True, q5=False, q6=False), "high"),
        (cssrs(q1=True, q2=True, q3=True, q4=False, q5=True, q6=False), "high"),
        (cssrs(q1=True, q3=False, q4=True), "high"),  # any q4/q5 yes is high, even off the usual path
    ],
)
def test_cssrs_risk_level(value, risk):
    result = score_instrument("cssrs", value)
    assert result.risk == risk
    assert (result.score, result.positive, result.acute) == (None, None, None)


def test_cssrs_q3_to_q6_may_be_skipped_when_q2_is_no():
    result = score_instrument("cssrs", {"q1": True, "q2": False})
    assert result.risk == "low"
    assert result.flags == ["cssrs_q6_not_answered"]


def test_cssrs_past_3_months_may_be_absent_when_q6_is_no():
    assert score_instrument("cssrs", cssrs(q6=False)).flags == []


# --- ASQ ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, positive, acute",
    [
        (asq(), False, False),
        (asq(q5_acute=False), False, False),
        (asq(q1=True), True, False),  # q5_acute absent counts as no
        (asq(q2=True, q5_acute=False), True, False),
        (asq(q3=True, q5_acute=True), True, True),
        (asq(q5_acute=True), False, False),  # acute only when the screen is positive
    ],
)
def test_asq_positive_and_acute(value, positive, acute):
    result = score_instrument("asq", value)
    assert (result.positive, result.acute, result.score, result.risk) == (positive, acute, None, None)


# --- item-level flags -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, flags",
    [
        ("phq9", [0] * 8 + [1], ["phq9_item9"]),  # whatever the total: here 1, minimal
        ("phq9", [3] * 8 + [0], []),
        ("epds", [0] * 9 + [1], ["epds_item10"]),
        ("epds", [3] * 9 + [0], ["epds_anxiety"]),
        ("epds", [0, 0, 2, 2, 2, 0, 0, 0, 0, 0], ["epds_anxiety"]),  # EPDS-3A >= 6 on a total of 6
        ("epds", [0, 0, 2, 2, 1, 0, 0, 0, 0, 0], []),
        ("auditc", [1, 0, 1], ["auditc_item3"]),
        ("auditc", [4, 4, 0], []),
        ("asq", asq(q4=True), ["asq_q4"]),
        ("asq", asq(q5_acute=True), ["asq_q5_without_positive"]),
        ("cssrs", cssrs(q1=True), ["cssrs_q6_not_answered"]),
        ("mdq", mdq(13), []),
        ("pcptsd5", {"trauma_exposure": True, "items": [True] * 5}, []),
    ],
)
def test_item_flags(name, value, flags):
    assert score_instrument(name, value).flags == flags


# --- the contract §4 entry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, entry",
    [
        (
            "phq9",
            [2, 2, 1, 3, 2, 1, 2, 1, 0],
            {"score": 14, "band": "moderate", "positive": True, "flags": []},
        ),
        ("phq2", [2, 1], {"score": 3, "positive": True, "flags": []}),
        ("gad7", [1, 2, 1, 1, 0, 1, 2], {"score": 8, "band": "mild", "positive": False, "flags": []}),
        ("epds", [1, 1, 2, 2, 1, 1, 2, 1, 1, 0], {"score": 12, "positive": False, "flags": []}),
        ("auditc", [3, 2, 1], {"score": 6, "positive": True, "flags": ["auditc_item3"]}),
        ("mdq", mdq(8), {"score": 8, "positive": True, "flags": []}),
        (
            "pcptsd5",
            {"trauma_exposure": True, "items": [True, True, False, True, False]},
            {"score": 3, "positive": True, "flags": []},
        ),
        ("cssrs", cssrs(q1=True, q6=False), {"risk": "low", "flags": []}),
        ("asq", asq(q1=True), {"positive": True, "acute": False, "flags": []}),
    ],
)
def test_to_dict_emits_only_the_fields_that_apply(name, value, entry):
    assert score_instrument(name, value).to_dict() == entry


def test_result_is_immutable():
    result = score_instrument("phq2", [0, 0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.score = 6  # type: ignore[misc]


def test_every_contract_instrument_is_known():
    assert set(INSTRUMENTS) == {"phq9", "phq2", "gad7", "epds", "auditc", "mdq", "pcptsd5", "cssrs", "asq"}


# --- invalid input: every kind names what is wrong ------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, message",
    [
        # wrong item count
        ("gad7", [1] * 6, "expected 7 items, got 6"),
        ("phq9", [1] * 10, "expected 9 items, got 10"),
        ("phq2", [], "expected 2 items, got 0"),
        ("mdq", {**mdq(), "items": [True] * 12}, "expected 13 items, got 12"),
        ("pcptsd5", {"trauma_exposure": True, "items": [True] * 4}, "expected 5 items, got 4"),
        # out of range
        ("phq9", [0, 0, 4, 0, 0, 0, 0, 0, 0], "item 3 is 4; items are scored 0-3"),
        ("epds", [0] * 9 + [-1], "item 10 is -1; items are scored 0-3"),
        ("auditc", [5, 0, 0], "item 1 is 5; items are scored 0-4"),
        # wrong type
        ("gad7", [0, "x", 0, 0, 0, 0, 0], "item 2 is 'x'; expected an integer 0-3"),
        ("phq2", [1, "2"], "item 2 is '2'; expected an integer 0-3"),
        ("phq2", [1.0, 2], "item 1 is 1.0; expected an integer 0-3"),
        ("auditc", [1, None, 0], "item 2 is null; expected an integer 0-4"),
        ("phq9", {"items": [0] * 9}, "expected a list of 9 items, got an object"),
        ("phq2", "12", "expected a list of 2 items, got '12'"),
        ("mdq", [True] * 13, "expected an object with items, same_period, problem, got a list"),
        ("mdq", {**mdq(), "items": [1] * 13}, "item 1 is 1; expected true or false"),
        ("mdq", {**mdq(), "same_period": "yes"}, "same_period is 'yes'; expected true or false"),
        (
            "mdq",
            {**mdq(), "problem": "severe"},
            "problem is 'severe'; expected one of none, minor, moderate, serious",
        ),
        ("cssrs", {"q1": 1, "q2": False}, "q1 is 1; expected true or false"),
        ("asq", asq(q5_acute="no"), "q5_acute is 'no'; expected true or false"),
        (
            "pcptsd5",
            {"trauma_exposure": None, "items": [True] * 5},
            "trauma_exposure is null; expected true or false",
        ),
        # bool where an integer item belongs
        ("phq9", [1, 1, True, 1, 1, 1, 1, 1, 1], "item 3 is true; expected an integer 0-3, not true/false"),
        ("auditc", [False, 0, 0], "item 1 is false; expected an integer 0-4, not true/false"),
        # missing field
        ("mdq", {"items": [True] * 13, "problem": "serious"}, "missing field 'same_period'"),
        ("pcptsd5", {"items": [True] * 5}, "missing field 'trauma_exposure'"),
        ("pcptsd5", {"trauma_exposure": True}, "missing field 'items'"),
        ("cssrs", {"q1": True}, "missing field 'q2'"),
        ("cssrs", {"q1": True, "q2": True, "q3": False, "q6": False}, "missing field 'q4'"),
        ("cssrs", cssrs(q6=True), "missing field 'q6_past_3_months'"),
        ("asq", {"q1": False, "q2": False, "q3": False}, "missing field 'q4'"),
        # unknown field: a misspelt optional key must not silently read as "no"
        ("asq", asq(q5=True), "unknown field 'q5'; expected q1, q2, q3, q4, q5_acute"),
        ("cssrs", cssrs(q6=True, q6_past_3months=True), "unknown field 'q6_past_3months'"),
        # unknown instrument
        ("xyz", [1, 2], "unknown instrument 'xyz'"),
        ("PHQ9", [0] * 9, "unknown instrument 'PHQ9'; expected one of phq9, phq2, gad7"),
    ],
)
def test_invalid_instrument_raises_a_message_naming_the_problem(name, value, message):
    with pytest.raises(InstrumentError) as caught:
        score_instrument(name, value)
    assert str(caught.value).startswith(message)


def test_unrecognised_sex_is_an_auditc_error_not_a_silent_threshold():
    with pytest.raises(InstrumentError, match="sex is 'M'; expected 'female', 'male' or absent"):
        score_instrument("auditc", [1, 1, 1], sex="M")


def test_instrument_error_is_a_value_error():
    assert issubclass(InstrumentError, ValueError)


# --- score_all ------------------------------------------------------------------------------------------


def test_score_all_reports_a_bad_instrument_and_still_scores_the_rest():
    results, errors = score_all(
        {
            "phq9": [2, 2, 1, 3, 2, 1, 2, 1, 1],
            "gad7": [1, 2, 1, 1, 0, 1],
            "auditc": [3, 2, 1],
            "cssrs": cssrs(q1=True, q2=True, q3=True, q4=False, q5=False, q6=False),
            "audit": [0] * 10,
        },
        sex="male",
    )
    assert errors == {
        "gad7": "expected 7 items, got 6",
        "audit": "unknown instrument 'audit'; expected one of " + ", ".join(INSTRUMENTS),
    }
    assert {name: result.to_dict() for name, result in results.items()} == {
        "phq9": {"score": 15, "band": "moderately severe", "positive": True, "flags": ["phq9_item9"]},
        "auditc": {"score": 6, "positive": True, "flags": ["auditc_item3"]},
        "cssrs": {"risk": "moderate", "flags": []},
    }


@pytest.mark.parametrize("instruments", [None, {}])
def test_score_all_without_instruments_is_empty(instruments):
    assert score_all(instruments) == ({}, {})


def test_score_all_passes_sex_and_threshold_through():
    results, _ = score_all(
        {"auditc": [1, 1, 1], "pcptsd5": {"trauma_exposure": True, "items": [True] * 2 + [False] * 3}},
        sex="female",
        pcptsd5_threshold=2,
    )
    assert results["auditc"].positive and results["pcptsd5"].positive


def test_score_all_rejects_instruments_that_are_not_an_object():
    with pytest.raises(InstrumentError, match="instruments is a list"):
        score_all([[0] * 9])  # type: ignore[arg-type]


def test_score_all_returns_instrument_results():
    results, _ = score_all({"phq2": [0, 1]})
    assert isinstance(results["phq2"], InstrumentResult)
