"""The confidence lake (the monitoring design): an append-only, memory-mapped store of high-confidence inferences.

Layout: a directory (by default `<data_dir>/lake/`) of segment files `segment-000001.lake`, ...
Each `append()` writes ONE frame to the current segment and `fsync`s it:

    header  : magic b"MLK1" | payload length (uint64, little endian)
    payload : one Arrow IPC *stream* (schema + one record batch + end-of-stream marker)
    footer  : payload length again (uint64) | CRC32 of the payload (uint32) | magic b"MLKE"

Reading memory-maps each segment (`pyarrow.memory_map`) and walks the frames; the record batches are
read zero-copy from the map. A frame whose header, length, footer or CRC does not check out (a torn
write at a crash, or garbage appended to the file) is skipped and counted in `stats().torn_records`;
the reader then resynchronises on the next header magic, so a bad frame never hides or corrupts the
frames before it (nor any valid frame after it). Writers never append after a damaged tail: when the
last segment does not end exactly at a frame boundary a new segment is started. Appends from several
processes are serialised by an advisory `flock` on `<lake>/.lock`.

Field conventions (documented, deterministic; none of them changes a measured value):

* `confidence` — the measured 0–1 support/grounding score of the text against its evidence.
* `signal` — the monitoring design's "signal strength". The seed uses it as another name for the same 0–1 score
  (`signal:current` holds the confidence; `lake_worthy -- signal >= 0.6`), so by default
  `signal == confidence`; a caller may store a different 0–1 strength explicitly.
* `sacred_position` — the monitoring design's flux position (0–9) of the inference; by the seed's convention
  positions 3, 6 and 9 are "sacred". It only takes part in the entry rule, as the seed states.

Entry rule (the monitoring design, "Confidence Lake Integration"), see `is_lake_worthy`:
`confidence >= 0.6 and not hallucination_detected and (is_sacred_position or confidence > 0.8)`.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import mmap
import os
import re
import struct
import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mmos_core.core.config import get_settings
from mmos_core.core.vectors import EMBEDDING_DIM

SACRED_POSITIONS = frozenset({3, 6, 9})
MIN_CONFIDENCE = 0.6
HIGH_CONFIDENCE = 0.8

HEADER_MAGIC = b"MLK1"
FOOTER_MAGIC = b"MLKE"
_HEADER = struct.Struct("<4sQ")  # magic, payload length
_FOOTER = struct.Struct("<QI4s")  # payload length, crc32, magic
SEGMENT_MAX_BYTES = 64 * 1024 * 1024
_SEGMENT_RE = re.compile(r"^segment-(\d{6})\.lake$")

SCHEMA = pa.schema(
    [
        pa.field("inference_id", pa.string(), nullable=False),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("text", pa.large_string(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32(), EMBEDDING_DIM), nullable=False),
        pa.field("confidence", pa.float32(), nullable=False),
        pa.field("signal", pa.float32(), nullable=False),
        pa.field("sacred_position", pa.int8(), nullable=False),
        pa.field("hallucination_detected", pa.bool_(), nullable=False),
    ]
)


class LakeError(ValueError):
    """An entry was refused (wrong embedding size, confidence outside 0–1, ...)."""


def is_sacred_position(position: int | bool | None) -> bool:
    """The monitoring design's convention: flux positions 3, 6 and 9 are sacred. A bool is taken as already decided."""
    if position is None:
        return False
    if isinstance(position, bool):
        return position
    return int(position) in SACRED_POSITIONS


def is_lake_worthy(confidence: float, hallucination_detected: bool, sacred_position: int | bool | None) -> bool:
    """The monitoring design's entry rule, exactly: `confidence >= 0.6 && !hallucination_detected &&
    (is_sacred_position || confidence > 0.8)`. `sacred_position` is the flux position (0–9;
    3/6/9 are sacred) or a bool saying whether it is sacred."""
    return (
        confidence >= MIN_CONFIDENCE
        and not hallucination_detected
        and (is_sacred_position(sacred_position) or confidence > HIGH_CONFIDENCE)
    )


@dataclass
class LakeEntry:
    """One inference to archive. `signal` defaults to `confidence` (see the module docstring)."""

    text: str
    embedding: Any  # sequence of EMBEDDING_DIM floats (list, numpy array)
    confidence: float
    model: str
    sacred_position: int = 0
    hallucination_detected: bool = False
    signal: float | None = None
    inference_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def lake_worthy(self) -> bool:
        return is_lake_worthy(self.confidence, self.hallucination_detected, self.sacred_position)


@dataclass(frozen=True)
class LakeStats:
    entries: int
    bytes: int
    segments: int
    torn_records: int

    def as_dict(self) -> dict[str, int]:
        return {"entries": self.entries, "bytes": self.bytes, "segments": self.segments,
                "torn_records": self.torn_records}


def _as_entry(item: LakeEntry | Mapping[str, Any]) -> LakeEntry:
    if isinstance(item, LakeEntry):
        return item
    return LakeEntry(**dict(item))


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _to_batch(entries: list[LakeEntry]) -> pa.RecordBatch:
    flat: list[float] = []
    for e in entries:
        vec = [float(x) for x in e.embedding]
        if len(vec) != EMBEDDING_DIM:
            raise LakeError(f"embedding of {e.inference_id} has {len(vec)} values, expected {EMBEDDING_DIM}")
        if not 0.0 <= float(e.confidence) <= 1.0:
            raise LakeError(f"confidence of {e.inference_id} is {e.confidence}, outside 0–1")
        sig = e.confidence if e.signal is None else e.signal
        if not 0.0 <= float(sig) <= 1.0:
            raise LakeError(f"signal of {e.inference_id} is {sig}, outside 0–1")
        if not 0 <= int(e.sacred_position) <= 9:
            raise LakeError(f"sacred_position of {e.inference_id} is {e.sacred_position}, outside 0–9")
        flat.extend(vec)
    embedding = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), EMBEDDING_DIM)
    return pa.RecordBatch.from_arrays(
        [
            pa.array([str(e.inference_id) for e in entries], pa.string()),
            pa.array([_utc(e.created_at) for e in entries], pa.timestamp("us", tz="UTC")),
            pa.array([e.model for e in entries], pa.string()),
            pa.array([e.text for e in entries], pa.large_string()),
            embedding,
            pa.array([float(e.confidence) for e in entries], pa.float32()),
            pa.array([float(e.confidence if e.signal is None else e.signal) for e in entries], pa.float32()),
            pa.array([int(e.sacred_position) for e in entries], pa.int8()),
            pa.array([bool(e.hallucination_detected) for e in entries], pa.bool_()),
        ],
        schema=SCHEMA,
    )


def _frame(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, SCHEMA) as writer:
        writer.write_batch(batch)
    payload = sink.getvalue().to_pybytes()
    crc = zlib.crc32(payload)
    return _HEADER.pack(HEADER_MAGIC, len(payload)) + payload + _FOOTER.pack(len(payload), crc, FOOTER_MAGIC)


@dataclass
class _Scan:
    batches: list[pa.RecordBatch]
    torn: int
    clean_end: bool  # the file ends exactly at a frame boundary


def _check_frame(view: memoryview, pos: int, size: int, verify_crc: bool) -> int | None:
    """End offset of a valid frame starting at `pos`, or None."""
    if pos + _HEADER.size > size:
        return None
    magic, length = _HEADER.unpack_from(view, pos)
    if magic != HEADER_MAGIC:
        return None
    start = pos + _HEADER.size
    end = start + length + _FOOTER.size
    if end > size:
        return None
    flen, crc, fmagic = _FOOTER.unpack_from(view, start + length)
    if fmagic != FOOTER_MAGIC or flen != length:
        return None
    if verify_crc and zlib.crc32(view[start : start + length]) != crc:
        return None
    return end


def _scan_segment(path: Path, *, read_batches: bool = True) -> _Scan:
    size = path.stat().st_size
    if size == 0:
        return _Scan([], 0, True)
    batches: list[pa.RecordBatch] = []
    torn = 0
    with pa.memory_map(str(path), "r") as source:
        buf = source.read_buffer()
        view = memoryview(buf)
        try:
            pos = 0
            clean_end = True
            while pos < size:
                end = _check_frame(view, pos, size, verify_crc=True)
                if end is None:
                    # damaged bytes: count one torn record, resynchronise on the next header magic
                    torn += 1
                    clean_end = False
                    nxt = pos + 1
                    while True:
                        nxt = _find(buf, HEADER_MAGIC, nxt)
                        if nxt < 0 or _check_frame(view, nxt, size, verify_crc=True) is not None:
                            break
                        nxt += 1
                    if nxt < 0:
                        break
                    pos = nxt
                    continue
                clean_end = end == size
                if read_batches:
                    payload = buf.slice(pos + _HEADER.size, end - pos - _HEADER.size - _FOOTER.size)
                    try:
                        reader = pa.ipc.open_stream(payload)
                        batches.extend(reader)
                    except pa.ArrowInvalid:
                        torn += 1  # CRC matched but the payload is not Arrow: count, never raise
                pos = end
        finally:
            view.release()
    return _Scan(batches, torn, clean_end)


def _find(buf: pa.Buffer, needle: bytes, start: int) -> int:
    """`find` over an Arrow buffer without copying the whole map (chunked search)."""
    size = buf.size
    chunk = 1 << 20
    pos = start
    while pos < size:
        stop = min(size, pos + chunk + len(needle) - 1)
        idx = buf.slice(pos, stop - pos).to_pybytes().find(needle)
        if idx >= 0:
            return pos + idx
        pos += chunk
    return -1


class ConfidenceLake:
    """Append-only, memory-mapped store of lake-worthy inferences (see the module docstring)."""

    def __init__(self, path: Path | str, *, segment_max_bytes: int = SEGMENT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.segment_max_bytes = segment_max_bytes

    # --- files -----------------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        """Segment files in append order."""
        found = [p for p in self.path.iterdir() if _SEGMENT_RE.match(p.name)]
        return sorted(found, key=lambda p: int(_SEGMENT_RE.match(p.name).group(1)))  # type: ignore[union-attr]

    def _segment_path(self, number: int) -> Path:
        return self.path / f"segment-{number:06d}.lake"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive advisory lock of the lake (appends; backups copy under it)."""
        with open(self.path / ".lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _writable_segment(self, incoming: int) -> Path:
        segs = self.segments()
        if not segs:
            return self._segment_path(1)
        last = segs[-1]
        size = last.stat().st_size
        number = int(_SEGMENT_RE.match(last.name).group(1))  # type: ignore[union-attr]
        if size and size + incoming > self.segment_max_bytes:
            return self._segment_path(number + 1)
        if not self._ends_cleanly(last, size):
            return self._segment_path(number + 1)  # never write after a damaged tail
        return last

    @staticmethod
    def _ends_cleanly(path: Path, size: int) -> bool:
        """Walk frame headers/footers (no CRC) and tell whether the file ends at a frame boundary."""
        if size == 0:
            return True
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            view = memoryview(mm)
            try:
                pos = 0
                while pos < size:
                    end = _check_frame(view, pos, size, verify_crc=False)
                    if end is None:
                        return False
                    pos = end
                return True
            finally:
                view.release()

    # --- writing ---------------------------------------------------------------------------------

    def append(self, entries: Iterable[LakeEntry | Mapping[str, Any]]) -> int:
        """Append the entries as one record batch (one frame), fsync, and return how many were written.

        Entries are written as given; filter them with `is_lake_worthy` first (or use `offer`).
        Raises:
            LakeError: an entry is malformed (nothing is written then).
        """
        items = [_as_entry(e) for e in entries]
        if not items:
            return 0
        frame = _frame(_to_batch(items))
        with self.lock():
            seg = self._writable_segment(len(frame))
            new = not seg.exists()
            fd = os.open(seg, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, frame)
                os.fsync(fd)
            finally:
                os.close(fd)
            if new:  # make the new directory entry durable too
                dfd = os.open(self.path, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        return len(items)

    def offer(self, entries: Iterable[LakeEntry | Mapping[str, Any]]) -> int:
        """Append only the entries meeting the monitoring design's entry rule; returns how many entered the lake."""
        worthy = [e for e in map(_as_entry, entries) if e.lake_worthy]
        return self.append(worthy)

    # --- reading ---------------------------------------------------------------------------------

    def _scan_all(self, read_batches: bool = True) -> tuple[list[pa.RecordBatch], int]:
        batches: list[pa.RecordBatch] = []
        torn = 0
        for seg in self.segments():
            scan = _scan_segment(seg, read_batches=read_batches)
            batches.extend(scan.batches)
            torn += scan.torn
        return batches, torn

    def table(self) -> pa.Table:
        """Every readable entry, in append order (zero-copy views of the memory-mapped segments)."""
        batches, _ = self._scan_all()
        return pa.Table.from_batches(batches, schema=SCHEMA)

    def query(
        self,
        signal_min: float | None = None,
        signal_max: float | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
    ) -> pa.Table:
        """Entries with `signal_min <= signal <= signal_max` and `since <= created_at < until`
        (each bound optional), in append order."""
        table = self.table()
        mask = None

        def both(m, new):
            return new if m is None else pc.and_(m, new)

        if signal_min is not None:
            mask = both(mask, pc.greater_equal(table["signal"], pa.scalar(signal_min, pa.float32())))
        if signal_max is not None:
            mask = both(mask, pc.less_equal(table["signal"], pa.scalar(signal_max, pa.float32())))
        ts = pa.timestamp("us", tz="UTC")
        if since is not None:
            mask = both(mask, pc.greater_equal(table["created_at"], pa.scalar(_utc(since), ts)))
        if until is not None:
            mask = both(mask, pc.less(table["created_at"], pa.scalar(_utc(until), ts)))
        return table if mask is None else table.filter(mask)

    def export_batches(self, dest_dir: Path | str, batch_size: int = 10_000) -> list[Path]:
        """Write every entry to Parquet files of at most `batch_size` rows
        (`lake-00000.parquet`, ...); returns their paths (none when the lake is empty)."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        dest = Path(dest_dir)
        dest.mkdir(parents=True, exist_ok=True)
        table = self.table()
        paths: list[Path] = []
        for i, start in enumerate(range(0, table.num_rows, batch_size)):
            path = dest / f"lake-{i:05d}.parquet"
            pq.write_table(table.slice(start, batch_size), path)
            paths.append(path)
        return paths

    def stats(self) -> LakeStats:
        """Entries readable, bytes on disk, segment files, torn/damaged records skipped."""
        segs = self.segments()
        batches, torn = self._scan_all()
        return LakeStats(
            entries=sum(b.num_rows for b in batches),
            bytes=sum(p.stat().st_size for p in segs),
            segments=len(segs),
            torn_records=torn,
        )


def lake_dir(settings=None) -> Path:
    """The lake directory of the configured data dir (`<data_dir>/lake`)."""

    settings = settings or get_settings()
    return settings.data_dir.expanduser().resolve() / "lake"


def get_lake(settings=None) -> ConfidenceLake:
    """The confidence lake under the configured data dir."""
    return ConfidenceLake(lake_dir(settings))
