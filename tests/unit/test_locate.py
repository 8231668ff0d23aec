"""Locating LLM quotes in the source: exact, normalised, gapped, fuzzy, labelled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmos_core.text.intake import parse_upload
from mmos_core.text.locate import locate_quote

DATA = Path(__file__).resolve().parents[1] / "data"

TEXT = (
    "Chapter One\n\n"
    "I was born at Shrewsbury on February 12th, 1809, and my earliest\n"
    "recollection goes back only to when I was a few months over four years\n"
    "old, when we went to near Abergele for sea-bathing.\n\n"
    "My father said to me, \"You care for nothing but shooting, dogs, and\n"
    "rat-catching, and you will be a disgrace to yourself and all your family.\"\n"
    "But my father--who was the kindest man I ever knew--was unjust.\n\n"
    "No pursuit at Cambridge was followed with nearly so much eagerness or gave\n"
    "me so much pleasure as collecting beetles.\n"
)


def span(loc):
    return TEXT[loc.char_start : loc.char_end]


def test_exact():
    loc = locate_quote(TEXT, "collecting beetles")
    assert loc is not None
    assert span(loc) == "collecting beetles"
    assert loc.score == 100.0
    para = TEXT.count("\n\n", 0, loc.char_start) + 1
    assert loc.label == f"¶{para}, chars {loc.char_start:,}–{loc.char_end:,}"
    assert loc.label.startswith("¶4, ")


def test_case_whitespace_and_curly_quotes():
    quote = "“you care for NOTHING but shooting,   dogs, and rat-catching”"
    loc = locate_quote(TEXT, quote)
    assert loc is not None and loc.score == 100.0
    assert span(loc) == "You care for nothing but shooting, dogs, and\nrat-catching"


def test_dash_variants():
    for quote in (
        "But my father — who was the kindest man I ever knew — was unjust.",
        "But my father—who was the kindest man I ever knew—was unjust.",
        "but my father -- who was the kindest man I ever knew -- was unjust",
    ):
        loc = locate_quote(TEXT, quote)
        assert loc is not None and loc.score == 100.0, quote
        assert span(loc).startswith("But my father--who was the kindest man I ever knew--was unjust")


def test_ellipsis_gap():
    quote = "I was born at Shrewsbury ... when we went to near Abergele for sea-bathing"
    loc = locate_quote(TEXT, quote)
    assert loc is not None and loc.score == 100.0
    assert span(loc).startswith("I was born at Shrewsbury")
    assert span(loc).endswith("Abergele for sea-bathing")


def test_ellipsis_with_invented_piece_is_not_verbatim():
    quote = "I was born at Shrewsbury on February 12th, 1809 … and I loved geology from the cradle"
    assert locate_quote(TEXT, quote) is None
    # the same piece with a near-verbatim second half is found, slightly below 100
    quote = "I was born at Shrewsbury on February 12th, 1809 … when we went near Abergele for sea-bathing"
    loc = locate_quote(TEXT, quote)
    assert loc is not None and 85 <= loc.score < 100
    assert span(loc).startswith("I was born at Shrewsbury")
    assert span(loc).endswith("sea-bathing")


def test_one_word_changed_found_fuzzily():
    quote = "No pursuit at Cambridge was followed with nearly so much zeal or gave me so much pleasure as collecting beetles."
    loc = locate_quote(TEXT, quote)
    assert loc is not None
    assert 85 <= loc.score < 100
    assert span(loc).startswith("No pursuit at Cambridge")
    assert "collecting beetles" in span(loc)


def test_made_up_sentence_is_none():
    assert locate_quote(TEXT, "I never cared for natural history and preferred the company of lawyers.") is None


def test_short_quote_not_found_exactly_is_none():
    assert locate_quote(TEXT, "xylophone") is None
    assert locate_quote(TEXT, "   ") is None


def test_window_prefers_occurrence_inside_it():
    para = "Natural selection acts only by the preservation of profitable variations."
    filler = "Something else entirely, said at length. " * 30  # > the fuzzy margin of 500 chars
    text = f"{para}\n\n{filler}\n\n{para}\n\nAnd a third block of text."
    second = text.rindex(para)
    assert locate_quote(text, para).char_start == 0
    loc = locate_quote(text, para, window=(second - 5, len(text)))
    assert loc.char_start == second and loc.label.startswith("¶3,")
    # also for the normalised pass
    loc = locate_quote(text, "NATURAL selection acts only by the preservation of profitable variations",
                       window=(second, len(text)))
    assert loc.char_start == second and loc.score == 100.0
    # and for the fuzzy pass
    loc = locate_quote(text, "Natural selection acts only by the preservation of useful variations.",
                       window=(second, second + len(para)))
    assert loc is not None and loc.char_start == second and loc.score < 100


def test_fuzzy_is_limited_to_window():
    quote = "No pursuit at Cambridge was followed with nearly so much zeal or gave me so much pleasure"
    text = "Opening words.\n\n" + "Filler sentence about nothing. " * 40 + "\n\n" + TEXT
    assert locate_quote(text, quote, window=(0, 14)) is None
    assert locate_quote(text, quote) is not None
    start = text.index("No pursuit")
    assert locate_quote(text, quote, window=(start, start + 100)) is not None


def test_transcript_label_is_cue_start_time():
    src = parse_upload("interview.vtt", (DATA / "interview.vtt").read_bytes(), max_bytes=1_000_000)
    loc = locate_quote(src.text, "the wisest man I ever knew", cues=src.cues)
    assert loc is not None and loc.label == "00:15:30"
    loc = locate_quote(src.text, "interested in beetles", cues=src.cues)
    assert loc.label == "00:00:01"
    # A match that begins at the speaker prefix is labelled with that line's cue.
    loc = locate_quote(src.text, "Charles Darwin: At Cambridge", cues=src.cues)
    assert loc.label == "00:00:04"


def shared_dir() -> Path:
    env = os.environ.get("MMOS_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


def test_darwin_misquote_across_line_breaks():
    path = shared_dir() / "data" / "person_texts" / "darwin_autobiography.txt"
    if not path.is_file():
        pytest.skip(f"shared corpus not found at {path} (set MMOS_SHARED_DIR)")
    text = path.read_text(encoding="utf-8")
    quote = "my earliest recollection goes back only to when I was a few months over five years old"
    loc = locate_quote(text, quote)
    assert loc is not None and 85 <= loc.score < 100
    assert text[loc.char_start : loc.char_end].startswith("my earliest")
    assert loc.label.startswith("¶") and ", chars " in loc.label
