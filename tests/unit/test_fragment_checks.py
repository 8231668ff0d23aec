"""Per-fragment checks: verbatim grading with word diffs, and attribution to speaker turns."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmos_core.analysis.fragment_checks import (
    Attribution,
    AttributionKind,
    VerbatimStatus,
    WordEdit,
    check_attribution,
    check_verbatim,
    word_diff,
)
from mmos_core.text.speakers import SpeakerTurn, TurnKind, default_person_labels, parse_turns

PRESS = Path(os.environ.get("MMOS_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))
PRESS = PRESS / "data" / "press_conferences"

SOURCE = (
    "President: Ada Example\n\n"
    "THE PRESIDENT: Good afternoon. The economy is growing faster than anyone expected last year, "
    "and I intend to keep it that way. [Laughter] We will cut taxes for working families.\n\n"
    "Q: Mr. President, will you raise the debt ceiling before the end of the month?\n\n"
    "THE PRESIDENT: We have no choice but to raise it -- and Congress knows that.\n"
)
PARSE = parse_turns(SOURCE)
PERSON = default_person_labels(PARSE.speakers, "Ada Example")


def span_of(phrase: str) -> tuple[int, int]:
    i = SOURCE.index(phrase)
    return i, i + len(phrase)


# --- verbatim -------------------------------------------------------------------------------


def test_exact_after_normalisation():
    q = "The economy is growing faster than anyone expected last year"
    v = check_verbatim(q, SOURCE)
    assert v.status == VerbatimStatus.EXACT and v.similarity == 1.0
    assert (v.char_start, v.char_end) == span_of(q)
    assert v.edits == () and v.diff == ""
    for variant in (
        "“the ECONOMY is growing  faster than\nanyone expected last year”",
        "We have no choice but to raise it — and Congress knows that.",
        "The economy is growing faster ... last year",
    ):
        assert check_verbatim(variant, SOURCE).status == "exact", variant


def test_prefixed_quote_is_near_with_the_insertion_shown():
    q = "I think that the economy is growing faster than anyone expected last year."
    v = check_verbatim(q, SOURCE)
    assert v.status == VerbatimStatus.NEAR
    assert 0.80 <= v.similarity < 1.0
    assert SOURCE[v.char_start : v.char_end].startswith("The economy is growing")
    assert v.edits[0] == WordEdit(op="insert", quote="I think that", source="")
    assert v.diff.startswith("{+I think that+} the economy")


def test_changed_word_is_near_and_the_models_text_is_kept():
    q = "We will cut taxes for middle-class families."
    v = check_verbatim(q, SOURCE)
    assert v.status == "near"
    assert v.edits == (WordEdit(op="replace", quote="middle-class", source="working"),)
    assert v.diff == "We will cut taxes for [-working-]{+middle-class+} families."
    # The diff is the model's words with the source's marked, never the source substituted.
    assert v.diff.replace("[-working-]", "").replace("{+", "").replace("+}", "") == q


def test_not_found():
    v = check_verbatim("Unemployment among young people has never been this high in our history.", SOURCE)
    assert v.status == VerbatimStatus.NOT_FOUND
    assert v.char_start is None and v.char_end is None
    assert 0.0 <= v.similarity < 0.80
    assert check_verbatim("tax hikes", SOURCE).status == "not_found"  # too short to match fuzzily


def test_hint_picks_the_nearer_occurrence():
    text = "A: We will win.\n\n" + "filler words here. " * 40 + "\n\nB: We will win.\n"
    near_end = check_verbatim("We will win.", text, hint=(len(text) - 20, len(text)))
    assert near_end.char_start == text.rindex("We will win.")
    assert check_verbatim("We will win.", text).char_start == text.index("We will win.")


def test_verbatim_errors():
    with pytest.raises(ValueError):
        check_verbatim("   ", SOURCE)
    with pytest.raises(ValueError):
        check_verbatim("abc def", SOURCE, hint=(10, 5))
    with pytest.raises(ValueError):
        check_verbatim("abc def", SOURCE, min_similarity=0.0)
    with pytest.raises(TypeError):
        check_verbatim(None, SOURCE)  # type: ignore[arg-type]
    assert check_verbatim("anything at all here", "").status == "not_found"


def test_word_diff_ignores_case_and_edge_punctuation():
    edits, diff = word_diff("we must, GAIN control", "We must gain control.")
    assert edits == () and diff == "we must, GAIN control"
    edits, _ = word_diff("we gain control", "we must gain control")
    assert edits == (WordEdit(op="delete", quote="", source="must"),)


# --- attribution ----------------------------------------------------------------------------


def test_person_other_editorial_unknown():
    assert PERSON == ["THE PRESIDENT"]
    a = check_attribution(*span_of("We will cut taxes for working families."), PARSE.turns, PERSON)
    assert a.kind == AttributionKind.PERSON and a.speaker == "THE PRESIDENT" and str(a) == "person"
    q = check_attribution(*span_of("will you raise the debt ceiling"), PARSE.turns, PERSON)
    assert str(q) == "other:Q" and q.speaker == "Q"
    assert str(check_attribution(*span_of("[Laughter]"), PARSE.turns, PERSON)) == "editorial"
    assert str(check_attribution(*span_of("President: Ada Example"), PARSE.turns, PERSON)) == "editorial"
    # The label prefix itself is nobody's turn; so is anything past the end.
    assert str(check_attribution(*span_of("THE PRESIDENT: Good"), PARSE.turns, PERSON)) == "person"
    assert str(check_attribution(*span_of("Q: "), PARSE.turns, PERSON)) == "unknown"
    assert str(check_attribution(len(SOURCE) + 5, len(SOURCE) + 9, PARSE.turns, PERSON)) == "unknown"


def test_stage_notes_inside_speech_are_transparent():
    phrase = "I intend to keep it that way. [Laughter] We will cut taxes"
    a = check_attribution(*span_of(phrase), PARSE.turns, ["The President:"])
    assert a.kind == "person" and a.speakers == ("THE PRESIDENT",)


def test_span_across_speakers_is_mixed():
    s, _ = span_of("before the end of the month?")
    _, e = span_of("We have no choice")
    a = check_attribution(s, e, PARSE.turns, PERSON)
    assert a.kind == AttributionKind.MIXED and a.speaker is None
    assert a.speakers == ("Q", "THE PRESIDENT")
    assert str(a) == "mixed"
    # A fuzzy span overrunning a few characters into the next turn can be tolerated.
    s2, _ = span_of("month?")
    assert str(check_attribution(s2, e, PARSE.turns, PERSON, spill_chars=6)) == "person"


def test_prefix_on_a_turn_opening_sentence_does_not_reach_into_the_previous_turn():
    # Character alignment would pair "I think that" with "families.\n\nQ:" above the question.
    quote = "I think that Mr. President, will you raise the debt ceiling before the end of the month?"
    v = check_verbatim(quote, SOURCE)
    assert v.status == "near"
    assert SOURCE[v.char_start : v.char_end].startswith("Mr. President, will you")
    assert v.diff.startswith("{+I think that+} Mr. President")
    assert str(check_attribution(v.char_start, v.char_end, PARSE.turns, PERSON)) == "other:Q"


def test_several_labels_of_the_person_are_one_person():
    turns = [SpeakerTurn("PRESIDENT BUSH", 0, 10), SpeakerTurn("THE PRESIDENT", 11, 20)]
    assert str(check_attribution(0, 20, turns, ["PRESIDENT BUSH", "THE PRESIDENT"])) == "person"
    unknown = [SpeakerTurn("", 0, 10, TurnKind.SPEECH)]
    assert str(check_attribution(0, 5, unknown, ["A"])) == "unknown"


def test_attribution_serialisation_and_errors():
    for label in ("person", "other:PRESIDENT GORBACHEV", "editorial", "mixed", "unknown"):
        assert Attribution.parse(label).label == label
    for bad in ("speaker", "other", "person:X", ""):
        with pytest.raises(ValueError):
            Attribution.parse(bad)
    with pytest.raises(ValueError):
        check_attribution(5, 5, PARSE.turns, PERSON)
    with pytest.raises(ValueError):
        check_attribution(-1, 5, PARSE.turns, PERSON)
    with pytest.raises(ValueError):
        check_attribution(1, 5, PARSE.turns, PERSON, spill_chars=-1)


# --- real press conferences -----------------------------------------------------------------


def press(name: str) -> str:
    path = PRESS / name
    if not path.exists():
        msg = f"{path} not found: the shared press-conference data (../shared/data/press_conferences) is absent"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path.read_text(encoding="utf-8")


def check(text: str, person: str, quote: str):
    parse = parse_turns(text)
    v = check_verbatim(quote, text)
    assert v.char_start is not None, quote
    return v, check_attribution(v.char_start, v.char_end, parse.turns, default_person_labels(parse.speakers, person))


def test_press_conference_question_is_the_reporters():
    text = press("2009-01-12-final-press-conference.txt")
    v, a = check(text, "George W. Bush", "I'm wondering if you plan to ask Congress for the remaining $350 billion")
    assert v.status == "exact" and str(a) == "other:Q"
    v, a = check(text, "George W. Bush", "I have talked to the President-elect about this subject.")
    assert v.status == "exact" and str(a) == "person"


def test_press_conference_misquote_is_near_with_a_diff():
    text = press("2010-11-03-press-conference-after-2010-midterm-elections.txt")
    quote = "I think that some are exhilarating; some are humbling."
    v, a = check(text, "Barack Obama", quote)
    assert v.status == "near" and "{+I think that+}" in v.diff
    assert str(a) == "person"
    v, _ = check(text, "Barack Obama", "Some are exciting; some are humbling.")
    assert v.status == "near" and v.edits == (WordEdit("replace", "exciting;", "exhilarating;"),)


def test_gorbachev_and_bush_are_told_apart():
    text = press("1991-07-31-press-conference-mikhail-gorbachev.txt")
    _, a = check(text, "George H. W. Bush", "What I heard I liked.")
    assert str(a) == "person"
    _, a = check(text, "George H. W. Bush", "I understood that you almost agree with everything I have said.")
    assert str(a) == "other:PRESIDENT GORBACHEV"
    # The end of Gorbachev's turn joined to the start of Bush's: two speakers.
    joined = "I understood that you almost agree with everything I have said. What I heard I liked."
    v, a = check(text, "George H. W. Bush", joined)
    assert v.status == "near" and str(a) == "mixed"
    _, a = check(text, "George H. W. Bush", "At this point, President Bush's earphones for translation failed.")
    assert str(a) == "editorial"
