"""Cut a source text into chunks for the LLMs, with exact character offsets.

Units are kept whole: paragraphs (blocks separated by blank lines) for prose, cues for
transcripts. Consecutive units are packed up to ``target_chars``; only a unit longer
than ``max_chars`` is cut, at sentence ends (`mmos_core.text.sentences`) where possible, so that no chunk exceeds
``max_chars``. The whitespace between units may fall outside every chunk.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from mmos_core.text.intake import Cue
from mmos_core.text.sentences import add_trimmed, sentence_spans

__all__ = ["Chunk", "chunk_text", "page_label", "paragraph_spans", "paragraph_number", "short_time"]

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\f\v]*\n\s*")


@dataclass(frozen=True)
class Chunk:
    """A slice ``source_text[char_start:char_end]`` sent to the LLMs as one unit of work.

    ``index`` is 0-based and follows text order. ``location_label`` is human-readable:
    ``"¶12–15"`` (1-based paragraphs; ``"¶12"`` for one) for prose, or
    ``"00:01:02–00:03:04"`` (start of the first cue – end of the last) for transcripts.
    A PDF's chunks name their pages first: ``"p. 12, ¶48–50"`` or ``"pp. 12–13, ¶48–52"``
    (docs/intake.md, "Page numbers as locations").
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
        add_trimmed(text, pos, m.start(), spans)
        pos = m.end()
    add_trimmed(text, pos, len(text), spans)
    return spans


def paragraph_number(spans: Sequence[tuple[int, int]], offset: int) -> int:
    """1-based number of the paragraph containing ``offset`` (or the last one starting before it)."""
    starts = [s for s, _ in spans]
    return max(1, bisect_right(starts, offset))


def page_label(pages: Sequence[Sequence[int]], char_start: int, char_end: int) -> str:
    """``"p. 12"``, or ``"pp. 12–13"`` when ``text[char_start:char_end]`` runs over a page break.

    ``pages`` is ``((char_start, page_number), ...)`` in text order, as
    ``ConvertedDocument.pages`` and ``Source.metadata_["pages"]`` hold it; an offset before the
    first page start belongs to the first page (docs/intake.md, "Page numbers as locations").
    Raises ``ValueError`` when ``pages`` is empty.
    """
    if not pages:
        raise ValueError("no pages to label")
    starts = [int(p[0]) for p in pages]

    def at(offset: int) -> int:
        return int(pages[max(bisect_right(starts, offset) - 1, 0)][1])

    first, last = at(char_start), at(max(char_end - 1, char_start))
    return f"p. {first}" if first == last else f"pp. {first}–{last}"


def short_time(ts: str) -> str:
    """``"HH:MM:SS.mmm"`` → ``"HH:MM:SS"`` for labels (milliseconds are noise to a reader)."""
    return ts.split(".", 1)[0]


def chunk_text(
    text: str,
    *,
    cues: Sequence[Cue] | None = None,
    pages: Sequence[Sequence[int]] | None = None,
    target_chars: int = 2400,
    max_chars: int = 4000,
) -> list[Chunk]:
    """Split ``text`` into ordered, non-overlapping chunks of at most ``max_chars`` characters.

    With ``cues`` (transcripts, offsets into ``text`` as built by intake) each cue plus the
    speaker prefix before it is one unit; without, each paragraph is. A unit is split only
    when it alone exceeds ``max_chars`` (a cue that long is split too: the bound on what an
    LLM is sent wins). ``pages`` (a PDF's ``(char_start, page_number)`` list) puts the pages
    in front of prose labels, ``"p. 12, ¶48–50"``. Returns ``[]`` for whitespace-only text. Raises ``ValueError`` if
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
            if pages:
                label = f"{page_label(pages, s, e)}, {label}"
        chunks.append(Chunk(index=idx, char_start=s, char_end=e, location_label=label))
    return chunks


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

    Each cut is at the last sentence end (`mmos_core.text.sentences.sentence_spans`) within ``target``
    characters, else within ``limit``, else at the last whitespace, else (one enormous token) hard
    at ``limit``.
    """
    # sentence ends inside the unit (its own end is not a cut), as absolute offsets
    ends = [start + e for _, e in sentence_spans(text[start:end])][:-1]
    pieces: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            break
        if end - pos <= limit:
            add_trimmed(text, pos, end, pieces)
            break
        hard = pos + limit
        best_target = best_limit = -1
        for e in ends[bisect_right(ends, pos) : bisect_right(ends, hard)]:
            if e <= pos + target:
                best_target = e
            best_limit = e
        cut = best_target if best_target > pos else best_limit
        if cut <= pos:
            cut = next((i for i in range(hard, pos, -1) if text[i].isspace()), hard)
        add_trimmed(text, pos, cut, pieces)
        pos = cut
    return pieces
