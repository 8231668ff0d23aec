"""Intake: turn an uploaded file or pasted text into the text stored as a source.

Everything here is pure Python and refuses bad input with :class:`IntakeError`, whose
message is written for the analyst (it is shown as-is in the UI and CLI).

Subtitle files (SRT, WebVTT) are parsed with ``webvtt-py`` and laid out as one line per
cue, ``"Speaker: text"`` when a speaker is known; each cue's span in that text is kept
so that chunking never cuts a cue and quotes can be labelled with a timestamp.

Documents (PDF, DOCX, HTML, EPUB) are converted by :mod:`mmos_core.text.documents`
(docs/intake.md); their page starts, headings and the original file's SHA-256 travel with
the text in :class:`ParsedSource` so that the source can keep them and locations can name pages.
"""

from __future__ import annotations

import codecs
import dataclasses
import html
import io
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from mmos_core.text.document_text import Progress
from mmos_core.text.documents import DOCUMENT_EXTENSIONS, convert_document
from mmos_core.text.errors import IntakeError

__all__ = [
    "ACCEPTED_EXTENSIONS",
    "Cue",
    "IntakeError",
    "ParsedSource",
    "document_metadata",
    "first_words",
    "parse_pasted",
    "parse_upload",
]

ACCEPTED_EXTENSIONS: dict[str, str] = {
    ".txt": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".srt": "srt",
    ".vtt": "vtt",
    **DOCUMENT_EXTENSIONS,  # .pdf .docx .html .htm .xhtml .epub (docs/intake.md)
}

_ACCEPTED_HUMAN = (
    "plain text (.txt), Markdown (.md, .markdown), SRT (.srt), WebVTT (.vtt), "
    "PDF (.pdf), Word (.docx), web pages (.html, .htm) and EPUB (.epub)"
)

# Checked before decoding: these formats are the usual wrong uploads (a PDF or Word
# file instead of its text), and naming them tells the analyst what to do instead.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF file"),
    (b"PK\x03\x04", "a ZIP archive (or a Word/OpenDocument file, which is one)"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office document (.doc/.xls)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"{\\rtf", "an RTF document"),
)

# C0 controls and DEL, except \t \n \f \r.
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_CONTROL_RATIO_LIMIT = 0.10

_SRT_TIMING = re.compile(r"^\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}\s*-->\s*\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}(\s|$)")

# A leading "NAME:" in a cue is taken as the speaker only when it looks like a name
# (one to four capitalised words), so "Well: it was..." style text is not misread
# more often than necessary and times like "10:30" never are.
_SPEAKER_PREFIX = re.compile(
    r"^(?P<name>[A-Z][\w.'’\-]{0,30}(?: [A-Z][\w.'’\-]{0,30}){0,3}):\s+(?P<text>\S.*)$",
    re.DOTALL,
)


@dataclass(frozen=True)
class Cue:
    """One subtitle cue placed in the built transcript text.

    ``char_start``/``char_end`` delimit the cue's spoken text (without the
    ``"Speaker: "`` prefix) in :attr:`ParsedSource.text`; ``start``/``end`` are
    ``"HH:MM:SS.mmm"``; ``speaker`` is ``None`` when unknown.
    """

    char_start: int
    char_end: int
    start: str
    end: str
    speaker: str | None


@dataclass(frozen=True)
class ParsedSource:
    """Normalised source text ready to store.

    ``content_format`` is one of ``"text"``, ``"markdown"``, ``"srt"``, ``"vtt"``,
    ``"pasted"``, ``"pdf"``, ``"docx"``, ``"html"``, ``"epub"``; ``cues`` is a tuple for SRT/VTT
    and ``None`` otherwise; ``word_count`` counts whitespace-separated tokens of ``text``.

    Documents only (else the defaults): ``original_sha256`` is the hex SHA-256 of the uploaded
    file's bytes (not of ``text``); ``pages`` is ``((char_start, page_number), ...)`` in text
    order, 1-based physical PDF pages (empty for DOCX/HTML/EPUB); ``headings`` is
    ``((char_start, level 1-6, title), ...)``; ``title`` the document's own title or ``None``;
    ``warnings`` sentences about missing content (e.g. image-only pages).
    """

    text: str
    content_format: str
    cues: tuple[Cue, ...] | None
    word_count: int
    original_sha256: str | None = None
    pages: tuple[tuple[int, int], ...] = ()
    headings: tuple[tuple[int, int, str], ...] = ()
    title: str | None = None
    warnings: tuple[str, ...] = ()


def document_metadata(parsed: ParsedSource) -> dict[str, Any]:
    """What a document source keeps in ``Source.metadata_`` (docs/intake.md, "Page numbers as locations").

    Returns ``{}`` for text, Markdown, subtitles and pasted text; for a document
    ``{"format", "original_sha256", "pages": [[char_start, page], ...], "headings":
    [[char_start, level, title], ...], "title", "warnings": [...]}`` (JSON-ready lists).
    """
    if parsed.original_sha256 is None:
        return {}
    return {
        "format": parsed.content_format,
        "original_sha256": parsed.original_sha256,
        "pages": [list(p) for p in parsed.pages],
        "headings": [list(h) for h in parsed.headings],
        "title": parsed.title,
        "warnings": list(parsed.warnings),
    }


def parse_upload(
    filename: str,
    data: bytes,
    *,
    max_bytes: int,
    max_document_bytes: int | None = None,
    max_pages: int | None = None,
    progress: Progress | None = None,
) -> ParsedSource:
    """Decode, check and normalise an uploaded file.

    The format comes from the extension of ``filename`` (see ``ACCEPTED_EXTENSIONS``).
    ``max_bytes`` bounds ``len(data)`` of a text file, measured before decoding, and the UTF-8
    size of a document's converted text. A PDF, DOCX, HTML or EPUB file is converted by
    :func:`mmos_core.text.documents.convert_document`: ``max_document_bytes`` (default
    ``max_bytes``) bounds the file, ``max_pages`` a PDF's pages, and ``progress(done, total)``
    is called with pages (PDF) or chapters (EPUB) while it converts.

    Raises :class:`IntakeError` with reason ``"format"`` (unknown extension or a
    malformed subtitle file), ``"empty"``, ``"too_large"``, ``"binary"`` or
    ``"encoding"`` (only UTF-8, with or without BOM, and UTF-16 with BOM are read); for
    documents also ``"encrypted"``, ``"scanned"`` or ``"corrupt"`` (docs/intake.md, "Refusals").
    """
    suffix = PurePath(filename or "").suffix.lower()
    content_format = ACCEPTED_EXTENSIONS.get(suffix)
    if content_format is None:
        shown = f"“{suffix}”" if suffix else "no extension"
        raise IntakeError(
            "format",
            f"The file “{filename}” has {shown}; accepted are {_ACCEPTED_HUMAN} files.",
        )
    if suffix in DOCUMENT_EXTENSIONS:
        return _parse_document(filename, data, max_bytes, max_document_bytes or max_bytes, max_pages, progress)
    _check_size(len(data), max_bytes, what="file")
    if not data.strip():
        raise IntakeError("empty", f"The file “{filename}” is empty.")

    text = _decode(data)
    text = _normalise_newlines(text)
    if not text.strip():
        raise IntakeError("empty", f"The file “{filename}” contains only whitespace.")

    if content_format in ("srt", "vtt"):
        return _parse_subtitles(text, content_format, filename)
    return ParsedSource(text=text, content_format=content_format, cues=None, word_count=_word_count(text))


def parse_pasted(text: str, *, max_bytes: int) -> ParsedSource:
    """Check and normalise text pasted into the UI (``content_format="pasted"``).

    ``max_bytes`` bounds the UTF-8 size of ``text``. Raises :class:`IntakeError` with
    reason ``"empty"``, ``"too_large"`` or ``"binary"`` (NUL or many control characters).
    """
    _check_size(len(text.encode("utf-8", errors="surrogatepass")), max_bytes, what="pasted text")
    if not text.strip():
        raise IntakeError("empty", "The pasted text is empty.")
    _check_control_chars(text)
    text = _normalise_newlines(text)
    return ParsedSource(text=text, content_format="pasted", cues=None, word_count=_word_count(text))


def _parse_document(
    filename: str, data: bytes, max_text_bytes: int, max_file_bytes: int, max_pages: int | None, progress: Progress | None
) -> ParsedSource:
    doc = convert_document(data, filename, max_bytes=max_file_bytes, max_pages=max_pages, progress=progress)
    _check_size(len(doc.text.encode("utf-8")), max_text_bytes, what=f"text of “{filename}”")
    return ParsedSource(
        text=doc.text,
        content_format=doc.format,
        cues=None,
        word_count=_word_count(doc.text),
        original_sha256=doc.sha256,
        pages=doc.pages,
        headings=doc.headings,
        title=doc.title,
        warnings=doc.warnings,
    )


# --- checks -------------------------------------------------------------------------


def _fmt_mb(n: int) -> str:
    mb = n / 1_000_000
    return f"{mb:,.1f} MB" if mb >= 0.1 else f"{mb:.3f} MB"


def _check_size(size: int, max_bytes: int, *, what: str) -> None:
    if size > max_bytes:
        raise IntakeError(
            "too_large",
            f"The {what} is {_fmt_mb(size)} ({size:,} bytes), over the limit of "
            f"{_fmt_mb(max_bytes)} ({max_bytes:,} bytes). Split it into smaller parts and add them one by one.",
        )


def _binary_refusal(kind: str) -> IntakeError:
    return IntakeError(
        "binary",
        f"This looks like {kind}; only plain text, Markdown, SRT and VTT are accepted. "
        "Export or copy its text and add that instead (PDF, Word and EPUB files are read when "
        "their name ends in .pdf, .docx or .epub).",
    )


def _check_control_chars(text: str) -> None:
    if "\x00" in text:
        raise _binary_refusal("a binary file (it contains NUL bytes)")
    bad = sum(1 for _ in _BAD_CONTROL.finditer(text))
    if text and bad / len(text) > _CONTROL_RATIO_LIMIT:
        raise _binary_refusal("a binary file (it is full of control characters)")


def _decode(data: bytes) -> str:
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            raise _binary_refusal(kind)

    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")  # consumes the BOM and picks the byte order from it
        except UnicodeDecodeError as e:
            raise IntakeError(
                "encoding",
                f"The file starts with a UTF-16 byte-order mark but is not valid UTF-16 "
                f"(at byte position {e.start:,}). Save it as UTF-8 and add it again.",
            ) from None
        _check_control_chars(text)
        return text

    # Byte-level check first: random binary data is refused as binary, not as a
    # confusing encoding error about one arbitrary byte.
    _check_control_chars(data.decode("latin-1"))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bad = e.object[e.start]
        raise IntakeError(
            "encoding",
            f"The file is not valid UTF-8 (byte 0x{bad:02X} at position {e.start:,}). "
            "Save it as UTF-8 and add it again.",
        ) from None


def first_words(parsed: ParsedSource, max_words: int) -> ParsedSource:
    """The source cut after the paragraph (or cue) in which its `max_words`-th word falls.

    Used to run a long book on its opening only; cues, pages and headings past the cut are dropped
    (a document keeps its `original_sha256`: it is still the same file).

    Raises:
        ValueError: `max_words` < 1.
    """
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    if parsed.word_count <= max_words:
        return parsed
    words = 0
    end = len(parsed.text)
    for match in re.finditer(r"\S+", parsed.text):
        words += 1
        if words == max_words:
            nxt = parsed.text.find("\n\n", match.end())
            if parsed.cues:
                nxt = parsed.text.find("\n", match.end())
            end = len(parsed.text) if nxt == -1 else nxt
            break
    text = parsed.text[:end].rstrip()
    cues = tuple(c for c in parsed.cues if c.char_end <= len(text)) if parsed.cues else None
    return dataclasses.replace(
        parsed,
        text=text,
        cues=cues,
        word_count=_word_count(text),
        pages=tuple(p for p in parsed.pages if p[0] < len(text)) or parsed.pages[:1],
        headings=tuple(h for h in parsed.headings if h[0] < len(text)),
    )


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip()


def _word_count(text: str) -> int:
    return len(text.split())


# --- subtitles ----------------------------------------------------------------------


def _parse_subtitles(text: str, content_format: str, filename: str) -> ParsedSource:
    label = "SRT" if content_format == "srt" else "WebVTT"
    try:
        if content_format == "srt":
            captions = list(webvtt.from_buffer(io.StringIO(text), format="srt"))
        else:
            # strict: report malformed cue blocks instead of silently dropping them.
            captions = list(webvtt.from_buffer(io.StringIO(text), format="vtt", strict=True))
    except (MalformedFileError, MalformedCaptionError, ValueError) as e:
        hint = (
            "An SRT file is a series of blocks: a number, a line like "
            "“00:00:01,000 --> 00:00:04,000”, then the text, then a blank line."
            if content_format == "srt"
            else "A WebVTT file starts with a line “WEBVTT”, then blocks with a line like "
            "“00:00:01.000 --> 00:00:04.000” followed by the text."
        )
        raise IntakeError("format", f"“{filename}” could not be read as {label}: {e}. {hint}") from None

    # webvtt-py's SRT reader has no strict mode and skips blocks whose timing line it
    # cannot read; a cue lost silently would be a hole in the transcript.
    if content_format == "srt":
        for lineno, line in enumerate(text.split("\n"), start=1):
            if "-->" in line and not _SRT_TIMING.match(line):
                raise IntakeError(
                    "format",
                    f"“{filename}” could not be read as SRT: line {lineno:,} (“{line.strip()[:80]}”) is not a "
                    "valid timing line like “00:00:01,000 --> 00:00:04,000”. Fix it and add the file again.",
                )
    if not captions:
        raise IntakeError("format", f"“{filename}” could not be read as {label}: no cues were found in it.")

    parts: list[str] = []
    cues: list[Cue] = []
    pos = 0
    for cap in captions:
        body = " ".join(line.strip() for line in html.unescape(cap.text).split("\n") if line.strip())
        if not body:
            continue
        speaker = cap.voice.strip() if cap.voice else None
        if speaker is None:
            m = _SPEAKER_PREFIX.match(body)
            if m:
                speaker, body = m.group("name").strip(), m.group("text").strip()
        if parts:
            parts.append("\n")
            pos += 1
        prefix = f"{speaker}: " if speaker else ""
        parts.append(prefix + body)
        start = pos + len(prefix)
        pos = start + len(body)
        cues.append(Cue(char_start=start, char_end=pos, start=cap.start, end=cap.end, speaker=speaker))

    if not cues:
        raise IntakeError("empty", f"“{filename}” has cues but none of them contains any text.")
    built = "".join(parts)
    return ParsedSource(text=built, content_format=content_format, cues=tuple(cues), word_count=_word_count(built))
