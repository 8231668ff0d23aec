"""Speaker turns: label conventions, non-labels, notes, subtitle cues and six real press conferences."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmos_core.text.intake import Cue, parse_upload
from mmos_core.text.speakers import (
    UNLABELLED,
    SpeakerTurn,
    TurnKind,
    canonical_label,
    default_person_labels,
    parse_turns,
    speakers_of_span,
    turn_at,
)

DATA = Path(__file__).resolve().parents[1] / "data"
PRESS = Path(os.environ.get("MMOS_SHARED_DIR", Path(__file__).resolve().parents[2].parent / "shared"))
PRESS = PRESS / "data" / "press_conferences"


def who(text: str, phrase: str, parse=None) -> tuple[str, TurnKind] | None:
    """(speaker, kind) of the turn holding ``phrase`` (first occurrence)."""
    parse = parse or parse_turns(text)
    i = text.index(phrase)
    t = turn_at(parse.turns, i, i + len(phrase))
    return None if t is None else (t.speaker, t.kind)


def spoken(text: str, parse) -> list[tuple[str, str]]:
    return [(t.speaker, text[t.char_start : t.char_end]) for t in parse.turns if t.kind == TurnKind.SPEECH]


# --- conventions ----------------------------------------------------------------------------


def test_label_forms_in_any_case_are_one_speaker():
    text = (
        "THE PRESIDENT. Good morning.\n\n"
        "Q. Mr. President, what about taxes?\n\n"
        "The President: We will cut them.\n\n"
        "Q: When?\n\n"
        "The President. Soon.\n\n"
        "THE PRESIDENT: Next question.\n"
    )
    p = parse_turns(text)
    assert p.labelled
    assert list(p.speakers) == ["THE PRESIDENT", "Q"]
    assert spoken(text, p) == [
        ("THE PRESIDENT", "Good morning."),
        ("Q", "Mr. President, what about taxes?"),
        ("THE PRESIDENT", "We will cut them."),
        ("Q", "When?"),
        ("THE PRESIDENT", "Soon."),
        ("THE PRESIDENT", "Next question."),
    ]
    assert p.speakers == {"THE PRESIDENT": 9, "Q": 6}


def test_offsets_exclude_the_label_and_point_into_the_text():
    text = "Intro line.\n\nTHE PRESIDENT: Thank you all.\nQ  Mr. President, one more?\n"
    p = parse_turns(text)
    pres = next(t for t in p.turns if t.speaker == "THE PRESIDENT")
    assert text[pres.char_start : pres.char_end] == "Thank you all."
    assert text[: pres.char_start].endswith("THE PRESIDENT: ")
    q = next(t for t in p.turns if t.speaker == "Q")
    assert text[q.char_start : q.char_end] == "Mr. President, one more?"
    # Text before the first label is a preamble: nobody's words.
    assert who(text, "Intro line.") == ("", TurnKind.EDITORIAL)


def test_bare_q_with_spaces_and_q_thank_you():
    text = "THE PRESIDENT: Ben.\n\nQ Thank you, Mr. President.\n\nQ    (Inaudible.)\n\nTHE PRESIDENT: Yes.\n"
    p = parse_turns(text)
    assert who(text, "Thank you, Mr. President.", p) == ("Q", TurnKind.SPEECH)
    assert who(text, "(Inaudible.)", p) == ("Q", TurnKind.STAGE)
    assert who(text, "Yes.", p) == ("THE PRESIDENT", TurnKind.SPEECH)


def test_a_lines_and_answer_label():
    text = "Q. Where were you born?\nA. In Shrewsbury.\nQ: When?\nA: In 1809.\n"
    p = parse_turns(text)
    assert p.speakers == {"Q": 5, "A": 4}
    assert default_person_labels(p.speakers, "Charles Darwin") == ["A"]


@pytest.mark.parametrize(
    "line",
    [
        "Ben.",
        "Thank you.",
        "Savannah Guthrie.",
        "Matt Spetalnick of Reuters.",
        "Toby. Yes, we'll get everybody.",
        "Yes. I think so.",
        "Last question. Ann -- since you've been there from day one.",
        "10:30 is when the meeting starts.",
        "Note: this is on the record.",
        "North Korea is still a problem.",
        "Mr. President: Paul Volcker has been squeezing the money supply.",
        "Ms. Thomas [Helen Thomas, United Press International].",
        "A lot of people asked.",
    ],
)
def test_lines_that_are_not_labels_continue_the_previous_speaker(line):
    text = f"THE PRESIDENT: Let me answer.\n\nQ Will it end soon?\n\n{line}\n\nTHE PRESIDENT: It will.\n"
    p = parse_turns(text)
    assert set(p.speakers) == {"THE PRESIDENT", "Q"}
    word = line.split()[-1].strip("[].")
    i = text.index(line) + line.rindex(word)
    t = turn_at(p.turns, i)
    assert t is not None and t.speaker == "Q"


def test_mr_president_inside_a_line_is_not_a_label():
    text = "Q. Mr. President, an American delegate said: yes. Mr. Smith. agreed\n\nTHE PRESIDENT. No.\n"
    p = parse_turns(text)
    assert who(text, "Mr. Smith.", p) == ("Q", TurnKind.SPEECH)
    assert list(p.speakers) == ["Q", "THE PRESIDENT"]


def test_role_forms_names_and_caps():
    text = (
        "President Gorbachev. Good evening.\n\n"
        "President Bush. Thank you, sir.\n\n"
        "Mr. Fitzwater. We used our allotted time.\n\n"
        "FRANK CORMIER [Associated Press]. Thank you, Mr. President.\n\n"
        "George H. W. Bush: One more thing.\n\n"
        "THE VICE PRESIDENT: Agreed.\n\n"
        "George H. W. Bush: And another.\n"
    )
    p = parse_turns(text)
    assert set(p.speakers) == {
        "PRESIDENT GORBACHEV",
        "PRESIDENT BUSH",
        "MR. FITZWATER",
        "FRANK CORMIER",
        "GEORGE H. W. BUSH",
        "THE VICE PRESIDENT",
    }
    assert who(text, "[Associated Press]", p) == ("FRANK CORMIER", TurnKind.EDITORIAL)
    assert who(text, "Thank you, Mr. President.", p) == ("FRANK CORMIER", TurnKind.SPEECH)


def test_title_case_colon_labels_must_recur():
    text = "Ada: Hello.\nBen: Hi there.\nAda: How are you?\nBen: Fine.\nWarning: slippery floor.\n"
    p = parse_turns(text)
    assert set(p.speakers) == {"ADA", "BEN"}
    assert who(text, "slippery floor", p) == ("BEN", TurnKind.SPEECH)
    once = parse_turns("Ada: Hello there, this is a letter.\n\nI hope you are well.\n")
    assert not once.labelled


def test_label_alone_on_its_line():
    text = "INTERVIEWER:\nWhen did you start?\n\nDARWIN:\nAt Cambridge.\n"
    p = parse_turns(text)
    assert spoken(text, p) == [("INTERVIEWER", "When did you start?"), ("DARWIN", "At Cambridge.")]


def test_voice_tags_in_raw_text():
    text = "<v Ada Lovelace>The engine weaves patterns.\n<v.loud Ben>Like a loom?\n"
    p = parse_turns(text)
    assert spoken(text, p) == [("ADA LOVELACE", "The engine weaves patterns."), ("BEN", "Like a loom?")]


def test_canonical_label():
    assert canonical_label("The President:") == canonical_label("THE PRESIDENT.") == "THE PRESIDENT"
    assert canonical_label("  Frank  Cormier [AP]. ") == "FRANK CORMIER"
    with pytest.raises(TypeError):
        canonical_label(None)  # type: ignore[arg-type]


# --- notes ----------------------------------------------------------------------------------


def test_inline_stage_notes_are_cut_out_of_speech():
    text = "THE PRESIDENT: I hope they do it by long distance. [Laughter] Next question.\n"
    p = parse_turns(text)
    assert [(t.kind, text[t.char_start : t.char_end]) for t in p.turns] == [
        (TurnKind.SPEECH, "I hope they do it by long distance."),
        (TurnKind.STAGE, "[Laughter]"),
        (TurnKind.SPEECH, "Next question."),
    ]
    assert all(t.speaker == "THE PRESIDENT" for t in p.turns)
    assert p.speakers == {"THE PRESIDENT": 10}


def test_parenthesised_stage_notes_and_editorial_insertions():
    text = (
        "THE PRESIDENT: Eight years. (Laughter.) And the first $350 [billion,] I am pleased (as you know) "
        "with it.\n\nQ: Three Americans are held in Vietnam [Iran]. (Applause)\n"
    )
    p = parse_turns(text)
    assert who(text, "(Laughter.)", p) == ("THE PRESIDENT", TurnKind.STAGE)
    assert who(text, "[billion,]", p) == ("THE PRESIDENT", TurnKind.EDITORIAL)
    assert who(text, "[Iran]", p) == ("Q", TurnKind.EDITORIAL)
    assert who(text, "(Applause)", p) == ("Q", TurnKind.STAGE)
    # Parentheses that are not stage notes are the speaker's words.
    assert who(text, "I am pleased (as you know) with it.", p) == ("THE PRESIDENT", TurnKind.SPEECH)


def test_bracketed_paragraphs_headings_and_header_are_editorial():
    text = (
        "President: Jimmy Carter\n\n"
        "President Gorbachev. It is kind of difficult for me -- --\n\n"
        "[At this point, President Bush's earphones for translation failed.]\n\n"
        "I guess I'll have to repeat what I said. [Laughter]\n\n"
        "Middle East Peace Talks\n\n"
        "Q. Mr. President, does that mean a conference?\n\n"
        "NOTE: The news conference began at 7:40 p.m.\n"
    )
    p = parse_turns(text)
    assert who(text, "President: Jimmy Carter", p) == ("", TurnKind.EDITORIAL)
    assert who(text, "[At this point", p)[1] == TurnKind.EDITORIAL
    assert who(text, "I guess I'll have to repeat", p) == ("PRESIDENT GORBACHEV", TurnKind.SPEECH)
    assert who(text, "[Laughter]", p)[1] == TurnKind.STAGE
    assert who(text, "Middle East Peace Talks", p)[1] == TurnKind.EDITORIAL
    assert who(text, "The news conference began", p)[1] == TurnKind.EDITORIAL
    assert set(p.speakers) == {"PRESIDENT GORBACHEV", "Q"}


# --- texts without labels -------------------------------------------------------------------


def test_book_and_letter_are_one_speaker():
    book = "Chapter One\n\nI was born at Shrewsbury.\n\nThank you.\n\nYes. My father said: nothing.\n"
    p = parse_turns(book)
    assert not p.labelled
    assert p.note == "no speaker labels found: the whole text is one speaker"
    assert len(p.turns) == 1 and p.turns[0].speaker == UNLABELLED
    assert book[p.turns[0].char_start : p.turns[0].char_end] == book.strip()
    assert default_person_labels(p.speakers, "Charles Darwin") == [UNLABELLED]
    assert parse_turns("").turns == ()


def test_bad_input():
    with pytest.raises(TypeError):
        parse_turns(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="outside the text"):
        parse_turns("short", cues=[Cue(0, 50, "00:00:00.000", "00:00:01.000", "Ada")])


# --- subtitles ------------------------------------------------------------------------------


def test_srt_cue_speakers():
    parsed = parse_upload("interview.srt", (DATA / "interview.srt").read_bytes(), max_bytes=1_000_000)
    p = parse_turns(parsed.text, parsed.cues)
    assert p.labelled and "cues" in p.note
    assert who(parsed.text, "When did you first become", p) == ("INTERVIEWER", TurnKind.SPEECH)
    assert who(parsed.text, "At Cambridge, I think.", p) == ("DARWIN", TurnKind.SPEECH)
    # An unlabelled cue continues the previous speaker.
    assert who(parsed.text, "It gave me the greatest delight.", p) == ("DARWIN", TurnKind.SPEECH)


def test_vtt_voice_tags_and_name_prefixes():
    parsed = parse_upload("interview.vtt", (DATA / "interview.vtt").read_bytes(), max_bytes=1_000_000)
    p = parse_turns(parsed.text, parsed.cues)
    assert who(parsed.text, "When did you first become", p) == ("FRANCIS DARWIN", TurnKind.SPEECH)
    assert who(parsed.text, "At Cambridge, I think.", p) == ("CHARLES DARWIN", TurnKind.SPEECH)
    assert who(parsed.text, "It gave me the greatest delight.", p) == ("CHARLES DARWIN", TurnKind.SPEECH)
    assert who(parsed.text, "And your father?", p) == ("Q", TurnKind.SPEECH)
    assert default_person_labels(p.speakers, "Charles Darwin") == ["CHARLES DARWIN"]


def test_cues_without_speakers_fall_back_to_text_labels():
    text = "HOST: Welcome.\nGUEST: Thanks.\n"
    cues = [Cue(0, 14, "00:00:00.000", "00:00:01.000", None), Cue(15, 29, "00:00:01.000", "00:00:02.000", None)]
    p = parse_turns(text, cues)
    assert set(p.speakers) == {"HOST", "GUEST"}


# --- the person's labels and lookups --------------------------------------------------------


def test_default_person_labels_rules():
    sp = {"PRESIDENT GORBACHEV": 900, "PRESIDENT BUSH": 300, "Q": 100}
    assert default_person_labels(sp, "George H. W. Bush") == ["PRESIDENT BUSH"]
    assert default_person_labels(sp, "Mikhail Gorbachev") == ["PRESIDENT GORBACHEV"]
    press = {"THE PRESIDENT": 500, "Q": 200, "MR. FITZWATER": 20}
    assert default_person_labels(press, "Barack Obama") == ["THE PRESIDENT"]
    family = {"GEORGE BUSH": 10, "LAURA BUSH": 50, "Q": 5}
    assert default_person_labels(family, "George W. Bush") == ["GEORGE BUSH"]
    interview = {"INTERVIEWER": 900, "SMITH": 100}
    assert default_person_labels(interview, "Ada Lovelace") == ["SMITH"]
    assert default_person_labels({}, "Ada Lovelace") == []
    assert default_person_labels(["Q", "JONES"], "Ada Lovelace") == ["JONES"]
    with pytest.raises(ValueError):
        default_person_labels(sp, " ")


def test_turn_at_and_speakers_of_span():
    turns = [SpeakerTurn("A", 10 * i, 10 * i + 8, TurnKind.SPEECH if i % 3 else TurnKind.STAGE) for i in range(10_000)]
    assert turn_at(turns, 51, 55) == turns[5]
    assert turn_at(turns, 58, 59) is None  # in the gap between turns
    assert turn_at(turns, 55, 62) is None  # across two turns
    span = speakers_of_span(turns, 25, 65)
    # Turn i spans 10i..10i+8 and is a stage note when i % 3 == 0: 25..65 meets turns 2 (3 chars),
    # 3 (stage, 8), 4 (8), 5 (8) and 6 (stage, 5).
    assert span.speech == {"A": 3 + 8 + 8}
    assert span.nonspeech_chars == 8 + 5
    with pytest.raises(ValueError):
        speakers_of_span(turns, 5, 4)
    with pytest.raises(ValueError):
        turn_at(turns, -1)


# --- six real press conferences -------------------------------------------------------------

FILES = {
    "1977-03-09-remarks-president-carters-press-conference.txt": ("Jimmy Carter", "THE PRESIDENT", 20),
    "1981-01-29-first-press-conference.txt": ("Ronald Reagan", "THE PRESIDENT", 20),
    "1991-07-31-press-conference-mikhail-gorbachev.txt": ("George H. W. Bush", "PRESIDENT BUSH", 15),
    "1993-01-29-press-conference-gays-military.txt": ("Bill Clinton", "THE PRESIDENT", 8),
    "2009-01-12-final-press-conference.txt": ("George W. Bush", "THE PRESIDENT", 30),
    "2010-11-03-press-conference-after-2010-midterm-elections.txt": ("Barack Obama", "THE PRESIDENT", 15),
}


def press(name: str) -> str:
    path = PRESS / name
    if not path.exists():
        msg = f"{path} not found: the shared press-conference data (../shared/data/press_conferences) is absent"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(FILES))
def test_press_conference_speakers(name):
    text = press(name)
    person, label, min_q = FILES[name]
    assert text.splitlines()[0] == f"President: {person}"
    p = parse_turns(text)
    assert p.labelled
    assert default_person_labels(p.speakers, person) == [label]
    # The president speaks most, except beside Gorbachev (his answers were translated at length).
    ranked = list(p.speakers)
    assert ranked[0] == ("PRESIDENT GORBACHEV" if "gorbachev" in name else label)
    assert p.speakers[label] > 0.2 * sum(p.speakers.values())
    q_turns = [t for t in p.turns if t.speaker == "Q" and t.kind == TurnKind.SPEECH]
    assert len(q_turns) >= min_q
    # The repository's header line is no one's words.
    assert who(text, f"President: {person}", p) == ("", TurnKind.EDITORIAL)
    # Every "[Laughter]" / "(Laughter.)" is a stage note, never speech.
    for marker in ("[Laughter]", "(Laughter.)"):
        start = text.find(marker)
        while start >= 0:
            t = turn_at(p.turns, start, start + len(marker))
            assert t is not None and t.kind == TurnKind.STAGE, (name, start)
            start = text.find(marker, start + 1)


def test_gorbachev_file_three_main_speakers_and_headings():
    text = press("1991-07-31-press-conference-mikhail-gorbachev.txt")
    p = parse_turns(text)
    main = [s for s, w in p.speakers.items() if w >= 500]
    assert sorted(main) == ["PRESIDENT BUSH", "PRESIDENT GORBACHEV", "Q"]
    assert "MR. FITZWATER" in p.speakers
    assert who(text, "Middle East Peace Talks", p)[1] == TurnKind.EDITORIAL
    assert who(text, "[At this point, President Bush's earphones", p)[1] == TurnKind.EDITORIAL
    assert who(text, "I guess I'll have to repeat", p) == ("PRESIDENT GORBACHEV", TurnKind.SPEECH)
    assert who(text, "What I heard I liked.", p) == ("PRESIDENT BUSH", TurnKind.SPEECH)


def test_calling_on_reporters_is_the_presidents_speech():
    bush = press("2009-01-12-final-press-conference.txt")
    p = parse_turns(bush)
    ben = bush.index("\nBen.\n") + 1
    assert turn_at(p.turns, ben, ben + 4).speaker == "THE PRESIDENT"
    assert who(bush, "\nToby. Yes, we'll get everybody.", p) == ("THE PRESIDENT", TurnKind.SPEECH)
    assert who(bush, "So you haven't made the request yet?", p) == ("Q", TurnKind.SPEECH)
    obama = press("2010-11-03-press-conference-after-2010-midterm-elections.txt")
    assert who(obama, "Savannah Guthrie.") == ("THE PRESIDENT", TurnKind.SPEECH)
    carter = press("1977-03-09-remarks-president-carters-press-conference.txt")
    pc = parse_turns(carter)
    assert who(carter, "Ms. Thomas", pc) == ("THE PRESIDENT", TurnKind.SPEECH)
    assert who(carter, "[Helen Thomas, United Press International]", pc)[1] == TurnKind.EDITORIAL
    thanks = carter.rindex("Thank you, Mr. President.")
    assert turn_at(pc.turns, thanks, thanks + 25).speaker == "FRANK CORMIER"


def test_reagan_vocative_line_stays_with_the_reporter():
    text = press("1981-01-29-first-press-conference.txt")
    p = parse_turns(text)
    assert "MR. PRESIDENT" not in p.speakers
    assert who(text, "Paul Volcker, the Chairman of the Federal Reserve Board", p) == ("Q", TurnKind.SPEECH)
    assert who(text, "[Iran]", p) == ("Q", TurnKind.EDITORIAL)


def test_an_excerpt_where_the_person_never_speaks_has_no_person_label():
    """The first 600 words of the 1991 conference are Gorbachev's alone: he must not become "the person"
    (George H. W. Bush) just because he has the most words; other named people are never the default."""
    assert default_person_labels({"PRESIDENT GORBACHEV": 900, "Q": 40}, "George H. W. Bush") == []
    assert default_person_labels({"PRESIDENT GORBACHEV": 900, "PRESIDENT BUSH": 30}, "George H. W. Bush") == ["PRESIDENT BUSH"]
    assert default_person_labels({"FRANK CORMIER": 900, "Q": 300, "THE PRESIDENT": 10}, "Jimmy Carter") == ["THE PRESIDENT"]
