"""Documents made in the test run for intake tests (docs/intake.md): reportlab PDFs, python-docx,
EbookLib EPUBs and a saved web page. Nothing is read from disk or the network."""

from __future__ import annotations

import io

import docx
import pypdf
from ebooklib import epub
from PIL import Image
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas
from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

SENTENCE = "Darwin collected beetles at Cambridge and kept the rarest in a cabinet of his own making. "


def page_marker(page: int) -> str:
    """A sentence that appears only on `page` of `book_pdf` (to find it in the converted text)."""
    return f"On page {page} the naturalist wrote about specimen number {page * 7}."


def book_pdf(pages: int = 3, *, title: str = "Beetles at Cambridge") -> bytes:
    """A typeset PDF of `pages` pages: a heading, then on each page two paragraphs, the first holding `page_marker`."""
    styles = getSampleStyleSheet()
    story = [Paragraph(title, styles["Heading1"])]
    for page in range(1, pages + 1):
        story.append(Paragraph(page_marker(page) + " " + SENTENCE * 3, styles["BodyText"]))
        story.append(Paragraph("A second paragraph. " + SENTENCE * 2, styles["BodyText"]))
        if page < pages:
            story.append(PageBreak())
    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4, title=title).build(story)
    return buf.getvalue()


def scanned_pdf() -> bytes:
    """Two pages that are only an image: no text layer."""
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4)
    for _ in range(2):
        picture = Image.new("L", (400, 300), 255)
        picture.paste(0, (50, 50, 350, 80))
        c.drawImage(ImageReader(picture), 50, 300, width=400, height=300)
        c.showPage()
    c.save()
    return buf.getvalue()


def encrypted_pdf(data: bytes, user: str = "secret") -> bytes:
    """`data` with a password to open (pypdf)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    writer = pypdf.PdfWriter()
    for page in reader.pages:
        writer.add_page(page)
    writer.encrypt(user_password=user, owner_password="owner")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def word_file() -> bytes:
    """A DOCX with a title, a heading and two paragraphs."""
    d = docx.Document()
    d.core_properties.title = "Opinion of the Court"
    d.add_heading("Opinion of the Court", 0)
    d.add_heading("Background", 1)
    d.add_paragraph("The court rejected the claim.")
    d.add_paragraph("The second paragraph explains why.")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


BEAGLE_CHAPTERS = [("St. Jago", "<p>The Beagle sailed from Plymouth.</p>"), ("Rio", "<p>The day has passed delightfully.</p>")]


def epub_book(chapters: list[tuple[str, str]] = BEAGLE_CHAPTERS, *, author: str | None = None) -> bytes:
    """An EPUB written by EbookLib (an independent writer): one "Chapter n. name" XHTML file per (name, body HTML)."""
    book = epub.EpubBook()
    book.set_identifier("mmos-intake-1")
    book.set_title("The Voyage of the Beagle")
    book.set_language("en")
    if author:
        book.add_author(author)
    chapters_out = []
    for n, (name, body) in enumerate(chapters, start=1):
        ch = epub.EpubHtml(title=name, file_name=f"chap_{n:02}.xhtml", lang="en")
        ch.content = f"<html><body><h1>Chapter {n}. {name}</h1>{body}</body></html>"
        book.add_item(ch)
        chapters_out.append(ch)
    book.toc = tuple(chapters_out)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters_out]
    buf = io.BytesIO()
    epub.write_epub(buf, book)
    return buf.getvalue()


WEB_PAGE = b"""<!doctype html><html><head><meta charset="utf-8"><title>Darwin at Down House</title></head><body>
<nav><a href="/">Home</a> NAV-NOISE</nav><main><article><h1>Darwin at Down House</h1>
<p>Charles Darwin moved to Down House in Kent in 1842 and lived there for forty years, writing most of
his books in the study on the ground floor, where visitors can still see his chair.</p>
<p>Every day he walked the sandwalk, a gravel path at the edge of the grounds.</p></article></main>
<footer>FOOTER-NOISE</footer></body></html>"""
