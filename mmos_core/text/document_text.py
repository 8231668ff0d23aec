"""The shape of a converted document and how its text is put together (docs/intake.md).

Shared by :mod:`mmos_core.text.documents` (DOCX, HTML, EPUB and the public entry point) and
:mod:`mmos_core.text.pdf_text` (PDF layout), which both import this module and not each other.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["ConvertedDocument", "Progress", "TextBuilder", "clean_text"]

Progress = Callable[[int, int], None]  # progress(done, total): pages (PDF) or chapters (EPUB)

_LIGATURES = str.maketrans({"ﬀ": "ff", "ﬁ": "fi", "ﬂ": "fl", "ﬃ": "ffi", "ﬄ": "ffl", "ﬅ": "st", "ﬆ": "st"})
# \ufffe: PDFium's mark for a hyphen it removed at a line end; \xad soft hyphen; \u200b zero width.
_DROP = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffe\xad\u200b\ufeff]")
_SPACES = re.compile(r"[ \t\xa0\u2000-\u200a\u202f\u205f\u3000]+")


@dataclass(frozen=True)
class ConvertedDocument:
    """A converted document.

    ``text``: paragraphs separated by ``"\\n\\n"``, headings as their own paragraphs.
    ``format``: ``"pdf"``, ``"docx"``, ``"html"`` or ``"epub"``. ``sha256``: hex digest of the
    original bytes. ``pages`` (PDF only, else empty): ``(char_start, page_number)`` in text
    order, one per page, 1-based physical page numbers; a page without text starts where the
    next page's text starts. ``headings``: ``(char_start, level, title)`` with level 1-6 and
    ``text[char_start:].startswith(title)``. ``title``: the document's title or ``None``.
    ``warnings``: sentences for the analyst about content that is missing (e.g. image-only pages).
    """

    text: str
    format: str
    sha256: str
    pages: tuple[tuple[int, int], ...] = ()
    headings: tuple[tuple[int, int, str], ...] = ()
    title: str | None = None
    warnings: tuple[str, ...] = ()

    def page_at(self, offset: int) -> int:
        """The 1-based page number holding character ``offset`` of ``text``.

        Raises ``ValueError`` if the document has no pages (not a PDF) or ``offset`` is
        outside ``0..len(text)``.
        """
        if not self.pages:
            raise ValueError(f"a {self.format} document has no pages")
        if not 0 <= offset <= len(self.text):
            raise ValueError(f"offset {offset} is outside the text (0..{len(self.text)})")
        starts = [s for s, _ in self.pages]
        return self.pages[max(bisect_right(starts, offset) - 1, 0)][1]


def clean_text(text: str) -> str:
    """NFC, ligatures spelt out, invisible and control characters dropped, spaces collapsed."""
    text = _DROP.sub("", unicodedata.normalize("NFC", text).translate(_LIGATURES))
    return _SPACES.sub(" ", text)


class TextBuilder:
    """Collects paragraphs into the final text, keeping offsets of headings and pages."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.headings: list[tuple[int, int, str]] = []
        self.page_starts: dict[int, int] = {}

    def add(self, text: str, *, level: int | None = None, marks: Iterable[tuple[int, int]] = ()) -> None:
        """Append paragraph ``text`` (already clean); ``marks`` are (offset in text, page)."""
        if not text:
            return
        start = self.length + (2 if self.parts else 0)
        self.parts.append(text)
        self.length = start + len(text)
        if level is not None:
            self.headings.append((start, min(max(level, 1), 6), text))
        for rel, page in marks:
            self.page_starts.setdefault(page, start + rel)

    def text(self) -> str:
        """The paragraphs joined by blank lines."""
        return "\n\n".join(self.parts)

    def pages(self, count: int) -> tuple[tuple[int, int], ...]:
        """``(char_start, page)`` for pages 1..``count``; a page without text starts where the next one does."""
        out: list[tuple[int, int]] = []
        nxt = self.length
        for page in range(count, 0, -1):
            nxt = min(self.page_starts.get(page, nxt), nxt)
            out.append((nxt, page))
        return tuple(reversed(out))
