"""Loading uploaded files into sectioned text: every format, its heading paths and offsets, and every refusal."""

import io
from pathlib import Path

import docx
import pytest
from fpdf import FPDF
from pypdf.errors import DependencyError

from retrieval import loaders
from retrieval.errors import (
    CorruptDocumentError,
    DocumentTooLargeError,
    EmptyDocumentError,
    EncryptedDocumentError,
    UndecodableTextError,
    UnsafeNameError,
    UnsupportedFormatError,
)
from retrieval.loaders import LoadedDocument, check_name, load_document, load_path

GUIDELINES = Path(__file__).resolve().parents[2] / "data" / "guidelines"


def assert_offsets_exact(doc: LoadedDocument) -> None:
    assert doc.sections, "a loaded document always has sections"
    for section in doc.sections:
        assert section.text and section.text == section.text.strip()
        assert doc.text[section.start:section.start + len(section.text)] == section.text
    assert [s.start for s in doc.sections] == sorted(s.start for s in doc.sections)


def paths(doc: LoadedDocument) -> list[list[str]]:
    return [s.heading_path for s in doc.sections]


def make_pdf(pages: list[str], title: str | None = "Lithium monitoring", outline: list[str] | None = None,
             encryption: dict | None = None) -> bytes:
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for i, body in enumerate(pages):
        pdf.add_page()
        if outline and outline[i]:
            pdf.start_section(outline[i])
        if body:
            pdf.multi_cell(0, 10, body)
    if encryption:
        pdf.set_encryption(**encryption)
    return bytes(pdf.output())


def make_docx() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Lithium in primary care"
    document.core_properties.version = "2.1"
    document.add_paragraph("Lithium shared care", style="Title")
    document.add_paragraph("Read before prescribing.")
    document.add_heading("Monitoring", level=1)
    document.add_heading("Blood tests", level=2)
    document.add_paragraph("Check levels every three months.")
    document.add_paragraph("Serum lithium 12 hours post dose", style="List Bullet")
    document.add_paragraph("Renal and thyroid function", style="List Bullet")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Test", "Interval"
    table.cell(1, 0).text, table.cell(1, 1).text = "eGFR", "6 months"
    document.add_heading("Toxicity", level=1)
    document.add_paragraph("Stop lithium if toxicity is suspected.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- Markdown ------------------------------------------------------------------------------------------------------

def test_bundled_guideline_keeps_front_matter_and_nests_headings():
    doc = load_path(GUIDELINES / "depression-adult.md")
    title = "Depression in adults and adolescents: recognition, severity and stepped treatment in primary care"
    assert doc.name == "depression-adult.md" and doc.format == "markdown"
    assert doc.meta["id"] == "depression-adult"
    assert doc.meta["topic"] == "depression"
    assert doc.meta["title"] == doc.title == title
    assert doc.meta["version"] == "1.0" and doc.meta["reviewed"] == "2026-11-27"
    assert [title] in paths(doc)
    assert [title, "Screening", "Who to screen"] in paths(doc)
    assert [title, "Severity by PHQ-9"] in paths(doc)           # an H2 after an H3 closes the H3
    assert [title, "Diagnosis", "Rule out before treating"] in paths(doc)
    assert "id: depression-adult" not in doc.text and "---" not in doc.text.split("\n")
    assert_offsets_exact(doc)


def test_every_bundled_guideline_loads_with_exact_offsets():
    for path in sorted(GUIDELINES.glob("*.md")):
        assert_offsets_exact(load_path(path))


def test_markdown_heading_levels_pop_correctly_and_leading_text_has_no_path():
    source = "Preamble text.\n\n# A\nunder a\n### A3\ndeep\n## B\nunder b\n#### B4\nb four\n# C\nunder c\n"
    doc = load_document("notes.md", source.encode())
    assert paths(doc) == [[], ["A"], ["A", "A3"], ["A", "B"], ["A", "B", "B4"], ["C"]]
    assert [s.text for s in doc.sections] == ["Preamble text.", "under a", "deep", "under b", "b four", "under c"]
    assert doc.title == "A" and doc.meta == {}
    assert_offsets_exact(doc)


def test_markdown_hash_lines_inside_code_fences_are_not_headings():
    source = "# Script\n```bash\n# not a heading\necho hi\n```\n~~~\n## still code\n~~~\nafter\n## Real\nbody\n"
    doc = load_document("script.md", source.encode())
    assert paths(doc) == [["Script"], ["Script", "Real"]]
    assert "# not a heading" in doc.sections[0].text and "## still code" in doc.sections[0].text
    assert_offsets_exact(doc)


def test_markdown_front_matter_values_become_strings():
    source = "---\nid: x\nversion: 1.5\nreviewed: 2026-01-31\ntags: [a, b]\n---\nBody only.\n"
    doc = load_document("x.md", source.encode())
    assert doc.meta == {"id": "x", "version": "1.5", "reviewed": "2026-01-31", "tags": "a, b"}
    assert doc.title is None
    assert doc.text == "Body only."
    assert_offsets_exact(doc)


@pytest.mark.parametrize("front_matter", ["---\ntitle: [unclosed\n---\nbody\n", "---\ntitle: x\nbody without end\n",
                                          "---\n- a list\n---\nbody\n"])
def test_malformed_front_matter_is_corrupt(front_matter):
    with pytest.raises(CorruptDocumentError, match="front matter"):
        load_document("bad.md", front_matter.encode())


def test_markdown_suffix_is_case_insensitive():
    assert load_document("NOTES.Markdown", b"# Hi\nthere").format == "markdown"


# --- plain text ----------------------------------------------------------------------------------------------------

def test_plain_text_is_one_section_without_heading():
    doc = load_document("note.txt", b"\xef\xbb\xbfFirst line\r\nsecond line\r\n\r\n")
    assert doc.format == "text" and doc.title is None and doc.meta == {}
    assert [(s.heading_path, s.text, s.page) for s in doc.sections] == [([], "First line\nsecond line", None)]
    assert_offsets_exact(doc)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_with_bom_decodes(encoding):
    data = "Caf\u00e9 \u2014 dose\n".encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    doc = load_document("note.txt", data)
    assert doc.sections[0].text == "Caf\u00e9 \u2014 dose"


def test_latin1_text_is_undecodable_naming_the_byte_offset():
    with pytest.raises(UndecodableTextError, match="offset 3") as raised:
        load_document("menu.txt", b"caf\xe9")
    assert raised.value.name == "menu.txt"


def test_utf16_without_bom_is_undecodable():
    with pytest.raises(UndecodableTextError):
        load_document("note.txt", "caf\u00e9".encode("utf-16-le"))


# --- PDF -----------------------------------------------------------------------------------------------------------

def test_pdf_keeps_one_section_per_page_with_page_numbers_and_title():
    doc = load_document("lithium.pdf", make_pdf(["Lithium levels first page.", "Renal function second page."]))
    assert doc.format == "pdf" and doc.meta == {"title": "Lithium monitoring"} and doc.title == "Lithium monitoring"
    assert [s.page for s in doc.sections] == [1, 2]
    assert "first page" in doc.sections[0].text and "second page" in doc.sections[1].text
    assert paths(doc) == [[], []]
    assert_offsets_exact(doc)


def test_pdf_outline_gives_each_page_the_last_bookmark_at_or_before_it():
    data = make_pdf(["intro", "screening", "more screening", "treatment"],
                    outline=["Introduction", "Screening", None, "Treatment"])
    doc = load_document("outlined.pdf", data)
    assert paths(doc) == [["Introduction"], ["Screening"], ["Screening"], ["Treatment"]]
    assert [s.page for s in doc.sections] == [1, 2, 3, 4]
    assert_offsets_exact(doc)


def test_pdf_pages_without_text_are_skipped():
    doc = load_document("gap.pdf", make_pdf(["text on one", "", "text on three"]))
    assert [s.page for s in doc.sections] == [1, 3]
    assert_offsets_exact(doc)


def test_pdf_without_any_text_is_empty():
    with pytest.raises(EmptyDocumentError, match="no extractable text"):
        load_document("scan.pdf", make_pdf(["", ""]))


def test_pdf_with_user_password_is_encrypted():
    data = make_pdf(["secret page"], encryption={"owner_password": "owner", "user_password": "secret"})
    with pytest.raises(EncryptedDocumentError, match="password"):
        load_document("locked.pdf", data)


def test_pdf_with_only_an_owner_password_opens_with_the_empty_password():
    data = make_pdf(["restricted but readable"], encryption={"owner_password": "owner"})
    doc = load_document("restricted.pdf", data)
    assert "restricted but readable" in doc.sections[0].text
    assert_offsets_exact(doc)


def test_pdf_needing_a_missing_crypto_library_is_encrypted(monkeypatch):
    def needs_aes(self, password):
        raise DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(loaders.PdfReader, "decrypt", needs_aes)
    data = make_pdf(["page"], encryption={"owner_password": "owner"})
    with pytest.raises(EncryptedDocumentError, match="cryptography"):
        load_document("aes.pdf", data)


@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_truncated_pdf_is_corrupt(cut):
    data = make_pdf(["one", "two"])
    with pytest.raises(CorruptDocumentError, match="cannot parse this PDF"):
        load_document("cut.pdf", data[:int(len(data) * cut)])


def test_pdf_suffix_without_pdf_header_is_corrupt():
    with pytest.raises(CorruptDocumentError, match="%PDF-"):
        load_document("fake.pdf", b"<html>not a pdf</html>")


# --- DOCX ----------------------------------------------------------------------------------------------------------

def test_docx_keeps_heading_paths_lists_tables_and_properties():
    doc = load_document("lithium.docx", make_docx())
    assert doc.format == "docx"
    assert doc.meta == {"title": "Lithium in primary care", "version": "2.1"}
    assert doc.title == "Lithium in primary care"
    assert paths(doc) == [["Lithium shared care"], ["Lithium shared care", "Monitoring", "Blood tests"],
                          ["Lithium shared care", "Toxicity"]]
    blood_tests = doc.sections[1].text
    assert blood_tests == ("Check levels every three months.\n\n- Serum lithium 12 hours post dose\n"
                           "- Renal and thyroid function\n\nTest | Interval\neGFR | 6 months")
    assert all(s.page is None for s in doc.sections)
    assert_offsets_exact(doc)


def test_docx_title_falls_back_to_the_title_paragraph():
    document = docx.Document()
    document.add_paragraph("Clozapine", style="Title")
    document.add_paragraph("Body.")
    buffer = io.BytesIO()
    document.save(buffer)
    doc = load_document("c.docx", buffer.getvalue())
    assert doc.meta == {} and doc.title == "Clozapine"


@pytest.mark.parametrize("data", [b"just text", b"PK\x03\x04 broken zip"])
def test_docx_that_is_not_a_valid_zip_is_corrupt(data):
    with pytest.raises(CorruptDocumentError):
        load_document("broken.docx", data)


def test_truncated_docx_is_corrupt():
    data = make_docx()
    with pytest.raises(CorruptDocumentError, match="DOCX"):
        load_document("cut.docx", data[:len(data) // 2])


def test_password_protected_docx_is_encrypted():
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100 + "EncryptionInfo".encode("utf-16-le") + b"\0" * 100
    with pytest.raises(EncryptedDocumentError):
        load_document("locked.docx", ole)


# --- HTML ----------------------------------------------------------------------------------------------------------

NOISY_HTML = """<!doctype html>
<html><head><title>Panic disorder | Clinic</title><style>p { color: red }</style>
<script>var tracking = "script text";</script></head>
<body>
<header><h1>Clinic site</h1><nav><a href="/">Home</a> <a href="/x">Menu link</a></nav></header>
<aside>Related: sidebar text</aside>
<main>
  <h1>Panic disorder</h1>
  <p>Panic attacks are <b>common</b>.<!-- editor note --></p>
  <h2>Treatment</h2>
  <div>Bare text in a div.</div>
  <ul><li>CBT first</li><li><p>SSRIs</p><ul><li>sertraline</li></ul></li></ul>
  <h3>Doses</h3>
  <table><tr><th>Drug</th><th>Start</th></tr><tr><td>Sertraline</td><td>25 mg</td></tr></table>
  <h2>Follow-up</h2>
  <p>Review in<br>four weeks.</p>
  <form><label>Search</label><input name="q"></form>
</main>
<footer>Copyright footer</footer>
<script>document.write("late script")</script>
</body></html>
"""


def test_html_keeps_main_text_and_headings_without_page_noise():
    doc = load_document("panic.html", NOISY_HTML.encode())
    assert doc.format == "html"
    assert doc.meta == {"title": "Panic disorder | Clinic"} and doc.title == "Panic disorder | Clinic"
    assert paths(doc) == [["Panic disorder"], ["Panic disorder", "Treatment"],
                          ["Panic disorder", "Treatment", "Doses"], ["Panic disorder", "Follow-up"]]
    assert [s.text for s in doc.sections] == [
        "Panic attacks are common.",
        "Bare text in a div.\n\n- CBT first\n- SSRIs\n  - sertraline",
        "Drug | Start\nSertraline | 25 mg",
        "Review in\nfour weeks.",
    ]
    for noise in ("script text", "late script", "Menu link", "sidebar", "footer", "Clinic site", "Search",
                  "editor note", "color"):
        assert noise not in doc.text
    assert_offsets_exact(doc)


def test_html_without_main_uses_the_body_and_first_h1_as_title():
    doc = load_document("page.HTM", b"<h1>Insomnia</h1><p>Sleep hygiene alone is not enough.</p>")
    assert doc.title == "Insomnia" and doc.meta == {}
    assert paths(doc) == [["Insomnia"]]
    assert_offsets_exact(doc)


def test_html_meta_charset_is_honoured():
    data = '<html><head><meta charset="iso-8859-1"></head><body><p>Caf\u00e9</p></body></html>'.encode("latin-1")
    assert load_document("latin.html", data).sections[0].text == "Caf\u00e9"


def test_html_with_only_scripts_is_empty():
    with pytest.raises(EmptyDocumentError, match="no extractable text"):
        load_document("app.html", b"<html><head><title>App</title></head><body><script>run()</script></body></html>")


def test_html_nested_thousands_deep_still_loads():
    data = ("<div>" * 3000 + "deep text" + "</div>" * 3000).encode()
    assert load_document("deep.html", data).sections[0].text == "deep text"


# --- refusals ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../etc/passwd", "a/b.md", "a\\b.md", "..", ".", "x\x00.md", "line\nbreak.md",
                                  "notes..md", "", "a" * 253 + ".md"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(UnsafeNameError) as raised:
        check_name(name)
    assert raised.value.reason
    with pytest.raises(UnsafeNameError):
        load_document(name, b"text")


def test_unsafe_name_error_never_echoes_control_characters():
    with pytest.raises(UnsafeNameError, match="control character") as raised:
        check_name("x\x00.md")
    assert "\x00" not in str(raised.value)


@pytest.mark.parametrize("name", ["depression-adult.md", "Leitlinie Depression (2024).pdf", "caf\u00e9.txt", "a.b.c"])
def test_safe_names_are_returned_unchanged(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["setup.exe", "README", "notes.doc", "sheet.xlsx"])
def test_unsupported_suffix_is_refused_listing_supported_types(name):
    with pytest.raises(UnsupportedFormatError, match=r"supported types: .*\.docx.*\.pdf"):
        load_document(name, b"MZ binary")


def test_too_large_is_refused_before_parsing_naming_size_and_limit():
    with pytest.raises(DocumentTooLargeError, match="11 bytes; the limit is 10 bytes"):
        load_document("big.pdf", b"not parsed!", max_bytes=10)


def test_load_path_refuses_a_large_file_and_uses_the_bare_name(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 100)
    with pytest.raises(DocumentTooLargeError) as raised:
        load_path(path, max_bytes=50)
    assert raised.value.name == "big.txt"
    assert load_path(path).name == "big.txt"


@pytest.mark.parametrize(("name", "data"), [("blank.txt", b""), ("blank.md", b"   \n\n\t\n"), ("blank.pdf", b""),
                                            ("headings.md", b"# Only\n## Headings\n"),
                                            ("fm.md", b"---\ntitle: t\n---\n\n")])
def test_documents_without_text_are_empty(name, data):
    with pytest.raises(EmptyDocumentError, match="no extractable text"):
        load_document(name, data)


def test_error_messages_start_with_the_file_name():
    with pytest.raises(CorruptDocumentError) as raised:
        load_document("fake.pdf", b"nope")
    assert str(raised.value).startswith("fake.pdf: ")
