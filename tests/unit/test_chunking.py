"""Chunking: whole paragraphs / cues, exact offsets, bounded size."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mmos_core.text.chunking import chunk_text, paragraph_spans
from mmos_core.text.intake import parse_upload

DATA = Path(__file__).resolve().parents[1] / "data"


def shared_dir() -> Path:
    env = os.environ.get("MMOS_SHARED_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


DARWIN = shared_dir() / "data" / "person_texts" / "darwin_autobiography.txt"


@pytest.fixture(scope="module")
def darwin() -> str:
    if not DARWIN.is_file():
        pytest.skip(f"shared corpus not found at {DARWIN} (set MMOS_SHARED_DIR to the folder holding data/person_texts)")
    return parse_upload(DARWIN.name, DARWIN.read_bytes(), max_bytes=10_000_000).text


def check_invariants(text, chunks, max_chars):
    assert chunks
    assert [c.index for c in chunks] == list(range(len(chunks)))
    prev_end = 0
    for c in chunks:
        assert 0 <= prev_end <= c.char_start < c.char_end <= len(text), "in order, non-overlapping"
        assert c.char_end - c.char_start <= max_chars
        body = text[c.char_start : c.char_end]
        assert body == body.strip(), "chunks start and end on text, not whitespace"
        assert text[prev_end : c.char_start].strip() == "", "nothing but whitespace between chunks"
        prev_end = c.char_end
    assert text[prev_end:].strip() == ""


def test_darwin_prose_chunks(darwin):
    max_chars = 4000
    chunks = chunk_text(darwin, target_chars=2400, max_chars=max_chars)
    check_invariants(darwin, chunks, max_chars)
    assert len(chunks) > 20

    paras = paragraph_spans(darwin)
    starts = {s for s, _ in paras}
    ends = {e for _, e in paras}
    long_paras = [(s, e) for s, e in paras if e - s > max_chars]

    def inside_long(pos):
        return any(s <= pos <= e for s, e in long_paras)

    for c in chunks:
        assert c.char_start in starts or inside_long(c.char_start), f"chunk {c.index} starts mid-paragraph"
        assert c.char_end in ends or inside_long(c.char_end), f"chunk {c.index} ends mid-paragraph"
        # independent of paragraph_spans: a blank line (or the text edge) on both sides
        if not inside_long(c.char_start):
            assert c.char_start == 0 or re.search(r"\n[ \t]*\n\s*$", darwin[: c.char_start])
        if not inside_long(c.char_end):
            assert c.char_end == len(darwin) or re.match(r"\s*\n[ \t]*\n", darwin[c.char_end :])
        a, b = (int(x) for x in re.fullmatch(r"¶(\d+)(?:–(\d+))?", c.location_label).groups(default="0"))
        b = b or a
        assert paras[a - 1][0] <= c.char_start and c.char_end <= paras[b - 1][1]


def test_small_target_forces_sentence_splits_in_darwin(darwin):
    # With a bound below many paragraph lengths, long paragraphs must be cut, and cut
    # after a sentence end wherever one exists in range.
    chunks = chunk_text(darwin, target_chars=300, max_chars=500)
    check_invariants(darwin, chunks, 500)
    cut_mid = [c for c in chunks if darwin[c.char_end - 1] not in ".!?\"')]”’" and c.char_end not in {e for _, e in paragraph_spans(darwin)}]
    assert len(cut_mid) < len(chunks) * 0.1


def test_paragraphs_packed_up_to_target():
    paras = [f"Paragraph {i} " + "word " * 40 for i in range(10)]  # ~213 chars each
    text = "\n\n".join(p.strip() for p in paras)
    chunks = chunk_text(text, target_chars=500, max_chars=800)
    check_invariants(text, chunks, 800)
    assert [c.location_label for c in chunks] == ["¶1–2", "¶3–4", "¶5–6", "¶7–8", "¶9–10"]


def test_long_paragraph_split_at_sentences():
    sentence = "This is a sentence of moderate length that ends here. "
    long_para = (sentence * 40).strip()  # ~2,160 chars, one paragraph
    text = "Intro line.\n\n" + long_para + "\n\nOutro line."
    chunks = chunk_text(text, target_chars=400, max_chars=600)
    check_invariants(text, chunks, 600)
    middle = [c for c in chunks if c.location_label == "¶2"]
    assert len(middle) >= 4
    for c in middle:
        assert text[c.char_start : c.char_end].endswith("ends here.")


def test_unbreakable_text_falls_back_to_whitespace_then_hard_cut():
    text = ("word " * 500).strip() + "\n\n" + "x" * 1000
    chunks = chunk_text(text, target_chars=100, max_chars=150)
    check_invariants(text, chunks, 150)
    assert all(not text[c.char_start : c.char_end].endswith("wor") for c in chunks)


def test_crowded_blank_lines_and_indentation():
    text = "  First para\nstill first.\n \n\t\n\n   Second para.\n\n\n"
    chunks = chunk_text(text, target_chars=12, max_chars=40)
    assert [text[c.char_start : c.char_end] for c in chunks] == ["First para\nstill first.", "Second para."]
    assert [c.location_label for c in chunks] == ["¶1", "¶2"]


def test_whitespace_only_gives_no_chunks():
    assert chunk_text("  \n\n ") == []


def test_transcript_chunks_never_split_a_cue():
    lines = []
    for i in range(60):
        ss = f"00:{i // 60:02d}:{i % 60:02d}"
        lines.append(
            f"{i}\n{ss},000 --> {ss},900\nSPEAKER{i % 3}: Cue number {i} says something reasonably long about beetles.\n"
        )
    src = parse_upload("talk.srt", "\n".join(lines).encode(), max_bytes=1_000_000)
    chunks = chunk_text(src.text, cues=src.cues, target_chars=500, max_chars=700)
    check_invariants(src.text, chunks, 700)
    assert len(chunks) > 5
    for cue in src.cues:
        containing = [c for c in chunks if c.char_start <= cue.char_start and cue.char_end <= c.char_end]
        assert len(containing) == 1, f"cue at {cue.start} split or lost"
    for c in chunks:
        line_start = src.text.rfind("\n", 0, c.char_start) + 1
        assert line_start == c.char_start, "chunk starts at the speaker prefix of a line"
    for c in chunks:
        inside = [cue for cue in src.cues if c.char_start <= cue.char_start < c.char_end]
        assert c.location_label == f"{inside[0].start[:8]}–{inside[-1].end[:8]}"
    assert chunks[0].location_label.startswith("00:00:00–00:00:0")


def test_transcript_fixture_labels():
    src = parse_upload("interview.srt", (DATA / "interview.srt").read_bytes(), max_bytes=1_000_000)
    chunks = chunk_text(src.text, cues=src.cues, target_chars=140, max_chars=200)
    check_invariants(src.text, chunks, 200)
    assert chunks[0].location_label.startswith("00:00:01–")
    assert chunks[-1].location_label.endswith("–01:02:05")


def test_bad_sizes_rejected():
    with pytest.raises(ValueError):
        chunk_text("abc", target_chars=500, max_chars=100)
