"""The one sentence splitter (`mmos_core.text.sentences`, pysbd): abbreviations, offsets, edges, cost."""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

import pytest

from mmos_core.text import sentences as S
from mmos_core.text.sentences import sentence_spans, split_sentences

TEXTS = Path(os.environ.get("MMOS_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared")) / "data" / "person_texts"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr. Smith went. He came back.", ["Mr. Smith went.", "He came back."]),
        ("Use e.g. this one. And that one.", ["Use e.g. this one.", "And that one."]),
        ("The U.S. economy grew last year. It slowed.", ["The U.S. economy grew last year.", "It slowed."]),
        ("Prices rose 3.5 percent. Wages did not.", ["Prices rose 3.5 percent.", "Wages did not."]),
        ("Dr. Jones arrived late. Nobody minded.", ["Dr. Jones arrived late.", "Nobody minded."]),
        ("We met at 5 p.m. Then we left.", ["We met at 5 p.m.", "Then we left."]),
        ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
        ("Is it? Yes! Fine.", ["Is it?", "Yes!", "Fine."]),
        ("He told me. I left.", ["He told me.", "I left."]),  # "me" is Maine in pysbd's list
    ],
)
def test_abbreviations_numbers_and_quotes(text, expected):
    assert split_sentences(text) == expected


def test_offsets_round_trip():
    text = "  Mr. Smith went to Washington.\nHe met Dr. Jones at 5 p.m. on the 3rd.\n\nThe U.S. economy grew 3.5 percent!  "
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == split_sentences(text)
    assert split_sentences(text) == [
        "Mr. Smith went to Washington.",
        "He met Dr. Jones at 5 p.m. on the 3rd.",
        "The U.S. economy grew 3.5 percent!",
    ]
    assert all(a < b for a, b in spans) and all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:], strict=False))
    # every non-whitespace character is in exactly one sentence
    covered = "".join(text[a:b] for a, b in spans)
    assert "".join(covered.split()) == "".join(text.split())


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t"])
def test_empty_text(text):
    assert sentence_spans(text) == [] and split_sentences(text) == []


def test_text_without_final_punctuation():
    assert split_sentences("First one. And the last one has no end") == ["First one.", "And the last one has no end"]
    assert split_sentences("just words") == ["just words"]


def test_prose_reads_single_line_breaks_as_hard_wraps():
    text = "Darwin sailed on the\nBeagle in 1831. He was\ntwenty-two.\n\nA new paragraph"
    assert split_sentences(text) == ["Darwin sailed on the\nBeagle in 1831.", "He was\ntwenty-two.", "A new paragraph"]
    # a year at the start of a wrapped line is not a list item
    assert split_sentences("It was published in\n1859. It sold out.") == ["It was published in\n1859.", "It sold out."]


def test_list_items_start_sentences():
    text = "Steps:\n1. **Search**: find the page\n2. **Read**: take notes\n- a bullet"
    assert split_sentences(text) == ["Steps:", "1. **Search**: find the page", "2. **Read**: take notes", "- a bullet"]


def test_lines_mode_for_chat_turns():
    text = "Status OK\nExit code 0\nthe run went on\nin lower case"
    assert split_sentences(text, lines=True) == ["Status OK", "Exit code 0\nthe run went on\nin lower case"]
    assert split_sentences(text) == [text]  # prose: one sentence, no punctuation


def test_short_quotes_and_brackets_are_not_split():
    assert split_sentences('He said "Stop. Now." and left the room.') == ['He said "Stop. Now." and left the room.']
    assert split_sentences("She wrote (see p. 3. It is long.) and went on.") == ["She wrote (see p. 3. It is long.) and went on."]


def test_long_quotes_and_brackets_are_split_inside():
    note = "[Footnote 1: " + " ".join(f"The editor adds note {i} here." for i in range(20)) + "]"
    assert len(note) > S.MAX_PROTECTED_CHARS
    sentences = split_sentences(f"Text before. {note} After it.")
    assert sentences[:3] == ["Text before.", "[Footnote 1: The editor adds note 0 here.", "The editor adds note 1 here."]
    assert sentences[-2:] == ["The editor adds note 19 here.]", "After it."]


def test_windowing_gives_the_boundaries_of_one_pass_without_quote_pairs(monkeypatch):
    # pysbd never splits between quotes, brackets or "--" pairs however far apart: take them out. Its
    # numbered-list rule ("5. ... 6. ... 7.") also looks beyond a window: allow 1 % difference.
    text = re.sub(r"--|[\"'()\[\]{}\u00ab\u00bb\u201c\u201d\u2018\u2019]", " ", " ".join(_words(12_000)))
    windowed = {a for a, _ in sentence_spans(text)}
    monkeypatch.setattr(S, "WINDOW_CHARS", 10**9)
    one_pass = {a for a, _ in sentence_spans(text)}
    print(f"\nwindowed vs one pass: {len(windowed)} / {len(one_pass)} starts, {len(windowed ^ one_pass)} differ")
    assert len(windowed ^ one_pass) <= 0.01 * len(one_pass)


def test_a_stray_quote_pair_does_not_hide_boundaries_beyond_a_window():
    body = " ".join(f"Sentence number {i} is here." for i in range(400))
    text = f'He wrote "{body} and stopped." Then he left.'
    assert len(split_sentences(text)) > 300  # pysbd in one piece: nothing split between the quotes


def test_a_sentence_longer_than_the_window_stays_whole(monkeypatch):
    monkeypatch.setattr(S, "WINDOW_CHARS", 500)
    monkeypatch.setattr(S, "LOOKAHEAD_CHARS", 50)
    long = "word " * 400 + "end."
    assert split_sentences(f"Short one. {long} Next one.") == ["Short one.", long, "Next one."]


def test_a_long_text_without_any_sentence_end_is_one_sentence():
    text = "word " * 60_000  # 300,000 characters, no punctuation: windows move on at spaces
    t0 = time.perf_counter()
    assert sentence_spans(text) == [(0, len(text) - 1)]
    print(f"\n300,000 characters without a sentence end: {time.perf_counter() - t0:.2f} s")


def test_fifty_thousand_words_split_quickly():
    text = " ".join(_words(50_000))
    t0 = time.perf_counter()
    spans = sentence_spans(text)
    elapsed = time.perf_counter() - t0
    print(f"\n50,000 words ({len(text):,} characters, one paragraph): {len(spans):,} sentences in {elapsed:.2f} s")
    assert len(spans) > 100
    assert all(text[a:b].strip() == text[a:b] for a, b in spans)


def _words(n: int) -> list[str]:
    """n words of real English prose (the person texts when present), else a seeded synthetic text
    with abbreviations and decimals in it."""
    out: list[str] = []
    if TEXTS.is_dir():
        for path in sorted(TEXTS.glob("*.txt")):
            out += path.read_text(encoding="utf-8").split()
            if len(out) >= n:
                return out[:n]
    rng = random.Random(7)
    vocab = "the a economy of Mr. Smith grew 3.5 percent e.g. in U.S. at 5 p.m. Dr. Jones said that it was fine".split()
    while len(out) < n:
        out += [rng.choice(vocab) for _ in range(rng.randint(5, 25))] + ["end."]
    return out[:n]


def test_results_are_cached_and_callers_cannot_change_the_cache():
    text = "A cached text. With two sentences."
    first = sentence_spans(text)
    first.append((0, 1))
    assert sentence_spans(text) == [(0, 14), (15, 34)]
    assert sentence_spans(text, lines=True) == [(0, 14), (15, 34)]
