"""Export of filtered fragments (CSV, JSONL, Parquet) over several sources, and reviewers' preference
pairs (docs/export.md), against the real database; also `mmos export` end to end."""

from __future__ import annotations

import datetime as dt
import io
import json

import pandas as pd
import pytest
from export_support import TEXT, make_world
from typer.testing import CliRunner

from mmos_core.cli.app import app
from mmos_core.core.db import session_scope
from mmos_core.services.preferences import PREFERENCE_FIELDS, preference_pairs, preference_records
from mmos_core.services.review import FragmentFilter
from mmos_core.services.transfer import (
    FRAGMENT_COLUMNS,
    ExportFilter,
    export_fragments,
    records_to_jsonl,
    table_bytes,
)

pytestmark = pytest.mark.usefixtures("clean_db")

def test_filtered_export_over_several_sources_in_each_format():
    ids = make_world()
    with session_scope() as s:
        both = export_fragments(session=s, flt=ExportFilter(source_ids=(ids["A"], ids["B"])))
        assert len(both) == 4 and list(both.columns) == FRAGMENT_COLUMNS
        honest = export_fragments(session=s, flt=ExportFilter(source_ids=(ids["A"], ids["B"]), model_names=("honest",)))
        assert sorted(honest["content"]) == ["I was born at Shrewsbury on February 12th, 1809.", "beetles and barnacles"]
        assert len(export_fragments(session=s, flt=ExportFilter(status="rejected"))) == 1
        assert len(export_fragments(session=s, flt=ExportFilter(status="pending", relevance_min=5))) == 1
        assert len(export_fragments(session=s, flt=ExportFilter(categories=("Cognitive", "Social")))) == 2
        assert list(export_fragments(session=s, flt=ExportFilter(query="Shrewsbury"))["content"]) == [
            "I was born at Shrewsbury on February 12th, 1809."]
        review = ExportFilter.from_review(FragmentFilter(source_id=ids["A"], model_name="inventive", page=3, page_size=10))
        assert review.source_ids == (ids["A"],) and len(export_fragments(session=s, flt=review)) == 2
        with pytest.raises(ValueError):
            export_fragments(session=s, flt=ExportFilter(status="maybe"))

    csv = pd.read_csv(io.BytesIO(table_bytes(both, "csv")))
    parquet = pd.read_parquet(io.BytesIO(table_bytes(both, "parquet")))
    lines = table_bytes(both, "jsonl").decode().splitlines()
    jsonl = [json.loads(line) for line in lines]
    for table in (csv, parquet):
        assert list(table.columns) == FRAGMENT_COLUMNS and len(table) == 4
    assert len(jsonl) == 4 and list(jsonl[0]) == FRAGMENT_COLUMNS
    assert jsonl[1]["rejected"] is True and jsonl[1]["reject_reason"] == "misquote" and jsonl[1]["char_start"] is None
    assert jsonl[0]["created_at"].startswith(str(dt.date.today().year))
    assert table_bytes(both.iloc[0:0], "jsonl") == b""
    with pytest.raises(ValueError):
        table_bytes(both, "xlsx")


def test_preference_pairs_from_verdicts_and_feedback():
    ids = make_world()
    with session_scope() as s:
        pairs = preference_pairs(session=s)
        assert preference_pairs(session=s, source_ids=(ids["B"],)) == []
        assert len(preference_pairs(session=s, source_ids=(ids["A"],))) == len(pairs)
    got = {(p.pair_source, p.reviewer, p.chosen, p.rejected, p.reason) for p in pairs}
    assert got == {
        ("verdict", "ann", "I was born at Shrewsbury on February 12th, 1809.", "I was born in London in 1810.", "misquote"),
        ("feedback", "bob", "He liked Cambridge.", "I was born in London in 1810.", "wrong year"),
    }
    p = next(p for p in pairs if p.pair_source == "verdict")
    assert p.prompt == TEXT and p.chunk_location == "¶1–2" and p.chunk_index == 0
    assert (p.chosen_model, p.rejected_model) == ("honest", "inventive")
    records = preference_records(pairs)
    assert list(records[0]) == PREFERENCE_FIELDS
    assert [json.loads(line) for line in records_to_jsonl(records).decode().splitlines()] == records


def test_mmos_export_commands(tmp_path):
    ids = make_world()
    runner = CliRunner()
    out = tmp_path / "f.parquet"
    result = runner.invoke(app, ["export", "fragments", "--source", "SRC_BOOK_001", "--source", str(ids["B"]),
                                 "--format", "parquet", "--model", "honest", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 fragments" in result.output and len(pd.read_parquet(out)) == 2
    out = tmp_path / "f.jsonl"
    result = runner.invoke(app, ["export", "fragments", "--status", "verified", "--format", "jsonl", "--out", str(out)])
    assert result.exit_code == 0 and len(out.read_text().splitlines()) == 1
    result = runner.invoke(app, ["export", "fragments", "--source", "SRC_NOPE", "--out", str(out)])
    assert result.exit_code != 0 and "No source 'SRC_NOPE'" in result.output
    out = tmp_path / "p.jsonl"
    result = runner.invoke(app, ["export", "preferences", "--source", "SRC_BOOK_001", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 pairs (1 from verdicts, 1 from feedback)" in result.output
    assert {json.loads(line)["reviewer"] for line in out.read_text().splitlines()} == {"ann", "bob"}
    result = runner.invoke(app, ["export", "preferences", "--format", "csv", "--out", str(out)])
    assert result.exit_code != 0 and "JSONL only" in result.output
