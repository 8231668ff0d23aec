"""Document intake: PDF, DOCX, HTML and EPUB files turned into clean source text.

The text is paragraphs separated by blank lines, each heading a paragraph of its own, so the
chunker's paragraph units and the ``¶`` labels work on it as on a ``.txt`` source. Beside it:
where each PDF page starts (a character offset maps to a page number) and where each heading
starts. Libraries, limits and every refusal are explained in docs/intake.md.

PDF: ``pypdfium2`` (PDFium), laid out into paragraphs in :mod:`mmos_core.text.pdf_text`;
the result type and text helpers are in :mod:`mmos_core.text.document_text`.
DOCX: ``mammoth`` (tracked insertions kept, deletions dropped, footnotes kept). HTML:
``trafilatura`` (main text without navigation, footers, scripts). EPUB: read here with
``zipfile`` + ``lxml`` (EbookLib is AGPL). Nothing here uses the network.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePath
from urllib.parse import unquote

import lxml.html
from lxml import etree

from mmos_core.text.document_text import ConvertedDocument, Progress, TextBuilder, clean_text
from mmos_core.text.errors import IntakeError
from mmos_core.text.pdf_text import convert_pdf

__all__ = ["DOCUMENT_EXTENSIONS", "ConvertedDocument", "convert_document"]

DOCUMENT_EXTENSIONS: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".epub": "epub",
}

# ZIP containers (DOCX, EPUB) are checked on their central directory before anything is
# inflated; Python's zipfile never inflates a member past its declared size (docs/intake.md).
_ZIP_MAX_MEMBERS = 10_000
_ZIP_MAX_TOTAL = 256 * 2**20
_ZIP_MAX_RATIO = 200  # deflated XML is 5-30x; a run of zeros is ~1000x
_ZIP_RATIO_FLOOR = 2 * 2**20  # small members may compress absurdly well without harm


def convert_document(
    data: bytes,
    filename: str,
    *,
    max_bytes: int,
    max_pages: int | None = None,
    progress: Progress | None = None,
) -> ConvertedDocument:
    """Convert a PDF, DOCX, HTML or EPUB file (``data``, its name ``filename``) to clean text.

    The extension of ``filename`` picks the format (``DOCUMENT_EXTENSIONS``), except that a
    PDF, DOCX or EPUB is recognised by its content whatever its name. ``max_bytes`` bounds
    ``len(data)``; ``max_pages`` bounds a PDF's page count. ``progress(done, total)`` is called
    with pages (PDF; at most ~100 calls) or chapters (EPUB), and once as ``(1, 1)`` otherwise.

    Raises :class:`IntakeError` whose message is one sentence for the analyst, with reason
    ``"format"`` (unknown or mismatched type), ``"empty"``, ``"too_large"`` (bytes, pages, or
    a ZIP whose contents would inflate too far: a zip bomb), ``"encrypted"`` (password or
    DRM), ``"scanned"`` (a PDF without a usable text layer) or ``"corrupt"``.
    """
    if len(data) > max_bytes:
        raise IntakeError(
            "too_large",
            f"The file is {_mb(len(data))} ({len(data):,} bytes), over the limit of {_mb(max_bytes)} "
            f"({max_bytes:,} bytes); split it into smaller parts and add them one by one.",
        )
    if not data.strip():
        raise IntakeError("empty", f"The file “{filename}” is empty.")
    kind = _sniff(data, filename)
    report = progress or (lambda done, total: None)
    if kind == "pdf":
        doc = convert_pdf(data, filename, max_pages, report)
    elif kind == "docx":
        doc = _convert_docx(data, filename)
    elif kind == "epub":
        doc = _convert_epub(data, filename, report)
    else:
        doc = _convert_html(data, filename)
    if kind != "pdf" and kind != "epub":
        report(1, 1)
    if not doc.text.strip():
        raise IntakeError("empty", f"No text was found in “{filename}”; check that it is the right file.")
    return doc


# --- format and common helpers ---------------------------------------------------------


def _mb(n: int) -> str:
    return f"{n / 1_000_000:,.1f} MB"


def _sniff(data: bytes, filename: str) -> str:
    suffix = PurePath(filename or "").suffix.lower()
    declared = DOCUMENT_EXTENSIONS.get(suffix)
    if declared is None:
        shown = f"“{suffix}”" if suffix else "no extension"
        raise IntakeError(
            "format",
            f"The file “{filename}” has {shown}; documents are accepted as .pdf, .docx, .html/.htm and .epub.",
        )
    head = data[:1024]
    if b"%PDF-" in head:  # the PDF header may follow up to 1 KB of junk
        return "pdf"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise IntakeError(
            "encrypted" if declared == "docx" else "format",
            f"“{filename}” is a password-protected Word file or an old Word 97-2003 (.doc) file; "
            "open it in Word, remove the password or save it as .docx, and add that.",
        )
    if data.startswith(b"PK\x03\x04"):
        names = _zip_names(data)
        if not names:
            raise IntakeError(
                "corrupt", f"“{filename}” is a damaged ZIP container and cannot be opened; export or download it again."
            )
        if "word/document.xml" in names:
            return "docx"
        if "META-INF/container.xml" in names:
            return "epub"
        raise IntakeError(
            "format", f"“{filename}” is a ZIP archive but neither a Word (.docx) document nor an EPUB book."
        )
    if declared in ("pdf", "docx", "epub"):
        raise IntakeError(
            "corrupt" if declared == "pdf" else "format",
            f"“{filename}” is not a valid {declared.upper()} file (it does not start like one); "
            "check that it downloaded completely, or export it again.",
        )
    return "html"


def _zip_names(data: bytes) -> set[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return set(zf.namelist())
    except (zipfile.BadZipFile, ValueError, EOFError):
        return set()


# --- ZIP containers ----------------------------------------------------------------------


def _open_zip(data: bytes, filename: str, label: str) -> zipfile.ZipFile:
    """Open a DOCX/EPUB after checking its directory: member count, declared sizes and ratios."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise IntakeError(
            "corrupt", f"“{filename}” is damaged and cannot be opened as {label}; export or download it again."
        ) from None
    total = sum(i.file_size for i in infos)
    bomb = (
        len(infos) > _ZIP_MAX_MEMBERS
        or total > _ZIP_MAX_TOTAL
        or any(i.file_size > _ZIP_RATIO_FLOOR and i.file_size > _ZIP_MAX_RATIO * max(i.compress_size, 1) for i in infos)
    )
    if bomb:
        zf.close()
        raise IntakeError(
            "too_large",
            f"“{filename}” would unpack to {_mb(total)} from {_mb(len(data))} ({len(infos):,} parts), far more than "
            f"{label} holds; it looks like a zip bomb and was not opened. Export the document again.",
        )
    if any(i.flag_bits & 0x1 for i in infos):
        zf.close()
        raise IntakeError("encrypted", f"“{filename}” is password-protected; remove the password and add it again.")
    return zf


def _xml(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    return etree.fromstring(data, parser)


# --- DOCX --------------------------------------------------------------------------------

_DOCX_STYLE_MAP = "p[style-name='Title'] => h1:fresh\np[style-name='Subtitle'] => h2:fresh"


def _convert_docx(data: bytes, filename: str) -> ConvertedDocument:
    import mammoth
    import mammoth.images

    with _open_zip(data, filename, "a Word document") as zf:
        title = None
        if "docProps/core.xml" in zf.namelist():
            try:
                title = _xml(zf.read("docProps/core.xml")).findtext("{http://purl.org/dc/elements/1.1/}title")
            except etree.XMLSyntaxError:
                title = None
    try:
        # Images are never inflated or inlined: only their alt text could matter, and it is dropped.
        result = mammoth.convert_to_html(
            io.BytesIO(data),
            style_map=_DOCX_STYLE_MAP,
            convert_image=mammoth.images.img_element(lambda image: {}),
            external_file_access=False,
        )
        root = lxml.html.fragment_fromstring(result.value or "<p></p>", create_parent="div")
    except Exception:  # mammoth raises KeyError/ValueError/XML errors on broken parts
        raise IntakeError(
            "corrupt",
            f"“{filename}” is damaged and cannot be read as a Word document; open it in Word, "
            "save it again as .docx, and add that.",
        ) from None
    out = TextBuilder()
    _walk_html(root, out)
    title = clean_text(title or "").strip() or next((h[2] for h in out.headings if h[1] == 1), None)
    return ConvertedDocument(
        text=out.text(),
        format="docx",
        sha256=hashlib.sha256(data).hexdigest(),
        headings=tuple(out.headings),
        title=title,
    )


# --- EPUB --------------------------------------------------------------------------------

_OPF = "{http://www.idpf.org/2007/opf}"
_FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}


def _convert_epub(data: bytes, filename: str, report: Progress) -> ConvertedDocument:
    broken = IntakeError(
        "corrupt", f"“{filename}” is damaged and cannot be read as an EPUB book; export or download it again."
    )
    with _open_zip(data, filename, "an EPUB book") as zf:
        try:
            _check_epub_drm(zf, filename)
            container = _xml(zf.read("META-INF/container.xml"))
            rootfile = next(container.iter("{*}rootfile")).get("full-path", "")
            opf = _xml(zf.read(rootfile))
            base = posixpath.dirname(rootfile)
            title = opf.findtext(".//{http://purl.org/dc/elements/1.1/}title")
            manifest = {
                item.get("id"): (item.get("href", ""), item.get("media-type", ""), item.get("properties", ""))
                for item in opf.iter(f"{_OPF}item")
            }
            spine = [manifest[ref.get("idref")] for ref in opf.iter(f"{_OPF}itemref") if ref.get("idref") in manifest]
            chapters = [
                posixpath.normpath(posixpath.join(base, unquote(href.split("#")[0])))
                for href, media, props in spine
                if media in ("application/xhtml+xml", "text/html") and "nav" not in props.split()
            ]
            out = TextBuilder()
            report(0, len(chapters))
            for i, path in enumerate(chapters):
                doc = lxml.html.document_fromstring(zf.read(path))
                body = doc.find("body")
                _walk_html(body if body is not None else doc, out)
                report(i + 1, len(chapters))
        except IntakeError:
            raise
        except (KeyError, StopIteration, etree.XMLSyntaxError, etree.ParserError, ValueError, zipfile.BadZipFile):
            raise broken from None
    title = clean_text(title or "").strip() or None
    return ConvertedDocument(
        text=out.text(),
        format="epub",
        sha256=hashlib.sha256(data).hexdigest(),
        headings=tuple(out.headings),
        title=title,
    )


def _check_epub_drm(zf: zipfile.ZipFile, filename: str) -> None:
    """Refuse DRM: any encrypted part except fonts scrambled by the EPUB font obfuscation."""
    if "META-INF/encryption.xml" not in zf.namelist() and "META-INF/rights.xml" not in zf.namelist():
        return
    drm = "META-INF/rights.xml" in zf.namelist()
    if not drm:
        for data in _xml(zf.read("META-INF/encryption.xml")).iter("{*}EncryptedData"):
            method = data.find("{*}EncryptionMethod")
            if method is None or method.get("Algorithm") not in _FONT_OBFUSCATION:
                drm = True
    if drm:
        raise IntakeError(
            "encrypted",
            f"“{filename}” is protected by DRM and its text cannot be read; use a DRM-free copy of the book.",
        )


# --- HTML --------------------------------------------------------------------------------

_TRAFILATURA_TAGS = {"list": "ul", "item": "li", "quote": "blockquote", "code": "pre", "row": "tr", "cell": "td"}


def _convert_html(data: bytes, filename: str) -> ConvertedDocument:
    import trafilatura

    try:
        doc = trafilatura.bare_extraction(
            data,
            include_comments=False,
            include_tables=True,
            include_images=False,
            include_links=False,
            include_formatting=False,
            with_metadata=True,
            deduplicate=False,
        )
    except Exception:  # lxml and charset errors surface from deep inside trafilatura
        doc = None
    out = TextBuilder()
    if doc is not None and doc.body is not None:
        # trafilatura's own XML: <head rend="h2">, <p>, <list><item>, <quote>, <code>, <table><row><cell>.
        for el in doc.body.iter():
            if el.tag == "head":
                rend = el.get("rend") or ""
                el.tag = rend if re.fullmatch(r"h[1-6]", rend) else "h2"
            elif el.tag == "lb":
                el.tag = "br"
            elif el.tag in _TRAFILATURA_TAGS:
                el.tag = _TRAFILATURA_TAGS[el.tag]
        _walk_html(doc.body, out)
    if not out.parts:
        raise IntakeError(
            "empty",
            f"No main text was found in “{filename}” (only navigation, scripts or an empty page); "
            "save the page again with its article shown, or copy and paste its text.",
        )
    title = next((h[2] for h in out.headings if h[1] == 1), None) or clean_text(doc.title or "").strip() or None
    return ConvertedDocument(
        text=out.text(),
        format="html",
        sha256=hashlib.sha256(data).hexdigest(),
        headings=tuple(out.headings),
        title=title,
    )


# --- HTML tree to paragraphs (DOCX via mammoth, EPUB chapters, trafilatura output) ----------------

_BLOCKS = {"address", "article", "aside", "blockquote", "body", "caption", "dd", "div", "dl", "dt", "figcaption"}
_BLOCKS |= {"figure", "footer", "header", "li", "main", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul"}
_SKIP = {"script", "style", "noscript", "template", "head", "nav", "svg", "math", "button", "form", "iframe", "object"}


@dataclass
class _Walk:
    out: TextBuilder
    buf: list[str] = field(default_factory=list)
    pre: int = 0
    prefix: str = ""  # a list item's "• " or "3. ", held until the item's first text

    def flush(self, level: int | None = None) -> None:
        text = "".join(self.buf)
        self.buf = []
        if self.pre:
            text = "\n".join(line for line in (clean_text(x).strip() for x in text.split("\n")) if line)
        else:
            text = clean_text(text.replace("\n", " ")).strip()
        if text:
            self.out.add(self.prefix + text if level is None else text, level=level)
            self.prefix = ""


def _walk_html(root: etree._Element, out: TextBuilder) -> None:
    """Append the paragraphs and headings of an HTML tree to ``out``."""
    walk = _Walk(out)
    try:
        _walk_element(root, walk)
    except RecursionError:
        raise IntakeError("corrupt", "The document is nested too deeply to be read; export it again.") from None
    walk.flush()


def _local(tag: object) -> str:
    return etree.QName(tag).localname.lower() if isinstance(tag, str) else ""


def _walk_element(el: etree._Element, walk: _Walk) -> None:
    tag = _local(el.tag)
    if tag in _SKIP or not tag:
        return
    href = el.get("href") or ""
    if tag == "a" and re.match(r"#(footnote|endnote)-ref-", href):
        return  # mammoth's "↑" link back from a note to its reference
    if re.fullmatch(r"h[1-6]", tag):
        walk.flush()
        walk.buf.append(" ".join("".join(el.itertext()).split()))
        walk.flush(level=int(tag[1]))
        return
    block = tag in _BLOCKS
    if block:
        walk.flush()
    if tag == "br":
        walk.buf.append("\n" if walk.pre else " ")
    walk.pre += tag == "pre"
    if el.text:
        walk.buf.append(el.text)
    number = int(el.get("start") or 1) if tag == "ol" and (el.get("start") or "1").isdigit() else 1
    for child in el:
        if tag in ("ol", "ul") and _local(child.tag) == "li":
            walk.prefix = f"{number}. " if tag == "ol" else "• "
            number += 1
        _walk_element(child, walk)
        if child.tail:
            walk.buf.append(child.tail)
    if block:
        walk.flush()
    walk.pre -= tag == "pre"
