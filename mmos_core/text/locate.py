"""Find where a quote from an LLM sits in the source text.

Three passes, cheapest first: exact substring; the same after normalisation (case,
whitespace, curly quotes and dashes, with "..." in the quote read as a gap); then fuzzy
alignment with ``rapidfuzz``. Offsets always point into the original source text.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from mmos_core.text.chunking import page_label, paragraph_number, paragraph_spans, short_time
from mmos_core.text.intake import Cue

__all__ = ["Location", "locate_quote", "normalise"]

# How far around the given window the fuzzy pass looks, in characters.
WINDOW_MARGIN = 500
# Below this many normalised characters a fuzzy hit says little (any short phrase
# matches somewhere), so short quotes must be found exactly.
MIN_FUZZY_CHARS = 12
# Pieces of a quote with "..." gaps must follow each other within this many characters.
MAX_GAP_CHARS = 2000

_CHAR_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...",
}
_GAP = re.compile(r"\s*\[?\s*\.\.\.+\s*\]?\s*")


@dataclass(frozen=True)
class Location:
    """Where a quote was found: ``source_text[char_start:char_end]``.

    ``score`` is 0–100; 100 means verbatim after whitespace/case/quote-mark/dash
    normalisation. ``label`` is the human-readable location: the start time of the cue
    (``"00:15:30"``) for transcripts, else ``"¶34, chars 12,034–12,150"`` (1-based
    paragraph; chars are the stored 0-based start and exclusive end offsets), with the page
    first for a PDF: ``"p. 12, ¶34, chars 12,034–12,150"`` (``"pp. 12–13, …"`` across a break).
    """

    char_start: int
    char_end: int
    score: float
    label: str


def normalise(s: str) -> tuple[str, list[int]]:
    """Case-fold ``s``, collapse whitespace runs to one space, map curly quotes to ASCII,
    dash runs (``—``, ``--``, with any spaces around them) to one ``-`` and ``…`` to ``...``.

    Returns the normalised string and, for each of its characters, the index in ``s``
    of the character it came from. Leading/trailing whitespace is dropped.
    """
    out: list[str] = []
    idx: list[int] = []
    pending_space = -1
    for i, ch in enumerate(s):
        if ch.isspace():
            if out and pending_space < 0:
                pending_space = i
            continue
        rep = _CHAR_MAP.get(ch, ch)
        if rep == "-":
            # "--", "—" and " — " are the same dash to a reader; spacing around dashes varies.
            pending_space = -1
            if out and out[-1] == "-":
                continue
        if pending_space >= 0 and not (out and out[-1] == "-"):
            out.append(" ")
            idx.append(pending_space)
        pending_space = -1
        for c in rep.casefold():
            out.append(c)
            idx.append(i)
    return "".join(out), idx


@lru_cache(maxsize=8)
def _normalised_source(text: str) -> tuple[str, tuple[int, ...]]:
    # Cached: one source is located against many quotes in a row.
    norm, idx = normalise(text)
    return norm, tuple(idx)


def locate_quote(
    source_text: str,
    quote: str,
    *,
    window: tuple[int, int] | None = None,
    cues: Sequence[Cue] | None = None,
    min_score: float = 85.0,
    pages: Sequence[Sequence[int]] | None = None,
) -> Location | None:
    """Find ``quote`` in ``source_text``; ``None`` if the best match scores below ``min_score``.

    ``window`` is ``(char_start, char_end)`` of where the quote is expected (usually its
    chunk): among several occurrences the one inside or nearest it wins, and the fuzzy
    pass only looks there (±500 chars); without it the fuzzy pass scans the whole text.
    ``cues`` (transcripts) switch the label to the start time of the cue at the match;
    ``pages`` (a PDF's ``(char_start, page_number)`` list, ``Source.metadata_["pages"]``) put
    the page in front of the paragraph (docs/intake.md, "Page numbers as locations").
    Never raises for odd input: an empty quote gives ``None``.
    """
    quote = quote.strip()
    if not quote or not source_text:
        return None

    # 1. exact
    hits = _find_all(source_text, quote)
    if hits:
        s = _pick(hits, len(quote), window)
        return _make(source_text, s, s + len(quote), 100.0, cues, pages)

    norm_src, idx = _normalised_source(source_text)
    norm_q = _strip_wrapping_quotes(normalise(quote)[0])
    pieces = [p for p in _GAP.split(norm_q) if p.strip()]
    if not pieces:
        return None

    # 2. normalised, with "..." as gaps
    span = _find_normalised(norm_src, idx, pieces, window)
    if span is not None:
        return _make(source_text, span[0], span[1], 100.0, cues, pages)

    # 3. fuzzy. With gaps: anchor on the longest piece, then look for the other pieces
    # next to it; the score is the length-weighted mean over all pieces, so an invented
    # piece beside a verbatim one does not pass as verbatim.
    pieces = [p.strip() for p in pieces]
    k = max(range(len(pieces)), key=lambda i: len(pieces[i]))
    needle = pieces[k]
    anchor = _anchor(norm_src, idx, needle, window, min_score if len(pieces) == 1 else 0.0)
    if anchor is None:
        return None
    a, b, score = anchor
    weighted = score * len(needle)
    for p in reversed(pieces[:k]):
        r0 = max(0, a - MAX_GAP_CHARS - len(p))
        res = fuzz.partial_ratio_alignment(p, norm_src[r0:a])
        if res is not None and res.score >= min_score:
            a = r0 + res.dest_start
        weighted += (res.score if res is not None else 0.0) * len(p)
    for p in pieces[k + 1 :]:
        res = fuzz.partial_ratio_alignment(p, norm_src[b : b + MAX_GAP_CHARS + len(p)])
        if res is not None and res.score >= min_score:
            b = b + res.dest_end
        weighted += (res.score if res is not None else 0.0) * len(p)
    score = weighted / sum(len(p) for p in pieces)
    if score < min_score:
        return None
    start, end = _snap_to_words(source_text, idx[a], idx[b - 1] + 1)
    return _make(source_text, start, end, score, cues, pages)


def _anchor(
    norm_src: str, idx: Sequence[int], needle: str, window: tuple[int, int] | None, cutoff: float
) -> tuple[int, int, float] | None:
    """Best ``(start, end, score)`` of ``needle`` in ``norm_src`` (normalised offsets)."""
    hits = _find_all(norm_src, needle)
    if hits:
        if window is None:
            return hits[0], hits[0] + len(needle), 100.0
        best = min(hits, key=lambda h: _distance(idx[h], idx[h + len(needle) - 1] + 1, window))
        return best, best + len(needle), 100.0
    if len(needle) < MIN_FUZZY_CHARS:
        return None
    n0, n1 = 0, len(norm_src)
    if window is not None:
        n0 = bisect_left(idx, max(0, window[0] - WINDOW_MARGIN))
        n1 = bisect_right(idx, window[1] + WINDOW_MARGIN)
    res = fuzz.partial_ratio_alignment(needle, norm_src[n0:n1], score_cutoff=cutoff)
    if res is None or res.dest_end <= res.dest_start:
        return None
    a, b, score = _refine(needle, norm_src, n0 + res.dest_start, n0 + res.dest_end)
    return (a, b, score) if score >= cutoff else None


def _refine(needle: str, norm: str, s: int, e: int) -> tuple[int, int, float]:
    """Move the fuzzy window's edges to the word boundaries that best fit ``needle``.

    partial_ratio compares windows of the needle's length, so when the quote changes
    a word's length the window drifts off by a word; trying nearby word boundaries
    fixes that. Returns ``(start, end, ratio)`` in ``norm`` offsets.
    """
    slack = max(12, len(needle) // 5)
    starts = {s} | {p for p in range(max(0, s - slack), min(len(norm), s + slack) + 1) if p == 0 or norm[p - 1] == " "}
    ends = {e} | {p for p in range(max(0, e - slack), min(len(norm), e + slack) + 1) if p == len(norm) or norm[p] == " "}
    best = (-1.0, 0, s, e)
    for a in starts:
        for b in ends:
            if b > a:
                cand = (fuzz.ratio(needle, norm[a:b]), -(abs(a - s) + abs(b - e)), a, b)
                if cand > best:
                    best = cand
    return best[2], best[3], float(best[0])


def _find_all(hay: str, needle: str) -> list[int]:
    hits: list[int] = []
    i = hay.find(needle)
    while i >= 0:
        hits.append(i)
        i = hay.find(needle, i + 1)
    return hits


def _distance(start: int, end: int, window: tuple[int, int]) -> int:
    ws, we = window
    if start < we and end > ws:
        return 0
    return ws - end if end <= ws else start - we


def _pick(starts: Sequence[int], length: int, window: tuple[int, int] | None) -> int:
    if window is None:
        return starts[0]
    return min(starts, key=lambda s: _distance(s, s + length, window))


def _strip_wrapping_quotes(s: str) -> str:
    # LLMs often wrap the quote in quote marks that are not part of the source.
    s = s.strip()
    while len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'":
        s = s[1:-1].strip()
    return s.strip('"').strip()


def _find_normalised(
    norm_src: str, idx: Sequence[int], pieces: list[str], window: tuple[int, int] | None
) -> tuple[int, int] | None:
    """Original-text span covering all ``pieces`` in order, anchored on the longest one."""
    pieces = [p.strip() for p in pieces]
    a = max(range(len(pieces)), key=lambda k: len(pieces[k]))
    anchor_hits = _find_all(norm_src, pieces[a])
    if not anchor_hits:
        return None
    spans: list[tuple[int, int]] = []
    for h in anchor_hits:
        lo, hi = h, h + len(pieces[a])
        ok = True
        for p in reversed(pieces[:a]):
            j = norm_src.rfind(p, max(0, lo - MAX_GAP_CHARS - len(p)), lo)
            if j < 0:
                ok = False
                break
            lo = j
        if ok:
            for p in pieces[a + 1 :]:
                j = norm_src.find(p, hi, hi + MAX_GAP_CHARS + len(p))
                if j < 0:
                    ok = False
                    break
                hi = j + len(p)
        if ok:
            spans.append((idx[lo], idx[hi - 1] + 1))
    if not spans:
        return None
    if window is None:
        return spans[0]
    return min(spans, key=lambda sp: _distance(sp[0], sp[1], window))


def _snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    # Fuzzy alignment may start or stop mid-word; widen to whole words (bounded) so the
    # highlighted span reads naturally.
    for _ in range(30):
        if start > 0 and text[start - 1].isalnum() and text[start].isalnum():
            start -= 1
        else:
            break
    for _ in range(30):
        if end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
            end += 1
        else:
            break
    return start, end


def _make(
    text: str, start: int, end: int, score: float, cues: Sequence[Cue] | None, pages: Sequence[Sequence[int]] | None = None
) -> Location:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if cues:
        ends = [c.char_end for c in cues]
        k = min(bisect_right(ends, start), len(cues) - 1)
        label = short_time(cues[k].start)
    else:
        n = paragraph_number(paragraph_spans(text), start)
        label = f"¶{n}, chars {start:,}–{end:,}"
        if pages:
            label = f"{page_label(pages, start, end)}, {label}"
    return Location(char_start=start, char_end=end, score=score, label=label)
