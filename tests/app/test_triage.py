"""Triage (contract §3, §4): urgency and red flags from free text and instrument flags, with evidence spans."""

import json
from pathlib import Path

import pytest

from app.instruments import InstrumentResult, score_all
from app.triage import FLAG_KINDS, URGENCY_ORDER, RedFlag, TriageResult, triage

DEV_CASES_PATH = Path(__file__).resolve().parents[2] / "data/eval/dev_cases.jsonl"
TOPICS = {
    "depression", "anxiety", "panic", "ptsd", "bipolar", "suicide-risk", "perinatal", "alcohol", "opioids",
    "insomnia", "adhd", "eating-disorders", "psychosis", "antidepressants", "collaborative-care", "older-adults",
    "general",
}  # fmt: skip


def load_dev_cases() -> list[dict]:
    with DEV_CASES_PATH.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


DEV_CASES = load_dev_cases()


def triage_case(case: dict) -> TriageResult:
    """Score the case's instruments as the pipeline does, then triage; `expected` is never passed in."""
    patient = case.get("patient") or {}
    scored, _errors = score_all(case.get("instruments"), patient.get("sex"))
    return triage(case["presentation"], case.get("question", ""), scored, patient)


def source_text(flag: RedFlag, presentation: str, question: str = "") -> str:
    return {"presentation": presentation, "question": question}[flag.source]


def flag_of(result: TriageResult, kind: str) -> RedFlag:
    found = [flag for flag in result.red_flags if flag.kind == kind]
    assert found, f"no {kind} flag in {[flag.kind for flag in result.red_flags]}"
    return found[0]


# --- the development cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", DEV_CASES, ids=[case["id"] for case in DEV_CASES])
def test_dev_case_urgency_matches_the_expected_urgency(case):
    assert triage_case(case).urgency == case["expected"]["urgency"]


@pytest.mark.parametrize("case", DEV_CASES, ids=[case["id"] for case in DEV_CASES])
def test_dev_case_text_flag_evidence_is_an_exact_span_of_its_source(case):
    result = triage_case(case)
    for flag in result.red_flags:
        if flag.source in ("presentation", "question"):
            assert flag.evidence in source_text(flag, case["presentation"], case.get("question", ""))
        else:
            assert flag.source in (case.get("instruments") or {})


@pytest.mark.parametrize("case", DEV_CASES, ids=[case["id"] for case in DEV_CASES])
def test_dev_case_urgency_is_the_maximum_over_its_flags(case):
    result = triage_case(case)
    ranks = [URGENCY_ORDER.index(flag.urgency) for flag in result.red_flags]
    assert result.urgency == URGENCY_ORDER[max(ranks, default=0)]


# --- held-out phrasings: emergencies and urgent findings ----------------------------------------------------

HELD_OUT_FLAGGED = [
    # suicide: plan, intent, preparation, recent attempt
    ("She has been saving up her tablets for the last month.", "emergency", "suicide_preparation"),
    ("He plans to jump off the bridge tonight.", "emergency", "suicidal_ideation_plan"),
    ("She intends to end her life this weekend.", "emergency", "suicidal_ideation_plan"),
    ("He has a detailed plan to hang himself in the garage.", "emergency", "suicidal_ideation_plan"),
    ("He has been thinking about suicide and has a clear plan.", "emergency", "suicidal_ideation_plan"),
    ("Texts to her sister say she has been talking about ending her life and has decided to do it on Friday.",
     "emergency", "suicidal_ideation_plan"),
    ("Plans to take all her tablets tonight.", "emergency", "suicidal_ideation_plan"),
    ("She wrote a suicide note last week.", "emergency", "suicide_preparation"),
    ("He bought a rope yesterday.", "emergency", "suicide_preparation"),
    ("He has been hoarding his sleeping tablets and looked up lethal doses.", "emergency", "suicide_preparation"),
    ("Has updated his will, given away his tools and told his son he won't be around much longer.",
     "emergency", "suicide_preparation"),
    ("He says he will drive his car into a wall on the motorway.", "emergency", "suicidal_ideation_plan"),
    ("She has a rope in the garage and plans to use it.", "emergency", "suicidal_ideation_plan"),
    ("She took an overdose last night.", "emergency", "suicide_attempt_recent"),
    ("Found by her mother after hanging herself last night; cut down and survived.", "emergency",
     "suicide_attempt_recent"),
    ("Previous overdoses x3, the most recent 2 weeks ago.", "emergency", "suicide_attempt_recent"),
    ("She swallowed a handful of her mother's pills two days ago.", "emergency", "suicide_attempt_recent"),
    ("Yesterday he tried to hang himself but the ligature broke.", "emergency", "suicide_attempt_recent"),
    ("Admitted this morning after taking 32 of her mother's co-codamol; now medically fit.",
     "emergency", "suicide_attempt_recent"),
    # harm to others and psychosis
    ("He is hearing voices telling him to kill his neighbour.", "emergency", "command_hallucinations"),
    ("He says he is going to stab his landlord.", "emergency", "homicidal_ideation_plan"),
    ("He has thoughts of killing his ex and keeps a gun in the car.", "emergency", "homicidal_ideation_plan"),
    ("Believes his wife is an impostor and has threatened her with a knife.", "emergency", "homicidal_ideation_plan"),
    ("Five days after delivery she is euphoric, not sleeping, and believes she has been chosen by God.",
     "emergency", "postpartum_psychosis"),
    ("Two weeks after giving birth she believes the neighbours are poisoning her food.",
     "emergency", "postpartum_psychosis"),
    ("31, two weeks after a caesarean: has not slept for three nights and believes the hospital implanted a "
     "tracking device in the baby.", "emergency", "postpartum_psychosis"),
    ("Manic for a week, racing thoughts, driving recklessly at night.", "emergency", "mania_with_danger"),
    # medical emergencies
    ("On lithium with coarse tremor and vomiting.", "emergency", "lithium_toxicity"),
    ("Takes lithium; for two days he has been unsteady on his feet with slurred speech.",
     "emergency", "lithium_toxicity"),
    ("Started tramadol on top of sertraline, now agitated with clonus and fever.", "emergency", "serotonin_syndrome"),
    ("On venlafaxine, given linezolid for a wound; now sweating, temperature 38.4, with ocular clonus.",
     "emergency", "serotonin_syndrome"),
    ("On olanzapine, now with muscle rigidity, a temperature of 39.5 and confusion.",
     "emergency", "neuroleptic_malignant_syndrome"),
    ("On risperidone; high fever, severe muscle rigidity, CK 8,000.", "emergency", "neuroleptic_malignant_syndrome"),
    ("Had a withdrawal seizure yesterday.", "emergency", "alcohol_withdrawal_severe"),
    ("Heavy drinker, last drink 48 hours ago, now disorientated and seeing spiders on the wall.",
     "emergency", "alcohol_withdrawal_severe"),
    ("Partner found him unresponsive with pinpoint pupils after using heroin.", "emergency", "opioid_overdose"),
    ("Anorexia nervosa, fainted twice this week, HR 38.", "emergency", "eating_disorder_medical_instability"),
    # urgent
    ("She wishes she would not wake up, but has no plan.", "urgent", "suicidal_ideation_passive"),
    ("He feels there is no point going on.", "urgent", "suicidal_ideation_passive"),
    ("She describes thoughts of not wanting to be here.", "urgent", "suicidal_ideation_passive"),
    ("Tells the nurse he is tired of living; no intent.", "urgent", "suicidal_ideation_passive"),
    ("Low appetite, thinks about killing herself daily.", "urgent", "suicidal_ideation"),
    ("Reports suicidal thoughts most days but no plan, intent or preparatory acts.", "urgent", "suicidal_ideation"),
    ("She has urges to self-harm when stressed.", "urgent", "self_harm_ideation"),
    ("Cut her thighs with a razor last week.", "urgent", "self_harm_recent"),
    ("He has thoughts of hurting his boss but no plan.", "urgent", "homicidal_ideation"),
    ("He fantasises about hurting his manager.", "urgent", "homicidal_ideation"),
    ("He hasn't slept in 4 days, spending sprees, racing thoughts.", "urgent", "manic_symptoms"),
    ("For a week she has been euphoric with pressured speech.", "urgent", "manic_symptoms"),
    ("Over six weeks he has become convinced the neighbours are spying on him through the TV.",
     "urgent", "psychotic_symptoms"),
    ("He reports auditory hallucinations of two voices discussing him.", "urgent", "psychotic_symptoms"),
    ("Has been hearing whispering voices at night.", "urgent", "psychotic_symptoms"),
    ("Stopped drinking yesterday after years of heavy use; now shaky and sweating.", "urgent", "alcohol_withdrawal"),
    ("Lithium level 1.3 on routine bloods, feels well.", "urgent", "lithium_level_high"),
    ("Bulimia with daily vomiting, potassium 2.8.", "urgent", "eating_disorder_medical_instability"),
    ("EPDS item 10 was scored 2 by the health visitor.", "urgent", "epds_item10"),
    ("84-year-old with 3 days of acute confusion, worse at night, and a urinary infection.", "urgent",
     "delirium_suspected"),
]  # fmt: skip


@pytest.mark.parametrize(
    "text, urgency, kind", HELD_OUT_FLAGGED, ids=[row[2] + ":" + row[0][:40] for row in HELD_OUT_FLAGGED]
)
def test_held_out_phrasing_raises_urgency_with_the_right_flag_and_a_real_span(text, urgency, kind):
    result = triage(text)
    assert result.urgency == urgency
    flag = flag_of(result, kind)
    assert flag.source == "presentation"
    assert flag.evidence and flag.evidence in text
    assert flag.urgency == urgency


# --- held-out phrasings that must not raise urgency ---------------------------------------------------------

HELD_OUT_ROUTINE = [
    # negation
    "No suicidal thoughts.",
    "SI denied.",
    "Suicidal ideation: none.",
    "Denies SI, HI or AVH.",
    "He is not suicidal and has never self-harmed.",
    "She denies thoughts of suicide or self-harm and is future-oriented.",
    "Drinks a bottle of wine a night; no withdrawal symptoms, no seizures.",
    "Schizophrenia, stable on depot; no hallucinations or delusions.",
    # history
    "Attempted suicide at 19, none since.",
    "Past history of an overdose in 2015 and self-harm as a teenager; none since.",
    "She took an overdose in her twenties and has had no suicidal thoughts since.",
    "Self-harming behaviour in the past, none for 5 years.",
    "Bipolar disorder, last manic episode in 2018; euthymic now.",
    "He had a withdrawal seizure 10 years ago.",
    # other people
    "Her grandmother had schizophrenia.",
    "Her sister self-harms and her father attempted suicide.",
    "His best friend killed himself in March.",
    "His mother has schizophrenia and hears voices; he has no psychotic symptoms.",
    "Her father had bipolar disorder and was manic for months.",
    # hypotheticals and questions about risk
    "What should I do if he becomes suicidal?",
    "If she were to have thoughts of suicide, who should she call?",
    "She worries she might become manic on an antidepressant.",
    "Can tramadol cause hallucinations?",
    "Should she have naloxone at home in case of an overdose?",
    "Citalopram is dangerous in overdose; is sertraline safer?",
    # look-alikes that are not red flags
    "Insomnia: lies awake with racing thoughts, sleeping only 4 hours a night and exhausted in the day.",
    "On sertraline, some sweating and a mild tremor since the dose went up; no fever.",
    "On lithium 800 mg, well, fine tremor only, level 0.7.",
    "Stopped smoking 3 days ago and feels shaky and irritable.",
    "Depression; she has a plan to return to work next month and denies suicidal thoughts.",
    "Overdose 10 years ago, seen in the emergency department yesterday for chest pain.",
    "There is no evidence that she is hearing voices.",
    "He has a rope swing in the garden for the kids.",
    "Stressed after a manic week at work.",
    "No features of delirium; gradual memory decline over two years.",
]


@pytest.mark.parametrize("text", HELD_OUT_ROUTINE, ids=[text[:48] for text in HELD_OUT_ROUTINE])
def test_negated_historical_hypothetical_or_other_person_mentions_stay_routine(text):
    result = triage(text)
    assert result.urgency == "routine", [(flag.kind, flag.evidence) for flag in result.red_flags]
    assert result.red_flags == []


@pytest.mark.parametrize(
    "presentation, question",
    [
        ("40-year-old with depression; denies SI.", "What should I do if he tells me he has a plan to kill himself?"),
        ("29-year-old with depression.", "If she ever had thoughts of suicide, what should she do?"),
        ("33-year-old on lithium, well.", "What are the warning signs of lithium toxicity I should tell her about?"),
        ("22-year-old with low mood.", "How do I ask about suicidal thoughts?"),
    ],
)
def test_hypothetical_questions_do_not_raise_urgency(presentation, question):
    assert triage(presentation, question).urgency == "routine"


def test_negated_plan_leaves_the_passive_ideation_flag_standing():
    text = "He says he would be better off dead but no plan or intent."
    result = triage(text)
    assert result.urgency == "urgent"
    assert [flag.kind for flag in result.red_flags] == ["suicidal_ideation_passive"]
    assert result.red_flags[0].evidence == "better off dead"


def test_a_drug_named_only_in_the_question_sets_the_scene_for_signs_in_the_presentation():
    presentation = "Since yesterday: agitated, sweating, temperature 38.7, inducible clonus."
    result = triage(presentation, "Could the tramadol I added to her sertraline be the cause?")
    flag = flag_of(result, "serotonin_syndrome")
    assert (result.urgency, flag.source) == ("emergency", "presentation")
    assert flag.evidence in presentation


# --- postpartum ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "patient, urgency",
    [
        ({"age": 30, "sex": "female", "postpartum_weeks": 2}, "emergency"),
        ({"age": 30, "sex": "female", "postpartum_weeks": 40}, "urgent"),
        ({"age": 30, "sex": "female", "pregnant": True}, "urgent"),
        (None, "urgent"),
    ],
)
def test_new_psychosis_is_an_emergency_only_in_the_weeks_after_birth(patient, urgency):
    result = triage("She is hearing a voice and believes her husband is poisoning her.", patient=patient)
    assert result.urgency == urgency


# --- instrument flags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "instruments, urgency, kind",
    [
        ({"cssrs": {"q1": True, "q2": True, "q3": True, "q4": True, "q5": False, "q6": False}}, "emergency",
         "cssrs_high"),
        ({"cssrs": {"q1": True, "q2": False, "q6": True, "q6_past_3_months": False}}, "urgent", "cssrs_moderate"),
        ({"cssrs": {"q1": True, "q2": False, "q6": False}}, "urgent", "cssrs_low"),
        ({"asq": {"q1": True, "q2": False, "q3": True, "q4": False, "q5_acute": True}}, "emergency", "asq_acute"),
        ({"asq": {"q1": False, "q2": True, "q3": False, "q4": False, "q5_acute": False}}, "urgent", "asq_positive"),
        ({"asq": {"q1": False, "q2": False, "q3": False, "q4": False, "q5_acute": True}}, "urgent",
         "asq_acute_unclear"),
        ({"phq9": [0, 0, 0, 0, 0, 0, 0, 0, 1]}, "urgent", "phq9_item9"),
        ({"epds": [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]}, "urgent", "epds_item10"),
    ],
)  # fmt: skip
def test_instrument_flags_set_urgency_with_the_instrument_as_source(instruments, urgency, kind):
    scored, errors = score_all(instruments)
    assert errors == {}
    result = triage("Seen for review.", instruments=scored)
    flag = flag_of(result, kind)
    assert (result.urgency, flag.urgency) == (urgency, urgency)
    assert flag.source in instruments
    assert flag.evidence


@pytest.mark.parametrize(
    "instruments",
    [
        {"cssrs": {"q1": False, "q2": False, "q6": False}},
        {"phq9": [3, 3, 3, 3, 3, 3, 3, 3, 0]},
        {"epds": [3, 3, 3, 3, 3, 3, 3, 3, 3, 0]},
        {"auditc": [4, 4, 4], "gad7": [3, 3, 3, 3, 3, 3, 3]},
    ],
)
def test_instruments_without_risk_items_leave_a_routine_case_routine(instruments):
    scored, _ = score_all(instruments)
    assert triage("Seen for review.", instruments=scored).urgency == "routine"


def test_instruments_are_accepted_as_contract_dicts_as_well_as_results():
    as_result = {"cssrs": InstrumentResult(risk="high")}
    as_dict = {"cssrs": {"risk": "high", "flags": []}}
    assert triage("", instruments=as_result) == triage("", instruments=as_dict)


# --- safety actions, topics, result shape ---------------------------------------------------------------------

EMERGENCY_CASES = [
    {"id": text[:40], "presentation": text} for text, urgency, _ in HELD_OUT_FLAGGED if urgency == "emergency"
]
EMERGENCY_CASES += [case for case in DEV_CASES if case["expected"]["urgency"] == "emergency"]


@pytest.mark.parametrize("case", EMERGENCY_CASES, ids=[case["id"] for case in EMERGENCY_CASES])
def test_every_emergency_says_stay_with_the_patient_get_emergency_evaluation_and_call_a_crisis_line(case):
    result = triage_case(case)
    assert result.urgency == "emergency"
    actions = " ".join(result.safety_actions).lower()
    assert "do not leave the patient alone" in actions
    assert "emergency evaluation" in actions
    assert "emergency department" in actions and "emergency services" in actions
    assert "crisis line" in actions and "988" in actions


@pytest.mark.parametrize(
    "text, expected",
    [
        ("She has been stockpiling her pills.", "lethal means"),
        ("On lithium with coarse tremor and vomiting.", "withhold lithium"),
        ("Started haloperidol; rigid, febrile and CK 12000.", "stop the antipsychotic"),
        ("Heavy drinker, stopped 2 days ago, had a seizure this morning.", "not for home detox"),
        ("He is going to kill his brother-in-law.", "protect others"),
    ],
)
def test_safety_actions_are_tailored_to_the_kind_of_emergency(text, expected):
    result = triage(text)
    assert result.urgency == "emergency"
    assert expected in " ".join(result.safety_actions).lower()


def test_routine_result_has_no_flags_actions_or_topics():
    assert triage("") == TriageResult(urgency="routine", red_flags=[], safety_actions=[], topics=[])


def test_topics_are_known_tags_deduplicated_most_urgent_first():
    scored, _ = score_all({"phq9": [1, 1, 1, 1, 1, 1, 1, 1, 1]})
    result = triage("On lithium, now vomiting with a coarse tremor.", instruments=scored)
    assert result.topics == ["bipolar", "suicide-risk"]
    assert all(topic in TOPICS for _, topic in FLAG_KINDS.values())


def test_red_flag_dict_has_the_contract_fields():
    flag = flag_of(triage("She took an overdose last night."), "suicide_attempt_recent")
    assert flag.to_dict() == {
        "kind": "suicide_attempt_recent",
        "source": "presentation",
        "evidence": "took an overdose",
        "urgency": "emergency",
        "topic": "suicide-risk",
    }


def test_triage_is_deterministic():
    case = next(case for case in DEV_CASES if case["expected"]["urgency"] == "emergency")
    first = triage_case(case)
    assert all(triage_case(case) == first for _ in range(3))
