"""Document intake speed: a 300-page PDF, and a DOCX and an EPUB of the same text (docs/intake.md).

Generates the files in a temporary folder (reportlab, python-docx, EbookLib: the dev
dependencies), converts each with ``convert_document`` and prints seconds, pages/s and
characters/s. The text is the person texts in ``$MMOS_SHARED_DIR/data/person_texts``
(default ``../shared/data/person_texts``) when present, else generated sentences.

    python bench/pdf_intake.py                 # 300 pages
    python bench/pdf_intake.py --pages 1000    # a longer book
    python bench/pdf_intake.py --compare       # also time the PDF alternatives that are installed
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmos_core.text.documents import convert_document  # noqa: E402


def _paragraphs() -> list[str]:
    shared = Path(os.environ.get("MMOS_SHARED_DIR", REPO.parent / "shared")) / "data" / "person_texts"
    paras: list[str] = []
    for path in sorted(shared.glob("*.txt")) if shared.is_dir() else []:
        text = path.read_text(encoding="utf-8", errors="replace")
        paras += [" ".join(p.split()) for p in text.split("\n\n") if len(p.split()) > 3]
    if paras:
        return paras
    rng = random.Random(7)
    words = "the of and a to in he his was that with for as it on at by had from which this be her not".split()
    words += "beetle voyage letter court evidence finch barnacle species garden study witness report".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(20, 160))).capitalize() + "." for _ in range(20_000)]


def _story(paras: list[str], pages: int) -> list[tuple[str, str]]:
    """Chapters of 40 paragraphs, cycling through the text, a little more than ``pages`` A4 pages."""
    story: list[tuple[str, str]] = []
    n = chars = 0
    while chars < pages * 5_500:  # BodyText at 10 pt holds ~4,500 characters an A4 page
        if n % 40 == 0:
            story.append(("heading", f"Chapter {n // 40 + 1}"))
        story.append(("para", paras[n % len(paras)]))
        chars += len(paras[n % len(paras)])
        n += 1
    return story


def make_pdf(path: Path, story: list[tuple[str, str]], pages: int) -> None:
    """Typeset ``story`` (headings, justified paragraphs, running header, page numbers); keep ``pages`` pages."""
    from xml.sax.saxutils import escape

    import pypdf
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    flow = [Paragraph(escape(t), styles["Heading1" if kind == "heading" else "BodyText"]) for kind, t in story]

    def furniture(c, doc):
        c.setFont("Helvetica", 8)
        c.drawString(72, A4[1] - 40, "Bench book - intake speed")
        c.drawCentredString(A4[0] / 2, 30, str(doc.page))

    buf = io.BytesIO()
    SimpleDocTemplate(buf, pagesize=A4).build(flow, onFirstPage=furniture, onLaterPages=furniture)
    reader = pypdf.PdfReader(buf)
    if len(reader.pages) < pages:
        raise SystemExit(f"the text filled only {len(reader.pages)} pages")
    writer = pypdf.PdfWriter()
    for page in reader.pages[:pages]:
        writer.add_page(page)
    writer.add_metadata({"/Title": "Bench book"})
    with path.open("wb") as f:
        writer.write(f)


def make_docx(path: Path, story: list[tuple[str, str]]) -> None:
    import docx

    d = docx.Document()
    d.core_properties.title = "Bench book"
    for kind, text in story:
        d.add_heading(text, 1) if kind == "heading" else d.add_paragraph(text)
    d.save(str(path))


def make_epub(path: Path, story: list[tuple[str, str]]) -> None:
    from xml.sax.saxutils import escape

    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("bench-book")
    book.set_title("Bench book")
    book.set_language("en")
    chapters, html = [], []

    def close() -> None:
        if html:
            ch = epub.EpubHtml(title=f"Part {len(chapters) + 1}", file_name=f"part_{len(chapters) + 1:03}.xhtml")
            ch.content = "<html><body>" + "".join(html) + "</body></html>"
            book.add_item(ch)
            chapters.append(ch)
            html.clear()

    for kind, text in story:
        if kind == "heading":
            close()
            html.append(f"<h1>{escape(text)}</h1>")
        else:
            html.append(f"<p>{escape(text)}</p>")
    close()
    book.toc = tuple(chapters)
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)


def _time(path: Path, label: str) -> None:
    data = path.read_bytes()
    ticks: list[float] = []
    t0 = time.perf_counter()
    doc = convert_document(
        data, path.name, max_bytes=200_000_000, progress=lambda d, t: ticks.append(time.perf_counter())
    )
    dt = time.perf_counter() - t0
    pages = len(doc.pages)
    rate = f"{pages / dt:8,.0f} pages/s" if pages else " " * 15
    print(
        f"{label:<5} {len(data) / 1e6:6.2f} MB  {dt:6.2f} s  {rate}  {len(doc.text) / dt / 1e6:5.2f} M chars/s  "
        f"{len(doc.text):,} chars, {len(doc.headings)} headings, {len(ticks)} progress calls"
    )


def _compare(path: Path) -> None:
    """Time the PDF text extractors considered in docs/intake.md, those that are installed."""
    data = path.read_bytes()

    def pypdf_text():
        import pypdf

        return [p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages]

    def pdfminer_text():
        from pdfminer.high_level import extract_text

        return extract_text(io.BytesIO(data))

    def markitdown_text():
        from markitdown import MarkItDown

        return MarkItDown().convert_stream(io.BytesIO(data), file_extension=".pdf").text_content

    for name, fn in [("pypdf", pypdf_text), ("pdfminer.six", pdfminer_text), ("markitdown", markitdown_text)]:
        try:
            t0 = time.perf_counter()
            fn()
            print(f"  {name:<13} {time.perf_counter() - t0:6.2f} s (plain text, no paragraphs or pages)")
        except ImportError:
            print(f"  {name:<13} not installed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument(
        "--compare", action="store_true", help="also time pypdf / pdfminer.six / markitdown if installed"
    )
    args = parser.parse_args()
    paras = _paragraphs()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        story = _story(paras, args.pages)
        make_pdf(folder / "book.pdf", story, args.pages)
        make_docx(folder / "book.docx", story)
        make_epub(folder / "book.epub", story)
        took = time.perf_counter() - t0
        print(f"generated {args.pages}-page PDF, DOCX and EPUB in {took:.1f} s ({os.cpu_count()} CPUs)")
        for name in ("pdf", "docx", "epub"):
            _time(folder / f"book.{name}", name.upper())
        if args.compare:
            _compare(folder / "book.pdf")


if __name__ == "__main__":
    main()
