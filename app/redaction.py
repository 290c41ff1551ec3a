"""Offline PHI redaction: our own recognizers for names, dates, phones, emails, record numbers and addresses.

No model, no network: regular expressions plus a bundled list of given names (data/given_names.txt) and a stop
list of clinical and everyday words, so "PHQ-9 of 16, sertraline 50 mg for 6 weeks" passes through unchanged.
Overlapping findings are merged, so a character any recognizer flags is always redacted.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

GIVEN_NAMES_FILE = Path(__file__).parent / "data" / "given_names.txt"


@dataclass(frozen=True)
class PhiSpan:
    """One piece of identifying text: its kind (name, date, phone, email, id, address, url, ip) and where."""

    kind: str
    start: int
    end: int
    text: str


# --- vocabulary -------------------------------------------------------------------------------------------------

# Capitalised words that are never a name: function words, roles, clinical terms, instruments, drugs, services.
STOP_WORDS = frozenset(
    """
    a an the and or but if then so as at by for from in into of on onto to with without within after before since
    during until while when where what which who whom whose why how this that these those there here it its he she
    they them their his her hers him i me my we us our you your yes no not none all any some each every both either
    is was are were be been being has have had do does did can could will would shall should may might must
    also however overall today yesterday tomorrow tonight now recently currently previously
    patient patients client pt man woman boy girl mother father mum mom dad son daughter brother sister wife husband
    partner friend parent parents carer family baby child children teen teenager adult colleague boss
    gp doctor nurse midwife psychiatrist psychologist therapist pharmacist consultant registrar team service clinic
    clinician practice surgery hospital ward unit ambulance police school work university college
    monday tuesday wednesday thursday friday saturday sunday january february march april may june july august
    september october november december christmas easter
    history examination exam plan assessment impression diagnosis medication medications review referral risk safety
    mental state presenting complaint allergies background social family forensic collateral summary question
    answer note notes reports report presents presented denies denied states says said describes feels felt
    scored score item items total band positive negative mild moderate severe moderately severely minimal
    depression depressive anxiety anxious panic ptsd ocd adhd autism asd bipolar mania manic hypomania psychosis
    psychotic schizophrenia schizoaffective dementia delirium anorexia bulimia insomnia suicide suicidal self harm
    alcohol cannabis cocaine opioid opioids heroin benzodiazepine benzodiazepines nicotine
    phq gad epds audit mdq asq cssrs ssrs columbia edinburgh hamilton beck
    sertraline fluoxetine citalopram escitalopram paroxetine fluvoxamine venlafaxine duloxetine mirtazapine
    amitriptyline nortriptyline clomipramine imipramine trazodone bupropion vortioxetine agomelatine lithium
    quetiapine olanzapine risperidone aripiprazole haloperidol clozapine lurasidone lamotrigine valproate
    carbamazepine diazepam lorazepam clonazepam chlordiazepoxide zopiclone zolpidem promethazine pregabalin
    gabapentin propranolol methylphenidate lisdexamfetamine atomoxetine methadone buprenorphine naltrexone
    naloxone acamprosate disulfiram nalmefene thiamine melatonin prazosin ketamine esketamine
    nhs nice cbt ect iapt camhs samaritans crisis talking therapies mind
    women men people year god saint king queen
    """.split()
)

# Eponymous conditions: "Alzheimer's" and "Crohn's" are possessives that are not patients' names.
EPONYMS = frozenset(
    """
    addison alzheimer asperger bell bright conn crohn cushing down ehlers danlos gilbert graves guillain barre
    hashimoto hirschsprung hodgkin huntington kaposi kawasaki klinefelter korsakoff lyme marfan meniere munchausen
    paget parkinson raynaud reye sjogren still tay sachs tourette turner wernicke wilson
    """.split()
)

NAME_TITLES = ("Mr", "Mrs", "Ms", "Miss", "Mx", "Dr", "Prof", "Professor")
STREET_SUFFIXES = (
    "Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Close|Court|Ct|Crescent|Cres|Way|Place|Pl|Terrace|Gardens|"
    "Grove|Boulevard|Blvd|Square|Sq|Hill|Park|Row|Mews|Walk|Parade|Highway|Hwy|Circle|Parkway|Rise|Green|Vale"
)
# Suffixes distinctive enough to mark a street without a house number ("lives on Acacia Avenue").
BARE_STREET_SUFFIXES = "Street|Road|Avenue|Lane|Drive|Close|Crescent|Terrace|Gardens|Grove|Boulevard|Mews"
US_STATES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|"
    "OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY"
)


@lru_cache(maxsize=1)
def given_names() -> frozenset[str]:
    """The bundled given names (data/given_names.txt), as written: capitalised."""
    lines = GIVEN_NAMES_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(w.strip() for w in lines if w.strip() and not w.startswith("#"))


# --- patterns ---------------------------------------------------------------------------------------------------

EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?!\.?\d)")

PHONE_INTL = re.compile(r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(0\))?(?:[ .-]?\(?\d{1,5}\)?){2,6}(?![\w/]|[.-]\d)")
PHONE_NATIONAL = re.compile(
    r"(?<![\w+/.-])(?:\(\d{2,5}\)[ .-]?|\d{2,5}[ .-]?)\d{2,5}(?:[ .-]?\d{2,5}){0,3}(?![\w/]|[.-]\d)"
)
PHONE_CUE = re.compile(
    r"(?i:\b(?:tel(?:ephone)?|phone|mobile|mob|cell|ph|landline|contact(?: number)?|number)\b)\W{0,4}"
    r"(?i:(?:no|number)\b\W{0,2})?$"
)

NUMERIC_DATE = re.compile(r"(?<![\w/.-])(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?![\w/]|[.-]\d)")
ISO_DATE = re.compile(r"(?<![\w/.-])(\d{4})([/.-])(\d{1,2})\2(\d{1,2})(?![\w/]|[.-]\d)")
MONTH = (
    r"(?:(?i:january|february|march|april|june|july|august|september|october|november|december)"
    r"|May|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)\b"
)
DAY = r"(?:[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"
YEAR = r"(?:1[89]\d\d|20\d\d)(?![-/.]\d)"
DAY_MONTH = re.compile(rf"(?<![\w.-]){DAY}(?:\s+of)?\s+{MONTH}(?:,?\s+{YEAR}\b)?")
MONTH_DAY = re.compile(rf"\b{MONTH}\.?\s+{DAY}\b(?:,?\s+{YEAR}\b)?")
MONTH_YEAR = re.compile(rf"\b{MONTH}\.?,?\s+{YEAR}\b")
DOB = re.compile(
    r"(?i:\b(?:DOB|D\.O\.B\.?|date of birth|born(?:\s+(?:on|in))?))\s*[:\-]?\s*"
    r"(\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4})(?![\w/])"
)

ID_VALUE = r"(\d{3}[ -]\d{3}[ -]\d{4}|\d{3}-\d{2}-\d{4}|[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D]|[A-Z]{0,3}\d{5,}[A-Z]?)\b"
ID_CUED = re.compile(
    r"(?i:\b(?:MRN|medical record|hospital|record|patient|case|NHS|CHI|NI|national insurance|social security|SSN|"
    r"ID)(?:\s*(?:number|no\.?|num\.?|#))?)\s*[:#]?\s*" + ID_VALUE
)
SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")
LONG_NUMBER = re.compile(r"(?<![\w.,-])[A-Z]{0,3}\d{6,}[A-Z]?(?![\w]|[.,]\d)")

UK_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?|GIR) ?\d[A-Z]{2}"
ZIP = r"\d{5}(?:-\d{4})?"
STREET = (
    rf"(?<![\w.-])(?:(?:Flat|Apt\.?|Apartment|Unit|Suite)\s+\w{{1,5}},?\s+)?\d{{1,5}}[A-Za-z]?,?\s+"
    rf"(?:[A-Z][a-z]+\s+){{1,3}}(?:{STREET_SUFFIXES})\b"
    rf"(?:,\s*[A-Z][a-z]+(?:\s+[A-Z][a-z]+){{0,2}})?"
    rf"(?:,?\s*(?:{UK_POSTCODE}|(?:{US_STATES})\s+{ZIP}|{ZIP})\b)?"
)
STREET_ADDRESS = re.compile(STREET)
BARE_STREET = re.compile(rf"\b([A-Z][a-z]+)\s+(?:{BARE_STREET_SUFFIXES})\b")
POSTCODE = re.compile(rf"\b{UK_POSTCODE}\b")
STATE_ZIP = re.compile(rf"\b(?:{US_STATES})\s+({ZIP})\b")
POSTCODE_CUED = re.compile(rf"(?i:\b(?:zip(?:\s*code)?|post\s*code))\s*[:#]?\s*({UK_POSTCODE}|{ZIP})\b")

# Latin letters with diacritics too (José, Zoë, Łukasz, Şükrü): Latin-1 Supplement and Latin Extended-A
UPPER = "A-Z" + "".join(c for c in map(chr, range(0xC0, 0x180)) if c.isupper())
LOWER = "a-z" + "".join(c for c in map(chr, range(0xDF, 0x180)) if c.islower())
NAME_WORD = rf"(?:Mc|Mac|O['’])?[{UPPER}][{LOWER}]+(?:-[{UPPER}][{LOWER}]+)?"
NAME_RUN = rf"{NAME_WORD}(?:[ \t]+[A-Z](?:\.|(?=[ \t])))?(?:[ \t]+{NAME_WORD}){{0,2}}"
TITLED_NAME = re.compile(rf"\b(?:{'|'.join(NAME_TITLES)})\.?[ \t]+({NAME_RUN})")
CUED_NAME = re.compile(
    r"(?i:\b(?:named|called|name\s+is|name's|name\s*:|patient\s*:|patient\s+name\s*:?|client\s*:|pt\.?|"
    r"known\s+as|goes\s+by))[ \t]+" + rf"({NAME_RUN})"
)
CAPITALISED = re.compile(rf"(?<![\w'’-]){NAME_WORD}(?![\w-])")
MIDDLE_INITIAL_GAP = re.compile(r"[ \t]+(?:[A-Z]\.?[ \t]+)?")
SAINT = re.compile(r"\bS(?:ain)?t\.?[ \t]+$")  # "St John's wort", "St Helens": not people
POSSESSIVE = re.compile(rf"(?<![\w'’-])({NAME_WORD})['’]s\b")


# --- recognizers: each yields (rank, span); on overlap the lower rank names the merged span -----------------------


def _span(kind: str, text: str, start: int, end: int) -> PhiSpan:
    return PhiSpan(kind, start, end, text[start:end])


def _emails(text: str) -> Iterator[PhiSpan]:
    for m in EMAIL.finditer(text):
        yield _span("email", text, m.start(), m.end())


def _urls(text: str) -> Iterator[PhiSpan]:
    for m in URL.finditer(text):
        end = m.end()
        while end > m.start() and text[end - 1] in ".,;:!?)]}'\"":
            end -= 1
        yield _span("url", text, m.start(), end)


def _ips(text: str) -> Iterator[PhiSpan]:
    for m in IPV4.finditer(text):
        yield _span("ip", text, m.start(), m.end())


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def _phones(text: str) -> Iterator[PhiSpan]:
    for m in PHONE_INTL.finditer(text):
        if 8 <= _digits(m.group()) <= 15:
            yield _span("phone", text, m.start(), m.end())
    for m in PHONE_NATIONAL.finditer(text):
        n = _digits(m.group())
        cued = PHONE_CUE.search(text, max(0, m.start() - 30), m.start()) is not None
        if 10 <= n <= 11 or (cued and 7 <= n <= 13):
            yield _span("phone", text, m.start(), m.end())


def _plausible(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


def _dates(text: str) -> Iterator[PhiSpan]:
    for m in NUMERIC_DATE.finditer(text):
        a, sep, b, year = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        # "5-10-15" is more often a range than a date: a two-digit year needs slashes
        if (_plausible(a, b) or _plausible(b, a)) and (len(year) == 4 or sep == "/"):
            yield _span("date", text, m.start(), m.end())
    for m in ISO_DATE.finditer(text):
        if 1850 <= int(m.group(1)) <= 2100 and _plausible(int(m.group(4)), int(m.group(3))):
            yield _span("date", text, m.start(), m.end())
    for pattern in (DAY_MONTH, MONTH_DAY, MONTH_YEAR):
        for m in pattern.finditer(text):
            yield _span("date", text, m.start(), m.end())
    for m in DOB.finditer(text):
        yield _span("date", text, m.start(1), m.end(1))


def _record_numbers(text: str) -> Iterator[PhiSpan]:
    for m in ID_CUED.finditer(text):
        yield _span("id", text, m.start(1), m.end(1))
    for m in SSN.finditer(text):
        yield _span("id", text, m.start(), m.end())


def _long_numbers(text: str) -> Iterator[PhiSpan]:
    for m in LONG_NUMBER.finditer(text):
        yield _span("id", text, m.start(), m.end())


def _addresses(text: str) -> Iterator[PhiSpan]:
    for m in STREET_ADDRESS.finditer(text):
        yield _span("address", text, m.start(), m.end())
    for m in BARE_STREET.finditer(text):
        if not _is_stop(m.group(1)):
            yield _span("address", text, m.start(), m.end())
    for m in POSTCODE.finditer(text):
        yield _span("address", text, m.start(), m.end())
    for pattern in (STATE_ZIP, POSTCODE_CUED):
        for m in pattern.finditer(text):
            yield _span("address", text, m.start(1), m.end(1))


def _is_stop(word: str) -> bool:
    return word.lower() in STOP_WORDS


def _name_run(text: str, start: int, run: str) -> PhiSpan | None:
    """The leading words of a cued run that are not stop words, as one name span (None if the first is one)."""
    words = list(CAPITALISED.finditer(run))
    if not words or words[0].start() != 0 or _is_stop(words[0].group()):
        return None
    end = words[0].end()
    for w in words[1:]:
        if _is_stop(w.group()):
            break
        end = w.end()
    return _span("name", text, start, start + end)


def _sentence_initial(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t\"'“‘([":
        i -= 1
    return i < 0 or text[i] in ".!?\n:;•*-–"


def _after_saint(text: str, start: int) -> bool:
    return SAINT.search(text, max(0, start - 8), start) is not None


def _names(text: str) -> Iterator[PhiSpan]:
    for pattern in (TITLED_NAME, CUED_NAME):
        for m in pattern.finditer(text):
            span = _name_run(text, m.start(1), m.group(1))
            if span:
                yield span
    words = list(CAPITALISED.finditer(text))
    known = given_names()
    for i, w in enumerate(words):
        if w.group() not in known or _after_saint(text, w.start()):
            continue
        end = w.end()
        # a known given name takes up to two following capitalised words as surnames ("Sarah Jane Smith")
        for nxt in words[i + 1 : i + 3]:
            if not MIDDLE_INITIAL_GAP.fullmatch(text, end, nxt.start()) or _is_stop(nxt.group()):
                break
            end = nxt.end()
        yield _span("name", text, w.start(), end)
    for m in POSSESSIVE.finditer(text):
        word = m.group(1)
        if _is_stop(word) or word.lower() in EPONYMS:
            continue
        if not (_sentence_initial(text, m.start()) or _after_saint(text, m.start())):
            yield _span("name", text, m.start(1), m.end(1))


def _names_everywhere(text: str) -> Iterator[PhiSpan]:
    """Names found once, wherever else they occur: "Mrs Okafor ... Okafor's sister"."""
    spans = list(_names(text))
    yield from spans
    found = {w.group() for span in spans for w in CAPITALISED.finditer(span.text)}
    for w in CAPITALISED.finditer(text):
        if w.group() in found and not _is_stop(w.group()) and w.group().lower() not in EPONYMS:
            yield _span("name", text, w.start(), w.end())


RECOGNIZERS: tuple[tuple[int, Callable[[str], Iterator[PhiSpan]]], ...] = (
    (0, _emails),
    (1, _urls),
    (2, _ips),
    (3, _record_numbers),
    (4, _phones),
    (5, _dates),
    (6, _addresses),
    (7, _names_everywhere),
    (8, _long_numbers),  # weakest: a phone number written without spaces is still a phone number
)


def find_phi(text: str) -> list[PhiSpan]:
    """Every identifying span in text, sorted and non-overlapping (overlapping findings are merged)."""
    found = sorted(
        ((s.start, -s.end, rank, s) for rank, recognize in RECOGNIZERS for s in recognize(text) if s.end > s.start),
        key=lambda t: t[:3],
    )
    merged: list[tuple[int, PhiSpan]] = []
    for _, _, rank, span in found:
        if merged and span.start < merged[-1][1].end:
            best_rank, last = merged[-1]
            if span.end > last.end:
                kind, best_rank = (span.kind, rank) if rank < best_rank else (last.kind, best_rank)
                merged[-1] = (best_rank, _span(kind, text, last.start, span.end))
            elif rank < best_rank:
                merged[-1] = (rank, _span(span.kind, text, last.start, last.end))
        else:
            merged.append((rank, span))
    return [span for _, span in merged]


def label(kind: str) -> str:
    """The placeholder a span of this kind becomes: [NAME], [DATE], [PHONE], ..."""
    return f"[{kind.upper()}]"


def redact(text: str) -> str:
    """The text with every identifying span replaced by its placeholder."""
    parts, pos = [], 0
    for span in find_phi(text):
        parts += [text[pos : span.start], label(span.kind)]
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


def redact_value(value: object) -> object:
    """A JSON-ready copy of value with every string in it redacted (dict keys are kept; other objects via str)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """A logging filter that formats each record's message, redacts it and drops the args: PHI-free logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record must still be logged, just unformatted
            message = f"{record.msg} {json.dumps(record.args, default=str)}"
        record.msg, record.args = redact(message), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
