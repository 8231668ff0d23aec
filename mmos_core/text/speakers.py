"""Speaker turns: who says which part of a source text.

A fragment filed as a direct quote of a person is evidence only if that person said it, so a
transcript is cut into *turns*: spans of the stored text with the canonical label of the speaker.
The rules (docs/quality.md, "Speaker turns and per-fragment checks"):

* A **label** starts a line: ``NAME.`` or ``NAME:`` followed by the spoken words (a ``NAME:`` label
  may also stand alone on its line), ``Q.``/``Q:``/``Q`` and ``A.``/``A:``, or a VTT voice tag
  ``<v Name>``. A candidate must look like a label, not like the start of a sentence: a known role
  form (``THE PRESIDENT``, ``President Gorbachev``, ``Mr. Fitzwater``), upper-case words
  (``FRANK CORMIER [Associated Press].``), or a short title-case name that recurs as a label. So
  ``Ben.``, ``Thank you.``, ``Savannah Guthrie.`` (the president calling on a reporter) and
  ``10:30`` are not labels, and neither are vocatives such as ``Mr. President:`` (someone addressing
  the president, who is not the speaker).
* The **canonical label** is upper-cased, without trailing punctuation or bracketed notes, so
  ``The President:`` and ``THE PRESIDENT.`` are one speaker, ``THE PRESIDENT``.
* Text between labels continues the previous speaker; text before the first label of a labelled
  text (a title, the ``President: NAME`` header, a transcriber's preamble) is ``editorial``.
* Nobody's words are cut out of speech as their own spans: stage notes (``[Laughter]``,
  ``(Laughter.)``, ``(Inaudible.)``) are ``stage``; other square-bracketed insertions
  (``[Iran]``, ``[Helen Thomas, United Press International]``), whole bracketed paragraphs
  (``[At this point, ...]``), ``NOTE:`` paragraphs and topic headings (a short title-case line
  without final punctuation standing alone, such as ``Middle East Peace Talks``) are ``editorial``.
  A quote of speech around an inline note therefore still falls inside the speaker's turns.
* Without any label the whole text (a book, a letter) is one turn of :data:`UNLABELLED`, and
  ``labelled`` is False. With subtitle cues whose ``speaker`` is known, the cues are the turns.

Pure Python; offsets are character offsets into the text given (the stored ``source.content``).
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter

from mmos_core.text.intake import Cue

__all__ = [
    "UNLABELLED",
    "SpanSpeakers",
    "SpeakerTurn",
    "TurnKind",
    "TurnParse",
    "canonical_label",
    "default_person_labels",
    "parse_turns",
    "speakers_of_span",
    "turn_at",
]

# The one speaker of a text without labels (a book, a letter): the author.
UNLABELLED = "(UNLABELLED)"


class TurnKind(enum.StrEnum):
    """What a span is: someone's spoken words, a stage note, or the editor's/transcriber's text."""

    SPEECH = "speech"
    STAGE = "stage"
    EDITORIAL = "editorial"


@dataclass(frozen=True)
class SpeakerTurn:
    """One span ``text[char_start:char_end]`` (0-based, end exclusive, trimmed of whitespace).

    ``speaker`` is the canonical label (``"THE PRESIDENT"``, ``"Q"``, :data:`UNLABELLED`); ``""``
    means unknown (an unlabelled subtitle cue before any labelled one, or a preamble). For
    ``stage``/``editorial`` spans it is the label of the turn they sit in, for context only: they
    are nobody's words. Label prefixes (``"THE PRESIDENT. "``) lie outside every turn.
    """

    speaker: str
    char_start: int
    char_end: int
    kind: TurnKind = TurnKind.SPEECH


@dataclass(frozen=True)
class TurnParse:
    """Result of :func:`parse_turns`.

    ``turns`` are sorted by ``char_start`` and never overlap. ``speakers`` maps each canonical label
    to its number of spoken words (whitespace-separated, speech turns only), most words first.
    ``labelled`` is False when no speaker label was found; ``note`` says in one sentence how the
    text was read.
    """

    turns: tuple[SpeakerTurn, ...]
    speakers: dict[str, int]
    labelled: bool
    note: str


@dataclass(frozen=True)
class SpanSpeakers:
    """Who speaks in a span: ``speech`` maps speaker → overlapping speech characters (in order of
    appearance), ``nonspeech_chars`` counts overlapping stage/editorial characters."""

    speech: dict[str, int]
    nonspeech_chars: int


# --- vocabularies ---------------------------------------------------------------------------

_HONORIFICS = frozenset(
    "MR MRS MS MX DR SEN REP GOV GEN COL CAPT LT SGT PROF REV FR SR ST HON AMB ADM MAJ MESSRS".split()
)
# Words that name an office or a role: "President Gorbachev", "Secretary Baker", "THE PRESIDENT".
_TITLES = frozenset(
    """PRESIDENT VICE SENATOR SECRETARY GOVERNOR GENERAL AMBASSADOR PRIME MINISTER CHANCELLOR CHAIRMAN
    CHAIRWOMAN CHAIR SPEAKER REPRESENTATIVE PROFESSOR JUDGE JUSTICE MAYOR KING QUEEN POPE PRINCE PRINCESS
    RABBI FATHER REVEREND COMMISSIONER DIRECTOR ADMIRAL CAPTAIN COLONEL MAJOR LADY LORD SIR DAME
    PREMIER DEPUTY ATTORNEY COUNSEL""".split()
)
# Role nouns after "The": "The President:", "THE INTERVIEWER.".
_ROLES = _TITLES | frozenset(
    """INTERVIEWER INTERVIEWEE MODERATOR HOST COHOST CO-HOST ANCHOR REPORTER CORRESPONDENT AUDIENCE MEMBER
    PARTICIPANT PANELIST PANELLIST ANNOUNCER NARRATOR WITNESS DEFENDANT PLAINTIFF CLERK COURT QUESTIONER
    CALLER GUEST CANDIDATE SPOKESMAN SPOKESWOMAN SPOKESPERSON LADY PRESS OFFICIAL TRANSLATOR INTERPRETER
    CHAIRPERSON""".split()
)
# Labels of the people who ask, not answer (used by default_person_labels).
_QUESTIONERS = frozenset(
    """Q INTERVIEWER MODERATOR HOST COHOST CO-HOST ANCHOR REPORTER CORRESPONDENT QUESTIONER AUDIENCE CALLER
    PRESS""".split()
)
# "Mr. President:" at a line start addresses the president; the speaker is someone else.
_VOCATIVE_LEADS = frozenset({"MR", "MISTER", "MADAM", "MADAME", "MRS", "MS"})
_VOCATIVE_OFFICES = frozenset(
    {
        "PRESIDENT",
        "VICE PRESIDENT",
        "SPEAKER",
        "CHAIRMAN",
        "SECRETARY",
        "AMBASSADOR",
        "PRIME MINISTER",
        "MAYOR",
        "GOVERNOR",
        "CHANCELLOR",
        "JUSTICE",
        "CHIEF JUSTICE",
    }
)
# First words of sentences that can look like a short label ("Thank You. ...", "Note: ...").
_STOP_FIRST = frozenset(
    """THANK THANKS YES YEAH NO NOPE WELL OKAY OK RIGHT SURE GOOD NOW SO AND BUT OH HELLO HI SORRY PLEASE
    EXACTLY ABSOLUTELY LOOK LISTEN AGAIN NOTE NOTES I IT'S I'M UPDATE WARNING EXAMPLE SOURCE SUBJECT DATE
    TITLE PS P.S RE EDITOR'S ANSWER QUESTION CHAPTER PART SECTION FIGURE TABLE STEP""".split()
)
# Lower-case particles inside names: "Matt Spetalnick of Reuters", "Ursula von der Leyen".
_PARTICLES = frozenset("of de del della di da du van von der den la le al bin ibn y".split())
# Small words a title-case heading may keep in lower case: "Trade and the Economy".
_HEADING_SMALL_WORDS = frozenset("a an and the in on for to with at by or".split())
# Stage notes: these first words make "[...]" or "(...)" a stage direction.
_STAGE_WORDS = frozenset(
    """LAUGHTER LAUGHS LAUGHING LAUGH APPLAUSE INAUDIBLE UNINTELLIGIBLE INDISCERNIBLE CROSSTALK CROSS-TALK CROSS
    PAUSE PAUSES SILENCE MUSIC COUGHS COUGHING SIGHS CHEERS CHEERING BOOING BOOS BELL BELLS NOISE
    OFF-MIC""".split()
)

_LABEL_TERM = re.compile(r"[.:](?=\s|$)")
_NAME_CHARS = re.compile(r"^[^\W\d_][\w'’.\- ]*$")
_NOTE_AT_END = re.compile(r"\s*\[[^\]\n]{1,100}\]\s*$")
# "Q Thank you", "Q    \-- the idea": a bare Q then anything but a lower-case word ("Q and A").
_BARE_Q = re.compile(r"Q[ \t]+(?=[^\sa-z])")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?[ \t]+(?P<name>[^>\n]{1,60})>")
_BLOCK_NOTE = re.compile(r"(?m)^[ \t]*\[[^\]]{1,2000}\][ \t.]*$")
_INLINE_BRACKET = re.compile(r"\[[^\]\n]{1,300}\]")
_INLINE_PAREN = re.compile(r"\([^()\n]{1,60}\)")
_NOTE_PARA = re.compile(r"(?im)^[ \t]*(?:editor'?s |editorial )?note:[^\n]*(?:\n(?![ \t]*\n)[^\n]*)*")


def canonical_label(raw: str) -> str:
    """Canonical speaker label: bracketed notes dropped, whitespace collapsed, trailing ``.:,;``
    stripped, upper-cased (``"The President:"`` → ``"THE PRESIDENT"``). Raises TypeError for non-str."""
    if not isinstance(raw, str):
        raise TypeError(f"label must be a str, not {type(raw).__name__}")
    s = re.sub(r"\[[^\]]*\]", " ", raw).replace("’", "'")
    return " ".join(s.split()).strip(" .:,;>").upper()


# --- label candidates -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    start: int  # offset of the label's first character
    body: int  # offset where the spoken words start
    canonical: str
    term: str  # ".", ":", "" (bare Q), "v" (voice tag)
    note: tuple[int, int] | None  # a bracketed note inside the label: "FRANK CORMIER [Associated Press]."
    tokens: tuple[str, ...]  # the label's words as written, honorific dots kept


def _lines(text: str) -> Iterator[tuple[int, int]]:
    pos = 0
    for line in text.split("\n"):
        yield pos, pos + len(line)
        pos += len(line) + 1


def _skip_blank(text: str, pos: int, end: int) -> int:
    while pos < end and text[pos] in " \t":
        pos += 1
    return pos


def _candidate(text: str, ls: int, le: int) -> _Candidate | None:
    """The label-shaped prefix of line ``text[ls:le]``, if any (acceptance is decided later)."""
    s = _skip_blank(text, ls, le)
    if text.startswith(">>", s):  # broadcast captions mark a new speaker with ">>"
        s = _skip_blank(text, s + 2, le)
    line = text[s:le]
    if not line:
        return None
    m = _VOICE.match(line)
    if m:
        name = m.group("name")
        return _Candidate(s, _skip_blank(text, s + m.end(), le), canonical_label(name), "v", None, tuple(name.split()))
    m = _BARE_Q.match(line)
    if m:
        return _Candidate(s, s + m.end(), "Q", "", None, ("Q",))
    for t in _LABEL_TERM.finditer(line[:90]):
        head = line[: t.start()]
        note = None
        nm = _NOTE_AT_END.search(head)
        if nm:
            note = (s + nm.start() + (len(nm.group()) - len(nm.group().lstrip())), s + nm.end())
            head = head[: nm.start()]
        head = head.rstrip()
        if not head or not _NAME_CHARS.match(head):
            return None
        tokens = tuple(head.split())
        last = tokens[-1].rstrip(".").upper()
        if t.group() == "." and len(tokens) < 6 and (last in _HONORIFICS or (len(last) == 1 and last not in "QA")):
            continue  # "Mr." or an initial "H." ends no label: read on to the next terminator
        if len(tokens) > 5:
            return None
        after = s + t.end()
        body = _skip_blank(text, after, le)
        if body == le and t.group() == ".":
            return None  # "Ben." / "Savannah Guthrie." alone on a line: someone being called on
        if body == le:  # "NAME:" alone on its line: the words start on the next line
            body = min(le + 1, len(text))
        return _Candidate(s, body, canonical_label(head), t.group(), note, tokens)
    return None


def _is_title_word(tok: str) -> bool:
    return tok[:1].isupper()


def _accept(c: _Candidate, counts: Counter[str]) -> bool:
    """Does candidate ``c`` look like a speaker label? ``counts``: candidates per canonical label."""
    if c.term == "v" or c.canonical in ("Q", "A"):
        return True
    words = [w.rstrip(".").upper() for w in c.tokens]
    if words[0] in _STOP_FIRST:
        return False
    if not _is_title_word(c.tokens[0]) or not all(_is_title_word(w) or w in _PARTICLES for w in c.tokens):
        return False
    if words[0] in _VOCATIVE_LEADS and " ".join(words[1:]) in _VOCATIVE_OFFICES:
        return False  # "Mr. President: Paul Volcker ..." is a reporter addressing the president
    recurring = counts[c.canonical] >= 2
    if words[0] == "THE" and len(words) >= 2:
        return words[-1] in _ROLES or recurring
    if len(words) >= 2 and (words[0] in _HONORIFICS or words[0] in _TITLES):
        return True  # "President Gorbachev.", "Mr. Fitzwater.", "Secretary Baker:"
    letters = [ch for ch in c.canonical if ch.isalpha()]
    all_caps = len(letters) >= 2 and all(ch.isupper() for ch in "".join(c.tokens) if ch.isalpha())
    if all_caps:
        return len(words) >= 2 or c.term == ":" or recurring
    if c.term == ":":
        return len(words) <= 4 and recurring
    return len(words) >= 2 and recurring  # title-case "NAME." only when it recurs: "Mikhail Gorbachev."


# --- spans inside a speaker's region --------------------------------------------------------


def _first_word(note: str) -> str:
    words = re.findall(r"[^\W\d_][\w'-]*", note)
    return words[0].upper() if words else ""


def _note_kind(note: str) -> TurnKind:
    return TurnKind.STAGE if _first_word(note) in _STAGE_WORDS else TurnKind.EDITORIAL


def _is_heading(text: str, ls: int, le: int) -> bool:
    """A topic heading inserted by an editor: ``Middle East Peace Talks`` alone in its paragraph."""
    line = text[ls:le].strip()
    if not line or line[-1] in ".?!:;,\"'”’)-—–]" or not line[0].isupper():
        return False
    tokens = line.split()
    if len(tokens) > 6 or tokens[0].upper().strip(",") in _STOP_FIRST:
        return False
    if not all(t[:1].isupper() or t in _PARTICLES or t in _HEADING_SMALL_WORDS for t in tokens):
        return False
    return _blank_line_before(text, ls) and _blank_line_after(text, le)


def _blank_line_before(text: str, ls: int) -> bool:
    if ls <= 0:
        return True
    j = text.rfind("\n", 0, ls - 1)
    return not text[j + 1 : ls - 1].strip()


def _blank_line_after(text: str, le: int) -> bool:
    if le >= len(text):
        return True
    k = text.find("\n", le + 1)
    return not text[le + 1 : k if k >= 0 else len(text)].strip()


def _split_region(text: str, rs: int, re_: int, speaker: str, *, headings: bool, out: list[SpeakerTurn]) -> None:
    """Append to ``out`` the turns of ``text[rs:re_]``: speech of ``speaker`` minus the notes in it."""
    notes: list[tuple[int, int, TurnKind]] = []
    region = text[rs:re_]
    for m in _BLOCK_NOTE.finditer(region):
        notes.append((rs + m.start(), rs + m.end(), _note_kind(m.group())))
    for m in _NOTE_PARA.finditer(region):
        notes.append((rs + m.start(), rs + m.end(), TurnKind.EDITORIAL))
    if headings:
        pos = rs
        for line in region.split("\n"):
            ls, le = pos, pos + len(line)
            pos = le + 1
            # The rest of a label's line is speech, never a heading.
            if (ls != rs or rs == 0 or text[rs - 1] == "\n") and _is_heading(text, ls, le):
                notes.append((ls, le, TurnKind.EDITORIAL))
    notes = _disjoint(notes)
    for m in _INLINE_BRACKET.finditer(region):
        notes.append((rs + m.start(), rs + m.end(), _note_kind(m.group())))
    for m in _INLINE_PAREN.finditer(region):
        if _first_word(m.group()) in _STAGE_WORDS:  # other parentheses are part of the speech
            notes.append((rs + m.start(), rs + m.end(), TurnKind.STAGE))
    notes = _disjoint(notes)
    pos = rs
    for ns, ne, kind in [*notes, (re_, re_, TurnKind.SPEECH)]:
        _emit(text, pos, ns, speaker, TurnKind.SPEECH, out)
        if ne > ns:
            _emit(text, ns, ne, speaker, kind, out)
        pos = max(pos, ne)


def _disjoint(spans: list[tuple[int, int, TurnKind]]) -> list[tuple[int, int, TurnKind]]:
    """Sorted spans with the ones overlapping an earlier (or longer) span dropped."""
    spans.sort(key=lambda x: (x[0], -x[1]))
    out: list[tuple[int, int, TurnKind]] = []
    for sp in spans:
        if out and sp[0] < out[-1][1]:
            continue
        out.append(sp)
    return out


def _emit(text: str, s: int, e: int, speaker: str, kind: TurnKind, out: list[SpeakerTurn]) -> None:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    # A lone "." left between two notes is no one's words worth a turn.
    if e > s and (kind != TurnKind.SPEECH or any(ch.isalnum() for ch in text[s:e])):
        out.append(SpeakerTurn(speaker=speaker, char_start=s, char_end=e, kind=kind))


# --- parsing --------------------------------------------------------------------------------


def parse_turns(text: str, cues: Sequence[Cue] | None = None) -> TurnParse:
    """Cut ``text`` into speaker turns (rules in the module docstring and docs/quality.md).

    ``cues`` (from :func:`mmos_core.text.intake.parse_upload` for SRT/VTT) are used when any has a
    ``speaker``: each cue is a turn, a cue without speaker continues the previous one. Otherwise
    labels are read from line starts. Runs in time linear in ``len(text)``.

    Raises:
        TypeError: ``text`` is not a str.
        ValueError: a cue's offsets are outside ``text``, reversed, or not in order.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if cues and any(c.speaker for c in cues):
        return _parse_cues(text, cues)
    return _parse_lines(text)


def _parse_cues(text: str, cues: Sequence[Cue]) -> TurnParse:
    turns: list[SpeakerTurn] = []
    speaker = ""
    prev_end = 0
    for c in cues:
        if not 0 <= c.char_start <= c.char_end <= len(text) or c.char_start < prev_end:
            raise ValueError(
                f"cue {c.start}–{c.end} has offsets {c.char_start}–{c.char_end}, outside the text "
                f"(length {len(text)}) or before the previous cue's end ({prev_end})"
            )
        prev_end = c.char_end
        if c.speaker and c.speaker.strip():
            speaker = canonical_label(c.speaker)
        _split_region(text, c.char_start, c.char_end, speaker, headings=False, out=turns)
    return _result(text, turns, True, f"speakers from {len(cues)} subtitle cues")


def _parse_lines(text: str) -> TurnParse:
    cands = [c for ls, le in _lines(text) if (c := _candidate(text, ls, le)) is not None]
    counts = Counter(c.canonical for c in cands)
    labels = [c for c in cands if _accept(c, counts)]
    turns: list[SpeakerTurn] = []
    if not labels:
        _emit(text, 0, len(text), UNLABELLED, TurnKind.SPEECH, turns)
        return _result(text, turns, False, "no speaker labels found: the whole text is one speaker")
    _emit(text, 0, labels[0].start, "", TurnKind.EDITORIAL, turns)  # header / preamble
    for i, c in enumerate(labels):
        end = labels[i + 1].start if i + 1 < len(labels) else len(text)
        if c.note is not None:
            _emit(text, c.note[0], c.note[1], c.canonical, TurnKind.EDITORIAL, turns)
        _split_region(text, min(c.body, end), end, c.canonical, headings=True, out=turns)
    return _result(text, turns, True, f"{len(labels)} speaker labels at line starts")


def _result(text: str, turns: list[SpeakerTurn], labelled: bool, how: str) -> TurnParse:
    words: Counter[str] = Counter()
    order: dict[str, int] = {}
    for t in turns:
        if t.kind == TurnKind.SPEECH and t.speaker:
            words[t.speaker] += len(text[t.char_start : t.char_end].split())
            order.setdefault(t.speaker, len(order))
    speakers = dict(sorted(words.items(), key=lambda kv: (-kv[1], order[kv[0]])))
    note = how if not labelled else f"{how}; {len(speakers)} speakers, {len(turns)} spans"
    return TurnParse(turns=tuple(turns), speakers=speakers, labelled=labelled, note=note)


# --- the person's labels --------------------------------------------------------------------

_NAME_SUFFIXES = frozenset({"JR", "SR", "II", "III", "IV", "V", "PHD", "MD", "ESQ"})


def default_person_labels(speakers: Mapping[str, int] | Sequence[str], person: str) -> list[str]:
    """The canonical label(s) under which ``person`` (a name, ``"George H. W. Bush"``) speaks.

    ``speakers``: :attr:`TurnParse.speakers` (label → words) or a list of labels. Rules, first hit wins:

    1. labels containing the person's surname as a word (``"PRESIDENT BUSH"``); when several do,
       those also containing another of the person's names (a given name) if any;
    2. the label naming an office with "THE" (``"THE PRESIDENT"``, ``"THE PRIME MINISTER"``): the
       convention of official transcripts, where the principal is named by office and everyone
       else by name or ``Q``; the one with most words if several;
    3. ``"A"`` when the text uses the ``Q``/``A`` convention;
    4. the label with most words among those not of a questioner (``Q``, ``INTERVIEWER``, ...) and
       not naming somebody else (a title or honorific with another surname, ``"PRESIDENT GORBACHEV"``,
       or a full name, ``"FRANK CORMIER"``: when the person is named, such a label is another person),
       or overall when there are only questioners. A text without labels gives ``[UNLABELLED]``.

    Returns ``[]`` when ``speakers`` is empty, or when every speaker is a named other person (the
    person does not speak in the text: an excerpt of someone else's turns). Raises ValueError for an
    empty ``person``.
    """
    if not isinstance(person, str) or not person.strip():
        raise ValueError("person must be a non-empty name")
    words = dict(speakers) if isinstance(speakers, Mapping) else {s: 0 for s in speakers}
    labels = [s for s in words if s]
    if not labels:
        return []
    names = [w for w in re.findall(r"[^\W\d_][\w'’-]*", person.upper().replace("’", "'")) if len(w) > 1]
    names = [w for w in names if w not in _NAME_SUFFIXES and w not in _HONORIFICS and w not in _TITLES]
    if names:
        surname, given = names[-1], set(names[:-1])
        hits = [lb for lb in labels if surname in _label_words(lb)]
        if hits:
            both = [lb for lb in hits if given & _label_words(lb)]
            return both or hits
    office = [lb for lb in labels if lb.startswith("THE ") and not (_label_words(lb) & _QUESTIONERS)]
    if office:
        return [max(office, key=lambda lb: words[lb])]
    if "A" in labels and "Q" in labels:
        return ["A"]
    answering = [lb for lb in labels if not (_label_words(lb) & _QUESTIONERS)]
    if not answering:
        return [max(labels, key=lambda lb: words[lb])]
    unnamed = [lb for lb in answering if not (names and _names_someone(lb))]
    if not unnamed:
        return []  # every other speaker is a named other person: the person does not speak here
    return [max(unnamed, key=lambda lb: words[lb])]


def _names_someone(label: str) -> bool:
    """Whether a label names a particular person: a title or honorific with a name (``PRESIDENT
    GORBACHEV``, ``MR. FITZWATER``) or two or more name words (``FRANK CORMIER``)."""
    words = [w for w in _label_words(label) if w]
    rest = [w for w in words if w not in _TITLES and w not in _HONORIFICS and w != "THE"]
    if not rest:
        return False
    return len(rest) < len(words) or len(rest) >= 2


def _label_words(label: str) -> set[str]:
    return {w.strip(".,'") for w in label.upper().split()}


# --- lookups --------------------------------------------------------------------------------


def _check_span(char_start: int, char_end: int) -> None:
    if char_start < 0 or char_end < char_start:
        raise ValueError(f"bad span {char_start}–{char_end}: need 0 <= char_start <= char_end")


def _overlapping(turns: Sequence[SpeakerTurn], char_start: int, char_end: int) -> Iterator[tuple[SpeakerTurn, int]]:
    # Turns are sorted and disjoint, so their ends are sorted too: bisect to the first turn
    # ending after char_start, then walk only the turns that overlap.
    i = bisect_right(turns, char_start, key=attrgetter("char_end"))
    while i < len(turns) and turns[i].char_start < char_end:
        t = turns[i]
        ov = min(char_end, t.char_end) - max(char_start, t.char_start)
        if ov > 0:
            yield t, ov
        i += 1


def turn_at(turns: Sequence[SpeakerTurn], char_start: int, char_end: int | None = None) -> SpeakerTurn | None:
    """The turn holding all of ``[char_start, char_end)`` (or the character at ``char_start`` when
    ``char_end`` is None), else None. ``turns``: :attr:`TurnParse.turns` (sorted, disjoint).
    O(log n + k) for k overlapping turns. Raises ValueError for a negative or reversed span."""
    if char_end is None:
        char_end = char_start + 1
    _check_span(char_start, char_end)
    for t, _ in _overlapping(turns, char_start, char_end):
        if t.char_start <= char_start and char_end <= t.char_end:
            return t
    return None


def speakers_of_span(turns: Sequence[SpeakerTurn], char_start: int, char_end: int) -> SpanSpeakers:
    """Speech characters per speaker and stage/editorial characters overlapping ``[char_start,
    char_end)``; whitespace and label prefixes between turns count for nobody. ``turns`` as for
    :func:`turn_at`. Raises ValueError for a negative or reversed span."""
    _check_span(char_start, char_end)
    speech: dict[str, int] = {}
    other = 0
    for t, ov in _overlapping(turns, char_start, char_end):
        if t.kind == TurnKind.SPEECH:
            speech[t.speaker] = speech.get(t.speaker, 0) + ov
        else:
            other += ov
    return SpanSpeakers(speech=speech, nonspeech_chars=other)
