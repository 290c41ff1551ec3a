"""PHI redaction: names, dates, phones, emails, record numbers and addresses go; clinical text stays."""

import json
import logging

import pytest

from app.redaction import PhiSpan, RedactingFilter, find_phi, given_names, redact, redact_value


@pytest.mark.parametrize(
    "text, expected",
    [
        # emails, links, addresses of machines
        ("write to sarah.jones@example.co.uk today", "write to [EMAIL] today"),
        ("see https://portal.example.org/p?id=7.", "see [URL]."),
        ("from 192.168.10.4 at night", "from [IP] at night"),
        # phones: UK, US, international
        ("mobile 07700 900123", "mobile [PHONE]"),
        ("ring 020 7946 0958 or 0161 496 0000", "ring [PHONE] or [PHONE]"),
        ("call (555) 123-4567 or 555.123.4567", "call [PHONE] or [PHONE]"),
        ("on +44 (0)20 7946 0958 or +1-555-123-4567", "on [PHONE] or [PHONE]"),
        ("abroad: +33 1 23 45 67 89", "abroad: [PHONE]"),
        ("tel: 555-1234", "tel: [PHONE]"),
        # dates
        ("seen 12/03/2024 and 2024-03-12", "seen [DATE] and [DATE]"),
        ("seen 03.04.2024", "seen [DATE]"),
        ("on 12 March 2024 and March 12, 2024", "on [DATE] and [DATE]"),
        ("since the 12th of March", "since the [DATE]"),
        ("DOB 1/2/80, born in 1980", "DOB [DATE], born in [DATE]"),
        ("in May 2023 she moved", "in [DATE] she moved"),
        # record numbers
        ("MRN 12345678", "MRN [ID]"),
        ("MRN: 00123456", "MRN: [ID]"),
        ("NHS 943 476 5919", "NHS [ID]"),
        ("NHS number 9434765919", "NHS number [ID]"),
        ("record no. A1234567", "record no. [ID]"),
        ("SSN 123-45-6789", "SSN [ID]"),
        ("ref 4471182 on file", "ref [ID] on file"),
        ("NI AB123456C", "NI [ID]"),
        # addresses and postcodes
        ("lives at 12 Acacia Avenue with her mother", "lives at [ADDRESS] with her mother"),
        ("221B Baker Street, London NW1 6XE.", "[ADDRESS]."),
        ("Flat 3, 45 Mill Lane, Manchester M1 1AE", "[ADDRESS]"),
        ("1 Main St, Beverly Hills, CA 90210", "[ADDRESS]"),
        ("moved to SW1A 1AA last year", "moved to [ADDRESS] last year"),
        ("postcode LS1 4AB", "postcode [ADDRESS]"),
        ("She lives on Acacia Avenue now", "She lives on [ADDRESS] now"),
        # names
        ("seen by Dr Patel and Mrs Okafor", "seen by Dr [NAME] and Mrs [NAME]"),
        ("Dr. Smith saw Ms O'Brien-Kelly", "Dr. [NAME] saw Ms [NAME]"),
        ("her partner named John Smith called", "her partner named [NAME] called"),
        ("a friend called Kwame", "a friend called [NAME]"),
        ("Her name is Oluwaseun Adeyemi.", "Her name is [NAME]."),
        ("Patient: Jane Doe", "Patient: [NAME]"),
        ("pt Kwame reports poor sleep", "pt [NAME] reports poor sleep"),
        ("Sarah Jones reports low mood", "[NAME] reports low mood"),
        ("Lives with partner Priya Shah and her son Tyler.", "Lives with partner [NAME] and her son [NAME]."),
        ("Sarah's mother has dementia", "[NAME]'s mother has dementia"),
        ("worried about Adebayo's drinking", "worried about [NAME]'s drinking"),
        ("Mrs Okafor attended. Okafor reports poor sleep.", "Mrs [NAME] attended. [NAME] reports poor sleep."),
        # names with diacritics
        ("seen by Dr Łukasz Wójcik", "seen by Dr [NAME]"),
        ("Patient: José Núñez-García", "Patient: [NAME]"),
        ("her daughter named Zoë", "her daughter named [NAME]"),
        ("Mr Şükrü Öztürk attended", "Mr [NAME] attended"),
    ],
)
def test_each_kind_of_identifier_is_replaced_by_its_placeholder(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "PHQ-9 of 16, sertraline 50 mg for 6 weeks, 29-year-old woman, item 9 scored 2",
        "GAD-7 16/27; AUDIT-C 8; EPDS 14; PC-PTSD-5 3; C-SSRS screener positive; ASQ negative.",
        "Sertraline 50 mg daily. Fluoxetine 20 mg on day 1; review in 2-4 weeks; drinks 2-3 units a week.",
        "PHQ-9 total 21 (item 9 = 3). Weight 52 kg, BMI 16.2, HR 48, BP 140/90. Lithium 0.6-0.8 mmol/L.",
        "May I ask about lithium levels? Call 999 or 111, or NHS 111 online. Crisis line 24/7.",
        "Parkinson's disease, Alzheimer's dementia, Crohn's; St John's wort interacts with SSRIs.",
        "Started on a drug called Sertraline. Referred to Talking Therapies. Seen in March.",
        "ICD-10 F32.1, DSM-5 296.22; 3/12 history of low mood; score 12 of 27 at 10:30.",
        "The 52-year-old man was made redundant 2 months ago, with 6 weeks of early waking.",
    ],
)
def test_clinical_text_passes_through_unchanged(text):
    assert redact(text) == text, find_phi(text)


def test_a_realistic_presentation_keeps_its_clinical_content_and_loses_every_identifier():
    text = (
        "Mrs Sarah Jones (DOB 14/07/1985, MRN 12345678, NHS 943 476 5919) lives at 12 Acacia Avenue, Leeds "
        "LS1 4AB, phone 07700 900123, email sarah.jones@example.com. Sarah's GP Dr Patel referred her on "
        "3rd June 2024. 38-year-old with 6 weeks of low mood; PHQ-9 of 16, item 9 scored 2. Sertraline 50 mg."
    )
    out = redact(text)
    for identifier in ("Sarah", "Jones", "14/07/1985", "12345678", "943 476 5919", "Acacia", "LS1 4AB",
                       "07700 900123", "example.com", "Patel", "3rd June"):
        assert identifier not in out, out
    for clinical in ("38-year-old with 6 weeks of low mood", "PHQ-9 of 16, item 9 scored 2", "Sertraline 50 mg",
                     "Mrs [NAME]", "MRN [ID]", "GP Dr [NAME]"):
        assert clinical in out, out


def test_spans_are_sorted_non_overlapping_and_carry_their_text():
    text = "Call Dr Patel on 020 7946 0958 before 12 March 2024"
    spans = find_phi(text)
    assert spans == [
        PhiSpan("name", 8, 13, "Patel"),
        PhiSpan("phone", 17, 30, "020 7946 0958"),
        PhiSpan("date", 38, 51, "12 March 2024"),
    ]
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))


def test_overlapping_findings_merge_so_nothing_leaks_between_them():
    # the phone pattern and the date pattern both claim "12"; the union is redacted
    out = redact("+44 20 7946 0958 12 March 2024")
    assert "12" not in out and "March" not in out


def test_the_bundled_given_names_are_about_three_hundred_capitalised_names_without_everyday_words():
    names = given_names()
    assert 280 <= len(names) <= 400
    assert all(n[0].isupper() and n.isalpha() for n in names)
    assert not names & {"Will", "May", "Hope", "Mark", "June", "April", "Faith", "Joy", "Frank", "Bill"}


def test_redact_value_redacts_every_string_in_nested_data_and_keeps_the_rest():
    value = {"who": "Dr Patel", "n": 3, "ok": True, "tags": ["MRN 12345678", None, 1.5], "nested": {"x": ("Sarah",)}}
    assert redact_value(value) == {
        "who": "Dr [NAME]",
        "n": 3,
        "ok": True,
        "tags": ["MRN [ID]", None, 1.5],
        "nested": {"x": ["[NAME]"]},
    }
    json.dumps(redact_value({"path": __import__("pathlib").Path("/tmp/x")}))  # other objects become strings


def test_the_logging_filter_makes_records_phi_free_including_arguments_and_tracebacks(caplog):
    logger = logging.getLogger("curbside.test.redaction")
    handler = caplog.handler
    handler.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("consult for %s (MRN %s) phoned from %s", "Mrs Sarah Jones", 12345678, "07700 900123")
            try:
                raise ValueError("bad case for Dr Patel, DOB 14/07/1985")
            except ValueError:
                logger.exception("failed for %s", "sarah.jones@example.com")
    finally:
        handler.removeFilter(handler.filters[-1])
    first, second = caplog.records
    assert first.getMessage() == "consult for Mrs [NAME] (MRN [ID]) phoned from [PHONE]"
    assert first.args == ()
    assert second.getMessage() == "failed for [EMAIL]"
    assert "Patel" not in caplog.text and "14/07/1985" not in caplog.text and "ValueError" in caplog.text


def test_redacting_twice_changes_nothing_more_so_stacked_log_filters_are_harmless():
    text = "Mrs Sarah Jones, DOB 14/07/1985, 12 Acacia Avenue, 07700 900123, MRN 12345678, CA 90210, 10.0.0.1"
    once = redact(text)
    assert redact(once) == once


def test_the_bundled_eval_cases_which_hold_no_identifiers_pass_through_unchanged(repo_root):
    lines = (repo_root / "data" / "eval" / "dev_cases.jsonl").read_text().splitlines()
    changed = [
        (case["id"], key, find_phi(case[key]))
        for case in map(json.loads, lines)
        for key in ("presentation", "question")
        if find_phi(case[key])
    ]
    assert len(lines) >= 50 and changed == []
