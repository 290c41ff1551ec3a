"""The consult pipeline: score → triage → retrieve → generate → verify, one case in, one contract result out.

Deterministic code owns the scores and the urgency; the model only writes prose over numbered excerpts, and
prose that fails verification is replaced by the excerpts' own statements. Generation goes through the
OpenAI API (LangChain's ChatOpenAI), so any compatible server works: ours, vLLM, NIM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from .instruments import InstrumentError, score_all
from .prompting import Excerpt, build_messages, findings_text
from .triage import TriageResult, triage
from .verification import check, extractive_answer

log = logging.getLogger("curbside.consult")

INSTRUMENT_TOPICS = {
    "phq9": "depression",
    "phq2": "depression",
    "gad7": "anxiety",
    "epds": "perinatal",
    "auditc": "alcohol",
    "mdq": "bipolar",
    "pcptsd5": "ptsd",
    "cssrs": "suicide-risk",
    "asq": "suicide-risk",
}
PRESENTATION_CHARS_IN_QUERY = 600


class CaseError(ValueError):
    """The case itself is unusable (not an object, no presentation or question)."""


@dataclass(frozen=True)
class ConsultConfig:
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "smollm2-135m-instruct"
    adapter: str | None = None  # a LoRA adapter served under this name; sent as the request's model
    api_key: str | None = None
    k: int = 4
    max_tokens: int = 256
    temperature: float = 0.0
    timeout_s: float = 180.0


@dataclass(frozen=True)
class Assessment:
    """A case's validated text, instrument scores and triage: everything decided without a model."""

    question: str
    presentation: str
    patient: dict
    instruments: dict
    instrument_errors: dict
    findings: TriageResult
    triage_ms: float

    def to_dict(self) -> dict:
        return {
            "urgency": self.findings.urgency,
            "red_flags": [f.to_dict() for f in self.findings.red_flags],
            "safety_actions": self.findings.safety_actions,
            "instruments": {name: r.to_dict() for name, r in self.instruments.items()},
            "instrument_errors": self.instrument_errors,
        }


def _text_field(case: dict, key: str, required: bool) -> str:
    value = case.get(key, "")
    if not isinstance(value, str):
        raise CaseError(f"case {case.get('id', '?')}: {key} must be text, got {type(value).__name__}")
    if required and not value.strip():
        raise CaseError(f"case {case.get('id', '?')}: {key} is required")
    return value


def steering_topics(findings: TriageResult, instruments: dict, patient: dict) -> list[str]:
    """Topics retrieval must cover: red-flag topics first, then positive instruments and patient context."""
    topics = list(findings.topics)
    for name, result in instruments.items():
        flagged = result.positive or result.flags or result.risk not in (None, "none")
        if flagged and name in INSTRUMENT_TOPICS:
            topics.append(INSTRUMENT_TOPICS[name])
    if patient.get("pregnant") or patient.get("postpartum_weeks") is not None:
        topics.append("perinatal")
    return list(dict.fromkeys(topics))


def retrieval_query(question: str, presentation: str, findings: TriageResult, instruments: dict) -> str:
    words = [question, presentation[:PRESENTATION_CHARS_IN_QUERY]]
    words += [f.kind.replace("_", " ") for f in findings.red_flags]
    words += [f"{name} {r.band or ''} {'positive' if r.positive else ''}" for name, r in instruments.items()]
    return " ".join(w for w in words if w.strip())


def retrieve_hits(search: Callable[..., list], query: str, topics: list[str], k: int) -> list:
    """Top k hits for the query, with at least one excerpt from each steering topic (two at most).

    `search(query, k=, topics=)` is `GuidelineStore.search`, or a partial of it (the tuning data builder limits
    it to one split's documents)."""
    steered = []
    for topic in topics[:2]:
        steered += search(query, k=1, topics=[topic])
    general = search(query, k=k)
    hits, seen = [], set()
    for hit in steered + general:
        if hit.chunk_id not in seen:
            seen.add(hit.chunk_id)
            hits.append(hit)
    return hits[: max(k, len(steered))]


class ConsultPipeline:
    """One instance per process: holds the guideline store and the chat client; `run` is thread-safe."""

    def __init__(self, store, config: ConsultConfig, chat_model=None):
        self.store = store
        self.config = config
        self._chat = chat_model

    @property
    def chat(self):
        if self._chat is None:
            from langchain_openai import ChatOpenAI

            self._chat = ChatOpenAI(
                base_url=self.config.base_url,
                api_key=self.config.api_key or "not-needed",
                model=self.config.adapter or self.config.model,
                temperature=self.config.temperature,
                max_tokens=self.config.max_tokens,
                timeout=self.config.timeout_s,
                max_retries=1,
            )
        return self._chat

    def warm_up(self) -> None:
        """Load the NLP pipeline and the embedder now, so the first consult is not the slow one."""
        triage("warm up", "")
        self.store.search("warm up", k=1)

    def retrieve(self, query: str, topics: list[str]) -> list:
        return retrieve_hits(self.store.search, query, topics, self.config.k)

    def generate(self, messages: list[dict], on_token: Callable[[str], None] | None) -> str:
        parts = []
        for chunk in self.chat.stream(messages):
            text = chunk.content if isinstance(chunk.content, str) else ""
            if text:
                parts.append(text)
                if on_token:
                    on_token(text)
        return "".join(parts)

    def assess(self, case: dict) -> Assessment:
        """The deterministic part alone (scores and urgency, milliseconds): what a UI shows before any prose."""
        if not isinstance(case, dict):
            raise CaseError(f"a case must be a JSON object, got {type(case).__name__}")
        t_start = time.perf_counter()
        presentation = _text_field(case, "presentation", required=True)
        question = _text_field(case, "question", required=True)
        patient = case.get("patient") or {}
        if not isinstance(patient, dict):
            raise CaseError(f"case {case.get('id', '?')}: patient must be an object")
        sex = patient.get("sex") if patient.get("sex") in ("female", "male") else None
        try:
            instruments, instrument_errors = score_all(case.get("instruments"), sex)
        except InstrumentError as e:
            instruments, instrument_errors = {}, {"instruments": str(e)}
        findings = triage(presentation, question, instruments, patient)
        return Assessment(question, presentation, patient, instruments, instrument_errors, findings,
                          _ms(t_start, time.perf_counter()))

    def run(self, case: dict, on_token: Callable[[str], None] | None = None,
            assessment: Assessment | None = None) -> dict:
        """A contract §4 result for a contract §1 case; `expected` is never read.

        Pass the `assess` result of the same case to skip redoing it (a UI shows it first).
        """
        t_start = time.perf_counter()
        a = assessment or self.assess(case)
        question, presentation, patient = a.question, a.presentation, a.patient
        instruments, instrument_errors, findings = a.instruments, a.instrument_errors, a.findings
        t_triage = time.perf_counter()

        query = retrieval_query(question, presentation, findings, instruments)
        hits = self.retrieve(query, steering_topics(findings, instruments, patient))
        citations = [
            {
                "n": i,
                "doc_id": h.doc_id,
                "title": h.title,
                "topic": h.topic,
                "section": h.section,
                "page": h.page,
                "text": h.text,
                "source": h.source,
                "version": h.version,
                "chunk_id": h.chunk_id,
                "start": h.start,
                "end": h.end,
            }
            for i, h in enumerate(hits, 1)
        ]
        t_retrieval = time.perf_counter()

        excerpts = [Excerpt(c["n"], c["title"], c["section"], c["text"]) for c in citations]
        messages = build_messages(
            question,
            presentation,
            findings_text(findings.urgency, findings.red_flags, instruments, instrument_errors),
            excerpts,
        )
        generated, generation_error = "", None
        try:
            generated = self.generate(messages, on_token)
        except Exception as e:  # noqa: BLE001 - a dead model server must not lose the consult: fall back
            generation_error = f"generation failed: {type(e).__name__}: {e}"
            log.warning("case %s: %s", case.get("id", "?"), generation_error)
        t_generation = time.perf_counter()

        verification = check(generated, len(citations), [c["text"] for c in citations], findings.safety_actions,
                             findings.urgency, question)
        if generation_error:
            verification.reason = generation_error
        answer = generated.strip()
        if verification.abstained and not verification.reason and citations:
            # the model says the excerpts do not answer; show that, and what it declined to use
            answer += "\n\n" + extractive_answer(question, [c["text"] for c in citations],
                                                  heading="Closest statements in the retrieved guidelines:",
                                                  presentation=presentation)
        if verification.reason:
            verification.fallback_used = True
            answer = (
                extractive_answer(question, [c["text"] for c in citations], presentation=presentation)
                if citations
                else ("No guideline excerpt matched this question; no recommendation can be given.")
            )
        t_end = time.perf_counter()

        return {
            "id": case.get("id"),
            "urgency": findings.urgency,
            "red_flags": [f.to_dict() for f in findings.red_flags],
            "safety_actions": findings.safety_actions,
            "instruments": {name: r.to_dict() for name, r in instruments.items()},
            "instrument_errors": instrument_errors,
            "citations": citations,
            "answer": answer,
            "generated_answer": generated if verification.fallback_used else None,
            "generation_error": generation_error,
            "verification": verification.to_dict(),
            "model": {"name": self.config.model, "adapter": self.config.adapter},
            "timings_ms": {
                "triage": a.triage_ms if assessment else _ms(t_start, t_triage),
                "retrieval": _ms(t_triage, t_retrieval),
                "generation": _ms(t_retrieval, t_generation),
                "verification": _ms(t_generation, t_end),
                "total": round(_ms(t_start, t_end) + (a.triage_ms if assessment else 0.0), 2),
            },
        }


def _ms(a: float, b: float) -> float:
    return round((b - a) * 1000, 2)


class StreamingConsult:
    """`ConsultPipeline.run` on a worker thread: iterate `tokens()` as they arrive, then take `result()`.

    The UI thread draws the tokens (Streamlit elements belong to the script thread); the worker only talks
    to the model server and the store.
    """

    _DONE = object()

    def __init__(self, pipeline: ConsultPipeline, case: dict, assessment: Assessment | None = None):
        import queue
        import threading

        self._queue: queue.Queue = queue.Queue()
        self._result: dict | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(pipeline, case, assessment), daemon=True,
                                        name="consult")
        self._thread.start()

    def _work(self, pipeline: ConsultPipeline, case: dict, assessment: Assessment | None) -> None:
        try:
            self._result = pipeline.run(case, on_token=self._queue.put, assessment=assessment)
        except BaseException as e:  # noqa: BLE001 - handed to the caller of result()
            self._error = e
        finally:
            self._queue.put(self._DONE)

    def tokens(self):
        while (item := self._queue.get()) is not self._DONE:
            yield item

    def result(self) -> dict:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result
