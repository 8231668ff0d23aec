"""PDF to paragraphs: PDFium's text lines, laid out into paragraphs and headings with page offsets.

PDFium (through ``pypdfium2``) gives each page's text as lines in reading order. A line's box
and font size then decide, without any model: page numbers and running headers/footers are
dropped, headings come from the PDF's bookmarks (else from a larger font), and lines are
joined into paragraphs. The rules and their limits are in docs/intake.md.
"""

from __future__ import annotations

import hashlib
import re
import statistics
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass

from mmos_core.text.document_text import ConvertedDocument, Progress, TextBuilder, clean_text
from mmos_core.text.errors import IntakeError

__all__ = ["convert_pdf"]

# PDFium is not thread-safe, not even across documents, and Streamlit runs sessions in threads.
_PDFIUM_LOCK = threading.Lock()

_BULLET = re.compile(r"^[•◦▪▫‣∙●○■□–—*]\s")
# A line that is only a page number: "12", "- 12 -", "Page 12", "12 of 300", "xiv" (front matter).
_PAGE_NUMBER = re.compile(r"[-–—\s]*(?:(?i:page)\s*)?(?:\d{1,4}|[ivxlcdm]{1,7})(?:\s*(?i:of|/)\s*\d{1,4})?[-–—\s]*")
# What may stand before a bookmark's title on its heading line: "2.1 ", "A ", "Chapter IV: ".
_SECTION_PREFIX = re.compile(
    r"(?:[\dA-Z]{1,3}(?:\.\d{1,3})*\.?|(?:chapter|part|section|appendix)\s+\S{1,6}[:.]?)\s+", re.I
)
_TERMINAL = re.compile(r"[.!?:;\"”’)\]]$")
_FILENAME_TITLE = re.compile(r"\.(docx?|pdf|tex|dvi|rtf|indd)$|^untitled|^microsoft word", re.I)
_LOW_TEXT = 20  # non-space characters; a page with fewer and an image is taken as scanned


@dataclass
class _Line:
    text: str
    # PDFium's "loose" character boxes (font ascent to descent), so that "q" and "M" share a top.
    x0: float  # left edge of the first character, points from the page's left
    x1: float  # right edge of the last character
    top: float  # top of the first character's box, points from the page's bottom (PDF space: up is larger)
    size: float  # font size in points, rounded to 0.5
    page: int  # 1-based
    level: int | None = None  # heading level once decided


def convert_pdf(data: bytes, filename: str, max_pages: int | None, report: Progress) -> ConvertedDocument:
    """Convert PDF bytes; called by :func:`mmos_core.text.documents.convert_document`.

    ``report(done_pages, total_pages)`` is called about every 1 % of the pages. Raises
    :class:`IntakeError` with reason ``"encrypted"``, ``"corrupt"``, ``"too_large"`` (over
    ``max_pages``) or ``"scanned"`` (no usable text layer).
    """
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as e:
            if e.err_code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
                raise IntakeError(
                    "encrypted",
                    f"“{filename}” is protected by a password; open it with the password, save or print it "
                    "to a new PDF without protection, and add that.",
                ) from None
            raise _corrupt(filename) from None
        try:
            total = len(pdf)
            if total == 0:
                raise _corrupt(filename)
            if max_pages is not None and total > max_pages:
                raise IntakeError(
                    "too_large",
                    f"“{filename}” has {total:,} pages, over the limit of {max_pages:,}; "
                    "split it into parts and add them one by one.",
                )
            meta_title = clean_text(pdf.get_metadata_dict().get("Title") or "").strip()
            outline = _outline(pdf)
            pages: list[list[_Line]] = []
            image_pages: list[int] = []
            step = -(-total // 100)  # ceil: at most ~100 calls whatever the length
            report(0, total)
            for i in range(total):
                page = pdf[i]
                try:
                    lines = _page_lines(page, i + 1, pdfium_c)
                    if sum(len(ln.text.replace(" ", "")) for ln in lines) < _LOW_TEXT and any(
                        True for _ in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE])
                    ):
                        image_pages.append(i + 1)
                finally:
                    page.close()
                pages.append(lines)
                if (i + 1) % step == 0 or i + 1 == total:
                    report(i + 1, total)
        except pdfium.PdfiumError:
            raise _corrupt(filename) from None
        finally:
            pdf.close()

    _check_text_layer(pages, image_pages, filename)
    size = _body_size([ln for page in pages for ln in page])
    title = meta_title if meta_title and not _FILENAME_TITLE.search(meta_title) else _first_page_title(pages, size)
    # Bookmarked headings first: a chapter heading at the top of a page is not a running header.
    from_outline = _mark_outline_headings(pages, outline)
    _drop_running_lines(pages, size)
    if not from_outline:
        _mark_font_headings([ln for page in pages for ln in page], size)
    out = TextBuilder()
    _assemble(pages, size, out)
    warnings: tuple[str, ...] = ()
    if image_pages:
        shown = ", ".join(map(str, image_pages[:20])) + (", …" if len(image_pages) > 20 else "")
        warnings = (
            f"{len(image_pages)} page(s) (page {shown}) are images with little or no text, so their content "
            "is missing; run OCR on the PDF to include them.",
        )
    return ConvertedDocument(
        text=out.text(),
        format="pdf",
        sha256=hashlib.sha256(data).hexdigest(),
        pages=out.pages(total),
        headings=tuple(out.headings),
        title=title,
        warnings=warnings,
    )


def _corrupt(filename: str) -> IntakeError:
    return IntakeError(
        "corrupt",
        f"“{filename}” is damaged and cannot be read as a PDF; open it in a PDF viewer, save or print it "
        "to a new PDF, and add that.",
    )


def _outline(pdf) -> list[tuple[int, str, int]]:
    """Bookmarks as (level from 1, title, 1-based page); empty when the PDF has none."""
    out = []
    for bm in pdf.get_toc(max_depth=6):
        dest = bm.get_dest()
        index = dest.get_index() if dest is not None else None
        title = clean_text(bm.get_title() or "").strip()
        if index is not None and title:
            out.append((bm.level + 1, title, index + 1))
    return out


def _page_lines(page, number: int, pdfium_c) -> list[_Line]:
    """The page's non-empty text lines in PDFium's reading order, each with its box and font size."""
    textpage = page.get_textpage()
    try:
        n = textpage.count_chars()
        raw = textpage.get_text_range(0, n) if n > 0 else ""
        lines: list[_Line] = []
        pos = 0
        # PDFium ends lines with \r\n; a lone \r is a glyph mapped to a control code, dropped by clean_text.
        for piece in re.split(r"(\r\n|\n)", raw):
            text = "" if piece in ("\r\n", "\n") else clean_text(piece).strip()
            if text:
                first = min(pos + len(piece) - len(piece.lstrip()), n - 1)
                last = min(max(pos + len(piece.rstrip()) - 1, first), n - 1)
                left, _, _, top = textpage.get_charbox(first, loose=True)
                right = textpage.get_charbox(last, loose=True)[2]
                size = pdfium_c.FPDFText_GetFontSize(textpage, first)
                lines.append(_Line(text, left, right, top, round(size * 2) / 2, number))
            pos += len(piece)
        return lines
    finally:
        textpage.close()


def _check_text_layer(pages: list[list[_Line]], image_pages: list[int], filename: str) -> None:
    chars = "".join(ln.text for page in pages for ln in page).replace(" ", "")
    if image_pages and len(chars) < _LOW_TEXT * len(pages):
        raise IntakeError(
            "scanned",
            f"This PDF (“{filename}”) has no text layer (it is a scan or photographed pages); run OCR on it "
            "first (e.g. ocrmypdf, or “Recognize text” in your PDF software) and add the result.",
        )
    unreadable = sum(1 for c in chars if unicodedata.category(c) in ("Co", "Cc") or c == "\ufffd")
    if chars and unreadable > 0.3 * len(chars):
        raise IntakeError(
            "scanned",
            f"The text in “{filename}” cannot be read (its fonts have no character map); run OCR on it "
            "first and add the result.",
        )


def _first_page_title(pages: list[list[_Line]], body: float) -> str | None:
    """The line set in the largest font on page 1, when that is clearly larger than the body text."""
    lines = pages[0] if pages else []
    top = max(lines, key=lambda ln: ln.size, default=None)
    if top is None or top.size < 1.3 * body or sum(ln.size == top.size for ln in lines) > 3:
        return None
    return " ".join(ln.text for ln in lines if ln.size == top.size)[:300]


def _body_size(lines: list[_Line]) -> float:
    """The font size of most characters: the body text's."""
    weights: Counter[float] = Counter()
    for ln in lines:
        weights[ln.size] += len(ln.text)
    return weights.most_common(1)[0][0] if weights else 10.0


def _drop_running_lines(pages: list[list[_Line]], body: float) -> None:
    """Remove page numbers and running headers/footers from the top and bottom of pages.

    Candidates are the two highest and two lowest lines of a page that stand apart from the body
    (a gap of 1.4 font sizes), are not set larger than the body text and are not headings. One
    is dropped when it is only a page number, when it repeats on at least three pages (digits
    aside), or when it starts or ends with the printed page number (“Chapter 2: Naming 3”):
    a number whose distance to the physical page is the document's usual one.
    """

    def candidates(page: list[_Line]) -> list[int]:
        # By position, not by reading order: headers and footers are often drawn first.
        order = sorted(range(len(page)), key=lambda i: -page[i].top)
        n, out = len(order), []
        for r in sorted({r for r in (0, 1, n - 2, n - 1) if 0 <= r < n}):
            ln = page[order[r]]
            apart = (r < 2 and (r + 1 == n or ln.top - page[order[r + 1]].top > 1.4 * ln.size)) or (
                r >= n - 2 and (r == 0 or page[order[r - 1]].top - ln.top > 1.4 * ln.size)
            )
            if apart and ln.level is None and ln.size <= 1.05 * body:
                out.append(order[r])
        return out

    def key(line: _Line) -> str:
        return re.sub(r"\d+", "#", line.text.lower())

    def printed(line: _Line) -> int | None:
        m = re.fullmatch(r"(\d{1,4})\b.*|.*\b(\d{1,4})", line.text)
        return int(m.group(1) or m.group(2)) if m else None

    counts: Counter[str] = Counter()
    offsets: Counter[int] = Counter()
    for page in pages:
        counts.update({key(page[i]) for i in candidates(page)})
        offsets.update({page[i].page - n for i in candidates(page) if (n := printed(page[i])) is not None})
    offset, seen = offsets.most_common(1)[0] if offsets else (None, 0)
    for page in pages:
        drop = {
            i
            for i in candidates(page)
            if _PAGE_NUMBER.fullmatch(page[i].text)
            or (len(pages) >= 4 and counts[key(page[i])] >= 3)
            or (seen >= 3 and printed(page[i]) is not None and page[i].page - printed(page[i]) == offset)
        }
        page[:] = [ln for i, ln in enumerate(page) if i not in drop]


def _norm(text: str) -> str:
    return re.sub(r"\W+", " ", text.lower()).strip()


def _mark_outline_headings(pages: list[list[_Line]], outline: list[tuple[int, str, int]]) -> bool:
    """Mark the line each bookmark points at as a heading of its level; False when none matched."""
    found = False
    for level, title, page in outline:
        want = _norm(title)
        for ln in pages[page - 1] if want and 0 < page <= len(pages) else []:
            have = _norm(ln.text)
            prefix = ln.text[: len(ln.text) - len(title)]
            if ln.level is None and (have == want or (have.endswith(" " + want) and _SECTION_PREFIX.fullmatch(prefix))):
                ln.level, found = min(level, 6), True
                break
    return found


def _mark_font_headings(lines: list[_Line], body: float) -> None:
    """Short lines set clearly larger than the body text are headings; the larger, the higher."""
    big = [
        ln for ln in lines if ln.size >= 1.15 * body and len(ln.text) <= 150 and sum(c.isalpha() for c in ln.text) >= 2
    ]
    if not big or len(big) > 0.3 * len(lines):
        return  # no headings, or a layout where size says nothing (posters, slides)
    levels = {size: i + 1 for i, size in enumerate(sorted({ln.size for ln in big}, reverse=True))}
    for ln in big:
        ln.level = min(levels[ln.size], 6)


@dataclass
class _Layout:
    pitch: float  # usual distance between the tops of two lines of a paragraph, points
    spaced: bool  # paragraphs are set apart by extra space (then a gap, not a short line, ends one)
    margins: dict[int, float]  # page -> left edge of its body text
    rights: dict[int, float]  # page -> right edge of its body text


def _layout(pages: list[list[_Line]], body: float) -> _Layout:
    gaps = [
        a.top - b.top
        for page in pages
        for a, b in zip(page, page[1:], strict=False)
        if a.size == b.size == body and a.level is None and b.level is None and 0 < a.top - b.top < 3 * body
    ]
    pitch = statistics.median(gaps) if gaps else 1.2 * body
    spaced = sum(g > 1.45 * pitch for g in gaps) >= 0.02 * len(gaps) > 0
    margins: dict[int, float] = {}
    rights: dict[int, float] = {}
    for number, page in enumerate(pages, start=1):
        text_lines = [ln for ln in page if ln.level is None]
        if text_lines:
            margins[number] = min(ln.x0 for ln in text_lines)
            rights[number] = max(ln.x1 for ln in text_lines)
    return _Layout(pitch, spaced, margins, rights)


def _assemble(pages: list[list[_Line]], body: float, out: TextBuilder) -> None:
    """Join lines into paragraphs and add them, with their page marks, to ``out``."""
    layout = _layout(pages, body)
    para, marks, prev, first = "", [], None, None
    for ln in (ln for page in pages for ln in page):
        if prev is not None:
            if (
                ln.level is not None
                and prev.level == ln.level
                and ln.page == prev.page
                and 0 < prev.top - ln.top < 1.8 * ln.size
            ):
                para, prev = f"{para} {ln.text}", ln  # one heading set on two lines
                continue
            heading = prev.level is not None or ln.level is not None
            if heading or _new_paragraph(first, prev, ln, layout):
                out.add(para, level=prev.level, marks=marks)
                para, marks = "", []
        if not para:
            first = ln
        # "well-" + "known" keeps its hyphen without a space; PDFium has already removed soft hyphens.
        sep = "" if not para or re.search(r"[^\W\d_]-$", para) else " "
        if not para or ln.page != prev.page:
            marks.append((len(para) + len(sep), ln.page))
        para += sep + ln.text
        prev = ln
    if prev is not None:
        out.add(para, level=prev.level, marks=marks)


def _new_paragraph(first: _Line, prev: _Line, ln: _Line, layout: _Layout) -> bool:
    """Whether ``ln`` starts a new paragraph whose current one began with ``first`` and ends with ``prev``.

    Always on a bullet, a first-line indent, a jump up the page (next column) or, in a bulleted
    item, a line left of the bullet. On the same page: a gap of more than 1.45 line pitches,
    and, where paragraphs are not set apart by space, a short line before. Across a page break:
    a short line before (docs/intake.md, “Paragraphs”).
    """
    right = layout.rights.get(prev.page, prev.x1)
    width = right - layout.margins.get(prev.page, prev.x0)
    short = prev.x1 < right - 0.25 * width or (
        _TERMINAL.search(prev.text) is not None and prev.x1 < right - 3 * prev.size
    )
    if _BULLET.match(first.text):  # continuation lines hang under the item's text
        indented = False
        outdented = ln.x0 < first.x0 - 0.3 * ln.size
    else:
        indented = ln.x0 - layout.margins.get(ln.page, ln.x0) > 0.6 * ln.size and (
            ln.page != prev.page or ln.x0 - prev.x0 > 0.6 * ln.size
        )
        outdented = False
    if _BULLET.match(ln.text) or indented or outdented:
        return True
    if ln.page != prev.page:
        return short
    gap = prev.top - ln.top
    return gap > 1.45 * layout.pitch or gap < -ln.size or (short and not layout.spaced)
