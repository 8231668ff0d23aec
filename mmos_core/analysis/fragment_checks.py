"""Per-fragment checks of a direct quote: is it verbatim, and did the person say it?

Two pure functions (docs/quality.md, "Speaker turns and per-fragment checks"):

* :func:`check_verbatim` finds the model's quote in the source with
  :func:`mmos_core.text.locate.locate_quote` and grades it ``exact`` (the same words after
  case/whitespace/quote-mark/dash normalisation, ``...`` read as an elision), ``near`` (a fuzzy match:
  a misquote, reported with a word-level diff against the source span; the model's text is never
  replaced) or ``not_found``.
* :func:`check_attribution` says whose words a source span is, from the speaker turns of
  :func:`mmos_core.text.speakers.parse_turns`: the person's, someone else's, nobody's (stage or
  editorial text), several speakers' (``mixed``) or unknown.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from mmos_core.text.locate import locate_quote, normalise
from mmos_core.text.speakers import SpeakerTurn, canonical_label, speakers_of_span

__all__ = [
    "DEFAULT_MIN_SIMILARITY",
    "Attribution",
    "AttributionKind",
    "VerbatimCheck",
    "VerbatimStatus",
    "WordEdit",
    "check_attribution",
    "check_verbatim",
]

# Below this a fuzzy hit is too loose to call a misquote of that passage rather than words
# the source does not contain. Measured by bench/attribution.py (docs/quality.md): perturbed quotes
# (a prefix, one word changed) score >= 0.80 in 99.8 %, sentences absent from the file score
# < 0.80 in 99.9 %. Lower than the grounding bar (85) because it grades only where a quote is.
DEFAULT_MIN_SIMILARITY = 0.80


class VerbatimStatus(enum.StrEnum):
    """How a quote matches the source."""

    EXACT = "exact"
    NEAR = "near"
    NOT_FOUND = "not_found"


class AttributionKind(enum.StrEnum):
    """Whose words a span is."""

    PERSON = "person"
    OTHER = "other"
    EDITORIAL = "editorial"
    MIXED = "mixed"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class WordEdit:
    """One difference between the source span and the model's quote, in words.

    ``op``: ``"replace"`` (the model wrote ``quote`` where the source has ``source``), ``"insert"``
    (the model added ``quote``; ``source`` is ``""``) or ``"delete"`` (the model left out ``source``;
    ``quote`` is ``""``). Words are as written, joined by single spaces.
    """

    op: Literal["replace", "insert", "delete"]
    quote: str
    source: str


@dataclass(frozen=True)
class VerbatimCheck:
    """Result of :func:`check_verbatim`.

    ``char_start``/``char_end``: 0-based, end-exclusive character offsets of the matched span in
    the source (None when ``not_found``). ``similarity``: 0–1, 1.0 for ``exact``; otherwise the
    larger of the rapidfuzz ratio of the normalised quote to the normalised best-matching window
    and the word-level ratio (difflib, 2·same words / all words) against the reported span; for
    ``not_found`` the best value seen (0.0 when the quote is too short to match fuzzily). ``edits``: the word-level
    differences (empty unless ``near``); ``diff``: the model's quote with them marked inline,
    ``[-source words-]{+model words+}`` (``""`` unless ``near``).
    """

    status: VerbatimStatus
    char_start: int | None
    char_end: int | None
    similarity: float
    edits: tuple[WordEdit, ...] = ()
    diff: str = ""


@dataclass(frozen=True)
class Attribution:
    """Result of :func:`check_attribution`.

    ``speaker``: the canonical label for ``person`` and ``other``, else None. ``speakers``: every
    speaker whose words the span covers, in order of appearance (several for ``mixed``).
    ``str(a)`` / :attr:`label` serialise it as ``"person"``, ``"other:NAME"``, ``"editorial"``,
    ``"mixed"`` or ``"unknown"``; :meth:`parse` reads that back.
    """

    kind: AttributionKind
    speaker: str | None = None
    speakers: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """The serialised form, e.g. ``"other:Q"``."""
        if self.kind == AttributionKind.OTHER:
            return f"other:{self.speaker}"
        return self.kind.value

    def __str__(self) -> str:
        return self.label

    @classmethod
    def parse(cls, label: str) -> Attribution:
        """Read a serialised attribution back (``speakers`` is not kept by the serialised form).

        Raises ValueError for a string that is not one of the forms of :attr:`label`."""
        kind, _, name = label.partition(":")
        try:
            k = AttributionKind(kind)
        except ValueError:
            raise ValueError(f"not an attribution: {label!r}") from None
        if (k == AttributionKind.OTHER) != bool(name):
            raise ValueError(f"not an attribution: {label!r} (only 'other:NAME' carries a name)")
        return cls(kind=k, speaker=name or None, speakers=(name,) if name else ())


# --- verbatim -------------------------------------------------------------------------------


def check_verbatim(
    quote: str,
    source_text: str,
    hint: tuple[int, int] | None = None,
    *,
    min_similarity: float = DEFAULT_MIN_SIMILARITY,
) -> VerbatimCheck:
    """Grade ``quote`` (the model's text) against ``source_text``.

    ``hint``: ``(char_start, char_end)`` where the quote is expected (its chunk); among several
    occurrences the one nearest wins and the fuzzy pass looks only there (±500 characters), so a
    wrong hint can make a misquote ``not_found``; without it the whole text is searched (about
    1–2 ms per quote on a 70,000-character source, 0.1 ms when exact, plus ~10 ms once per source
    to normalise it). ``min_similarity`` (0–1) is the bar for ``near``.

    Raises:
        TypeError: ``quote`` or ``source_text`` is not a str.
        ValueError: ``quote`` is blank, ``hint`` is reversed or negative, or ``min_similarity`` is
            outside (0, 1].
    """
    if not isinstance(quote, str) or not isinstance(source_text, str):
        raise TypeError("quote and source_text must be str")
    if not quote.strip():
        raise ValueError("quote is empty")
    if hint is not None and not (0 <= hint[0] <= hint[1]):
        raise ValueError(f"bad hint {hint}: need 0 <= char_start <= char_end")
    if not 0.0 < min_similarity <= 1.0:
        raise ValueError(f"min_similarity must be in (0, 1], not {min_similarity}")
    # min_score=0: the locator returns its best candidate whatever the score, so one pass gives
    # both the grade and, for a miss, how close the best candidate came.
    loc = locate_quote(source_text, quote, window=hint, min_score=0.0)
    if loc is None or loc.char_end <= loc.char_start:
        return VerbatimCheck(VerbatimStatus.NOT_FOUND, None, None, 0.0)
    if loc.score >= 100.0:
        return VerbatimCheck(VerbatimStatus.EXACT, loc.char_start, loc.char_end, 1.0)
    start, end = _repair_span(quote, source_text, loc.char_start, loc.char_end)
    edits, diff, word_sim = _diff(quote, source_text[start:end])
    # The character ratio punishes one changed word in a short quote hard (7 words, one replaced:
    # ~0.80); the word ratio does not, so the larger of the two grades it (docs/quality.md).
    similarity = round(max(loc.score / 100.0, word_sim), 4)
    if similarity < min_similarity:
        return VerbatimCheck(VerbatimStatus.NOT_FOUND, None, None, similarity)
    return VerbatimCheck(VerbatimStatus.NEAR, start, end, similarity, edits, diff)


# How far beyond a fuzzy span the rest of a quote may lie: a label and a stage note between two
# adjacent turns ("[Laughter]\n\nPresident Bush. ") are well under this.
_JOIN_GAP_CHARS = 300
# A piece of the quote left outside the fuzzy span is looked for beyond it only from this many
# words: shorter ones ("I think that") are the model's own additions, and would be found by chance.
_MIN_PIECE_WORDS = 4
# Up to this many last words of the quote that differ from the source words after the span are
# read as replacements of those words, when the sentence continues there.
_MAX_EDGE_WORDS = 2


def _repair_span(quote: str, text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a fuzzy span to what the quote covers; offsets into ``text``.

    The locator picks the best window of about the quote's length, so (a) a changed first or last
    word can fall just outside it, and (b) a quote joining two passages (the end of a question and
    the start of the answer) is aligned to one of them only. (a): absorb up to two source words
    after the span when the sentence continues there on the same line; (b): find a leftover piece
    of at least four words within 300 characters beyond either end of the span.
    """
    start, end = _trim_islands(quote, text, start, end)
    q_words = quote.split()
    s_words = text[start:end].split()
    ops = _opcodes(q_words, s_words)
    if not ops:
        return start, end
    tag, _, i2, j1, j2 = ops[-1]
    if tag in ("insert", "replace") and i2 == len(s_words) and j2 == len(q_words):
        piece = q_words[j1:j2]
        if len(piece) >= _MIN_PIECE_WORDS:
            hit = locate_quote(text[end : end + _JOIN_GAP_CHARS + len(" ".join(piece))], " ".join(piece))
            if hit is not None:
                end = end + hit.char_end
        elif tag == "insert" and text[end - 1] not in ".?!" and (m := _next_words(text, end, len(piece))):
            end = m
    tag, i1, _, j1, j2 = ops[0]
    # Only whole passages are recovered before the span: a few extra leading words are the usual
    # prefix a model adds ("I think that"), not a changed word of the source.
    if tag in ("insert", "replace") and i1 == 0 and j1 == 0 and j2 - j1 >= _MIN_PIECE_WORDS:
        piece = " ".join(q_words[j1:j2])
        lo = max(0, start - _JOIN_GAP_CHARS - len(piece))
        hit = locate_quote(text[lo:start], piece, window=(start - lo, start - lo))
        if hit is not None:
            start = lo + hit.char_start
    return start, end


def _trim_islands(quote: str, text: str, start: int, end: int) -> tuple[int, int]:
    """Cut the span's edges back to its outermost runs of three or more matching words when a line
    break lies between such a run and the edge.

    Character alignment happily pairs a model's "I think that" with "in mind.\n\nQ:" (the end of
    the previous turn and the label), or with the "that." ending it; kept, those words make the
    span cross a turn boundary and the quote look ``mixed``. Within a line nothing is cut, so a
    changed or skipped word stays in the span; a longer passage cut here is found again by the
    join rule of :func:`_repair_span`.
    """
    words = [(start + m.start(), start + m.end()) for m in re.finditer(r"\S+", text[start:end])]
    ops = _opcodes(quote.split(), [text[a:b] for a, b in words])
    runs = [(i1, i2) for tag, i1, i2, _, _ in ops if tag == "equal" and i2 - i1 > _MAX_EDGE_WORDS]
    if not runs:
        return start, end
    first, last = words[runs[0][0]][0], words[runs[-1][1] - 1][1]
    if "\n" in text[start:first]:
        start = first
    if "\n" in text[last:end]:
        end = last
    return start, end


def _next_words(text: str, end: int, k: int) -> int | None:
    """End offset of the ``k`` words after ``end`` on the same line, if there are that many and
    ``k`` is small; else None."""
    if k > _MAX_EDGE_WORDS:
        return None
    pos = end
    for _ in range(k):
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos >= len(text) or text[pos].isspace():
            return None
        while pos < len(text) and not text[pos].isspace():
            pos += 1
    return pos


def _key(word: str) -> str:
    # Compare words as a reader would: case, curly quotes and punctuation at the edges are not
    # a change of wording (docs/quality.md, "Speaker turns and per-fragment checks").
    norm = normalise(word)[0]
    return norm.strip(".,;:!?\"'()[]-") or norm


def _opcodes(q_words: Sequence[str], s_words: Sequence[str]) -> list[tuple[str, int, int, int, int]]:
    matcher = difflib.SequenceMatcher(None, [_key(w) for w in s_words], [_key(w) for w in q_words], autojunk=False)
    return matcher.get_opcodes()


def _diff(quote: str, source_span: str) -> tuple[tuple[WordEdit, ...], str, float]:
    q_words, s_words = quote.split(), source_span.split()
    edits: list[WordEdit] = []
    out: list[str] = []
    same = 0
    for op, i1, i2, j1, j2 in _opcodes(q_words, s_words):
        src, mod = " ".join(s_words[i1:i2]), " ".join(q_words[j1:j2])
        if op == "equal":
            out.append(mod)
            same += i2 - i1
            continue
        edits.append(WordEdit(op=op, quote=mod, source=src))  # type: ignore[arg-type]
        out.append((f"[-{src}-]" if src else "") + (f"{{+{mod}+}}" if mod else ""))
    total = len(q_words) + len(s_words)
    return tuple(edits), " ".join(out), (2.0 * same / total if total else 0.0)


def word_diff(quote: str, source_span: str) -> tuple[tuple[WordEdit, ...], str]:
    """Word-level diff (difflib) of the model's ``quote`` against ``source_span``.

    Returns the edits and the quote rendered with them inline: ``we [-must-]{+should+} act``.
    Words are whitespace-separated; case and edge punctuation are ignored when comparing.
    """
    edits, diff, _ = _diff(quote, source_span)
    return edits, diff


# --- attribution ----------------------------------------------------------------------------


def check_attribution(
    char_start: int,
    char_end: int,
    turns: Sequence[SpeakerTurn],
    person_labels: Iterable[str],
    *,
    spill_chars: int = 0,
) -> Attribution:
    """Whose words ``source_text[char_start:char_end]`` are (0-based, end-exclusive offsets).

    ``turns``: :attr:`mmos_core.text.speakers.TurnParse.turns`; ``person_labels``: the person's
    labels (:func:`mmos_core.text.speakers.default_person_labels`; any case, canonicalised here).
    Stage and editorial spans are transparent: a span of one speaker's words around ``[Laughter]``
    is that speaker's; a span with no speech but stage/editorial text is ``editorial``; a span over
    no turn at all (a label prefix, beyond the text) is ``unknown``, as are the words of an unknown
    speaker. ``spill_chars`` (characters) lets a fuzzy span overrun into another speaker's turn by
    that much without becoming ``mixed`` (the speaker with most characters always counts).

    Raises:
        ValueError: a negative or empty span (``char_end <= char_start``) or negative ``spill_chars``.
    """
    if char_start < 0 or char_end <= char_start:
        raise ValueError(f"bad span {char_start}–{char_end}: need 0 <= char_start < char_end")
    if spill_chars < 0:
        raise ValueError("spill_chars must be >= 0")
    persons = {canonical_label(p) for p in person_labels}
    span = speakers_of_span(turns, char_start, char_end)
    speech = span.speech
    if spill_chars and len(speech) > 1:
        top = max(speech, key=lambda s: speech[s])
        speech = {s: n for s, n in speech.items() if s == top or n > spill_chars}
    if not speech:
        return Attribution(AttributionKind.EDITORIAL if span.nonspeech_chars else AttributionKind.UNKNOWN)
    names = tuple(speech)
    if len(names) == 1:
        name = names[0]
        if not name:
            return Attribution(AttributionKind.UNKNOWN, None, names)
        kind = AttributionKind.PERSON if name in persons else AttributionKind.OTHER
        return Attribution(kind, name, names)
    if all(n in persons for n in names):
        return Attribution(AttributionKind.PERSON, max(names, key=lambda s: speech[s]), names)
    return Attribution(AttributionKind.MIXED, None, names)
