"""Speaker turns of a source and the person's speaker label(s) (docs/quality.md, "Speaker turns").

Turns are found at intake (`detect_turns`) and stored on the source as `[speaker, char_start, char_end,
kind]` rows; the analyst confirms or changes which label(s) are the person's (`set_person_labels`),
which re-runs the per-fragment checks and the quality score, never the LLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from mmos_core.models import Source
from mmos_core.text.intake import Cue
from mmos_core.text.speakers import (
    UNLABELLED,
    SpeakerTurn,
    TurnKind,
    canonical_label,
    default_person_labels,
    parse_turns,
)

__all__ = [
    "SpeakerSummary",
    "TurnsFound",
    "cues_of",
    "detect_turns",
    "person_labels_of",
    "speaker_summary",
    "turns_of",
]


@dataclass(frozen=True)
class TurnsFound:
    """What intake stores: `turns` as JSON rows, the default person labels, a one-sentence note and
    the speakers with their spoken word counts (most words first)."""

    turns: list[list[Any]]
    person_labels: list[str]
    note: str
    speakers: dict[str, int]
    labelled: bool


@dataclass(frozen=True)
class SpeakerSummary:
    """One speaker of a source as the Sources page lists it."""

    label: str
    words: int
    is_person: bool


def detect_turns(text: str, *, person: str | None, cues: Sequence[Cue] | None = None) -> TurnsFound:
    """Parse speaker turns (`mmos_core.text.speakers.parse_turns`) and choose the default person label(s):
    the label matching `person`, else the documented fallbacks (`default_person_labels`).

    A text without labels (a book, a letter) is one speaker, the person's, with a note saying so.
    """
    parsed = parse_turns(text, cues)
    labels = _default_labels(parsed.speakers, person)
    return TurnsFound(
        turns=[[t.speaker, t.char_start, t.char_end, t.kind.value] for t in parsed.turns],
        person_labels=list(labels),
        note=parsed.note,
        speakers=dict(parsed.speakers),
        labelled=parsed.labelled,
    )


def cues_of(source: Source) -> list[Cue] | None:
    """The source's subtitle cues as `Cue` objects (None for plain text)."""
    return [Cue(c[0], c[1], c[2], c[3], c[4]) for c in source.cues] if source.cues else None


def turns_of(source: Source) -> list[SpeakerTurn]:
    """The stored turns of `source`, parsed on the fly for a source stored before turns existed."""
    rows = source.speaker_turns
    if rows is None:
        rows = detect_turns(source.content, person=source.person, cues=cues_of(source)).turns
    return [SpeakerTurn(r[0], int(r[1]), int(r[2]), TurnKind(r[3])) for r in rows]


def person_labels_of(source: Source) -> list[str]:
    """The person's label(s) on `source` (the stored choice, else the default for its turns)."""
    if source.person_labels:
        return list(source.person_labels)
    return _default_labels(_spoken_words(source), source.person)


def _spoken_words(source: Source) -> dict[str, int]:
    """Speaker label → words in their speech turns, most words first."""
    words: dict[str, int] = {}
    for t in turns_of(source):
        if t.kind == TurnKind.SPEECH and t.speaker:
            words[t.speaker] = words.get(t.speaker, 0) + len(source.content[t.char_start:t.char_end].split())
    return dict(sorted(words.items(), key=lambda kv: -kv[1]))


def _default_labels(speakers: dict[str, int], person: str | None) -> list[str]:
    """The label matching `person` (`default_person_labels`), or the one with most words when no person is named."""
    if not speakers:
        return [UNLABELLED]
    if not (person or "").strip():
        return [next(iter(speakers))]
    return list(default_person_labels(speakers, person))


def speaker_summary(*, session: Session, source_id: int) -> list[SpeakerSummary]:
    """Speakers of a source with their spoken word counts (most first) and whether each is the person.

    Raises:
        LookupError: no such source.
    """
    source = session.get(Source, source_id)
    if source is None:
        raise LookupError(f"source {source_id} not found")
    persons = set(person_labels_of(source))
    return [SpeakerSummary(label, n, label in persons) for label, n in _spoken_words(source).items()]


def validate_person_labels(source: Source, labels: Sequence[str]) -> list[str]:
    """Canonical labels, each one a speaker of `source`.

    Raises:
        ValueError: no label, or a label that is not a speaker of the source (the message names them).
    """
    wanted = [canonical_label(label) if label != UNLABELLED else label for label in labels]
    if not wanted:
        raise ValueError("Pick at least one speaker whose words are the person's.")
    known = {t.speaker for t in turns_of(source) if t.speaker}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ValueError(f"Not a speaker of this source: {', '.join(unknown)} (speakers: {', '.join(sorted(known))}).")
    return list(dict.fromkeys(wanted))
