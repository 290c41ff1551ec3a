"""The questionnaires the Screening page shows: item wording, answer options and how answers become the
instrument values that `app.instruments` scores (consult contract §1).

Only instruments whose wording is free to reproduce are here: PHQ-9/PHQ-2/GAD-7 (Pfizer, no permission
needed), AUDIT-C (WHO), the C-SSRS screener (Columbia, free for clinical use) and ASQ (NIMH, public domain).
The EPDS is copyrighted: it is scored when its item values are entered, but its items are never shown.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    label: str
    value: int


@dataclass(frozen=True)
class ScaleForm:
    """A summed questionnaire: each item picks one choice; the instrument value is the list of choice values."""

    key: str
    title: str
    stem: str
    items: tuple[str, ...]
    choices: tuple[tuple[Choice, ...], ...]  # one tuple of choices per item

    def value(self, answers: list[int]) -> list[int]:
        """Item values in order; `answers` are indexes into each item's choices."""
        if len(answers) != len(self.items):
            raise ValueError(f"{self.key}: expected {len(self.items)} answers, got {len(answers)}")
        return [self.choices[i][a].value for i, a in enumerate(answers)]


@dataclass(frozen=True)
class YesNoForm:
    """A yes/no screener: the instrument value is an object of named booleans."""

    key: str
    title: str
    stem: str
    items: tuple[tuple[str, str], ...]  # (field, question)
    # field → the field that must be yes for this question to be asked (the screener's skip logic)
    asked_if: dict[str, str]

    def value(self, answers: dict[str, bool]) -> dict[str, bool]:
        """Every field present; a question skipped by the screener's logic counts as no."""
        out = {}
        for name, _ in self.items:
            gate = self.asked_if.get(name)
            out[name] = bool(answers.get(name)) and (gate is None or bool(answers.get(gate)))
        return out


FREQUENCY = (
    Choice("Not at all", 0),
    Choice("Several days", 1),
    Choice("More than half the days", 2),
    Choice("Nearly every day", 3),
)
TWO_WEEKS = "Over the last 2 weeks, how often has the patient been bothered by the following problems?"

PHQ9_ITEMS = (
    "Little interest or pleasure in doing things",
    "Feeling down, depressed, or hopeless",
    "Trouble falling or staying asleep, or sleeping too much",
    "Feeling tired or having little energy",
    "Poor appetite or overeating",
    "Feeling bad about yourself, or that you are a failure or have let yourself or your family down",
    "Trouble concentrating on things, such as reading the newspaper or watching television",
    "Moving or speaking so slowly that other people could have noticed, or the opposite: being so fidgety "
    "or restless that you have been moving around a lot more than usual",
    "Thoughts that you would be better off dead, or of hurting yourself in some way",
)
GAD7_ITEMS = (
    "Feeling nervous, anxious, or on edge",
    "Not being able to stop or control worrying",
    "Worrying too much about different things",
    "Trouble relaxing",
    "Being so restless that it is hard to sit still",
    "Becoming easily annoyed or irritable",
    "Feeling afraid, as if something awful might happen",
)

PHQ9 = ScaleForm("phq9", "PHQ-9 (depression)", TWO_WEEKS, PHQ9_ITEMS, (FREQUENCY,) * 9)
PHQ2 = ScaleForm("phq2", "PHQ-2 (depression screen)", TWO_WEEKS, PHQ9_ITEMS[:2], (FREQUENCY,) * 2)
GAD7 = ScaleForm("gad7", "GAD-7 (anxiety)", TWO_WEEKS, GAD7_ITEMS, (FREQUENCY,) * 7)
AUDITC = ScaleForm(
    "auditc",
    "AUDIT-C (alcohol)",
    "In the past year:",
    (
        "How often do you have a drink containing alcohol?",
        "How many standard drinks containing alcohol do you have on a typical day?",
        "How often do you have six or more drinks on one occasion?",
    ),
    (
        (Choice("Never", 0), Choice("Monthly or less", 1), Choice("2-4 times a month", 2),
         Choice("2-3 times a week", 3), Choice("4 or more times a week", 4)),
        (Choice("1 or 2", 0), Choice("3 or 4", 1), Choice("5 or 6", 2), Choice("7 to 9", 3),
         Choice("10 or more", 4)),
        (Choice("Never", 0), Choice("Less than monthly", 1), Choice("Monthly", 2), Choice("Weekly", 3),
         Choice("Daily or almost daily", 4)),
    ),
)
CSSRS = YesNoForm(
    "cssrs",
    "C-SSRS screener (suicide risk)",
    "In the past month:",
    (
        ("q1", "Have you wished you were dead or wished you could go to sleep and not wake up?"),
        ("q2", "Have you actually had any thoughts about killing yourself?"),
        ("q3", "Have you thought about how you might do this?"),
        ("q4", "Have you had any intention of acting on these thoughts of killing yourself, as opposed to "
               "having the thoughts but definitely not acting on them?"),
        ("q5", "Have you started to work out or worked out the details of how to kill yourself? "
               "Do you intend to carry out this plan?"),
        ("q6", "Have you ever done anything, started to do anything, or prepared to do anything to end your "
               "life?"),
        ("q6_past_3_months", "Was that within the past 3 months?"),
    ),
    {"q3": "q2", "q4": "q2", "q5": "q2", "q6_past_3_months": "q6"},
)
ASQ = YesNoForm(
    "asq",
    "ASQ (suicide risk screening)",
    "Ask the patient:",
    (
        ("q1", "In the past few weeks, have you wished you were dead?"),
        ("q2", "In the past few weeks, have you felt that you or your family would be better off if you were "
               "dead?"),
        ("q3", "In the past week, have you been having thoughts about killing yourself?"),
        ("q4", "Have you ever tried to kill yourself?"),
        ("q5_acute", "Are you having thoughts of killing yourself right now?"),
    ),
    {},
)

FORMS: tuple[ScaleForm | YesNoForm, ...] = (PHQ9, GAD7, PHQ2, AUDITC, CSSRS, ASQ)
BY_KEY = {f.key: f for f in FORMS}
