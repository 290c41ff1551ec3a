"""The guideline corpus as the model sees it: the store's chunks, each with the lead that questions are written about.

Chunking reuses retrieval's own `prepare_document` with the embedder's tokenizer, so a passage here is
byte for byte a chunk that `GuidelineStore.search` would return for the bundled corpus. `visible` is the
chunk's lead (its first `EXCERPT_PROMPT_CHARS`): the builder writes questions about those statements only, so two
overlapping chunks never ask about the same one. The prompt itself shows each excerpt focused on the example's
question (`app.prompting.focus`), and an example whose answer that view hides is dropped (`hidden_statements`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from app.prompting import EXCERPT_PROMPT_CHARS, shorten
from app.verification import sentences, statements

# Statements too short to answer anything, or too long to quote in a six-sentence answer, are not used.
MIN_STATEMENT_CHARS = 40
MAX_STATEMENT_CHARS = 360
BOILERPLATE = re.compile(r"demonstration content|verify against the cited source", re.I)


@dataclass(frozen=True)
class Passage:
    """One retrieval chunk: `text` is cited in full (and focused for the prompt), `visible` is its lead."""

    chunk_id: str  # "<doc_id>#<ordinal>"
    doc_id: str
    title: str
    topic: str
    section: str
    text: str
    visible: str
    statements: tuple[str, ...]  # quotable statements inside `visible`, in order: what questions are about


@dataclass
class Document:
    doc_id: str
    title: str
    topic: str
    content_hash: str
    passages: list[Passage] = field(default_factory=list)


def quotable(statement: str) -> bool:
    return (MIN_STATEMENT_CHARS <= len(statement) <= MAX_STATEMENT_CHARS and not BOILERPLATE.search(statement)
            and not statement.startswith("|") and not statement.endswith(":"))


def passage_statements(visible: str) -> tuple[str, ...]:
    """The excerpt's bullets (else sentences) that a reference answer may quote."""
    found = [s.strip() for s in statements(visible)]
    return tuple(s for s in found if quotable(s) and all(len(part) > 3 for part in sentences(s)))


def load_corpus(paths: list[Path], tokenizer_dir: Path, chunk_tokens: int = 192, overlap_tokens: int = 32,
                excerpt_chars: int = EXCERPT_PROMPT_CHARS) -> list[Document]:
    """Guideline files chunked exactly as the store chunks them (same splitter, same token counts)."""
    from transformers import AutoTokenizer

    from retrieval.chunking import make_splitter
    from retrieval.ingest import prepare_document

    splitter = make_splitter(AutoTokenizer.from_pretrained(str(tokenizer_dir)), chunk_tokens, overlap_tokens)
    documents = []
    for path in sorted(paths):
        data = Path(path).read_bytes()
        prepared = prepare_document(Path(path).name, data, splitter, max_bytes=len(data) + 1)
        doc = Document(prepared.doc_id, prepared.title, prepared.topic, hashlib.sha256(data).hexdigest())
        for chunk in prepared.chunks:
            visible = shorten(chunk.text, excerpt_chars)
            doc.passages.append(Passage(
                chunk_id=f"{prepared.doc_id}#{chunk.ordinal}", doc_id=prepared.doc_id, title=prepared.title,
                topic=prepared.topic, section=chunk.section, text=chunk.text, visible=visible,
                statements=passage_statements(visible)))
        documents.append(doc)
    return documents


def embedder_tokenizer_dir(models_dir: Path, name: str = "all-minilm-l6-v2") -> Path:
    """Where the retrieval embedder (whose tokenizer measures chunk sizes) lives; pulled on first use."""
    from curbside.embedder import resolve_embedding_model

    return resolve_embedding_model(name, models_dir)
