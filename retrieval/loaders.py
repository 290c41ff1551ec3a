"""Turn an uploaded file (bare name and bytes) into plain text with heading-aware sections, or refuse it clearly."""

from __future__ import annotations

import codecs
import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import docx
import yaml
from bs4 import BeautifulSoup, CData, NavigableString, Tag
from docx.table import Table
from docx.text.paragraph import Paragraph
from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from .errors import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    IngestError,
    UndecodableTextError,
    UnsafeNameError,
    UnsupportedFormatError,
)

SUPPORTED_SUFFIXES = {".pdf": "pdf", ".docx": "docx", ".html": "html", ".htm": "html", ".md": "markdown",
                      ".markdown": "markdown", ".txt": "text"}
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MAX_NAME_LENGTH = 255
# A DOCX is a zip: a small upload could otherwise inflate into gigabytes of XML held in memory by the parser.
DOCX_EXPANSION_FACTOR = 5

SECTION_SEPARATOR = "\n\n"
PDF_MAGIC = b"%PDF-"
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"   # encrypted Office files and legacy .doc are OLE containers
OLE_ENCRYPTION_STREAM = "EncryptionInfo".encode("utf-16-le")

FORMAT_LABELS = {"pdf": "PDF", "docx": "DOCX", "html": "HTML", "markdown": "Markdown", "text": "text"}


@dataclass
class Section:
    heading_path: list[str]   # enclosing headings, outermost first; [] if none
    text: str                 # body text without the heading line, stripped
    page: int | None          # 1-based PDF page; None for other formats
    start: int                # offset of `text` within LoadedDocument.text


@dataclass
class LoadedDocument:
    name: str
    format: str               # "pdf" | "docx" | "html" | "markdown" | "text"
    text: str                 # the full extracted text that sections index into
    sections: list[Section]   # in document order, non-empty only
    meta: dict[str, str]      # front matter or document properties
    title: str | None


# --- intermediate blocks that every format is reduced to ---------------------------------------------------------

@dataclass
class _Heading:
    level: int                # 0 (document title) to 6
    text: str
    line: str                 # how the heading reads in the document text


@dataclass
class _Body:
    text: str
    page: int | None = None
    path: list[str] | None = None   # a fixed heading path (PDF outline) instead of the enclosing headings


_Block = _Heading | _Body


class _Part(NamedTuple):
    text: str
    group: str | None         # consecutive list items or table rows sit on adjacent lines; the rest get a blank line


@dataclass
class _Parsed:
    blocks: list[_Block]
    meta: dict[str, str]


# --- public API ---------------------------------------------------------------------------------------------------

def check_name(name: str) -> str:
    """The name itself if it is a bare, safe file name; otherwise UnsafeNameError saying what is wrong."""
    problem = _name_problem(name)
    if problem:
        raise UnsafeNameError(_shown_name(name), problem)
    return name


def load_document(name: str, data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedDocument:
    """Parse one file's bytes; raises an IngestError subclass naming the file and the reason."""
    check_name(name)
    if len(data) > max_bytes:
        raise DocumentTooLargeError(name, _too_large(len(data), max_bytes))
    fmt = _format_of(name)
    if not data:
        raise EmptyDocumentError(name, "no extractable text: the file is empty")
    _sniff(name, fmt, data, max_bytes)
    parsed = _PARSERS[fmt](name, data)
    text, sections = _assemble(parsed.blocks)
    if not sections:
        hint = " (a scanned PDF needs OCR first)" if fmt == "pdf" else ""
        raise EmptyDocumentError(name, f"no extractable text in this {FORMAT_LABELS[fmt]} file{hint}")
    title = parsed.meta.get("title") or _first_title(parsed.blocks)
    return LoadedDocument(name, fmt, text, sections, parsed.meta, title)


def load_path(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> LoadedDocument:
    """Load a file from disk under its own name, refusing an oversized one before reading it."""
    path = Path(path)
    name = check_name(path.name)
    size = path.stat().st_size
    if size > max_bytes:
        raise DocumentTooLargeError(name, _too_large(size, max_bytes))
    return load_document(name, path.read_bytes(), max_bytes)


# --- checks before parsing -----------------------------------------------------------------------------------------

def _name_problem(name: str) -> str | None:
    if not isinstance(name, str) or not name:
        return "the file name is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"the file name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    if "/" in name or "\\" in name:
        return "the file name must not contain a path separator ('/' or '\\')"
    if name in (".", ".."):
        return f"{name!r} is not a file name"
    if ".." in name:
        return "the file name must not contain '..'"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in name):
        return "the file name contains a control character (such as NUL or a newline)"
    return None


def _shown_name(name: str) -> str:
    # The refused name ends up in logs and API replies: never echo control characters or a huge string.
    shown = name if isinstance(name, str) and name.isprintable() else repr(name)
    return shown if len(shown) <= 80 else shown[:77] + "..."


def _too_large(size: int, limit: int) -> str:
    return f"the file is {size:,} bytes; the limit is {limit:,} bytes"


def _format_of(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFormatError(name, f"unsupported file type {suffix or '(no extension)'}; "
                                           f"supported types: {supported}")
    return SUPPORTED_SUFFIXES[suffix]


def _sniff(name: str, fmt: str, data: bytes, max_bytes: int) -> None:
    """Refuse a file whose content contradicts its suffix before a parser meets it."""
    if fmt == "pdf" and not data.startswith(PDF_MAGIC):
        raise CorruptDocumentError(name, "not a PDF: the file does not start with '%PDF-'")
    if fmt != "docx":
        return
    if data.startswith(OLE_MAGIC):
        if OLE_ENCRYPTION_STREAM in data:
            raise EncryptedDocumentError(name, "the DOCX is password-protected; remove the password and upload again")
        raise CorruptDocumentError(name, "not a DOCX: this is a legacy Word (.doc) file; save it as .docx")
    if not data.startswith(ZIP_MAGIC):
        raise CorruptDocumentError(name, "not a DOCX: the file is not a zip archive")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise CorruptDocumentError(name, f"cannot read this DOCX: {_reason(exc)}") from exc
    if expanded > DOCX_EXPANSION_FACTOR * max_bytes:
        raise DocumentTooLargeError(name, f"the DOCX expands to {expanded:,} bytes; the limit is "
                                          f"{DOCX_EXPANSION_FACTOR * max_bytes:,} bytes")


def _reason(exc: BaseException) -> str:
    detail = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return reason if len(reason) <= 300 else reason[:297] + "..."


# --- decoding text formats ----------------------------------------------------------------------------------------

def _decode(name: str, data: bytes, declared: str | None = None) -> str:
    """UTF-8 (BOM optional), UTF-16 only with its BOM, else a declared encoding; newlines normalised to \\n."""
    if data.startswith(codecs.BOM_UTF8):
        text = _strict_decode(name, data, len(codecs.BOM_UTF8), "utf-8")
    elif data.startswith(codecs.BOM_UTF16_LE):
        text = _strict_decode(name, data, 2, "utf-16-le")
    elif data.startswith(codecs.BOM_UTF16_BE):
        text = _strict_decode(name, data, 2, "utf-16-be")
    else:
        text = _strict_decode(name, data, 0, declared or "utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _strict_decode(name: str, data: bytes, skip: int, encoding: str) -> str:
    try:
        return data[skip:].decode(encoding)
    except UnicodeDecodeError as exc:
        offset = skip + exc.start
        expected = "UTF-8 (or UTF-16 with a byte-order mark)" if encoding == "utf-8" else encoding
        raise UndecodableTextError(name, f"the text is not valid {expected}: byte 0x{data[offset]:02x} at offset "
                                         f"{offset}; save the file as UTF-8") from None


# --- assembling the document text and sections ---------------------------------------------------------------------

class _TextBuilder:
    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._length = 0

    def append(self, piece: str) -> int:
        """Add a piece after a blank line; returns its offset in the final text."""
        if self._pieces:
            self._pieces.append(SECTION_SEPARATOR)
            self._length += len(SECTION_SEPARATOR)
        start = self._length
        self._pieces.append(piece)
        self._length += len(piece)
        return start

    def text(self) -> str:
        return "".join(self._pieces)


def _assemble(blocks: Iterable[_Block]) -> tuple[str, list[Section]]:
    builder = _TextBuilder()
    open_headings: list[_Heading] = []
    sections: list[Section] = []
    for block in blocks:
        if isinstance(block, _Heading):
            # A heading closes every open heading at its own level or deeper (an H2 after an H3 closes both).
            while open_headings and open_headings[-1].level >= block.level:
                open_headings.pop()
            open_headings.append(block)
            builder.append(block.line)
        elif body := block.text.strip():
            path = block.path if block.path is not None else [h.text for h in open_headings]
            sections.append(Section(list(path), body, block.page, builder.append(body)))
    return builder.text(), sections


def _first_title(blocks: Iterable[_Block]) -> str | None:
    return next((b.text for b in blocks if isinstance(b, _Heading) and b.level <= 1), None)


def _join_parts(parts: list[_Part]) -> str:
    pieces: list[str] = []
    for i, part in enumerate(parts):
        if i:
            pieces.append("\n" if part.group and part.group == parts[i - 1].group else "\n\n")
        pieces.append(part.text)
    return "".join(pieces)


def _collapse(text: str) -> str:
    return " ".join(text.split())


# --- plain text and Markdown ---------------------------------------------------------------------------------------

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FRONT_MATTER_END = ("---", "...")


def _parse_text(name: str, data: bytes) -> _Parsed:
    return _Parsed([_Body(_decode(name, data))], {})


def _parse_markdown(name: str, data: bytes) -> _Parsed:
    meta, body = _split_front_matter(name, _decode(name, data))
    return _Parsed(list(_markdown_blocks(body)), meta)


def _split_front_matter(name: str, text: str) -> tuple[dict[str, str], str]:
    lines = text.split("\n")
    if lines[0].rstrip() != "---":
        return {}, text
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in _FRONT_MATTER_END), None)
    if end is None:
        raise CorruptDocumentError(name, "the YAML front matter has no closing '---' line")
    try:
        values = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        raise CorruptDocumentError(name, f"malformed YAML front matter: {_reason(exc)}") from exc
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise CorruptDocumentError(name, "the YAML front matter must be a mapping of keys to values")
    return _meta_strings(values), "\n".join(lines[end + 1:])


def _meta_strings(values: dict[Any, Any]) -> dict[str, str]:
    # YAML turns `reviewed: 2026-01-31` into a date and `version: 1.0` into a float; callers want plain strings.
    meta: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        meta[str(key)] = ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return meta


def _markdown_blocks(body: str) -> Iterator[_Block]:
    lines: list[str] = []
    fence: str | None = None   # the opening fence while inside a fenced code block, whose '#' lines are code
    for line in body.split("\n"):
        if fence:
            if _closes_fence(line, fence):
                fence = None
        elif opening := _FENCE_OPEN.match(line):
            fence = opening.group(1)
        elif (heading := _ATX_HEADING.match(line)) and heading.group(2):
            yield _Body("\n".join(lines))
            lines = []
            level, text = len(heading.group(1)), _collapse(heading.group(2))
            yield _Heading(level, text, f"{'#' * level} {text}")
            continue
        lines.append(line)
    yield _Body("\n".join(lines))


def _closes_fence(line: str, fence: str) -> bool:
    stripped = line.strip()
    indent = len(line) - len(line.lstrip(" "))
    return indent <= 3 and len(stripped) >= len(fence) and set(stripped) == {fence[0]}


# --- HTML ---------------------------------------------------------------------------------------------------------

# Page furniture, code and forms are not guideline text; <head> goes too once its <title> has been read.
_HTML_DROP = ("head", "script", "style", "noscript", "nav", "header", "footer", "aside", "form", "template",
              "svg", "iframe", "object")
_HTML_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_HTML_BLOCKS = frozenset({"p", "li", "td", "th", "pre", "blockquote", "dd", "dt", "dl", "div", "section", "article",
                          "main", "ul", "ol", "table", "thead", "tbody", "tfoot", "tr", "caption", "figure",
                          "figcaption", "address", "details", "summary", "hr", "body", "html"})
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([\w.:-]+)", re.IGNORECASE)


def _parse_html(name: str, data: bytes) -> _Parsed:
    text = _decode(name, data, _declared_charset(data))
    # lxml repairs real-world markup (unclosed <head>, missing <body>) the way browsers do.
    soup = BeautifulSoup(text, "lxml")
    meta: dict[str, str] = {}
    if soup.title and (title := _collapse(soup.title.get_text())):
        meta["title"] = title
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    walker = _HtmlWalker()
    walker.walk(root)
    return _Parsed(walker.finish(), meta)


def _declared_charset(data: bytes) -> str | None:
    match = _META_CHARSET.search(data[:4096])   # browsers look in the first 1024 bytes; allow a little more
    if not match:
        return None
    try:
        encoding = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None
    # A UTF-16 declaration inside ASCII-readable markup contradicts itself; browsers fall back to UTF-8 as we do.
    return None if encoding.startswith("utf-16") else encoding


class _HtmlWalker:
    """Walks the tree in document order (iteratively, as markup may nest thousands deep) collecting blocks."""

    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        self.parts: list[_Part] = []     # paragraphs of the section being read
        self.inline: list[str] = []      # text of the paragraph being read
        self.list_depth = 0
        self.bullet_pending = False      # the next paragraph starts a list item

    def walk(self, root: Tag) -> None:
        stack: list[tuple[Tag, Iterator[Any]]] = [(root, iter(root.children))]
        while stack:
            tag, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                if stack:
                    self._leave(tag)
            elif isinstance(child, Tag):
                if self._enter(child):
                    stack.append((child, iter(child.children)))
            elif type(child) in (NavigableString, CData):   # comments, doctypes and the like are not text
                self.inline.append(re.sub(r"\s+", " ", child))

    def finish(self) -> list[_Block]:
        self._end_section()
        return self.blocks

    def _enter(self, tag: Tag) -> bool:
        """Handle an opening tag; True to descend into its children."""
        name = tag.name
        if name in _HTML_HEADINGS:
            self._end_section()
            if text := _collapse(tag.get_text()):
                self.blocks.append(_Heading(_HTML_HEADINGS[name], text, text))
            return False
        if name == "br":
            self.inline.append("\n")
            return False
        if name == "pre":   # keep code and preformatted layout
            self._flush()
            self._add(tag.get_text().strip("\n"), group=None)
            return False
        if name == "tr":
            self._flush()
            cells = (_collapse(cell.get_text(" ")) for cell in tag.find_all(("td", "th"), recursive=False))
            self._add(" | ".join(cell for cell in cells if cell), group="table")
            return False
        if name in _HTML_BLOCKS:
            self._flush()
            if name == "li":
                self.list_depth += 1
                self.bullet_pending = True
        return True

    def _leave(self, tag: Tag) -> None:
        if tag.name in _HTML_BLOCKS:
            self._flush()
            if tag.name == "li":
                self.list_depth -= 1
                self.bullet_pending = False

    def _flush(self) -> None:
        lines = (_collapse(line) for line in "".join(self.inline).split("\n"))
        text = "\n".join(line for line in lines if line)
        self.inline = []
        if not text:
            return
        if self.bullet_pending:
            text = "  " * (self.list_depth - 1) + "- " + text
            self.bullet_pending = False
        self._add(text, group="list" if self.list_depth else None)

    def _add(self, text: str, group: str | None) -> None:
        if text.strip():
            self.parts.append(_Part(text, group))

    def _end_section(self) -> None:
        self._flush()
        self.blocks.append(_Body(_join_parts(self.parts)))
        self.parts = []


# --- DOCX ---------------------------------------------------------------------------------------------------------

_DOCX_HEADING = re.compile(r"Heading ([1-9])")


def _parse_docx(name: str, data: bytes) -> _Parsed:
    try:
        document = docx.Document(io.BytesIO(data))
        meta = _docx_meta(document)
        blocks = list(_docx_blocks(document))
    except Exception as exc:   # python-docx reports bad zips, missing parts and broken XML as many exception types
        raise CorruptDocumentError(name, f"cannot read this DOCX: {_reason(exc)}") from exc
    return _Parsed(blocks, meta)


def _docx_meta(document: Any) -> dict[str, str]:
    properties = document.core_properties
    values = {"title": properties.title, "version": properties.version}
    return {key: value.strip() for key, value in values.items() if value and value.strip()}


def _docx_blocks(document: Any) -> Iterator[_Block]:
    parts: list[_Part] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            parts.extend(_Part(row, "table") for row in _docx_table_rows(item))
            continue
        text = item.text.strip()
        if not text:
            continue
        level = _docx_heading_level(item)
        if level is not None:
            yield _Body(_join_parts(parts))
            parts = []
            yield _Heading(level, _collapse(text), _collapse(text))
        elif _docx_is_list_item(item):
            parts.append(_Part(f"- {text}", "list"))
        else:
            parts.append(_Part(text, None))
    yield _Body(_join_parts(parts))


def _docx_style_name(paragraph: Paragraph) -> str:
    style = paragraph.style
    return (style.name or "") if style is not None else ""


def _docx_heading_level(paragraph: Paragraph) -> int | None:
    style = _docx_style_name(paragraph)
    if style == "Title":
        return 0
    match = _DOCX_HEADING.fullmatch(style)
    return int(match.group(1)) if match else None


def _docx_is_list_item(paragraph: Paragraph) -> bool:
    properties = paragraph._p.pPr
    numbered = properties is not None and properties.numPr is not None
    return numbered or _docx_style_name(paragraph).startswith("List")


def _docx_table_rows(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:   # a merged cell repeats for every grid column it spans
                continue
            previous = cell._tc
            if text := _collapse(cell.text):
                cells.append(text)
        if cells:
            yield " | ".join(cells)


# --- PDF ----------------------------------------------------------------------------------------------------------

def _parse_pdf(name: str, data: bytes) -> _Parsed:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise EncryptedDocumentError(name, "the PDF is password-protected; remove the password and upload it again")
        meta = _pdf_meta(reader)
        outline = _pdf_outline(reader)
        blocks: list[_Block] = [_Body(_pdf_page_text(page), page=number, path=_outline_path(outline, number))
                                for number, page in enumerate(reader.pages, start=1)]
    except IngestError:
        raise
    except (DependencyError, FileNotDecryptedError) as exc:
        # pypdf decrypts RC4 itself, but AES needs the `cryptography` package even for an empty password.
        raise EncryptedDocumentError(name, f"the PDF is encrypted and cannot be opened here ({_reason(exc)}); "
                                           "remove the encryption and upload it again") from exc
    except Exception as exc:   # pypdf reports damage as PdfReadError but also KeyError, ValueError, TypeError...
        raise CorruptDocumentError(name, f"cannot parse this PDF: {_reason(exc)}") from exc
    return _Parsed(blocks, meta)


def _pdf_meta(reader: PdfReader) -> dict[str, str]:
    info = reader.metadata
    title = _collapse(str(info.title)) if info is not None and info.title else ""
    return {"title": title} if title else {}


def _pdf_page_text(page: Any) -> str:
    return (page.extract_text() or "").replace("\r\n", "\n").replace("\r", "\n")


def _pdf_outline(reader: PdfReader) -> list[tuple[int, str]]:
    """(1-based page, title) for every bookmark, nested ones included, ordered by page then document order."""
    try:
        entries = list(_flatten_outline(reader, reader.outline))
    except Exception:   # bookmarks are a nicety: a damaged outline must not cost us a readable document
        return []
    return sorted(entries, key=lambda entry: entry[0])


def _flatten_outline(reader: PdfReader, outline: list[Any]) -> Iterator[tuple[int, str]]:
    for item in outline:
        if isinstance(item, list):
            yield from _flatten_outline(reader, item)
            continue
        index = reader.get_destination_page_number(item)
        title = _collapse(str(item.title or ""))
        if index is not None and index >= 0 and title:
            yield index + 1, title


def _outline_path(outline: list[tuple[int, str]], page: int) -> list[str]:
    path: list[str] = []
    for start, title in outline:
        if start > page:
            break
        path = [title]
    return path


_PARSERS: dict[str, Callable[[str, bytes], _Parsed]] = {
    "pdf": _parse_pdf, "docx": _parse_docx, "html": _parse_html, "markdown": _parse_markdown, "text": _parse_text,
}
