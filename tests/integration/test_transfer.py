"""Legacy import (the core design section 8) and CSV / Parquet export against the real database."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from mmos_core.core.db import session_scope
from mmos_core.models import Fragment, ModelPerformance, ProcessingBatch, SourceProcessing
from mmos_core.services.sources import create_source
from mmos_core.services.transfer import (
    FRAGMENT_COLUMNS,
    ImportRefused,
    comparison_table,
    export_fragments,
    import_legacy_fragments,
    parse_legacy_file,
    to_csv_bytes,
    to_parquet_bytes,
)
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

DATA = Path(__file__).resolve().parents[1] / "data"
MAX = 1_000_000


def _source(text: str = "Autobiography of Charles Darwin, recollections of my mind and character.") -> int:
    with session_scope() as s:
        src = create_source(session=s, parsed=parse_pasted(text, max_bytes=MAX), title="Autobiography",
                            source_type="book", quality="primary", extraction_priority="HIGH")
        return src.id


def _import(filename: str, data: bytes, source_id: int):
    rows = parse_legacy_file(filename, data, max_bytes=MAX)
    with session_scope() as s:
        return import_legacy_fragments(session=s, source_id=source_id, rows=rows, imported_by="ann")


def _count() -> tuple[int, int]:
    with session_scope() as s:
        return (s.scalar(select(func.count()).select_from(Fragment)),
                s.scalar(select(func.count()).select_from(ProcessingBatch)))


def test_import_good_csv_traces_rows_and_assigns_codes(embedder_or_skip):
    source_id = _source()
    result = _import("legacy_fragments.csv", (DATA / "legacy_fragments.csv").read_bytes(), source_id)
    assert result.batch_code == "LEGACY_IMPORT_001"
    assert result.fragment_codes == ["COG-000001", "VAL-000001", "EMO-000001"]
    with session_scope() as s:
        batch = s.get(ProcessingBatch, result.batch_id)
        assert (batch.model_provider, batch.model_name, batch.batch_status) == ("unknown", "legacy", "completed")
        assert batch.processor_name == "ann" and batch.completed_at is not None
        link = s.scalar(select(SourceProcessing).where(SourceProcessing.batch_id == batch.id))
        assert link.source_id == source_id and link.fragments_extracted == 3 and link.processing_status == "completed"
        assert s.scalar(select(func.count()).select_from(ModelPerformance)) == 0
        frags = s.scalars(select(Fragment).where(Fragment.batch_id == batch.id).order_by(Fragment.id)).all()
    assert [f.location_in_source for f in frags] == ["legacy row 1 id L-17 · ch. 2", "legacy row 2 id L-18 · ch. 4", "legacy row 3 id L-19"]
    assert frags[0].context == 'On his Cambridge years, "beetle" mania'
    assert frags[1].category == "Values and Beliefs"  # category matched case-insensitively
    assert frags[1].context is None and frags[2].insight is None
    assert [f.relevance for f in frags] == [8, 7, 5]
    assert [float(f.confidence) for f in frags] == [0.9, 0.75, 0.5]
    assert all(f.embedding is not None and len(f.embedding) == 384 for f in frags)
    # a second import gets the next batch code and continues the fragment codes
    again = _import("legacy_fragments.csv", (DATA / "legacy_fragments.csv").read_bytes(), source_id)
    assert again.batch_code == "LEGACY_IMPORT_002" and again.fragment_codes[0] == "COG-000002"


def test_import_good_json_reads_metadata_confidence(embedder_or_skip):
    source_id = _source()
    result = _import("legacy_fragments.json", (DATA / "legacy_fragments.json").read_bytes(), source_id)
    assert result.fragment_codes == ["BIO-000001", "SOC-000001"]
    with session_scope() as s:
        frags = s.scalars(select(Fragment).order_by(Fragment.id)).all()
    assert [float(f.confidence) for f in frags] == [0.95, 0.8]  # the first from metadata.confidence
    assert [f.fragment_type for f in frags] == ["direct_quote", "paraphrase"]
    assert [f.location_in_source for f in frags] == ["legacy row 1 id 101 · p. 1", "legacy row 2 id 102"]
    # a bare JSON list is accepted too
    bare = json.dumps(json.loads((DATA / "legacy_fragments.json").read_text())["fragments"]).encode()
    assert len(parse_legacy_file("x.json", bare, max_bytes=MAX)) == 2


def test_bad_file_is_refused_whole_and_nothing_is_written(embedder_or_skip):
    source_id = _source()
    good = (DATA / "legacy_fragments.csv").read_text().splitlines()
    bad_lines = good + [
        "L-20,Astrology,direct_quote,Stars,,,,5,0.5",
        "L-21,Cognitive,direct_quote,Fine row,,,,11,0.5",
        "L-22,Cognitive,guess,,,,,7,1.5",
    ]
    with pytest.raises(ImportRefused) as err:
        _import("legacy.csv", "\n".join(bad_lines).encode(), source_id)
    message = str(err.value)
    assert message.startswith("Nothing was imported: 3 of 6 rows are invalid.")
    assert "row 4: category 'Astrology' is not one of the 8 categories" in message
    assert "row 5: relevance '11' is not a whole number from 1 to 10" in message
    assert "row 6: type 'guess' is not direct_quote, paraphrase or inference; no content; confidence '1.5' is not a number from 0 to 1" in message
    assert "row 1" not in message and "row 2:" not in message
    assert _count() == (0, 0)


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("empty.csv", b"", "is empty"),
        ("blank.json", b"  \n ", "is empty"),
        ("doc.csv", b"%PDF-1.7 binary stuff", "a PDF file"),
        ("zeros.json", b"\x00\x01\x02\x03" * 50, "binary"),
        ("latin1.csv", "category,type,content,relevance,confidence\nCognitive,paraphrase,café,5,0.5\n".encode("latin-1"), "not valid UTF-8"),
        ("notes.txt", b"category\nCognitive", "not a .csv or .json"),
        ("broken.json", b'[{"category": "Cognitive",', "not valid JSON"),
        ("object.json", b'{"category": "Cognitive"}', "must hold a list"),
        ("header.csv", b"category,content\nCognitive,x\n", "lacks the column(s): relevance, type (or fragment_type), confidence"),
        ("headonly.csv", b"category,type,content,relevance,confidence\n", "has no fragments"),
    ],
)
def test_unreadable_files_are_refused(name, data, expected):
    with pytest.raises(ImportRefused, match=expected.replace("(", r"\(").replace(")", r"\)")):
        parse_legacy_file(name, data, max_bytes=MAX)


def test_utf16_csv_with_bom_is_read():
    text = (DATA / "legacy_fragments.csv").read_text()
    assert len(parse_legacy_file("u16.csv", text.encode("utf-16"), max_bytes=MAX)) == 3


def test_export_round_trips_through_csv_and_parquet(embedder_or_skip):
    source_id = _source()
    csv_result = _import("legacy_fragments.csv", (DATA / "legacy_fragments.csv").read_bytes(), source_id)
    json_result = _import("legacy_fragments.json", (DATA / "legacy_fragments.json").read_bytes(), source_id)
    with session_scope() as s:
        first, second = s.scalars(select(Fragment).where(Fragment.batch_id == csv_result.batch_id).order_by(Fragment.id)).all()[:2]
        first.verified, first.verified_by, first.verified_at = True, "rita", dt.datetime(2025, 3, 1, 9, tzinfo=dt.UTC)
        second.rejected, second.rejected_by = True, "rob"

    with session_scope() as s:
        everything = export_fragments(session=s, source_id=source_id)
        one_batch = export_fragments(session=s, batch_id=json_result.batch_id)
    assert list(everything.columns) == FRAGMENT_COLUMNS
    assert len(everything) == 5 and list(one_batch["fragment_code"]) == ["BIO-000001", "SOC-000001"]

    for blob, reader in ((to_csv_bytes(everything), pd.read_csv), (to_parquet_bytes(everything), pd.read_parquet)):
        back = reader(io.BytesIO(blob))
        assert list(back.columns) == FRAGMENT_COLUMNS
        assert list(back["fragment_code"]) == ["COG-000001", "VAL-000001", "EMO-000001", "BIO-000001", "SOC-000001"]
        assert set(back["source_code"]) == {"SRC_BOOK_001"}
        assert list(back["batch_code"]) == ["LEGACY_IMPORT_001"] * 3 + ["LEGACY_IMPORT_002"] * 2
        assert set(back["model_name"]) == {"legacy"}
        assert back["content"].iloc[0].startswith("No pursuit at Cambridge")
        assert back["context"].iloc[0] == 'On his Cambridge years, "beetle" mania'
        assert list(back["relevance"]) == [8, 7, 5, 9, 6]
        assert list(back["confidence"]) == [0.9, 0.75, 0.5, 0.95, 0.8]
        assert list(back["verified"]) == [True, False, False, False, False]
        assert back["verified_by"].iloc[0] == "rita"
        assert list(back["rejected"]) == [False, True, False, False, False]
        assert back["rejected_by"].iloc[1] == "rob"
        assert pd.Timestamp(back["verified_at"].iloc[0]) == pd.Timestamp("2025-03-01 09:00", tz="UTC")


def test_comparison_table_export(embedder_or_skip):
    source_id = _source()
    result = _import("legacy_fragments.csv", (DATA / "legacy_fragments.csv").read_bytes(), source_id)
    with session_scope() as s:
        table = comparison_table(session=s, batch_ids=[result.batch_id])
    back = pd.read_parquet(io.BytesIO(to_parquet_bytes(table)))
    assert list(back["batch_code"]) == ["LEGACY_IMPORT_001"]
    assert list(back["fragments"]) == [3]
    assert list(back["cost_usd"]) == [0.0]
    assert back["direct_quote_share"].iloc[0] == pytest.approx(1 / 3)
    back_csv = pd.read_csv(io.BytesIO(to_csv_bytes(table)))
    assert list(back_csv.columns) == list(table.columns)
