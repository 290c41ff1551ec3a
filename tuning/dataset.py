"""The consult tuning data: chat-format JSONL built from the guideline corpus, split by document.

One record per line: `{"messages": [system, user, assistant], "meta": {...}}`. The system and user messages
are exactly what the consult pipeline sends (`app.prompting.build_messages` over the case's findings from
`app.instruments.score_all` + `app.triage.triage`, and numbered excerpts that are real retrieval chunks). The
assistant message is the reference answer, built only from statements of the excerpts, so it is faithful:

- `statement`: a question about one statement; the answer quotes it (and at most one more statement of the
  same excerpt on the same subject), every sentence ending with that excerpt's `[n]`.
- `section`: a question about an excerpt's section heading; the answer quotes its first statements.
- `no_answer`: the same kind of question over excerpts from other documents only; the answer says the
  excerpts do not answer it and to consult the guideline or a specialist, with no citation.
- `consult` (with `DataConfig.consult`): a routine vignette (data/tuning/consult_cases.json) with a vague
  consult question ("What would you start?"); the excerpts are what the pipeline's own retrieval returns
  over the split's documents (`SplitRetriever`), in rank order, and the answer quotes from each excerpt the
  statement sharing most terms with the question and presentation (`consult_answer`), each cited. This is the
  shape of a real consult: the question alone rarely names the guideline statement, the patient does.
- `emergency` / `urgent`: a flagged vignette (data/tuning/seed_cases.json) whose triage gives that urgency;
  the answer leads with the urgency and the first safety actions of `TriageResult.safety_actions`, cited to
  the flag topic's pathway excerpt, then answers the question.

Each prompt shows its excerpts focused on the example's question, as the pipeline does
(`app.prompting.focus`); an example whose answer statement the focused excerpt hides is dropped (listed in the
manifest's `dropped`), so a reference never quotes what the model was not shown.

The correct excerpt's position is shuffled (consult excerpts keep their rank order). Documents (each one
topic) are split into train, validation and test, and every excerpt of an example, distractors included,
comes from its own split's documents, so no test example's text was seen in training. Everything is seeded;
`manifest.json` records the sha256 of each split's canonical JSONL.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.instruments import score_all
from app.prompting import Excerpt, build_messages, findings_text, focus
from app.triage import FLAG_KINDS, triage
from app.verification import check, sentences, terms

from .corpus import Document, Passage
from .questions import (
    ABSTENTION,
    PhraseFinder,
    heading_phrase,
    question_phrase,
    safety_lead,
    section_question,
    statement_question,
)

SPLITS = ("train", "validation", "test")
ROLES = ("system", "user", "assistant")
GENERATOR = "curbside-tuning-data/1"
SEED_CASES = Path(__file__).resolve().parents[1] / "data" / "tuning" / "seed_cases.json"
CONSULT_CASES = SEED_CASES.with_name("consult_cases.json")
GENERIC_PRESENTATION = {"patient": {}, "presentation": "Adult patient seen in primary care for this problem."}


class DatasetError(ValueError):
    """A tuning data file that cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True)
class DataConfig:
    seed: int = 0
    n_excerpts: int = 4                # the consult pipeline's default k
    test_docs: int = 3
    validation_docs: int = 2
    no_answer_rate: float = 0.12       # share of statement questions turned into no-answer examples
    flagged_generated_questions: int = 2  # per flagged vignette, generated questions besides its own
    max_answer_words: int = 60
    instrument_rate: float = 0.4
    consult: bool = False              # add the consult-vignette examples (opt-in: see the README's Tuning section)
    consult_statements: int = 4        # statements a consult answer quotes at most
    consult_answer_words: int = 130
    consult_sentences: int = 6         # the system prompt's "at most six short sentences"


@dataclass
class Example:
    kind: str
    doc_id: str
    topic: str
    question: str
    case: dict
    passages: list[Passage]            # in prompt order
    answer: list[tuple[str, Passage | None]] = field(default_factory=list)  # (sentence, cited passage)


# --- prompts exactly as the consult pipeline builds them ------------------------------------------------


def case_findings(case: dict) -> tuple[str, object]:
    """`findings_text` for a case, computed as ConsultPipeline.run computes it; also the TriageResult."""
    patient = case.get("patient") or {}
    sex = patient.get("sex") if patient.get("sex") in ("female", "male") else None
    instruments, instrument_errors = score_all(case.get("instruments"), sex)
    findings = triage(case["presentation"], case["question"], instruments, patient)
    return findings_text(findings.urgency, findings.red_flags, instruments, instrument_errors), findings


def prompt_messages(case: dict, passages: list[Passage]) -> list[dict]:
    """The system and user messages the consult pipeline sends for this case and these retrieval hits."""
    findings, _ = case_findings(case)
    excerpts = [Excerpt(i, p.title, p.section, p.text) for i, p in enumerate(passages, 1)]
    return build_messages(case["question"], case["presentation"], findings, excerpts)


# --- building ---------------------------------------------------------------------------------------------


def split_documents(doc_ids: list[str], config: DataConfig) -> dict[str, list[str]]:
    """Seeded assignment of whole documents to splits: test first, then validation, the rest train."""
    ids = sorted(doc_ids)
    if len(ids) < 3:
        raise DatasetError(f"need at least 3 documents to split by document, got {len(ids)}")
    random.Random(config.seed).shuffle(ids)
    n_test = max(1, min(config.test_docs, len(ids) - 2))
    n_val = max(1, min(config.validation_docs, len(ids) - n_test - 1))
    return {"test": sorted(ids[:n_test]), "validation": sorted(ids[n_test:n_test + n_val]),
            "train": sorted(ids[n_test + n_val:])}


def _instruments(topic: str, rng: random.Random) -> dict | None:
    """Plausible screening results for a routine vignette, never with a suicide or self-harm item."""
    if topic in ("depression", "collaborative-care", "older-adults"):
        return {"phq9": [rng.randint(0, 3) for _ in range(8)] + [0]}
    if topic in ("anxiety", "panic"):
        return {"gad7": [rng.randint(0, 3) for _ in range(7)]}
    if topic == "alcohol":
        return {"auditc": [rng.randint(1, 4) for _ in range(3)]}
    if topic == "perinatal":
        return {"epds": [rng.randint(0, 3) for _ in range(9)] + [0]}
    if topic == "ptsd":
        return {"pcptsd5": {"trauma_exposure": True, "items": [rng.random() < 0.6 for _ in range(5)]}}
    return None


class _Builder:
    def __init__(self, documents: list[Document], seed_cases: dict, config: DataConfig,
                 consult_cases: list[dict] = (), retriever: Callable[[dict, list[str]], list[Passage]] | None = None):
        self.config = config
        self.consult_cases = list(consult_cases)
        self.retriever = retriever
        self.documents = {d.doc_id: d for d in documents}
        self.seed_cases = seed_cases
        self.finder = PhraseFinder(s for d in documents for p in d.passages for s in p.statements)
        self._terms: dict[str, set[str]] = {}
        self.dropped: list[str] = []

    def passage_terms(self, p: Passage) -> set[str]:
        if p.chunk_id not in self._terms:
            self._terms[p.chunk_id] = terms(f"{p.title} {p.section} {p.visible}")
        return self._terms[p.chunk_id]

    def weight(self, words: set[str]) -> float:
        """Summed inverse document frequency, added in sorted order: a set's own order follows the process's
        string hash seed, and float addition in another order could break a near-tie the other way."""
        return sum(self.finder.idf(t) for t in sorted(words))

    def ranked(self, query: str, pool: list[Passage], exclude: set[str]) -> list[Passage]:
        """Pool passages by inverse-document-frequency-weighted term overlap with the query (lexical retrieval)."""
        wanted = terms(query)
        scored = []
        for p in pool:
            if p.chunk_id in exclude:
                continue
            score = self.weight(wanted & self.passage_terms(p))
            scored.append((-score, p.chunk_id, p))
        scored.sort(key=lambda s: (s[0], s[1]))
        return [p for _, _, p in scored]

    def presentation(self, topic: str, rng: random.Random) -> dict:
        options = self.seed_cases.get("routine", {}).get(topic) or [GENERIC_PRESENTATION]
        chosen = rng.choice(options)
        case = {"patient": dict(chosen.get("patient") or {}), "presentation": chosen["presentation"]}
        if rng.random() < self.config.instrument_rate:
            instruments = _instruments(topic, rng)
            if instruments:
                case["instruments"] = instruments
        return case

    def answer_statements(self, passage: Passage, first: str, phrase: str) -> list[str]:
        """The statement itself, plus the passage's other statements on the same subject, within the word limit."""
        chosen = [first]
        words = len(first.split())
        for s in passage.statements:
            if s != first and phrase.lower() in s.lower() and words + len(s.split()) <= self.config.max_answer_words:
                chosen.append(s)
                words += len(s.split())
                break
        return chosen

    def excerpts(self, required: list[Passage], query: str, pool: list[Passage], answer_text: list[str],
                 rng: random.Random) -> list[Passage]:
        """The required passages plus the best lexical distractors from the pool, in a shuffled order.

        A distractor never repeats an answer statement (chunks overlap by 32 tokens), so the cited number is
        the only excerpt that holds the answer.
        """
        exclude = {p.chunk_id for p in required}
        exclude |= {p.chunk_id for p in pool if any(s in p.text for s in answer_text)}
        chosen = list(dict.fromkeys(required))
        for p in self.ranked(query, pool, exclude):
            if len(chosen) >= self.config.n_excerpts:
                break
            chosen.append(p)
        rng.shuffle(chosen)
        return chosen

    def support_passage(self, topic_docs: list[Document], kind: str, urgency: str, query: str) -> tuple[Passage, str]:
        """The flag topic's passage and statement that best state the pathway for this flag: most terms of the
        flag kind and urgency first, then most terms of the question and presentation."""
        pathway = terms(f"{kind.replace('_', ' ')} {urgency}")
        context = terms(query)
        best = None
        for doc in topic_docs:
            for p in doc.passages:
                for s in p.statements:
                    found = terms(s)
                    score = (self.weight(pathway & found), self.weight(context & found))
                    if best is None or score > best[0]:
                        best = (score, p, s)
        if best is None:
            raise DatasetError(f"no statement in the {topic_docs[0].topic} documents to support a {kind} answer")
        return best[1], best[2]

    # -- the example kinds ----------------------------------------------------------------------------

    def statement_examples(self, split_docs: list[Document], rng: random.Random) -> list[Example]:
        pool = [p for d in split_docs for p in d.passages]
        examples = []
        for doc in split_docs:
            others = [p for p in pool if p.doc_id != doc.doc_id]
            for passage in doc.passages:
                for statement in passage.statements:
                    phrase = question_phrase(statement, self.finder)
                    if not phrase:
                        continue
                    question = statement_question(phrase, doc.topic, rng)
                    case = {**self.presentation(doc.topic, rng), "question": question}
                    if others and rng.random() < self.config.no_answer_rate:
                        unrelated = [p for p in others if not self._answers(p, statement, phrase)]
                        excerpts = self.excerpts([], question, unrelated, [statement], rng)
                        examples.append(Example("no_answer", doc.doc_id, doc.topic, question, case, excerpts))
                        continue
                    answer = self.answer_statements(passage, statement, phrase)
                    excerpts = self.excerpts([passage], question, pool, answer, rng)
                    examples.append(Example("statement", doc.doc_id, doc.topic, question, case, excerpts,
                                            [(s, passage) for s in answer]))
                heading = heading_phrase(passage.section)
                first_of_section = next(p for p in doc.passages if p.section == passage.section) is passage
                if heading and first_of_section and len(passage.statements) >= 2:
                    question = section_question(heading, doc.topic, rng)
                    answer, words = [], 0
                    for s in passage.statements:
                        if answer and words + len(s.split()) > self.config.max_answer_words:
                            break
                        answer.append(s)
                        words += len(s.split())
                    case = {**self.presentation(doc.topic, rng), "question": question}
                    same_section = [p for p in pool if (p.doc_id, p.section) != (doc.doc_id, passage.section)]
                    excerpts = self.excerpts([passage], question, same_section + [passage], answer, rng)
                    examples.append(Example("section", doc.doc_id, doc.topic, question, case, excerpts,
                                            [(s, passage) for s in answer]))
        return examples

    def _answers(self, passage: Passage, statement: str, phrase: str) -> bool:
        """Whether a passage might answer a question about `statement`: it holds every term of the question's
        phrase, or 40% of the statement's terms."""
        found = self.passage_terms(passage)
        wanted = terms(statement)
        return (statement in passage.text or terms(phrase) <= found
                or len(wanted & found) >= 0.4 * max(1, len(wanted)))

    def flagged_examples(self, split_docs: list[Document], rng: random.Random) -> list[Example]:
        pool = [p for d in split_docs for p in d.passages]
        by_topic: dict[str, list[Document]] = {}
        for d in split_docs:
            by_topic.setdefault(d.topic, []).append(d)
        examples = []
        for vignette in self.seed_cases.get("flagged", []):
            topic = FLAG_KINDS[vignette["kind"]][1]
            if topic not in by_topic:
                continue
            topic_docs = by_topic[topic]
            questions = [(q, None, None) for q in vignette["questions"]]
            candidates = [(p, s) for d in topic_docs for p in d.passages for s in p.statements]
            for p, s in rng.sample(candidates, min(self.config.flagged_generated_questions, len(candidates))):
                phrase = question_phrase(s, self.finder)
                if phrase:
                    questions.append((statement_question(phrase, topic, rng), p, s))
            for question, passage, statement in questions:
                case = {"patient": dict(vignette.get("patient") or {}), "presentation": vignette["presentation"],
                        "question": question}
                _, findings = case_findings(case)
                if findings.urgency != vignette["urgency"]:
                    self.dropped.append(f"{vignette['kind']}: triage gave {findings.urgency}, seed says "
                                        f"{vignette['urgency']} ({question!r})")
                    continue
                example = self.flagged(case, findings, topic_docs, pool, question, passage, statement, rng)
                examples.append(example)
        return examples

    def flagged(self, case, findings, topic_docs, pool, question, passage, statement, rng) -> Example:
        kind = findings.red_flags[0].kind if findings.red_flags else findings.urgency
        support, support_statement = self.support_passage(topic_docs, kind, findings.urgency,
                                                          f"{question} {case['presentation']}")
        if statement is None:
            passage, statement = support, support_statement
        required = [support] + ([passage] if passage is not support else [])
        excerpts = self.excerpts(required, f"{question} {case['presentation']}", pool,
                                 [support_statement, statement], rng)
        lead = safety_lead(findings.urgency, findings.safety_actions, excerpts.index(support) + 1)
        example = Example(findings.urgency, topic_docs[0].doc_id, topic_docs[0].topic, question, case, excerpts)
        example.answer = [(sentence, None) for sentence in lead] + [(statement, passage)]
        return example

    def consult_examples(self, split_docs: list[Document], rng: random.Random) -> list[Example]:
        """Each routine vignette of a topic in this split, once per question, over the split's retrieval."""
        by_topic = {}
        for d in split_docs:
            by_topic.setdefault(d.topic, d)
        examples = []
        for vignette in self.consult_cases:
            doc = by_topic.get(vignette["topic"])
            if doc is None:
                continue
            for question in vignette["questions"]:
                case = {"patient": dict(vignette.get("patient") or {}), "presentation": vignette["presentation"],
                        "question": question}
                if vignette.get("instruments"):
                    case["instruments"] = json.loads(json.dumps(vignette["instruments"]))
                _, findings = case_findings(case)
                if findings.urgency != "routine":
                    self.dropped.append(f"consult ({vignette['topic']}): triage gave {findings.urgency} "
                                        f"({question!r})")
                    continue
                excerpts = self.retriever(case, [d.doc_id for d in split_docs])
                answer = consult_answer(question, vignette["presentation"], excerpts, self.config)
                if not answer:
                    self.dropped.append(f"consult ({vignette['topic']}): no excerpt statement shares a term with "
                                        f"{question!r}")
                    continue
                examples.append(Example("consult", doc.doc_id, doc.topic, question, case, excerpts, answer))
        return examples

    def reroute_flagged(self, example: Example, split_docs: list[Document], rng: random.Random) -> Example | None:
        """A generated routine example whose question itself raises a flag gets the flagged answer shape."""
        _, findings = case_findings(example.case)
        if findings.urgency == "routine":
            return example
        topic = findings.red_flags[0].topic if findings.red_flags else example.topic
        topic_docs = [d for d in split_docs if d.topic == topic]
        if not topic_docs or example.kind == "no_answer" or not example.answer:
            return None  # the flag's pathway is not in this split's documents: no faithful lead to cite
        statement, passage = example.answer[0]
        pool = [p for d in split_docs for p in d.passages]
        return self.flagged(example.case, findings, topic_docs, pool, example.question, passage, statement, rng)


def consult_answer(question: str, presentation: str, passages: list[Passage], config: DataConfig
                   ) -> list[tuple[str, Passage]]:
    """One statement from each excerpt, in excerpt order: the one sharing most terms with the question and
    presentation (ties to the earlier statement). An excerpt sharing no term is skipped, a statement repeated by
    an overlapping chunk is quoted once, and the answer stops at `consult_statements` statements or the word
    and sentence limits. Retrieval ranks the excerpts, so the answer leads with the best one's point."""
    wanted = terms(f"{question} {presentation}")
    chosen: list[tuple[str, Passage]] = []
    words = count = 0
    for passage in passages:
        if len(chosen) == config.consult_statements:
            break
        quoted = {s for s, _ in chosen}
        best = max(((len(wanted & terms(s)), -i, s) for i, s in enumerate(passage.statements) if s not in quoted),
                   default=None)
        if best is None or best[0] == 0:
            continue
        statement = best[2]
        n_words, n_sentences = len(statement.split()), len(sentences(statement))
        if chosen and (words + n_words > config.consult_answer_words
                       or count + n_sentences > config.consult_sentences):
            continue
        chosen.append((statement, passage))
        words, count = words + n_words, count + n_sentences
    return chosen


def _answer_text(example: Example) -> str:
    if example.kind == "no_answer":
        return ABSTENTION
    numbers = {p.chunk_id: i for i, p in enumerate(example.passages, 1)}
    parts = []
    for text, passage in example.answer:
        if passage is None:  # a lead sentence, already cited
            parts.append(text)
            continue
        for sentence in sentences(text):
            parts.append(f"{sentence.rstrip('.').rstrip()} [{numbers[passage.chunk_id]}].")
    return " ".join(parts)


def hidden_statements(example: Example) -> list[str]:
    """Answer sentences that the prompt's focused excerpt (`app.prompting.focus`) does not show the model."""
    hidden = []
    for text, passage in example.answer:
        if passage is None:
            continue
        shown = focus(passage.text, example.case["question"], example.case["presentation"])
        hidden += [s for s in sentences(text) if s.rstrip(".").rstrip() not in shown]
    return hidden


def _record(example: Example, split: str, index: int) -> dict:
    answer = _answer_text(example)
    messages = prompt_messages(example.case, example.passages)
    messages.append({"role": "assistant", "content": answer})
    cited = sorted({int(n) for n in re.findall(r"\[(\d+)\]", answer)})
    return {
        "messages": messages,
        "meta": {
            "id": f"{split}-{index:05d}",
            "split": split,
            "kind": example.kind,
            "doc_id": example.doc_id,
            "topic": example.topic,
            "chunk_ids": [p.chunk_id for p in example.passages],
            "answer_excerpts": cited,
            "case": example.case,   # the consult case the prompt was built from (contract §1 fields)
            "source": GENERATOR,
        },
    }


def build_dataset(documents: list[Document], seed_cases: dict, config: DataConfig = DataConfig(),
                  consult_cases: list[dict] = (), retriever: Callable[[dict, list[str]], list[Passage]] | None = None
                  ) -> tuple[dict[str, list[dict]], dict]:
    """(records by split, manifest); the same documents, vignettes and config always give the same bytes.

    `retriever(case, doc_ids)` gives consult examples their excerpts (`SplitRetriever`: the pipeline's own
    retrieval); consult cases need one."""
    if consult_cases and retriever is None:
        raise DatasetError("consult cases need a retriever (tuning.consult_retrieval.SplitRetriever)")
    builder = _Builder(documents, seed_cases, config, consult_cases, retriever)
    assignment = split_documents(list(builder.documents), config)
    splits: dict[str, list[dict]] = {}
    for split in SPLITS:
        rng = random.Random(f"{config.seed}:{split}")
        docs = [builder.documents[d] for d in assignment[split]]
        examples = []
        generated = (builder.statement_examples(docs, rng) + builder.flagged_examples(docs, rng)
                     + builder.consult_examples(docs, rng))
        for example in generated:
            if example.kind in ("statement", "section"):
                example = builder.reroute_flagged(example, docs, rng)
                if example is None:
                    continue
            examples.append(example)
        records = []
        for example in examples:
            if hidden := hidden_statements(example):
                builder.dropped.append(f"{split} {example.kind} ({example.doc_id}): the focused excerpt hides "
                                       f"{hidden[0][:60]!r}")
                continue
            record = _record(example, split, len(records))
            answer = record["messages"][-1]["content"]
            if example.kind != "no_answer" and check(answer, len(example.passages)).reason is not None:
                builder.dropped.append(f"{record['meta']['id']}: reference fails verification")
                continue
            records.append(record)
        if split == "train":
            rng.shuffle(records)
            for i, r in enumerate(records):
                r["meta"]["id"] = f"train-{i:05d}"
        splits[split] = records
    manifest = {
        "generator": GENERATOR,
        "config": asdict(config),
        "documents": {split: assignment[split] for split in SPLITS},
        "corpus": {d.doc_id: d.content_hash for d in documents},
        "dropped": builder.dropped,
    }
    return splits, manifest


# --- files ------------------------------------------------------------------------------------------------


def canonical_jsonl(records: list[dict]) -> bytes:
    """One record per line, keys sorted, compact separators, UTF-8: the bytes the data hash is taken over."""
    return b"".join(
        json.dumps(r, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode() + b"\n" for r in records)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_dataset(out_dir: Path, splits: dict[str, list[dict]], manifest: dict) -> dict:
    """Write train/validation/test JSONL and manifest.json (with per-split and overall sha256); returns it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = dict(manifest)
    manifest["splits"] = {}
    overall = hashlib.sha256()
    for split in SPLITS:
        data = canonical_jsonl(splits[split])
        (out_dir / f"{split}.jsonl").write_bytes(data)
        overall.update(data)
        manifest["splits"][split] = {
            "file": f"{split}.jsonl",
            "examples": len(splits[split]),
            "kinds": dict(sorted(Counter(r.get("meta", {}).get("kind", "user") for r in splits[split]).items())),
            "sha256": sha256_bytes(data),
        }
    manifest["sha256"] = overall.hexdigest()
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def copy_dataset(src: Path, out_dir: Path) -> dict:
    """A data directory that `write_dataset` wrote, checked against its manifest's hashes, copied to `out_dir`;
    returns its manifest (so a run on another machine trains on exactly these bytes)."""
    try:
        manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise DatasetError(f"{src}: not a tuning data directory (manifest.json: {e})") from e
    copies = {}
    for split in SPLITS:
        entry = (manifest.get("splits") or {}).get(split)
        if not isinstance(entry, dict) or "file" not in entry or "sha256" not in entry:
            raise DatasetError(f"{src / 'manifest.json'}: no {split} split listed")
        try:
            data = (src / entry["file"]).read_bytes()
        except OSError as e:
            raise DatasetError(f"{src / entry['file']}: {e.strerror or e}") from e
        if sha256_bytes(data) != entry["sha256"]:
            raise DatasetError(f"{src / entry['file']}: sha256 differs from manifest.json (edited after it was built)")
        copies[entry["file"]] = data
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in copies.items():
        (out_dir / name).write_bytes(data)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def load_seed_cases(path: Path = SEED_CASES) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_consult_cases(path: Path = CONSULT_CASES) -> list[dict]:
    return json.loads(Path(path).read_text(encoding="utf-8"))["cases"]


def generate(out_dir: Path, guideline_paths: list[Path], tokenizer_dir: Path, config: DataConfig = DataConfig(),
             seed_cases_path: Path = SEED_CASES, consult_cases_path: Path = CONSULT_CASES) -> dict:
    """Build the dataset from guideline files and write it; returns the manifest."""
    from .consult_retrieval import SplitRetriever
    from .corpus import load_corpus

    documents = load_corpus(guideline_paths, tokenizer_dir)
    consult_cases = load_consult_cases(consult_cases_path) if config.consult else []
    retriever = SplitRetriever(guideline_paths, tokenizer_dir, documents, config.n_excerpts) if consult_cases else None
    try:
        splits, manifest = build_dataset(documents, load_seed_cases(seed_cases_path), config, consult_cases,
                                         retriever)
    finally:
        if retriever is not None:
            retriever.close()
    return write_dataset(out_dir, splits, manifest)


# --- user-supplied data -----------------------------------------------------------------------------------


def validate_record(record: object, where: str) -> list[str]:
    """Everything wrong with one chat record, each problem prefixed with `where` (file:line)."""
    if not isinstance(record, dict):
        return [f"{where}: expected a JSON object, got {type(record).__name__}"]
    problems = []
    unknown = sorted(set(record) - {"messages", "meta"})
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}; a record has 'messages' and optional 'meta'")
    if "meta" in record and not isinstance(record["meta"], dict):
        problems.append(f"{where}: 'meta' must be an object, got {type(record['meta']).__name__}")
    messages = record.get("messages")
    if messages is None:
        return problems + [f"{where}: missing 'messages'"]
    if not isinstance(messages, list) or not messages:
        return problems + [f"{where}: 'messages' must be a non-empty list"]
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            problems.append(f"{where}: messages[{i}] must be an object, got {type(m).__name__}")
            continue
        if m.get("role") not in ROLES:
            problems.append(f"{where}: messages[{i}].role must be one of {', '.join(ROLES)}, got {m.get('role')!r}")
        content = m.get("content")
        if not isinstance(content, str):
            problems.append(f"{where}: messages[{i}].content must be a string, got {type(content).__name__}")
        elif not content.strip():
            problems.append(f"{where}: messages[{i}].content is empty")
        extra = sorted(set(m) - {"role", "content"})
        if extra:
            problems.append(f"{where}: messages[{i}] has unknown key(s) {extra}")
    if problems:
        return problems
    roles = [m["role"] for m in messages]
    if "system" in roles[1:]:
        problems.append(f"{where}: a system message may only come first (messages[{roles.index('system', 1)}])")
    turns = roles[1:] if roles[0] == "system" else roles
    for i, role in enumerate(turns):
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected and role != "system":
            at = i + (1 if roles[0] == "system" else 0)
            problems.append(f"{where}: messages[{at}] should be a {expected} turn (turns alternate user, "
                            f"assistant), got {role}")
            break
    if roles[-1] != "assistant":
        problems.append(f"{where}: the last message must be the assistant's answer, got {roles[-1]}")
    return problems


def load_records(path: Path, max_problems: int = 20) -> list[dict]:
    """Read and validate a chat JSONL file; raises DatasetError listing every problem (file:line: what)."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    records, problems = [], []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{where}: invalid JSON: {e.msg} (column {e.colno})")
                continue
            found = validate_record(record, where)
            problems += found
            if not found:
                records.append(record)
    if not records and not problems:
        problems.append(f"{path}: no records (the file is empty)")
    if problems:
        shown = problems[:max_problems]
        more = f"\n... and {len(problems) - max_problems} more" if len(problems) > max_problems else ""
        raise DatasetError(f"{len(problems)} problem(s) in {path}:\n" + "\n".join(shown) + more)
    return records


def split_user_records(records: list[dict], seed: int, fractions=(0.8, 0.1, 0.1)) -> dict[str, list[dict]]:
    """Use each record's meta.split when every record has one; else split whole groups (meta.doc_id, else
    meta.group, else the record itself) with a seeded shuffle, so a group never straddles two splits."""
    given = [r.get("meta", {}).get("split") for r in records]
    if all(s in SPLITS for s in given):
        return {s: [r for r, g in zip(records, given, strict=True) if g == s] for s in SPLITS}
    def group(i: int, r: dict) -> str:
        meta = r.get("meta", {})
        return str(meta.get("doc_id") or meta.get("group") or sha256_bytes(canonical_jsonl([r])))
    groups = sorted({group(i, r) for i, r in enumerate(records)})
    random.Random(seed).shuffle(groups)
    n_test = max(1, round(fractions[2] * len(groups)))
    n_val = max(1, round(fractions[1] * len(groups)))
    if len(groups) < 3:
        raise DatasetError(f"need at least 3 groups (documents or records) to split, got {len(groups)}")
    where = {g: ("test" if i < n_test else "validation" if i < n_test + n_val else "train")
             for i, g in enumerate(groups)}
    return {s: [r for i, r in enumerate(records) if where[group(i, r)] == s] for s in SPLITS}


def import_user_dataset(path: Path, out_dir: Path, seed: int = 0) -> dict:
    """Validate a user-supplied chat JSONL, split it, and write it like a generated dataset."""
    records = load_records(path)
    splits = split_user_records(records, seed)
    manifest = {"generator": "user", "source_file": str(path),
                "source_sha256": sha256_bytes(Path(path).read_bytes()), "config": {"seed": seed}}
    return write_dataset(out_dir, splits, manifest)


def load_split(data_dir: Path, split: str) -> list[dict]:
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return load_records(Path(data_dir) / f"{split}.jsonl")


def stratified(records: list[dict], limit: int | None, seed: int = 0) -> list[dict]:
    """At most `limit` records with each meta.kind in proportion to its share (largest remainder, at least one
    of every kind), chosen by a seeded shuffle and returned in file order; all records when there is no limit."""
    if not limit or limit >= len(records):
        return list(records)
    by_kind: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_kind.setdefault(str(r.get("meta", {}).get("kind", "user")), []).append(i)
    kinds = sorted(by_kind)
    quota = {k: limit * len(by_kind[k]) / len(records) for k in kinds}
    take = {k: max(1, int(quota[k])) for k in kinds}
    for k in sorted(kinds, key=lambda k: (int(quota[k]) - quota[k], k)):
        if sum(take.values()) >= limit:
            break
        take[k] += 1
    while sum(take.values()) > limit:
        k = max(kinds, key=lambda k: (take[k], k))
        take[k] -= 1
    rng = random.Random(seed)
    chosen: list[int] = []
    for k in kinds:
        indices = list(by_kind[k])
        rng.shuffle(indices)
        chosen += indices[: min(take[k], len(indices))]
    return [records[i] for i in sorted(chosen)]
