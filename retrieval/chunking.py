"""Heading-aware chunking: each section of a document first, then token-sized pieces within a section.

A chunk never spans two sections, so its section path and page are exact; long sections are split by
langchain's recursive splitter (paragraphs, then lines, then sentences) measured in embedding-model tokens,
so a chunk always fits the embedder's window.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from .loaders import LoadedDocument

SEPARATORS = ["\n\n", "\n- ", "\n", ". ", "; ", ", ", " ", ""]
# A section shorter than this (a preamble, a one-line disclaimer) joins the next section's first chunk rather
# than standing alone: on its own it would match every query about the document's title and say nothing.
MIN_SECTION_CHARS = 200


@dataclass
class Chunk:
    ordinal: int            # position within the document
    section: str            # heading path joined with " > " ("" when the text precedes every heading)
    page: int | None        # 1-based PDF page
    start: int              # character offsets into LoadedDocument.text
    end: int
    text: str

    def indexed_text(self, title: str) -> str:
        """What the embedder and BM25 see: the text with its document title and section as context."""
        heading = " > ".join(p for p in (title, self.section) if p)
        return f"{heading}\n{self.text}" if heading else self.text


def make_splitter(tokenizer, chunk_tokens: int, overlap_tokens: int) -> RecursiveCharacterTextSplitter:
    def count_tokens(text: str) -> int:  # verbose=False: sections longer than the model window are expected here
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    return RecursiveCharacterTextSplitter(
        length_function=count_tokens, chunk_size=chunk_tokens, chunk_overlap=min(overlap_tokens, chunk_tokens // 2),
        separators=SEPARATORS, keep_separator="start", add_start_index=True, strip_whitespace=True)


def chunk_document(doc: LoadedDocument, splitter: RecursiveCharacterTextSplitter) -> list[Chunk]:
    """Chunks in document order; offsets satisfy doc.text[c.start:c.end] == c.text."""
    chunks: list[Chunk] = []
    carried: int | None = None  # start of a short section waiting to join the next one
    for i, section in enumerate(doc.sections):
        last_on_page = i + 1 == len(doc.sections) or doc.sections[i + 1].page != section.page
        if len(section.text) < MIN_SECTION_CHARS and not last_on_page:
            carried = section.start if carried is None else carried
            continue
        start = section.start if carried is None else carried
        body = doc.text[start:section.start + len(section.text)]
        carried = None
        path = " > ".join(h for h in section.heading_path if h)
        if doc.title and path.startswith(doc.title):  # the title heading adds nothing to the path
            path = path[len(doc.title):].lstrip(" >")
        for piece in splitter.create_documents([body]):
            text = piece.page_content
            offset = piece.metadata["start_index"]
            if offset < 0:  # the splitter could not locate a stripped piece; find it ourselves
                offset = body.find(text)
            chunks.append(Chunk(len(chunks), path, section.page, start + offset, start + offset + len(text), text))
    return chunks
