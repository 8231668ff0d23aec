"""Shared helpers of the pgvector benches (`filtered_vector_search.py`, `vector_search.py`): the embedded
PostgreSQL 18 + pgvector server in a data dir, unit vectors, binary COPY of vector rows, latency and recall
figures, and the server's versions and settings."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import psycopg

from mmos_core.core import embedded
from mmos_core.core.config import Settings, get_settings

DIM = 384
PGCOPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # signature, flags, header extension
PGCOPY_TRAILER = b"\xff\xff"


def start_postgres(data_dir: Path | None, prefix: str = "mmos-bench-pg-") -> tuple[Settings, str, Path]:
    """Start (initdb first when new) the embedded PostgreSQL of `data_dir` (a fresh temp dir when None).

    Returns the settings to stop it with, a psycopg conninfo (unix socket) and the data dir."""
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix=prefix))
    settings = get_settings().model_copy(update={"data_dir": data_dir})
    url = embedded.ensure_postgres(settings)
    return settings, "postgresql://" + url.split("://", 1)[1], data_dir


def stop_postgres(settings: Settings) -> None:
    embedded.stop_postgres(settings)


def pgdata(settings: Settings) -> Path:
    """The cluster's folder (`<data_dir>/postgres`)."""
    return embedded.postgres_dir(settings)


def vec_literal(v: np.ndarray) -> str:
    """A pgvector text literal, 6 decimals (float32 keeps ~7 digits)."""
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    """n independent uniform unit vectors (normalised standard normal rows), float32."""
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def copy_vectors(conn: psycopg.Connection, table: str, int_columns: dict[str, np.ndarray], vectors: np.ndarray,
                 vector_column: str = "embedding") -> None:
    """COPY rows of int4 columns + one `vector` column into `table` in binary format, built with numpy
    (no per-row Python work: ~100x faster than text COPY with a formatted literal per row).

    pgvector's binary form: int16 dim, int16 unused (0), dim float4, big-endian."""
    n, dim = vectors.shape
    fields = [("nfields", ">i2")]
    for i in range(len(int_columns)):
        fields += [(f"len{i}", ">i4"), (f"c{i}", ">i4")]
    fields += [("vlen", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (dim,))]
    rows = np.zeros(n, dtype=np.dtype(fields))
    rows["nfields"] = len(int_columns) + 1
    for i, values in enumerate(int_columns.values()):
        rows[f"len{i}"] = 4
        rows[f"c{i}"] = values
    rows["vlen"] = 4 + 4 * dim
    rows["dim"] = dim
    rows["v"] = vectors
    columns = ", ".join([*int_columns, vector_column])
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(PGCOPY_SIGNATURE)
        data = memoryview(rows.tobytes())
        for start in range(0, len(data), 1 << 22):
            copy.write(data[start:start + (1 << 22)])
        copy.write(PGCOPY_TRAILER)


def percentile(times: Sequence[float], q: float) -> float:
    return float(np.percentile(times, q)) if len(times) else float("nan")


def recalls(found: Sequence[Sequence[int]], truth: Sequence[Sequence[int]], k: int) -> list[float]:
    """Per query: the share of the exact top k found (a truth shorter than k counts as complete when all of it is found)."""
    return [len(set(f) & set(t)) / max(1, min(k, len(t))) for f, t in zip(found, truth)]


def mean(values: Sequence[float]) -> float:
    return statistics.mean(values) if values else float("nan")


def server_facts(conn: psycopg.Connection) -> dict:
    """PostgreSQL and pgvector versions and the settings that matter for vector search."""
    facts = {"server": conn.execute("SELECT current_setting('server_version')").fetchone()[0],
             "pgvector": conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]}
    for name in ("shared_buffers", "work_mem", "effective_cache_size", "max_parallel_workers_per_gather", "jit"):
        facts[name] = conn.execute(f"SHOW {name}").fetchone()[0]
    return facts
