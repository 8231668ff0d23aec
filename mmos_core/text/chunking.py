"""Cut a source text into chunks for the LLMs, with exact character offsets.

Units are kept whole: paragraphs (blocks separated by blank lines) for prose, cues for
transcripts. Consecutive units are packed up to ``target_chars``; only a unit longer
than ``max_chars`` is cut, at sentence ends where possible, so that no chunk exceeds
``max_chars``. The whitespace between units may fall outside every chunk.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from mmos_core.text.intake import Cue

__all__ = ["Chunk", "chunk_text", "paragraph_spans", "paragraph_number", "short_time"]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v]*\n\s*")
# A sentence ends at . ! or ? (plus closing quotes/brackets) followed by whitespace.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s)")


@dataclass(frozen=True)
class Chunk:
    """A slice ``source_text[char_start:char_end]`` sent to the LLMs as one unit of work.

    ``index`` is 0-based and follows text order. ``location_label`` is human-readable:
    ``"¶12–15"`` (1-based paragraphs; ``"¶12"`` for one) for prose, or
    ``"00:01:02–00:03:04"`` (start of the first cue – end of the last) for transcripts.
    """

    index: int
    char_start: int
    char_end: int
    location_label: str


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the paragraphs of ``text``, trimmed of surrounding whitespace.

    Paragraphs are blocks separated by one or more blank (whitespace-only) lines;
    paragraph N (1-based) is ``spans[N - 1]``.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in _PARAGRAPH_BREAK.finditer(text):
        _add_trimmed(text, pos, m.start(), spans)
        pos = m.end()
    _add_trimmed(text, pos, len(text), spans)
    return spans


def paragraph_number(spans: Sequence[tuple[int, int]], offset: int) -> int:
    """1-based number of the paragraph containing ``offset`` (or the last one starting before it)."""
    starts = [s for s, _ in spans]
    return max(1, bisect_right(starts, offset))


def short_time(ts: str) -> str:
    """``"HH:MM:SS.mmm"`` → ``"HH:MM:SS"`` for labels (milliseconds are noise to a reader)."""
    return ts.split(".", 1)[0]


def chunk_text(
    text: str,
    *,
    cues: Sequence[Cue] | None = None,
    target_chars: int = 2400,
    max_chars: int = 4000,
) -> list[Chunk]:
    """Split ``text`` into ordered, non-overlapping chunks of at most ``max_chars`` characters.

    With ``cues`` (transcripts, offsets into ``text`` as built by intake) each cue plus the
    speaker prefix before it is one unit; without, each paragraph is. A unit is split only
    when it alone exceeds ``max_chars`` (a cue that long is split too: the bound on what an
    LLM is sent wins). Returns ``[]`` for whitespace-only text. Raises ``ValueError`` if
    ``target_chars`` or ``max_chars`` is not positive or ``target_chars > max_chars``.
    """
    if target_chars <= 0 or max_chars <= 0 or target_chars > max_chars:
        raise ValueError(f"need 0 < target_chars <= max_chars, got {target_chars} and {max_chars}")

    if cues:
        units = _cue_units(text, cues)
    else:
        units = paragraph_spans(text)

    # (start, end, first_unit, last_unit) before labelling
    raw: list[tuple[int, int, int, int]] = []
    cur_start = cur_end = -1
    cur_first = 0
    for i, (us, ue) in enumerate(units):
        if cur_start >= 0 and ue - cur_start <= target_chars:
            cur_end = ue
            continue
        if cur_start >= 0:
            raw.append((cur_start, cur_end, cur_first, i - 1))
            cur_start = -1
        if ue - us > max_chars:
            for ps, pe in _split_long(text, us, ue, target_chars, max_chars):
                raw.append((ps, pe, i, i))
        else:
            cur_start, cur_end, cur_first = us, ue, i
    if cur_start >= 0:
        raw.append((cur_start, cur_end, cur_first, len(units) - 1))

    chunks: list[Chunk] = []
    for idx, (s, e, a, b) in enumerate(raw):
        if cues:
            label = f"{short_time(cues[a].start)}–{short_time(cues[b].end)}"
        else:
            label = f"¶{a + 1}" if a == b else f"¶{a + 1}–{b + 1}"
        chunks.append(Chunk(index=idx, char_start=s, char_end=e, location_label=label))
    return chunks


def _add_trimmed(text: str, start: int, end: int, out: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        out.append((start, end))


def _cue_units(text: str, cues: Sequence[Cue]) -> list[tuple[int, int]]:
    # A unit runs from just after the previous cue to the end of this one, so the
    # "Speaker: " prefix travels with its cue.
    units: list[tuple[int, int]] = []
    prev_end = 0
    for cue in cues:
        start = prev_end
        while start < cue.char_start and text[start].isspace():
            start += 1
        units.append((start, cue.char_end))
        prev_end = cue.char_end
    return units


def _split_long(text: str, start: int, end: int, target: int, limit: int) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into trimmed pieces of at most ``limit`` characters.

    Each cut is at the last sentence end within ``target`` characters, else within
    ``limit``, else at the last whitespace, else (one enormous token) hard at ``limit``.
    """
    pieces: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            break
        if end - pos <= limit:
            _add_trimmed(text, pos, end, pieces)
            break
        hard = pos + limit
        best_target = best_limit = -1
        # endpos one past `hard` so the lookahead can see the whitespace after a cut at `hard`.
        for m in _SENTENCE_END.finditer(text, pos, min(end, hard + 1)):
            if m.end() > hard:
                break
            if m.end() <= pos + target:
                best_target = m.end()
            best_limit = m.end()
        cut = best_target if best_target > pos else best_limit
        if cut <= pos:
            cut = next((i for i in range(hard, pos, -1) if text[i].isspace()), hard)
        _add_trimmed(text, pos, cut, pieces)
        pos = cut
    return pieces
