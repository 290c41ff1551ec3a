"""From an uploaded file to a prepared document: parsed, identified, tagged and chunked (not yet embedded)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .chunking import Chunk, chunk_document
from .errors import IngestError, InvalidTopicError
from .loaders import LoadedDocument, check_name, load_document
from .topics import DEFAULT_TOPIC, TOPICS

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "data" / "guidelines"
DOC_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")


@dataclass
class DocumentMeta:
    """What identifies and describes a document, from its front matter, properties or file name."""

    doc_id: str
    title: str
    topic: str
    source: str
    version: str
    reviewed: str | None
    file_name: str
    format: str
    content_hash: str           # sha256 of the file's bytes


@dataclass
class PreparedDocument(DocumentMeta):
    data: bytes
    text: str                   # extracted text; chunk offsets index into it
    chunks: list[Chunk]
    embeddings: np.ndarray | None = field(default=None, repr=False)   # float32 [len(chunks), d]

    def indexed_texts(self) -> list[str]:
        return [c.indexed_text(self.title) for c in self.chunks]


def slug(stem: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", stem.lower()).strip("-._")[:128] or "document"


def _doc_id(name: str, loaded: LoadedDocument) -> str:
    doc_id = str(loaded.meta.get("id") or slug(Path(name).stem))
    if not DOC_ID_PATTERN.match(doc_id):
        raise IngestError(name, f"document id {doc_id!r} must be lower-case letters, digits, '.', '_' or '-'")
    return doc_id


def _topic(name: str, loaded: LoadedDocument, override: str | None) -> str:
    topic = override or str(loaded.meta.get("topic") or DEFAULT_TOPIC)
    if topic not in TOPICS:
        raise InvalidTopicError(name, f"unknown topic {topic!r}; use one of: {', '.join(TOPICS)}")
    return topic


def prepare_document(name: str, data: bytes, splitter, max_bytes: int, topic: str | None = None) -> PreparedDocument:
    """Parse and chunk one file; raises an IngestError naming the file and the problem."""
    check_name(name)
    loaded = load_document(name, data, max_bytes=max_bytes)
    content_hash = hashlib.sha256(data).hexdigest()
    meta = loaded.meta
    chunks = chunk_document(loaded, splitter)
    if not chunks:
        raise IngestError(name, "no extractable text")
    return PreparedDocument(
        doc_id=_doc_id(name, loaded),
        title=str(loaded.title or meta.get("title") or Path(name).stem),
        topic=_topic(name, loaded, topic),
        source=str(meta.get("source") or name),
        version=str(meta.get("version") or content_hash[:12]),
        reviewed=str(meta["reviewed"]) if meta.get("reviewed") else None,
        file_name=name, format=loaded.format, content_hash=content_hash, data=data, text=loaded.text,
        chunks=chunks)


def bundled_guideline_paths(directory: Path = BUNDLED_DIR) -> list[Path]:
    """The bundled corpus: every Markdown document with front matter (SOURCES.md is a list, not a guideline)."""
    return sorted(p for p in directory.glob("*.md") if p.read_text(encoding="utf-8").startswith("---"))
