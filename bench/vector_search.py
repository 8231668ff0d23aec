"""Semantic search at a million vectors: HNSW build time and memory, then p50 / p95 latency and recall@10 against
exact search, unfiltered and filtered by one source, at two `hnsw.ef_search` settings, on the embedded
PostgreSQL 18 + pgvector 0.8 (bench/README.md, "Semantic search at a million vectors"; docs/deploy.md,
"Filtered vector search").

    python bench/vector_search.py --data-dir /tmp/vs-1m                    # 1,000,000 rows, 2,000 sources, 200 queries
    python bench/vector_search.py --data-dir /tmp/vs-1m                    # again: reuses table, index and exact truth
    python bench/vector_search.py -n 50000 --data-dir /tmp/vs-50k          # small
    python bench/vector_search.py -n 50000 --real 0 --ef-search 20,200    # all random, other ef_search, temp data dir

Data. The table mirrors `fragments`: `id` (primary key), `source_id` (btree), `embedding vector(384)` with the
app's HNSW cosine index (m 16, ef_construction 64). Row i belongs to source i % `--sources`, so a source holds
n / sources rows (500 at 1M / 2,000: 0.05 %). The first `--real` rows (default 5,000) are real sentence
embeddings: sentences of the public-domain texts in $MMOS_SHARED_DIR/data (person_texts/, press_conferences/),
embedded by the project's ONNX all-MiniLM-L6-v2 (`mmos_core.embeddings`, provisioned in
~/.cache/mmos/embeddings). All other rows are random (`--synthetic`): `uniform` (default) independent uniform
unit vectors, which have no neighbourhood structure (every row is ~equally far from every query: the hardest
case for any ANN index, its recall here is a floor, not what real text gets); `clustered` rows of a source
around a random centroid (cosine ~0.5 within a source, ~0 across). The output and the JSON say which.

Queries (`--queries`, default 200, shuffled together): half are real sentences held out of the table (not
stored), half random vectors drawn like the random rows. k = 10. Two source filters per query: `1 random source`
(drawn at random, independent of the vector: the filter does not follow the similarity, the hard case for a
filtered index scan) and `top hit's source` (the source of the query's exact unfiltered top hit: "search within
the source where the best match is", the filter follows the similarity). The exact truth per query (unfiltered:
a sequential scan, ~1 s a query at 1M rows; filtered: btree on source_id + sort) is computed once and cached in
the data dir (`vector_search_truth-*.npz`).

Measured, per `--ef-search` value (default 40 and 100), after `--warmup` untimed queries:
* unfiltered `ORDER BY embedding <=> q LIMIT 10` on the HNSW index (and, once, the exact sequential scan);
* each filter: `exact` (the app's fallback, btree + sort), `hnsw_post_filter` (HNSW, iterative scans off:
  pgvector 0.6's behaviour), `iterative_relaxed` / `iterative_strict` (HNSW forced, `hnsw.iterative_scan`
  relaxed_order / strict_order, `hnsw.max_scan_tuples` `--max-scan-tuples`), `planner_relaxed` (relaxed_order,
  the planner's choice of plan).
Recall@10 against the exact top 10, also split into real and random queries, and the share of queries that
got fewer than 10 rows. The build: COPY (binary, in `--chunk` row chunks) time, HNSW build time with
`maintenance_work_mem` (`--maintenance-work-mem`, default 4GB: the graph takes ~2,250 bytes a row, ~2.1 GiB at
1M; pgvector's NOTICE when it does not fit is reported) and `max_parallel_maintenance_workers` (`--build-workers`,
default CPUs - 1), the index size, and the build's memory: peak RSS of the building backend and of its parallel
workers, their summed PSS (psutil, every 0.5 s), and /dev/shm in use (a parallel build reserves all of
maintenance_work_mem there). Prints a Markdown table, writes bench/results/vector_search.json. Without
`--data-dir` it works in a temporary data dir and deletes it at the end.
Goals (issue): unfiltered p95 <= 10 ms at recall@10 >= 0.95; filtered recall >= 0.9.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import psycopg

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from _pgvector_support import (  # noqa: E402
    DIM,
    copy_vectors,
    mean,
    percentile,
    recalls,
    server_facts,
    start_postgres,
    stop_postgres,
    unit_vectors,
    vec_literal,
)

K = 10
TABLE = "bench_vs"
META = "bench_vs_meta"
HNSW_INDEX = "bench_vs_embedding_idx"
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64
OFF = "SET LOCAL hnsw.iterative_scan = off"
NO_SORT = "SET LOCAL enable_sort = off"  # keeps the planner off btree + sort: the HNSW index scan is what is measured
FILTERED: dict[str, list[str]] = {  # name: SET LOCAL statements (the query orders by `embedding <=> q`)
    "hnsw_post_filter": [OFF, NO_SORT],
    "iterative_relaxed": ["SET LOCAL hnsw.iterative_scan = relaxed_order", NO_SORT],
    "iterative_strict": ["SET LOCAL hnsw.iterative_scan = strict_order", NO_SORT],
    "planner_relaxed": ["SET LOCAL hnsw.iterative_scan = relaxed_order"],
}
FILTERS = {"source_random": "1 random source", "source_of_top_hit": "top hit's source"}  # results key: table label
GOAL_P95_MS, GOAL_RECALL, GOAL_FILTERED_RECALL = 10.0, 0.95, 0.9


def default_texts_dirs() -> list[Path]:
    data = Path(os.environ.get("MMOS_SHARED_DIR", REPO_ROOT.parent / "shared")) / "data"
    return [data / "person_texts", data / "press_conferences"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--rows", type=int, default=1_000_000)
    ap.add_argument("--sources", type=int, default=2_000, help="row i belongs to source i %% sources (default 2,000)")
    ap.add_argument("--queries", type=int, default=200, help="half real held-out sentences, half random (default 200)")
    ap.add_argument("--ef-search", default="40,100", help="hnsw.ef_search values, comma-separated (default 40,100)")
    ap.add_argument("--real", type=int, default=5_000, help="rows with real sentence embeddings (default 5,000; 0: none)")
    ap.add_argument("--synthetic", choices=("uniform", "clustered"), default="uniform", help="the other rows (default uniform)")
    ap.add_argument("--texts-dir", type=Path, action="append", help="folders of *.txt for the real sentences (repeatable; "
                    "default $MMOS_SHARED_DIR/data/person_texts and press_conferences)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data-dir", type=Path, help="embedded data dir (kept: table, index and exact truth are reused when they match)")
    ap.add_argument("--rebuild", action="store_true", help="drop and rebuild the table even when it matches")
    ap.add_argument("--chunk", type=int, default=50_000, help="rows per COPY (default 50,000)")
    ap.add_argument("--maintenance-work-mem", default="4GB", help="for the HNSW build (default 4GB)")
    ap.add_argument("--build-workers", type=int, default=max(0, min(7, (os.cpu_count() or 1) - 1)),
                    help="max_parallel_maintenance_workers for the build (default CPUs - 1)")
    ap.add_argument("--max-scan-tuples", type=int, default=20_000, help="hnsw.max_scan_tuples for iterative scans (pgvector's default 20,000)")
    ap.add_argument("--warmup", type=int, default=20, help="untimed queries before each timed series (default 20)")
    ap.add_argument("--shared-buffers", help="ALTER SYSTEM SET shared_buffers and restart first (e.g. 4GB; default: leave it)")
    ap.add_argument("--no-prewarm", action="store_true", help="do not read the table and index files into the OS cache first")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "vector_search.json")
    args = ap.parse_args(argv)
    args.ef = [int(x) for x in args.ef_search.split(",") if x.strip()]
    args.texts_dirs = args.texts_dir or default_texts_dirs()
    return args


# ---------------------------------------------------------------- real sentences


def real_sentences(texts_dirs: list[Path], need: int, seed: int) -> list[str]:
    """Distinct sentences (20-400 characters, mostly letters) of every *.txt in `texts_dirs`, shuffled with `seed`."""
    from embeddings import load_sentences  # bench/embeddings.py

    seen, out = set(), []
    for d in texts_dirs:
        for s in load_sentences(d, 10**9) if d.is_dir() else []:
            if s not in seen:
                seen.add(s)
                out.append(s)
    random.Random(seed).shuffle(out)
    return out[:need]


def embed_real(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, dict]:
    """(table rows, held-out query rows, facts): `--real` sentence embeddings for the table and up to
    queries / 2 held-out ones, cached in `<cache_dir>/bench/` (~/.cache/mmos) by the sentences' hash."""
    want_queries = args.queries // 2 if args.real else 0
    sentences = real_sentences(args.texts_dirs, args.real + want_queries, args.seed) if args.real else []
    if args.real and len(sentences) < args.real + want_queries:
        raise SystemExit(f"only {len(sentences)} sentences in {', '.join(map(str, args.texts_dirs))}: "
                         f"need {args.real} + {want_queries} held out (lower --real, or --real 0 for random vectors only)")
    table_s, query_s = sentences[:args.real], sentences[args.real:]
    facts = {"real_rows": len(table_s), "real_queries": len(query_s), "texts_dirs": [str(d) for d in args.texts_dirs],
             "embedder": "all-MiniLM-L6-v2, ONNX fp32 (mmos_core.embeddings)" if sentences else None}
    if not sentences:
        return np.empty((0, DIM), np.float32), np.empty((0, DIM), np.float32), facts
    key = hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:16]
    facts["sentences_sha256_16"] = key
    from mmos_core.core.config import get_settings

    cache = Path(get_settings().cache_dir).expanduser() / "bench" / f"vector_search_real-{key}.npy"
    cache.parent.mkdir(parents=True, exist_ok=True)
    if cache.is_file():
        vecs = np.load(cache)
        print(f"real embeddings: {len(vecs):,} from {cache.name}")
    else:
        from mmos_core.embeddings.embedder import Embedder

        emb = Embedder.load(threads=os.cpu_count())
        t0, parts = time.perf_counter(), []
        for start in range(0, len(sentences), 512):
            parts.append(emb.embed(sentences[start:start + 512], batch_size=32))
            done = start + len(parts[-1])
            print(f"  embedded {done:,}/{len(sentences):,} sentences ({done / (time.perf_counter() - t0):.0f}/s)", flush=True)
        vecs = np.concatenate(parts).astype(np.float32)
        np.save(cache, vecs)
        facts["embed_s"] = round(time.perf_counter() - t0, 1)
    return vecs[:args.real], vecs[args.real:], facts


# ---------------------------------------------------------------- the table


def synthetic_rows(kind: str, ids: np.ndarray, sources: int, seed: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Random unit rows for the row ids `ids` (reproducible for the same first id and length; `clustered`: around
    the centroid of source id % sources)."""
    rng = rng or np.random.default_rng([seed, int(ids[0]), len(ids)])
    if kind == "uniform":
        return unit_vectors(rng, len(ids))
    centroids = unit_vectors(np.random.default_rng([seed, 7]), sources)
    v = centroids[ids % sources] + rng.normal(scale=DIM ** -0.5, size=(len(ids), DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def table_params(args: argparse.Namespace, real_facts: dict) -> dict:
    return {"rows": args.rows, "sources": args.sources, "seed": args.seed, "real_rows": real_facts["real_rows"],
            "real_sha256_16": real_facts.get("sentences_sha256_16"), "synthetic": args.synthetic,
            "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION}


def read_meta(conn: psycopg.Connection) -> dict:
    if conn.execute("SELECT to_regclass(%s)", (META,)).fetchone()[0] is None:
        return {}
    return dict(conn.execute(f"SELECT key, value FROM {META}").fetchall())


def write_meta(conn: psycopg.Connection, key: str, value: dict) -> None:
    conn.execute(f"INSERT INTO {META} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                 (key, json.dumps(value)))


def fill(conn: psycopg.Connection, args: argparse.Namespace, params: dict, real_rows: np.ndarray) -> dict:
    """(Re)create and fill the table with binary COPY in chunks; then primary key, source btree, VACUUM ANALYZE."""
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
    conn.execute(f"DROP TABLE IF EXISTS {META}")
    conn.execute(f"CREATE TABLE {META} (key text PRIMARY KEY, value jsonb NOT NULL)")
    conn.execute(f"CREATE TABLE {TABLE} (id int NOT NULL, source_id int NOT NULL, embedding vector({DIM}) NOT NULL)")
    n, gen_s, copy_s = args.rows, 0.0, 0.0
    t_all = time.perf_counter()
    for start in range(0, n, args.chunk):
        t0 = time.perf_counter()
        ids = np.arange(start, min(n, start + args.chunk))
        vecs = synthetic_rows(args.synthetic, ids, args.sources, args.seed)
        real_here = ids[ids < len(real_rows)]
        vecs[: len(real_here)] = real_rows[real_here]
        t1 = time.perf_counter()
        copy_vectors(conn, TABLE, {"id": ids, "source_id": ids % args.sources}, vecs)
        t2 = time.perf_counter()
        gen_s, copy_s = gen_s + t1 - t0, copy_s + t2 - t1
        done = int(ids[-1]) + 1
        print(f"  COPY {done:>9,}/{n:,} rows  {done / (t2 - t_all):>8,.0f} rows/s  {t2 - t_all:6.1f} s", flush=True)
    steps = {"generate_s": gen_s, "copy_s": copy_s}
    for name, sql in (("primary_key_s", f"ALTER TABLE {TABLE} ADD PRIMARY KEY (id)"),
                      ("source_btree_s", f"CREATE INDEX {TABLE}_source_idx ON {TABLE} (source_id)"),
                      ("vacuum_analyze_s", f"VACUUM (ANALYZE) {TABLE}")):
        t0 = time.perf_counter()
        conn.execute(sql)
        steps[name] = time.perf_counter() - t0
    out = {k: round(v, 1) for k, v in steps.items()}
    out["rows_per_s_copy"] = round(n / max(copy_s, 1e-9))
    out["table_bytes"] = conn.execute("SELECT pg_relation_size(%s)", (TABLE,)).fetchone()[0]
    write_meta(conn, "params", params)
    write_meta(conn, "build_id", {"id": uuid.uuid4().hex})
    write_meta(conn, "fill", out)
    print(f"filled {n:,} rows: COPY {copy_s:.1f} s ({out['rows_per_s_copy']:,} rows/s; generating the vectors {gen_s:.1f} s), "
          f"primary key {steps['primary_key_s']:.1f} s, source btree {steps['source_btree_s']:.1f} s, "
          f"VACUUM ANALYZE {steps['vacuum_analyze_s']:.1f} s; table {out['table_bytes'] / 2**30:.2f} GiB")
    return out


class BuildSampler(threading.Thread):
    """Every 0.5 s: RSS of the building backend, RSS and PSS of it and its parallel workers (psutil), /dev/shm in
    use; every 30 s a progress line from pg_stat_progress_create_index."""

    def __init__(self, conninfo: str, pid: int) -> None:
        super().__init__(daemon=True)
        self.conninfo, self.pid = conninfo, pid
        self.stop_event = threading.Event()
        self.peak = {"leader_rss": 0, "worker_rss_max": 0, "all_rss_sum": 0, "all_pss_sum": 0, "dev_shm_delta": 0, "workers": 0}
        self.shm0 = self._shm()

    @staticmethod
    def _shm() -> int:
        try:
            return psutil.disk_usage("/dev/shm").used
        except OSError:
            return 0

    def run(self) -> None:
        last_progress = time.monotonic()
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            while not self.stop_event.wait(0.5):
                workers = [r[0] for r in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE leader_pid = %s AND pid <> %s", (self.pid, self.pid))]
                self._sample(workers)
                if time.monotonic() - last_progress >= 30:
                    last_progress = time.monotonic()
                    row = conn.execute("SELECT phase, tuples_done, tuples_total, blocks_done, blocks_total "
                                       "FROM pg_stat_progress_create_index WHERE pid = %s", (self.pid,)).fetchone()
                    if row:
                        print(f"  index build: {row[0]}, blocks {row[3]:,}/{row[4]:,}, tuples {row[1]:,}; "
                              f"backend RSS {self.peak['leader_rss'] / 2**20:,.0f} MiB so far, {len(workers)} parallel workers", flush=True)

    def _sample(self, workers: list[int]) -> None:
        rss, pss = [], 0
        for pid in [self.pid, *workers]:
            try:
                info = psutil.Process(pid).memory_full_info()
            except (psutil.Error, OSError):
                continue
            rss.append(info.rss)
            pss += getattr(info, "pss", 0)
        if not rss:
            return
        p = self.peak
        p["leader_rss"] = max(p["leader_rss"], rss[0])
        p["worker_rss_max"] = max(p["worker_rss_max"], *rss[1:], 0)
        p["all_rss_sum"] = max(p["all_rss_sum"], sum(rss))
        p["all_pss_sum"] = max(p["all_pss_sum"], pss)
        p["dev_shm_delta"] = max(p["dev_shm_delta"], self._shm() - self.shm0)
        p["workers"] = max(p["workers"], len(workers))


def build_index(conninfo: str, args: argparse.Namespace) -> dict:
    """CREATE INDEX … USING hnsw, timed, with the build's memory sampled; then the index size."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(f"{d.message_primary} {d.message_detail or ''}".strip()))
        conn.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
        conn.execute(f"SET max_parallel_maintenance_workers = {args.build_workers}")
        mwm = conn.execute("SHOW maintenance_work_mem").fetchone()[0]
        pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        print(f"building HNSW (m {HNSW_M}, ef_construction {HNSW_EF_CONSTRUCTION}) on {args.rows:,} rows, "
              f"maintenance_work_mem {mwm}, max_parallel_maintenance_workers {args.build_workers} ...", flush=True)
        notices.clear()  # the DROP's "does not exist, skipping"
        sampler = BuildSampler(conninfo, pid)
        sampler.start()
        t0 = time.perf_counter()
        try:
            conn.execute(f"CREATE INDEX {HNSW_INDEX} ON {TABLE} USING hnsw (embedding vector_cosine_ops) "
                         f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})")
        finally:
            build_s = time.perf_counter() - t0
            sampler.stop_event.set()
            sampler.join()
        size = conn.execute("SELECT pg_relation_size(%s)", (HNSW_INDEX,)).fetchone()[0]
        peak = sampler.peak
        out = {"build_s": round(build_s, 1), "maintenance_work_mem": mwm, "max_parallel_maintenance_workers": args.build_workers,
               "parallel_workers_seen": peak["workers"], "index_bytes": size,
               "peak_backend_rss_mib": round(peak["leader_rss"] / 2**20), "peak_worker_rss_mib": round(peak["worker_rss_max"] / 2**20),
               "peak_pss_sum_mib": round(peak["all_pss_sum"] / 2**20), "peak_dev_shm_mib": round(peak["dev_shm_delta"] / 2**20),
               "graph_fitted_in_maintenance_work_mem": not any("no longer fits" in m for m in notices), "notices": notices}
        write_meta(conn, "index", out)
    print(f"HNSW built in {build_s:.1f} s ({args.rows / build_s:,.0f} rows/s), index {size / 2**30:.2f} GiB; "
          f"{peak['workers']} parallel workers; peak RSS backend {out['peak_backend_rss_mib']:,} MiB, "
          f"worker {out['peak_worker_rss_mib']:,} MiB, PSS of all {out['peak_pss_sum_mib']:,} MiB, "
          f"/dev/shm +{out['peak_dev_shm_mib']:,} MiB (parallel build: the graph is in shared memory)")
    for m in notices:
        print(f"  NOTICE: {m}")
    return out


def ensure_table(conninfo: str, args: argparse.Namespace, params: dict, real_rows: np.ndarray) -> dict:
    """Fill and index unless the data dir already holds this table (same parameters, n rows, HNSW index)."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        meta = read_meta(conn)
        same = (not args.rebuild and meta.get("params") == params and "fill" in meta
                and conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == args.rows)
        if same:
            print(f"reusing {TABLE}: {args.rows:,} rows (built earlier; its build figures come from the meta table)")
        else:
            meta = {"fill": fill(conn, args, params, real_rows)}
        has_index = conn.execute("SELECT to_regclass(%s)", (HNSW_INDEX,)).fetchone()[0] is not None
    if same and has_index and "index" in meta:
        meta["reused"] = True
        return meta
    meta["index"] = build_index(conninfo, args)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        meta.update(read_meta(conn))
    meta["reused"] = False
    return meta


def prewarm(conn: psycopg.Connection) -> dict:
    """Read the table's and the HNSW index's files into the OS page cache (the wheel has no pg_prewarm)."""
    data = Path(conn.execute("SHOW data_directory").fetchone()[0])
    t0, total = time.perf_counter(), 0
    for rel in (TABLE, HNSW_INDEX):
        base = data / conn.execute("SELECT pg_relation_filepath(%s)", (rel,)).fetchone()[0]
        for seg in [base, *sorted(base.parent.glob(base.name + ".[0-9]*"))]:
            try:
                with open(seg, "rb") as f:
                    while block := f.read(1 << 24):
                        total += len(block)
            except OSError as exc:
                return {"error": str(exc)}
    s = time.perf_counter() - t0
    print(f"prewarm: read {total / 2**30:.2f} GiB of table + HNSW files into the OS cache in {s:.1f} s")
    return {"bytes": total, "s": round(s, 1)}


# ---------------------------------------------------------------- queries


def make_queries(args: argparse.Namespace, real_queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, is_real, filter source) for `--queries` queries, real and random shuffled together."""
    n_real = min(len(real_queries), args.queries)
    rng = np.random.default_rng([args.seed, 1])
    if args.synthetic == "uniform":
        rand = unit_vectors(rng, args.queries - n_real)
    else:  # a new member of a random source's cluster, drawn like the stored rows
        rand = synthetic_rows("clustered", rng.integers(args.sources, size=args.queries - n_real), args.sources, args.seed, rng)
    vecs = np.concatenate([real_queries[:n_real], rand]).astype(np.float32)
    is_real = np.arange(args.queries) < n_real
    order = rng.permutation(args.queries)
    sources = np.random.default_rng([args.seed, 2]).integers(args.sources, size=args.queries)
    return vecs[order], is_real[order], sources


def _plan(conn: psycopg.Connection, sql: str, params: dict) -> str:
    rows = conn.execute("EXPLAIN (COSTS OFF) " + sql, params).fetchall()
    nodes = (r[0].strip().removeprefix("->").strip() for r in rows)
    return " < ".join(n.split(" on ")[0] for n in nodes if ":" not in n and ("Scan" in n or n.startswith("Sort") or "Gather" in n))


def run_series(conn: psycopg.Connection, sql: str, sets: list[str], queries: list[dict], warmup: list[dict],
               progress: str = "") -> tuple[list[float], list[list[int]], str]:
    """Times each query (ms, the SELECT and its fetch) in its own transaction after `sets`; returns the
    times, the ids found and the plan of the first query. `warmup` queries run first, untimed."""
    times: list[float] = []
    found: list[list[int]] = []
    plan = ""
    t_start = time.perf_counter()
    for i, params in enumerate([*warmup, *queries]):
        with conn.transaction():
            for st in sets:
                conn.execute(st)
            if i == len(warmup):
                plan = _plan(conn, sql, params)
            t0 = time.perf_counter()
            ids = [r[0] for r in conn.execute(sql, params).fetchall()]
            t = (time.perf_counter() - t0) * 1000
        if i >= len(warmup):
            times.append(t)
            found.append(ids)
            done = len(times)
            if progress and done % 20 == 0:
                left = (time.perf_counter() - t_start) / (done + len(warmup)) * (len(queries) - done)
                print(f"  {progress}: {done}/{len(queries)} ({left:.0f} s left)", flush=True)
    return times, found, plan


def _sql(where: bool, exact: bool, tag: str) -> str:
    # the tag keeps one prepared statement per strategy (psycopg prepares a query text after 5 runs)
    order = "(embedding <=> %(q)s::vector) + 0" if exact else "embedding <=> %(q)s::vector"
    return f"SELECT /* {tag} */ id FROM {TABLE} {'WHERE source_id = %(s)s' if where else ''} ORDER BY {order} LIMIT {K}"


def exact_truth(conn: psycopg.Connection, queries: list[dict], sources: int, cache: Path, verbose: bool = False) -> dict:
    """Exact top 10 per query, unfiltered (sequential scan, no index, with its times) and for both filters
    (btree + sort): the query's random source and the source of its exact top hit (row id % sources).
    Cached in `cache` (named by the table's build id and the queries)."""
    z = np.load(cache) if cache.is_file() else None
    if z is not None and {"all", "all_ms", "all_plan", *FILTERS} <= set(z.files):
        print(f"exact truth: from {cache.name}")
        return {"all": _unpad(z["all"]), "all_ms": z["all_ms"].tolist(), "all_plan": str(z["all_plan"]),
                **{f: _unpad(z[f]) for f in FILTERS}, "cached": True}
    print(f"exact truth for {len(queries)} queries (unfiltered: a sequential scan each) ...", flush=True)
    t_all, all_ids, all_plan = run_series(conn, _sql(False, True, "exact"), [OFF], queries, [],
                                          progress="exact unfiltered" if verbose else "")
    truth = {"all": all_ids, "all_ms": t_all, "all_plan": all_plan, "cached": False}
    for f in FILTERS:
        _, truth[f], _ = run_series(conn, _sql(True, True, "exact"), [OFF], filtered_queries(queries, f, all_ids, sources), [])
    np.savez(cache, all=_pad(all_ids), all_ms=np.array(t_all), all_plan=all_plan, **{f: _pad(truth[f]) for f in FILTERS})
    return truth


def filtered_queries(queries: list[dict], kind: str, top: list[list[int]], sources: int) -> list[dict]:
    """The queries with `s` set to the filter source of `kind`: FILTERS."""
    if kind == "source_random":
        return queries
    return [q | {"s": t[0] % sources} for q, t in zip(queries, top)]


def _pad(rows: list[list[int]]) -> np.ndarray:
    return np.array([r + [-1] * (K - len(r)) for r in rows], dtype=np.int32)


def _unpad(a: np.ndarray) -> list[list[int]]:
    return [[int(x) for x in row if x >= 0] for row in a]


def summarise(times: list[float], found: list[list[int]], truth: list[list[int]], is_real: np.ndarray, plan: str) -> dict:
    r = np.array(recalls(found, truth, K))
    return {"p50_ms": round(percentile(times, 50), 2), "p95_ms": round(percentile(times, 95), 2),
            "mean_ms": round(mean(times), 2), "recall_at_10": round(float(r.mean()), 4),
            "recall_real": round(float(r[is_real].mean()), 4) if is_real.any() else None,
            "recall_random": round(float(r[~is_real].mean()), 4) if (~is_real).any() else None,
            "short_share": round(sum(len(f) < K for f in found) / max(1, len(found)), 3), "plan": plan}


def measure(conn: psycopg.Connection, args: argparse.Namespace, queries: list[dict], warmup: list[dict],
            truth: dict, is_real: np.ndarray) -> dict:
    out: dict = {"unfiltered": {}, **{f: {} for f in FILTERS}}
    # the exact unfiltered times are those of the run that computed the truth (cached with it; not warmed up)
    out["unfiltered"]["exact"] = summarise(truth["all_ms"], truth["all"], truth["all"], is_real, truth["all_plan"])
    scan = f"SET LOCAL hnsw.max_scan_tuples = {args.max_scan_tuples}"
    for ef in args.ef:
        ef_set = f"SET LOCAL hnsw.ef_search = {ef}"
        t, f, plan = run_series(conn, _sql(False, False, f"hnsw-{ef}"), [ef_set, OFF], queries, warmup)
        out["unfiltered"][f"hnsw_ef{ef}"] = summarise(t, f, truth["all"], is_real, plan) | {"ef_search": ef}
    for kind in FILTERS:
        fq = filtered_queries(queries, kind, truth["all"], args.sources)
        t, f, plan = run_series(conn, _sql(True, True, "exact"), [OFF], fq, warmup)
        out[kind]["exact"] = summarise(t, f, truth[kind], is_real, plan)
        for ef in args.ef:
            for name, sets in FILTERED.items():
                t, f, plan = run_series(conn, _sql(True, False, f"{name}-{ef}"), [f"SET LOCAL hnsw.ef_search = {ef}", scan, *sets],
                                        fq, warmup, progress=f"{kind} {name} ef_search {ef}" if args.rows >= 200_000 else "")
                out[kind][f"{name}_ef{ef}"] = summarise(t, f, truth[kind], is_real, plan) | {"ef_search": ef}
    return out


# ---------------------------------------------------------------- report


def markdown(results: dict) -> str:
    lines = ["| queries | strategy | ef_search | p50 ms | p95 ms | recall@10 | real / random | < 10 rows | plan |",
             "|---|---|---|---|---|---|---|---|---|"]
    for kind, label in (("unfiltered", "unfiltered"), *FILTERS.items()):
        for name, r in results[kind].items():
            split = " / ".join("–" if r[k] is None else f"{r[k]:.3f}" for k in ("recall_real", "recall_random"))
            lines.append(f"| {label} | {name.rsplit('_ef', 1)[0]} | {r.get('ef_search', '–')} | {r['p50_ms']:.2f} | "
                         f"{r['p95_ms']:.2f} | {r['recall_at_10']:.3f} | {split} | {r['short_share']:.0%} | {r['plan']} |")
    return "\n".join(lines)


def goals(results: dict) -> list[str]:
    """The issue's goals per ef_search, judged on all queries and on each kind (real held-out sentences, random)."""

    def verdict(r: dict, floor: float) -> str:
        parts = [f"{label} {'met' if r[key] >= floor else 'NOT met'} ({r[key]:.3f})"
                 for key, label in (("recall_at_10", "all"), ("recall_real", "real"), ("recall_random", "random")) if r[key] is not None]
        return ", ".join(parts)

    out = []
    for r in results["unfiltered"].values():
        if "ef_search" in r:
            fast = r["p95_ms"] <= GOAL_P95_MS
            out.append(f"unfiltered, ef_search {r['ef_search']}: p95 {r['p95_ms']:.2f} ms ({'<=' if fast else '>'} {GOAL_P95_MS:g}); "
                       f"recall@10 >= {GOAL_RECALL}: {verdict(r, GOAL_RECALL)}")
    for kind, label in FILTERS.items():
        for name, r in results[kind].items():
            if name.startswith("iterative"):
                out.append(f"{label}, {name.replace('_ef', ', ef_search ')}: p95 {r['p95_ms']:.2f} ms; recall@10 >= {GOAL_FILTERED_RECALL}: "
                           f"{verdict(r, GOAL_FILTERED_RECALL)}; {r['short_share']:.0%} got < 10 rows")
    return out


def machine_facts() -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1), "load_average": [round(x, 2) for x in os.getloadavg()]}


def set_shared_buffers(settings, conninfo: str, value: str) -> str:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        if conn.execute("SHOW shared_buffers").fetchone()[0].replace(" ", "").lower() == value.replace(" ", "").lower():
            return conninfo
        conn.execute(f"ALTER SYSTEM SET shared_buffers = '{value}'")
    stop_postgres(settings)
    _, conninfo, _ = start_postgres(settings.data_dir)
    return conninfo


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_run = time.perf_counter()
    settings, conninfo, data_dir = start_postgres(args.data_dir, prefix="mmos-vs-")
    print(f"data dir {data_dir}; {args.rows:,} rows, {args.sources:,} sources, {args.queries} queries, ef_search {args.ef}, "
          f"{os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, load {os.getloadavg()[0]:.2f}")
    try:
        if args.shared_buffers:
            conninfo = set_shared_buffers(settings, conninfo, args.shared_buffers)
        real_rows, real_queries, real_facts = embed_real(args)
        params = table_params(args, real_facts)
        meta = ensure_table(conninfo, args, params, real_rows)
        data = {"real_rows": len(real_rows), "random_rows": args.rows - len(real_rows), "random_kind": args.synthetic,
                **{k: v for k, v in real_facts.items() if k != "real_rows"}}
        vecs, is_real, sources = make_queries(args, real_queries)
        data["queries"] = {"real_held_out": int(is_real.sum()), "random": int((~is_real).sum()),
                           "filters": {"source_random": "one source per query, drawn at random, independent of the vector",
                                       "source_of_top_hit": "the source of the query's exact unfiltered top hit"}}
        print(f"data: {data['real_rows']:,} real sentence embeddings + {data['random_rows']:,} random ({args.synthetic}) "
              f"unit vectors; queries: {data['queries']['real_held_out']} real held-out sentences + {data['queries']['random']} random")
        queries = [{"q": vec_literal(v), "s": int(s)} for v, s in zip(vecs, sources)]
        wrng = np.random.default_rng([args.seed, 3])
        warmup = [{"q": vec_literal(v), "s": int(s)} for v, s in
                  zip(unit_vectors(wrng, args.warmup), wrng.integers(args.sources, size=args.warmup))]
        with psycopg.connect(conninfo) as conn:
            facts = server_facts(conn)
            warm = {} if args.no_prewarm else prewarm(conn)
            conn.commit()
            key = hashlib.sha256(json.dumps([meta["build_id"], [q["q"] for q in queries], [q["s"] for q in queries]]).encode()).hexdigest()[:16]
            truth = exact_truth(conn, queries, args.sources, data_dir / f"vector_search_truth-{key}.npz", verbose=args.rows >= 200_000)
            results = measure(conn, args, queries, warmup, truth, is_real)
            db_bytes = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            wal_bytes = conn.execute("SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()").fetchone()[0]
        print()
        print(markdown(results))
        print()
        for line in goals(results):
            print(line)
        report = {"rows": args.rows, "sources": args.sources, "rows_per_source": args.rows / args.sources, "queries": args.queries,
                  "k": K, "ef_search": args.ef, "max_scan_tuples": args.max_scan_tuples, "warmup_queries": args.warmup,
                  "data": data, "machine": machine_facts(), "postgres": facts, "hnsw": {"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION},
                  "build": {"reused_from_data_dir": meta["reused"], "fill": meta["fill"], "index": meta["index"]},
                  "disk": {"database_bytes": db_bytes, "wal_bytes": int(wal_bytes)}, "prewarm": warm,
                  "exact_truth_cached": truth["cached"], "results": results, "goals": goals(results),
                  "run_s": round(time.perf_counter() - t_run, 1)}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2))
        print(f"\ndatabase {db_bytes / 2**30:.2f} GiB + WAL {wal_bytes / 2**30:.2f} GiB; run {time.perf_counter() - t_run:.0f} s; "
              f"wrote {args.out}")
    finally:
        stop_postgres(settings)
        if args.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
