"""Document intake (docs/intake.md): what an analyst sees when adding a PDF, Word file, web page or EPUB.

Every file is made here with a real writer: reportlab (PDF), pypdf (encryption), python-docx,
EbookLib and zipfile; nothing is read from disk or the network.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from concurrent.futures import ThreadPoolExecutor

import document_support
import docx
import pypdf
import pytest
from docx.oxml.ns import qn
from lxml import etree
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

from mmos_core.text.documents import ConvertedDocument, convert_document
from mmos_core.text.intake import IntakeError

LIMIT = 20_000_000
WIDTH, HEIGHT = A4


def convert(data: bytes, filename: str, **kw) -> ConvertedDocument:
    return convert_document(data, filename, max_bytes=kw.pop("max_bytes", LIMIT), **kw)


def refused(data: bytes, filename: str, **kw) -> IntakeError:
    with pytest.raises(IntakeError) as info:
        convert(data, filename, **kw)
    return info.value


def paragraphs(doc: ConvertedDocument) -> list[str]:
    return doc.text.split("\n\n")


# --- makers -------------------------------------------------------------------------------

SENTENCE = "Darwin collected beetles at Cambridge and kept the rarest in a cabinet of his own making. "


def report_pdf() -> bytes:
    """A 4-page typeset report: title metadata, a running header, page-number footers, H1/H2 by size."""
    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    story = [
        Paragraph("Beetles at Cambridge", styles["Heading1"]),
        Paragraph("Early collecting", styles["Heading2"]),
        Paragraph("First paragraph. " + SENTENCE * 6, body),
        Paragraph("Second paragraph. " + SENTENCE * 3, body),
        PageBreak(),
        Paragraph("The voyage", styles["Heading1"]),
        Paragraph("Marker on page two: the Beagle sailed in December 1831.", body),
        PageBreak(),
        Paragraph("Marker on page three: the Galapagos finches.", body),
        PageBreak(),
        Paragraph("Marker on page four: Down House.", body),
    ]

    def furniture(c, doc):
        c.setFont("Helvetica", 9)
        c.drawString(72, HEIGHT - 40, "Beetle Society - Annual Report")
        c.drawCentredString(WIDTH / 2, 30, f"Page {doc.page}")

    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, title="Annual Report on Beetles").build(
        story, onFirstPage=furniture, onLaterPages=furniture
    )
    return buf.getvalue()


def canvas_pdf(pages: list[list[tuple[float, float, str]]], *, size: float = 11, outline=(), image=False) -> bytes:
    """Lines drawn at exact (x, y) positions; ``outline`` = (page index, level, title) bookmarks."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    for index, lines in enumerate(pages):
        for x, y, text in lines:
            c.setFont("Helvetica", size)
            c.drawString(x, y, text)
        if image:
            picture = Image.new("L", (400, 300), 255)
            picture.paste(0, (50, 50, 350, 80))  # a dark bar: a "scanned" line of ink
            c.drawImage(ImageReader(picture), 50, 300, width=400, height=300)
        for page, level, title in outline:
            if page == index:
                c.bookmarkPage(f"b{page}-{title}")
                c.addOutlineEntry(title, f"b{page}-{title}", level=level)
        c.showPage()
    c.save()
    return buf.getvalue()


def word_file(tracked: bool = True) -> bytes:
    d = docx.Document()
    d.core_properties.title = "Opinion of the Court"
    d.add_heading("Opinion of the Court", 0)  # the "Title" style
    d.add_heading("Background", 1)
    p = d.add_paragraph("The court ")
    if tracked:  # a tracked insertion ("firmly ") and a tracked deletion ("never ")
        ins = etree.SubElement(p._p, qn("w:ins"), {qn("w:id"): "1", qn("w:author"): "Clerk"})
        etree.SubElement(etree.SubElement(ins, qn("w:r")), qn("w:t")).text = "firmly "
        dele = etree.SubElement(p._p, qn("w:del"), {qn("w:id"): "2", qn("w:author"): "Clerk"})
        etree.SubElement(etree.SubElement(dele, qn("w:r")), qn("w:delText")).text = "never "
    p.add_run("rejected the claim.")
    d.add_heading("Findings", 2)
    d.add_paragraph("The first finding.", style="List Bullet")
    d.add_paragraph("The second finding.", style="List Bullet")
    table = d.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Plaintiff"
    table.cell(0, 1).text = "Ms. Smith"
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def epub_book(extra: dict[str, bytes] | None = None) -> bytes:
    chapters = [
        ("St. Jago", "<p>After having been twice driven back by heavy gales, the Beagle sailed.</p>"),
        ("Rio de Janeiro", "<h2>The forest</h2><p>The day has passed delightfully.</p><p>A second thought.</p>"),
    ]
    return with_members(document_support.epub_book(chapters, author="Charles Darwin"), extra or {})


def with_members(data: bytes, members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO(data)
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return buf.getvalue()


NOISY_PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>Darwin at Down House | Gazette</title>
<script>var tracking = "SCRIPT-NOISE";</script><style>.x{color:red}</style></head><body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/news">NAV-NOISE news</a></li>
<li><a href="/about">About us</a></li></ul></nav></header>
<div class="cookie-banner">We use cookies. COOKIE-NOISE Accept all cookies</div>
<main><article><h1>Darwin at Down House</h1>
<p>Charles Darwin moved to Down House in Kent in 1842 and lived there for forty years, writing most of
his books in the study on the ground floor, where visitors can still see his chair.</p>
<h2>The sandwalk</h2>
<p>Every day he walked the sandwalk, a gravel path at the edge of the grounds, counting his turns by
kicking flints from a pile he had left at the start of the path.</p>
<p>He called it his thinking path.</p></article></main>
<aside><h3>Related</h3><ul><li><a href="/x">ASIDE-NOISE ten facts about beetles</a></li></ul></aside>
<footer><p>Copyright 2024 FOOTER-NOISE Gazette. All rights reserved.</p><a href="/privacy">Privacy</a></footer>
<script>document.write("SCRIPT-NOISE-2")</script></body></html>"""


# --- PDF ----------------------------------------------------------------------------------


def test_pdf_text_is_paragraphs_and_headings_without_page_furniture():
    doc = convert(report_pdf(), "report.pdf")
    paras = paragraphs(doc)
    assert doc.format == "pdf"
    assert doc.title == "Annual Report on Beetles"
    assert paras[:2] == ["Beetles at Cambridge", "Early collecting"]
    # a paragraph wrapped over several lines comes back as one paragraph, one line
    first = next(p for p in paras if p.startswith("First paragraph."))
    assert first == ("First paragraph. " + SENTENCE * 6).strip()
    assert any(p.startswith("Second paragraph.") for p in paras)
    # running header and "Page N" footers are gone
    assert "Annual Report" not in doc.text and "Page 1" not in doc.text and "Page 3" not in doc.text
    # headings: level from font size, offsets point at the heading paragraph
    assert [(level, title) for _, level, title in doc.headings] == [
        (1, "Beetles at Cambridge"),
        (2, "Early collecting"),
        (1, "The voyage"),
    ]
    for start, _, title in doc.headings:
        assert doc.text[start:].startswith(title)


def test_pdf_offsets_map_to_page_numbers():
    doc = convert(report_pdf(), "report.pdf")
    assert [page for _, page in doc.pages] == [1, 2, 3, 4]
    assert doc.pages[0][0] == 0
    for page, marker in [(2, "Marker on page two"), (3, "Marker on page three"), (4, "Marker on page four")]:
        offset = doc.text.index(marker)
        assert doc.page_at(offset) == page
        assert doc.page_at(offset + len(marker)) == page
    assert doc.page_at(doc.text.index("Second paragraph")) == 1
    assert doc.page_at(doc.text.index("The voyage")) == 2
    with pytest.raises(ValueError):
        doc.page_at(len(doc.text) + 1)


def test_pdf_paragraph_continued_on_next_page_is_one_paragraph_and_maps_to_both_pages():
    pages = [
        [(72, 760, "The first page ends in the middle of a sentence that")],
        [(72, 760, "continues on the second page and ends here."), (72, 720, "A new paragraph after a gap.")],
        [(72, 760, "An empty page came before this one.")],
    ]
    pages.insert(2, [])  # page 3 has no text
    doc = convert(canvas_pdf(pages), "memo.pdf")
    assert paragraphs(doc) == [
        "The first page ends in the middle of a sentence that continues on the second page and ends here.",
        "A new paragraph after a gap.",
        "An empty page came before this one.",
    ]
    assert doc.page_at(doc.text.index("sentence that")) == 1
    assert doc.page_at(doc.text.index("continues")) == 2
    assert doc.page_at(doc.text.index("An empty page")) == 4  # page 3 had nothing to point at
    assert doc.warnings == ()


def test_pdf_bookmarks_give_heading_levels_even_at_body_size():
    pages = [
        [(72, 760, "1 Introduction"), (72, 730, "Some opening words about the method.")],
        [(72, 760, "1.1 Scope"), (72, 730, "What the study covers, and what it leaves out.")],
    ]
    outline = [(0, 0, "Introduction"), (1, 1, "Scope")]
    doc = convert(canvas_pdf(pages, outline=outline), "study.pdf")
    assert [(level, title) for _, level, title in doc.headings] == [(1, "1 Introduction"), (2, "1.1 Scope")]


def test_pdf_progress_reports_pages_while_converting():
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet".split()
    pages = [
        [(72, 760, f"{words[n % 10]} {words[n // 10 % 10]} {words[n // 100]} is what this page says.")]
        for n in range(150)
    ]
    calls: list[tuple[int, int]] = []
    doc = convert(canvas_pdf(pages), "long.pdf", progress=lambda done, total: calls.append((done, total)))
    assert len(doc.pages) == 150
    assert calls[0] == (0, 150) and calls[-1] == (150, 150)
    assert 10 <= len(calls) <= 102  # a progress bar moves, but is not flooded
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_pdf_over_the_page_limit_is_refused():
    pages = [[(72, 760, f"Page {n} text.")] for n in range(12)]
    err = refused(canvas_pdf(pages), "long.pdf", max_pages=10)
    assert err.reason == "too_large"
    assert "12 pages" in str(err) and "limit of 10" in str(err)


def test_scanned_pdf_without_text_layer_is_refused_with_ocr_advice():
    err = refused(canvas_pdf([[], []], image=True), "scan.pdf")
    assert err.reason == "scanned"
    assert "has no text layer" in str(err) and "OCR" in str(err)


def test_pdf_with_one_image_only_page_converts_with_a_warning():
    data = canvas_pdf(
        [
            [(72, 760, f"A typed page about {topic}, with plenty of readable text on it.")]
            for topic in ("beetles", "finches", "barnacles")
        ]
    )
    reader = pypdf.PdfReader(io.BytesIO(data))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    scan = pypdf.PdfReader(io.BytesIO(canvas_pdf([[]], image=True))).pages[0]
    writer.insert_page(scan, 1)
    buf = io.BytesIO()
    writer.write(buf)
    doc = convert(buf.getvalue(), "mixed.pdf")
    assert doc.text.count("A typed page") == 3
    assert len(doc.warnings) == 1 and "page 2" in doc.warnings[0] and "OCR" in doc.warnings[0]


def encrypted(data: bytes, user: str, owner: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user, owner_password=owner, algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def test_password_protected_pdf_is_refused():
    data = encrypted(canvas_pdf([[(72, 760, "Sealed text.")]]), user="secret", owner="owner")
    err = refused(data, "sealed.pdf")
    assert err.reason == "encrypted"
    assert "protected by a password" in str(err)


def test_pdf_locked_only_against_editing_still_converts():
    data = encrypted(canvas_pdf([[(72, 760, "Readable but not editable.")]]), user="", owner="owner")
    assert convert(data, "locked.pdf").text == "Readable but not editable."


def test_corrupt_pdf_is_refused():
    err = refused(b"%PDF-1.7\n" + bytes(range(256)) * 20, "broken.pdf")
    assert err.reason == "corrupt"
    assert "damaged" in str(err)


def test_pdfs_convert_safely_from_several_threads():
    data = report_pdf()
    with ThreadPoolExecutor(max_workers=4) as pool:
        docs = list(pool.map(lambda _: convert(data, "report.pdf"), range(8)))
    assert len({d.text for d in docs}) == 1


# --- DOCX ---------------------------------------------------------------------------------


def test_docx_text_headings_title_and_tracked_changes():
    doc = convert(word_file(), "opinion.docx")
    assert doc.format == "docx"
    assert doc.title == "Opinion of the Court"
    assert paragraphs(doc) == [
        "Opinion of the Court",
        "Background",
        "The court firmly rejected the claim.",  # insertion kept, deletion dropped
        "Findings",
        "• The first finding.",
        "• The second finding.",
        "Plaintiff",
        "Ms. Smith",
    ]
    assert [(level, title) for _, level, title in doc.headings] == [
        (1, "Opinion of the Court"),
        (1, "Background"),
        (2, "Findings"),
    ]
    for start, _, title in doc.headings:
        assert doc.text[start:].startswith(title)
    assert doc.pages == ()
    with pytest.raises(ValueError):
        doc.page_at(0)


def test_docx_zip_bomb_is_refused_before_unpacking():
    bomb = with_members(word_file(), {"word/media/filler.bin": bytes(30_000_000)})
    assert len(bomb) < 200_000  # 30 MB of zeros deflate to almost nothing
    err = refused(bomb, "innocent.docx")
    assert err.reason == "too_large"
    assert "zip bomb" in str(err)


def test_old_or_password_protected_word_file_is_refused():
    err = refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "memo.docx")
    assert err.reason == "encrypted"
    assert "password-protected" in str(err) and ".docx" in str(err)


def test_truncated_docx_is_refused_as_damaged():
    err = refused(word_file()[:3000], "cut.docx")
    assert err.reason == "corrupt"


# --- EPUB ---------------------------------------------------------------------------------


def test_epub_chapters_in_reading_order_with_headings_and_title():
    calls: list[tuple[int, int]] = []
    doc = convert(epub_book(), "beagle.epub", progress=lambda d, t: calls.append((d, t)))
    assert doc.format == "epub"
    assert doc.title == "The Voyage of the Beagle"
    assert paragraphs(doc) == [
        "Chapter 1. St. Jago",
        "After having been twice driven back by heavy gales, the Beagle sailed.",
        "Chapter 2. Rio de Janeiro",
        "The forest",
        "The day has passed delightfully.",
        "A second thought.",
    ]  # the navigation document (table of contents) in the spine is left out
    assert [(level, title) for _, level, title in doc.headings] == [
        (1, "Chapter 1. St. Jago"),
        (1, "Chapter 2. Rio de Janeiro"),
        (2, "The forest"),
    ]
    assert calls[-1] == (2, 2)


def test_epub_zip_bomb_is_refused():
    err = refused(epub_book({"OEBPS/filler.xhtml": bytes(30_000_000)}), "beagle.epub")
    assert err.reason == "too_large"
    assert "zip bomb" in str(err)


def test_epub_with_drm_is_refused():
    encryption = b"""<?xml version="1.0"?>
<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" xmlns:enc="http://www.w3.org/2001/04/xmlenc#">
<enc:EncryptedData><enc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
<enc:CipherData><enc:CipherReference URI="EPUB/chap_01.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>"""
    err = refused(epub_book({"META-INF/encryption.xml": encryption}), "shop.epub")
    assert err.reason == "encrypted"
    assert "DRM" in str(err)


def test_epub_whose_package_file_is_missing_is_refused_as_damaged():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr(
            "META-INF/container.xml",
            '<container xmlns="urn:oasis:names:tc:opendocument:xmlns:container" version="1.0"><rootfiles>'
            '<rootfile full-path="OEBPS/missing.opf" media-type="application/oebps-package+xml"/>'
            "</rootfiles></container>",
        )
    err = refused(buf.getvalue(), "half.epub")
    assert err.reason == "corrupt" and "damaged" in str(err)


# --- HTML ---------------------------------------------------------------------------------


def test_html_keeps_the_article_and_drops_navigation_footer_and_scripts():
    doc = convert(NOISY_PAGE, "down-house.html")
    assert doc.format == "html"
    assert doc.title == "Darwin at Down House"
    assert "Charles Darwin moved to Down House in Kent in 1842" in doc.text
    assert "He called it his thinking path." in paragraphs(doc)
    for noise in ("NAV-NOISE", "FOOTER-NOISE", "SCRIPT-NOISE", "ASIDE-NOISE", "COOKIE-NOISE", "color:red"):
        assert noise not in doc.text
    assert [(level, title) for _, level, title in doc.headings] == [(1, "Darwin at Down House"), (2, "The sandwalk")]


def test_html_without_main_text_is_refused():
    page = b"<html><head><script>var a = 1;</script></head><body><nav><a href='/'>Home</a></nav></body></html>"
    err = refused(page, "empty.html")
    assert err.reason == "empty"
    assert "No main text" in str(err)


# --- all formats --------------------------------------------------------------------------


@pytest.mark.parametrize("maker,name", [(report_pdf, "a.pdf"), (word_file, "a.docx"), (epub_book, "a.epub")])
def test_same_bytes_same_sha256(maker, name):
    data = maker()
    first, second = convert(data, name), convert(data, name)
    assert first.sha256 == second.sha256 == hashlib.sha256(data).hexdigest()
    assert first == second


def test_file_over_the_size_limit_is_refused():
    data = report_pdf()
    err = refused(data, "report.pdf", max_bytes=1000)
    assert err.reason == "too_large"
    assert "over the limit" in str(err) and "1,000 bytes" in str(err)


def test_unknown_extension_and_mismatched_content():
    assert refused(b"some bytes", "notes.odt").reason == "format"
    err = refused(b"just text, not a PDF", "fake.pdf")
    assert err.reason == "corrupt" and "not a valid PDF" in str(err)
    # a Word file saved with the wrong extension is read for what it is
    assert convert(word_file(), "opinion.pdf").format == "docx"
