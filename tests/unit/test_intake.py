"""Intake: what an analyst sees when adding a file or pasting text."""

from __future__ import annotations

import codecs
import random
import re
from pathlib import Path

import pytest

from mmos_core.text.intake import IntakeError, parse_pasted, parse_upload

DATA = Path(__file__).resolve().parents[1] / "data"
LIMIT = 1_000_000
TIME = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3}$")


def refused(filename: str, data: bytes, max_bytes: int = LIMIT) -> IntakeError:
    with pytest.raises(IntakeError) as info:
        parse_upload(filename, data, max_bytes=max_bytes)
    return info.value


# --- decoding ------------------------------------------------------------------------


def test_utf8_with_bom_is_read_and_bom_dropped():
    src = parse_upload("notes.txt", codecs.BOM_UTF8 + "Café society.\r\nSecond line.\r\n\r\n".encode(), max_bytes=LIMIT)
    assert src.text == "Café society.\nSecond line."
    assert src.content_format == "text"
    assert src.cues is None
    assert src.word_count == 4


def test_utf16_with_bom_is_read():
    for codec in ("utf-16-le", "utf-16-be"):
        bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
        data = bom + "# Über Darwin\n\nNaturalist — “beetles”.".encode(codec)
        src = parse_upload("essay.md", data, max_bytes=LIMIT)
        assert src.text == "# Über Darwin\n\nNaturalist — “beetles”."
        assert src.content_format == "markdown"


def test_latin1_is_refused_with_position_and_advice():
    data = ("x" * 1233 + "café").encode("latin-1")
    err = refused("letter.txt", data)
    assert err.reason == "encoding"
    msg = str(err)
    assert "UTF-8" in msg
    assert "0xE9" in msg and "1,236" in msg


def test_cr_only_newlines_normalised_and_leading_text_kept():
    src = parse_pasted("  Indented start.\rNext line.\r\n\n\n", max_bytes=LIMIT)
    assert src.text == "  Indented start.\nNext line."
    assert src.content_format == "pasted"


# --- binary --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
        (b"PK\x03\x04\x14\x00\x06\x00word/document.xml", "ZIP"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "JPEG"),
        (b"GIF89a\x01\x00", "GIF"),
    ],
)
def test_known_binary_formats_are_named(data, what):
    err = refused("interview.txt", data)
    assert err.reason == "binary"
    assert what in str(err)
    assert "only plain text, Markdown, SRT and VTT are accepted" in str(err)


def test_random_bytes_are_binary():
    rng = random.Random(1234)
    data = bytes(rng.randrange(256) for _ in range(4096))
    assert refused("dump.txt", data).reason == "binary"


def test_control_characters_without_nul_are_binary():
    data = bytes([1, 2, 3, 4, 5, 6, 7, 8, 65, 66] * 50)
    assert refused("dump.txt", data).reason == "binary"


def test_a_few_tabs_and_form_feeds_are_fine():
    src = parse_upload("t.txt", b"col1\tcol2\fpage two\n", max_bytes=LIMIT)
    assert src.text == "col1\tcol2\fpage two"


# --- empty / size / format ------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  ", codecs.BOM_UTF8 + b"\n\n"])
def test_empty_or_whitespace_refused(data):
    assert refused("a.txt", data).reason == "empty"


def test_pasted_whitespace_refused():
    with pytest.raises(IntakeError) as info:
        parse_pasted(" \n\t ", max_bytes=LIMIT)
    assert info.value.reason == "empty"


def test_over_limit_refused_with_sizes_in_mb():
    err = refused("big.txt", b"a" * 2_500_000, max_bytes=2_000_000)
    assert err.reason == "too_large"
    assert "2.5 MB" in str(err) and "2.0 MB" in str(err)


def test_pasted_limit_counts_utf8_bytes():
    text = "é" * 600  # 600 characters, 1,200 UTF-8 bytes
    with pytest.raises(IntakeError) as info:
        parse_pasted(text, max_bytes=1000)
    assert info.value.reason == "too_large"
    assert "1,200 bytes" in str(info.value)
    assert parse_pasted(text, max_bytes=1200).text == text


@pytest.mark.parametrize("name", ["report.odt", "notes.rtf", "README", "data.csv"])
def test_unknown_extension_refused_listing_accepted(name):
    err = refused(name, b"plain words")
    assert err.reason == "format"
    for ext in (".txt", ".md", ".srt", ".vtt", ".pdf", ".docx", ".epub"):
        assert ext in str(err)


def test_extension_is_case_insensitive():
    assert parse_upload("NOTES.TXT", b"hi", max_bytes=LIMIT).content_format == "text"
    assert parse_upload("x.markdown", b"# hi", max_bytes=LIMIT).content_format == "markdown"


# --- subtitles -----------------------------------------------------------------------


def _check_cue_layout(src):
    assert src.cues
    lines = src.text.split("\n")
    assert len(lines) == len(src.cues), "one line per cue"
    for cue, line in zip(src.cues, lines):
        body = src.text[cue.char_start : cue.char_end]
        assert body and body == body.strip()
        expected = f"{cue.speaker}: {body}" if cue.speaker else body
        assert line == expected
        assert TIME.match(cue.start) and TIME.match(cue.end)


def test_srt_cues_spans_speakers_and_times():
    src = parse_upload("interview.srt", (DATA / "interview.srt").read_bytes(), max_bytes=LIMIT)
    assert src.content_format == "srt"
    _check_cue_layout(src)
    bodies = [src.text[c.char_start : c.char_end] for c in src.cues]
    assert bodies == [
        "When did you first become interested in beetles?",
        "At Cambridge, I think. No pursuit was followed with more zeal.",
        "It gave me the greatest delight.",
        "And your father?",  # the empty cue 4 is skipped
        "He was the wisest man I ever knew & the kindest.",
    ]
    assert [c.speaker for c in src.cues] == ["INTERVIEWER", "DARWIN", None, "INTERVIEWER", "DARWIN"]
    assert (src.cues[0].start, src.cues[0].end) == ("00:00:01.000", "00:00:04.200")
    assert (src.cues[-1].start, src.cues[-1].end) == ("01:02:03.004", "01:02:05.500")


def test_vtt_voice_tags_and_name_prefix():
    src = parse_upload("interview.vtt", (DATA / "interview.vtt").read_bytes(), max_bytes=LIMIT)
    assert src.content_format == "vtt"
    _check_cue_layout(src)
    assert [c.speaker for c in src.cues] == ["Francis Darwin", "Charles Darwin", None, "Q", "Charles Darwin"]
    first = src.cues[0]
    assert src.text[first.char_start : first.char_end] == "When did you first become interested in beetles?"
    assert src.text.startswith("Francis Darwin: When did you")
    assert "<" not in src.text  # markup such as <i> and </v> is gone
    assert src.cues[-1].start == "00:15:30.250"


def test_vtt_with_crlf_and_bom():
    data = codecs.BOM_UTF8 + b"WEBVTT\r\n\r\n00:00:01.000 --> 00:00:02.000\r\nHello there.\r\n"
    src = parse_upload("a.vtt", data, max_bytes=LIMIT)
    assert src.text == "Hello there."
    assert src.cues[0].char_start == 0 and src.cues[0].char_end == len("Hello there.")


@pytest.mark.parametrize(
    "content",
    [
        "this is not a subtitle file\nat all\n",
        "1\n00:00:01,000 --> 00:00:04,000\nFine.\n\n2\n00:00:0x,000 --> 00:00:05,000\nBroken time.\n",
    ],
)
def test_malformed_srt_refused_as_format(content):
    err = refused("bad.srt", content.encode())
    assert err.reason == "format"
    assert "SRT" in str(err)


def test_malformed_vtt_refused_as_format():
    err = refused("bad.vtt", b"00:00:01.000 --> 00:00:02.000\nNo header.\n")
    assert err.reason == "format"
    assert "WebVTT" in str(err)


def test_subtitles_with_only_empty_cues_are_empty():
    err = refused("blank.vtt", b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\n")
    assert err.reason == "empty"
