"""The one sentence splitter: pysbd's English rules, with exact character offsets.

Chunking (cutting an over-long paragraph), grounding evidence windows (`services.inference_log`) and
the conversation detectors all split here, so "Mr.", "e.g.", "U.S.", "3.5" and "p.m." are treated the
same everywhere (pysbd: the "Golden Rules" of sentence boundary disambiguation).

Rules on top of pysbd (it is given one piece of text at a time):

* A few ordinary words are not abbreviations (`COMMON_WORDS_NOT_ABBREVIATIONS`: "me" is Maine
  to pysbd, so "He told me. I left." would be one sentence).
* A blank line (a paragraph break) always ends a sentence, and so does a line break before a list
  item (``- ``, ``* ``, ``• ``, ``2. ``, ``3) ``).
* A single line break is read as a space by default: source texts are often hard-wrapped, and pysbd
  would otherwise end a sentence at every line end. With ``lines=True`` (chat turns, where logs, lists
  and tables put one statement per line) a line break ends a sentence unless the next line begins in
  lower case (hard-wrapped prose goes on in lower case).
* pysbd never splits between a pair of quotes, brackets or ``--``, however far apart they are; one
  stray quote mark would then hide every boundary up to the next one, and a quoted letter or a
  footnote would be one "sentence". Only pairs up to `MAX_PROTECTED_CHARS` protect their content
  (the marks of longer ones are given to pysbd as spaces).
* Spans are trimmed of surrounding whitespace; together they cover every non-whitespace character of
  the text, in order, so nothing is lost between sentences. A piece pysbd returns altered (it
  occasionally does, and then cannot place it in the original) stays part of the sentence before it.

pysbd's cost grows quadratically with the length of what it is given (a 50,000-word paragraph: ~14 s
in one piece), so long text goes to it in windows of `WINDOW_CHARS` (~1.5-2 s for those 50,000
words). A boundary is kept only when `LOOKAHEAD_CHARS` follow it inside its window, and the next
window starts at the last kept boundary (inside a sentence longer than a window: at a space), so the
result equals one pass when no long quote / bracket pair spans a window (test_sentences).
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict

import pysbd
from pysbd.lang.english import English

__all__ = [
    "COMMON_WORDS_NOT_ABBREVIATIONS",
    "LOOKAHEAD_CHARS",
    "MAX_PROTECTED_CHARS",
    "SPAN_CACHE_SIZE",
    "WINDOW_CHARS",
    "sentence_spans",
    "split_sentences",
]

#: Characters given to pysbd at once (its cost grows quadratically with what it is given).
WINDOW_CHARS = 3000
#: Quotes, brackets and ``--`` pairs up to this long protect what they hold from splitting; longer
#: pairs (a quoted letter, a footnote, or a stray quote mark pairing with one far away) do not.
MAX_PROTECTED_CHARS = 400
#: Texts whose spans are remembered (LRU, keyed by a 128-bit BLAKE2b digest of the text): the detectors
#: split every candidate message again for each new message, grounding splits the same chunk for
#: each of its fragments. pysbd takes ~1 ms for a 150-character message, ~4 ms for 2,000 characters.
SPAN_CACHE_SIZE = 4096
#: A boundary found in a window is kept only with at least this much text after it in the window
#: (more than `MAX_PROTECTED_CHARS`, so a protecting pair around it is always seen whole).
LOOKAHEAD_CHARS = 500

# a blank line, or a line break before a list item ("- ", "* ", "• ", "2. ", "3) "; not a year "1859. ")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v\r]*\n\s*|[ \t\r]*\n(?=[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t])")
# a line break followed by a line that does not begin in lower case (lines=True only)
_LINE_BREAK = re.compile(r"[ \t\r]*\n(?![ \t]*[a-z])\s*")
_LINE_CHARS = re.compile(r"[\r\n]")
# the pairs inside which pysbd never splits, in the order it protects them (pysbd.between_punctuation)
_PAIRS = tuple(
    re.compile(p)
    for p in (
        r"(?<=\s)'(?:[^']|'[a-zA-Z])*'",
        r"(?<=\s)\u2018(?:[^\u2019]|\u2019[a-zA-Z])*\u2019",
        r'"[^"]*"',
        r"\[[^\]]*\]",
        r"\([^()]*\)",
        r"\u00ab[^\u00bb]*\u00bb",
        r"--[^-]*--",
        r"\u201c[^\u201d]*\u201d",
    )
)

#: Entries of pysbd's English abbreviation list that are ordinary words at the end of a sentence far
#: more often than abbreviations (state names, months): pysbd keeps "told me. I went" whole because
#: "me" (Maine) is listed. Removed as pysbd's author advises for custom rules (tweak `Abbreviation`).
COMMON_WORDS_NOT_ABBREVIATIONS = frozenset("me is man ill miss may mass ok con id ind min wash ore ken bart".split())


class _English(English):
    """pysbd's English rules without `COMMON_WORDS_NOT_ABBREVIATIONS` in its abbreviation list."""

    class Abbreviation(English.Abbreviation):
        ABBREVIATIONS = [a for a in English.Abbreviation.ABBREVIATIONS if a not in COMMON_WORDS_NOT_ABBREVIATIONS]


_local = threading.local()
_span_lock = threading.Lock()
_span_cache: OrderedDict[tuple, tuple[tuple[int, int], ...]] = OrderedDict()


def _segmenter() -> pysbd.Segmenter:
    # One per thread: Segmenter.segment stores the text on the instance, so it is not thread-safe.
    seg = getattr(_local, "segmenter", None)
    if seg is None:
        seg = pysbd.Segmenter(language="en", clean=False, char_span=True)
        seg.language_module = _English
        _local.segmenter = seg
    return seg


def sentence_spans(text: str, *, lines: bool = False) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of ``text``, in order.

    Args:
        text: any text (English rules).
        lines: False (default): single line breaks are spaces (prose, hard-wrapped sources).
            True: a line break also ends a sentence unless the next line begins in lower case
            (chat turns: logs, lists, tables).

    Returns:
        Non-overlapping spans with ``text[start:end]`` a sentence without surrounding whitespace;
        ``[]`` for empty or whitespace-only text; text without a final punctuation mark still
        gives its last sentence. Never raises on str input. Results are cached (`SPAN_CACHE_SIZE`).
    """
    key = (
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest(),
        lines, WINDOW_CHARS, MAX_PROTECTED_CHARS, LOOKAHEAD_CHARS,
    )
    with _span_lock:
        cached = _span_cache.get(key)
        if cached is not None:
            _span_cache.move_to_end(key)
            return list(cached)
    spans = _spans(text, lines)
    with _span_lock:
        _span_cache[key] = tuple(spans)
        while len(_span_cache) > SPAN_CACHE_SIZE:
            _span_cache.popitem(last=False)
    return spans


def _spans(text: str, lines: bool) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for a, b in _blocks(text, lines):
        starts = _block_starts(text, a, b)
        for s, e in zip(starts, [*starts[1:], b], strict=True):
            while e > s and text[e - 1].isspace():
                e -= 1
            if e > s:
                spans.append((s, e))
    return spans


def split_sentences(text: str, *, lines: bool = False) -> list[str]:
    """The sentences of ``text`` as strings: ``[text[a:b] for a, b in sentence_spans(text)]``.

    ``lines`` as in `sentence_spans`. Returns ``[]`` for empty or whitespace-only text.
    """
    return [text[a:b] for a, b in sentence_spans(text, lines=lines)]


def _blocks(text: str, lines: bool) -> list[tuple[int, int]]:
    """Spans of the pieces that are segmented separately: paragraphs, and with ``lines`` the line
    groups inside them; trimmed, non-empty."""
    out: list[tuple[int, int]] = []
    pattern = _LINE_BREAK if lines else _PARAGRAPH_BREAK
    pos = 0
    for m in pattern.finditer(text):
        add_trimmed(text, pos, m.start(), out)
        pos = m.end()
    add_trimmed(text, pos, len(text), out)
    return out


def add_trimmed(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    """Append `(start, end)` to `out` with surrounding whitespace trimmed off (nothing when only whitespace)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append((start, end))


def _block_starts(text: str, a: int, b: int) -> list[int]:
    """Sentence starts (absolute offsets, ascending, the first == ``a``) of the block ``text[a:b]``,
    which begins with a non-space character. Long blocks go through pysbd window by window: cost
    O(len / WINDOW_CHARS) windows, even for a block with no sentence end at all."""
    starts = [a]
    ws = a  # every window begins at a sentence start, or (after a sentence longer than a window) at a space
    while True:
        we = min(b, ws + WINDOW_CHARS)
        first = ws
        while text[first].isspace():  # a window begun at a space goes on with the sentence before it
            first += 1
        found = [s for s in _pysbd_starts(text, ws, we) if s > first]
        if we >= b:
            starts += found
            return starts
        # keep the boundaries with LOOKAHEAD_CHARS of this window after them
        limit = we - LOOKAHEAD_CHARS
        confirmed = [s for s in found if s <= limit]
        if confirmed:
            starts += confirmed
            ws = confirmed[-1]
        else:  # inside one very long sentence: go on from its last space before the limit
            ws = next((i for i in range(limit, ws, -1) if text[i].isspace()), limit)


def _pysbd_starts(text: str, a: int, b: int) -> list[int]:
    """Absolute starts of pysbd's sentences in ``text[a:b]``, strictly increasing; line breaks are
    given to pysbd as spaces, and so are the marks of long pairs (`_mask_long_pairs`): same length,
    so offsets hold."""
    piece = _mask_long_pairs(_LINE_CHARS.sub(" ", text[a:b]))
    out: list[int] = []
    for span in _segmenter().segment(piece):
        start = a + span.start
        while start < b and text[start].isspace():
            start += 1
        # an opening mark masked just before the sentence belongs to it ("[Footnote 1: ...")
        while start > a and piece[start - a - 1] == " " and not text[start - 1].isspace():
            start -= 1
        if start < b and (not out or start > out[-1]):
            out.append(start)
    return out


def _mask_long_pairs(piece: str) -> str:
    """``piece`` with the marks of every quote / bracket / ``--`` pair longer than `MAX_PROTECTED_CHARS`
    replaced by spaces (same length), so pysbd splits the sentences inside them."""
    for pattern in _PAIRS:
        long = [m.span() for m in pattern.finditer(piece) if m.end() - m.start() > MAX_PROTECTED_CHARS]
        if not long:
            continue
        chars = list(piece)
        for start, end in long:
            width = 2 if chars[start] == "-" else 1
            chars[start : start + width] = " " * width
            chars[end - width : end] = " " * width
        piece = "".join(chars)
    return piece
