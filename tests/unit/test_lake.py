"""The confidence lake: Arrow IPC frames in memory-mapped, append-only segments (the monitoring design)."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest

from mmos_core.storage.lake import (
    EMBEDDING_DIM,
    SCHEMA,
    ConfidenceLake,
    LakeEntry,
    LakeError,
    is_lake_worthy,
)

T0 = dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)


def entry(i: int, confidence: float = 0.9, **kw) -> LakeEntry:
    return LakeEntry(
        inference_id=f"inf-{i}",
        text=f"text number {i}",
        embedding=[float(i) / 1000] * EMBEDDING_DIM,
        confidence=confidence,
        model="all-MiniLM-L6-v2",
        sacred_position=kw.pop("sacred_position", 0),
        created_at=kw.pop("created_at", T0 + dt.timedelta(minutes=i)),
        **kw,
    )


# The monitoring design, "Confidence Lake Integration":
#   if confidence >= 0.6 && !hallucination_detected && (is_sacred_position || confidence > 0.8)
ENTRY_RULE = [
    # confidence, hallucination, flux position, worthy
    (0.95, False, 0, True),   # high confidence alone suffices
    (0.81, False, 1, True),
    (0.80, False, 1, False),  # > 0.8 is strict
    (0.80, False, 3, True),   # sacred 3
    (0.60, False, 6, True),   # >= 0.6 is inclusive, sacred 6
    (0.60, False, 9, True),   # sacred 9
    (0.70, False, 5, False),  # mid confidence, not sacred
    (0.599, False, 9, False),  # below the floor, even sacred
    (0.95, True, 9, False),   # hallucination always excludes
    (0.70, True, 3, False),
    (1.0, False, 0, True),
    (0.0, False, 3, False),
]


@pytest.mark.parametrize(("confidence", "hallucination", "position", "worthy"), ENTRY_RULE)
def test_entry_rule_matches_seed(confidence, hallucination, position, worthy):
    assert is_lake_worthy(confidence, hallucination, position) is worthy
    assert entry(0, confidence, sacred_position=position, hallucination_detected=hallucination).lake_worthy is worthy


def test_entry_rule_takes_a_sacred_flag():
    assert is_lake_worthy(0.7, False, True) is True
    assert is_lake_worthy(0.7, False, False) is False
    assert is_lake_worthy(0.7, False, None) is False


def test_round_trip(tmp_path):
    lake = ConfidenceLake(tmp_path / "lake")
    assert lake.append([entry(1), entry(2, 0.7, sacred_position=3)]) == 2
    assert lake.append([{"text": "dict entry", "embedding": [0.5] * EMBEDDING_DIM, "confidence": 0.85,
                         "model": "m", "inference_id": "inf-3", "created_at": T0}]) == 1
    table = lake.table()
    assert table.schema.equals(SCHEMA)
    assert table["inference_id"].to_pylist() == ["inf-1", "inf-2", "inf-3"]
    assert table["text"].to_pylist()[1] == "text number 2"
    assert table["sacred_position"].to_pylist() == [0, 3, 0]
    assert table["signal"].to_pylist() == pytest.approx([0.9, 0.7, 0.85])  # signal defaults to confidence
    assert table["embedding"][0].as_py() == pytest.approx([0.001] * EMBEDDING_DIM)
    assert table["created_at"][0].as_py() == T0 + dt.timedelta(minutes=1)
    st = lake.stats()
    assert (st.entries, st.segments, st.torn_records) == (3, 1, 0)
    assert st.bytes == lake.segments()[0].stat().st_size


def test_bad_entries_are_refused_and_nothing_is_written(tmp_path):
    lake = ConfidenceLake(tmp_path / "lake")
    bad = LakeEntry(text="x", embedding=[0.0] * 10, confidence=0.9, model="m")
    with pytest.raises(LakeError, match="384"):
        lake.append([entry(1), bad])
    with pytest.raises(LakeError, match="confidence"):
        lake.append([entry(2, 1.5)])
    assert lake.stats().entries == 0
    assert lake.append([]) == 0


def test_offer_keeps_only_worthy_entries(tmp_path):
    lake = ConfidenceLake(tmp_path / "lake")
    offered = [entry(1, 0.9), entry(2, 0.7), entry(3, 0.7, sacred_position=6),
               entry(4, 0.95, hallucination_detected=True)]
    assert lake.offer(offered) == 2
    assert lake.table()["inference_id"].to_pylist() == ["inf-1", "inf-3"]


def test_range_queries(tmp_path):
    lake = ConfidenceLake(tmp_path / "lake")
    lake.append([entry(i, c) for i, c in enumerate([0.6, 0.7, 0.8, 0.9, 1.0])])
    lake.append([entry(10, 0.65, signal=0.3)])  # an explicit signal differs from confidence

    def ids(t):
        return t["inference_id"].to_pylist()

    assert ids(lake.query(signal_min=0.8)) == ["inf-2", "inf-3", "inf-4"]
    assert ids(lake.query(signal_min=0.65, signal_max=0.85)) == ["inf-1", "inf-2"]
    assert ids(lake.query(signal_max=0.5)) == ["inf-10"]
    assert ids(lake.query(since=T0 + dt.timedelta(minutes=3))) == ["inf-3", "inf-4", "inf-10"]
    assert ids(lake.query(until=T0 + dt.timedelta(minutes=2))) == ["inf-0", "inf-1"]
    naive = dt.datetime(2025, 1, 1, 12, 1)  # naive datetimes are UTC
    window = lake.query(signal_min=0.7, since=naive, until=T0 + dt.timedelta(minutes=4))
    assert ids(window) == ["inf-1", "inf-2", "inf-3"]
    assert lake.query().num_rows == 6


def test_export_batches(tmp_path):
    lake = ConfidenceLake(tmp_path / "lake")
    for k in range(5):
        lake.append([entry(k * 10 + j) for j in range(5)])
    paths = lake.export_batches(tmp_path / "out", batch_size=10)
    assert [p.name for p in paths] == ["lake-00000.parquet", "lake-00001.parquet", "lake-00002.parquet"]
    tables = [pq.read_table(p) for p in paths]
    assert [t.num_rows for t in tables] == [10, 10, 5]
    assert tables[0]["inference_id"][0].as_py() == "inf-0"
    assert ConfidenceLake(tmp_path / "empty").export_batches(tmp_path / "none") == []


def test_survives_restart(tmp_path):
    path = tmp_path / "lake"
    ConfidenceLake(path).append([entry(1), entry(2)])
    reopened = ConfidenceLake(path)
    assert reopened.stats().entries == 2
    reopened.append([entry(3)])
    assert ConfidenceLake(path).table()["inference_id"].to_pylist() == ["inf-1", "inf-2", "inf-3"]
    assert len(reopened.segments()) == 1


def test_segments_rotate_at_the_size_limit(tmp_path):
    lake = ConfidenceLake(tmp_path / "lake", segment_max_bytes=4000)
    for i in range(4):
        lake.append([entry(i)])  # one frame is > 2 KB (384 float32 + schema)
    assert len(lake.segments()) == 4
    assert lake.stats().entries == 4


def test_torn_write_truncated_last_record(tmp_path):
    path = tmp_path / "lake"
    lake = ConfidenceLake(path)
    lake.append([entry(1), entry(2)])
    lake.append([entry(3)])
    seg = lake.segments()[0]
    # where the last frame starts: append the same entry to a scratch lake to learn one frame's size
    scratch = ConfidenceLake(tmp_path / "scratch")
    scratch.append([entry(3)])
    frame_size = scratch.segments()[0].stat().st_size
    size_before_last = seg.stat().st_size - frame_size
    # crash in the middle of the last record
    with open(seg, "r+b") as fh:
        fh.truncate(size_before_last + frame_size // 2)

    reopened = ConfidenceLake(path)
    assert reopened.table()["inference_id"].to_pylist() == ["inf-1", "inf-2"]
    st = reopened.stats()
    assert (st.entries, st.torn_records) == (2, 1)

    # later appends go to a fresh segment and stay readable
    reopened.append([entry(4)])
    assert len(reopened.segments()) == 2
    assert reopened.table()["inference_id"].to_pylist() == ["inf-1", "inf-2", "inf-4"]
    assert reopened.stats().torn_records == 1


def test_garbage_after_the_last_record(tmp_path):
    path = tmp_path / "lake"
    lake = ConfidenceLake(path)
    lake.append([entry(1)])
    lake.append([entry(2)])
    with open(lake.segments()[-1], "ab") as fh:
        fh.write(b"\x00garbage MLK1 not a frame \xff" * 7)
    st = lake.stats()
    assert (st.entries, st.torn_records) == (2, 1)
    lake.append([entry(3)])
    assert lake.table()["inference_id"].to_pylist() == ["inf-1", "inf-2", "inf-3"]


def test_corrupted_payload_is_detected_by_crc(tmp_path):
    lake = ConfidenceLake(tmp_path / "lake")
    lake.append([entry(1)])
    lake.append([entry(2)])
    lake.append([entry(3)])
    seg = lake.segments()[0]
    frame = seg.stat().st_size // 3
    data = bytearray(seg.read_bytes())
    data[frame + frame // 2] ^= 0xFF  # flip one byte inside the second frame's payload
    seg.write_bytes(bytes(data))
    assert lake.table()["inference_id"].to_pylist() == ["inf-1", "inf-3"]
    assert lake.stats().torn_records == 1
