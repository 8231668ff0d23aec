"""Filtered nearest-neighbour search on pgvector 0.8: exact (btree filter + sort) against HNSW with and without
iterative index scans, on the embedded PostgreSQL 18 (docs/deploy.md, "Filtered vector search").

    python bench/filtered_vector_search.py                       # 50,000 vectors, 200 sources, 200 queries
    python bench/filtered_vector_search.py -n 20000 --queries 100 --data-dir /tmp/fvs   # reuse a built table

The table mirrors `fragments` / `message_embeddings`: `vector(384)` unit rows, an HNSW cosine index with the
app's parameters (m 16, ef_construction 64), a btree on the filter column. Rows are random unit vectors
spread evenly over `--sources` sources (0.5 % of the rows per source at 200) and, for a second, wider
filter, over 10 groups (10 % per group). Each query is a random unit vector and a random source (group);
the truth is the exact top 10 of that source. Strategies, each `LIMIT 10`, hnsw.ef_search 100:

* `exact` — the app's fallback: `ORDER BY embedding <=> q + 0` (planner keeps off HNSW: btree + sort);
* `hnsw_post_filter` — HNSW forced (`enable_sort = off`), iterative scans off: pgvector 0.6's behaviour,
  filtering the ~ef_search rows the index returns;
* `current_app` — what `services/conversations/analysis._nearest_earlier` does: the planner's choice with
  iterative scans off, then `exact` when fewer than 10 rows came back;
* `iterative_relaxed` / `iterative_strict` — HNSW forced, `hnsw.iterative_scan = relaxed_order | strict_order`
  (pgvector 0.8, hnsw.max_scan_tuples 20,000);
* `planner_iterative` — the planner's choice with `relaxed_order` on (what setting it in the app would do).

Prints p50 / p95 ms, recall@10 against the exact top 10, the share of queries that got fewer than 10 rows,
and the plan each strategy used; writes bench/results/filtered_vector_search.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import psycopg

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "bench"))

from _pgvector_support import DIM, copy_vectors, server_facts, start_postgres, stop_postgres, unit_vectors, vec_literal  # noqa: E402

K = 10
EF_SEARCH = 100

STRATEGIES: dict[str, tuple[list[str], str]] = {
    # name: (SET LOCAL statements, ORDER BY expression)
    "exact": (["SET LOCAL hnsw.iterative_scan = off"], "(embedding <=> %(q)s::vector) + 0"),
    "hnsw_post_filter": (["SET LOCAL hnsw.iterative_scan = off", "SET LOCAL enable_sort = off"], "embedding <=> %(q)s::vector"),
    "iterative_relaxed": (["SET LOCAL hnsw.iterative_scan = relaxed_order", "SET LOCAL enable_sort = off"],
                          "embedding <=> %(q)s::vector"),
    "iterative_strict": (["SET LOCAL hnsw.iterative_scan = strict_order", "SET LOCAL enable_sort = off"],
                         "embedding <=> %(q)s::vector"),
    "planner_iterative": (["SET LOCAL hnsw.iterative_scan = relaxed_order"], "embedding <=> %(q)s::vector"),
    "planner_post_filter": (["SET LOCAL hnsw.iterative_scan = off"], "embedding <=> %(q)s::vector"),
}


def dataset(kind: str, n: int, sources: int, seed: int) -> np.ndarray:
    """(n, 384) unit rows; row i belongs to source i % sources.

    `random`: independent uniform unit vectors (no structure: the hardest case for HNSW).
    `clustered`: per source a random centroid c, rows normalise(c + noise) with noise ~ N(0, I/384), so two rows
    of one source have cosine ≈ 0.5 and rows of different sources ≈ 0, roughly like sentence embeddings of one
    text against another's.
    """
    rng = np.random.default_rng(seed)
    if kind == "random":
        return unit_vectors(rng, n)
    centroids = unit_vectors(rng, sources)
    v = centroids[np.arange(n) % sources] + rng.normal(scale=DIM ** -0.5, size=(n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def build(conninfo: str, table: str, vecs: np.ndarray, sources: int) -> float:
    """Create and fill `table` unless it already holds these rows; returns build seconds (0 when reused)."""
    n = len(vecs)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        exists = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]
        if exists:
            rows, srcs = conn.execute(f"SELECT count(*), count(DISTINCT source_id) FROM {table}").fetchone()
            if rows == n and srcs == sources:
                print(f"reusing {table} ({rows} rows, {srcs} sources)")
                return 0.0
            conn.execute(f"DROP TABLE {table}")
        t0 = time.perf_counter()
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, source_id int NOT NULL, group_id int NOT NULL, "
                     f"embedding vector({DIM}) NOT NULL)")
        rows = np.arange(n)
        copy_vectors(conn, table, {"source_id": rows % sources, "group_id": (rows // sources) % 10}, vecs)
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(f"CREATE INDEX ON {table} USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
        conn.execute(f"CREATE INDEX ON {table} (source_id)")
        conn.execute(f"CREATE INDEX ON {table} (group_id)")
        conn.execute(f"ANALYZE {table}")
        return time.perf_counter() - t0


def run_strategy(conn: psycopg.Connection, table: str, name: str, column: str | None,
                 queries: list[tuple[str, int]]) -> tuple[list[float], list[list[int]], str]:
    """Times each query (ms) of one strategy; returns times, the ids found and the plan of the first query.
    `column` None: no filter (the index's own recall on this data)."""
    sets, order = STRATEGIES.get(name, STRATEGIES["planner_post_filter"])
    where = f"WHERE {column} = %(s)s" if column else ""
    sql = f"SELECT id FROM {table} {where} ORDER BY {order} LIMIT {K}"
    times, found = [], []
    plan = ""
    for i, (q, s) in enumerate(queries):
        with conn.transaction():
            conn.execute(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}")
            for st in sets:
                conn.execute(st)
            if i == 0:
                rows = conn.execute("EXPLAIN (COSTS OFF) " + sql, {"q": q, "s": s}).fetchall()
                nodes = (r[0].strip().removeprefix("->").strip() for r in rows)
                plan = " < ".join(n.split(" on ")[0] for n in nodes if ":" not in n and ("Scan" in n or n.startswith("Sort")))
            t0 = time.perf_counter()
            ids = [r[0] for r in conn.execute(sql, {"q": q, "s": s}).fetchall()]
            if name == "current_app" and len(ids) < K:  # the app's fallback (services/conversations/analysis.py)
                exact = sql.replace(STRATEGIES["planner_post_filter"][1], STRATEGIES["exact"][1])
                ids = [r[0] for r in conn.execute(exact, {"q": q, "s": s}).fetchall()]
            times.append((time.perf_counter() - t0) * 1000)
        found.append(ids)
    return times, found, plan


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--rows", type=int, default=50_000)
    ap.add_argument("--sources", type=int, default=200)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data", default="random,clustered", help="datasets to run, comma-separated: random, clustered")
    ap.add_argument("--data-dir", type=Path, help="embedded data dir to use (kept; the table is reused when it matches)")
    args = ap.parse_args()

    settings, conninfo, _ = start_postgres(args.data_dir, prefix="mmos-fvs-")
    names = ["exact", "hnsw_post_filter", "current_app", "iterative_relaxed", "iterative_strict", "planner_iterative"]
    results: dict = {"rows": args.rows, "sources": args.sources, "queries": args.queries, "k": K, "ef_search": EF_SEARCH,
                     "machine": platform.platform(), "datasets": {}}
    try:
        for kind in args.data.split(","):
            table = f"bench_vectors_{kind}"
            vecs = dataset(kind, args.rows, args.sources, args.seed)
            build_s = build(conninfo, table, vecs, args.sources)
            if build_s:
                print(f"built {table}: {args.rows} rows + HNSW index in {build_s:.1f} s")
            rng = np.random.default_rng(args.seed + 1)
            if kind == "random":
                qv = unit_vectors(rng, args.queries)
            else:  # near a stored row, like "more like this" or a conversation's next message
                picks = rng.integers(args.rows, size=args.queries)
                qv = vecs[picks] + rng.normal(scale=0.5 * DIM ** -0.5, size=(args.queries, DIM)).astype(np.float32)
                qv /= np.linalg.norm(qv, axis=1, keepdims=True)
            out_kind: dict = {"build_s": round(build_s, 1), "filters": {}}
            with psycopg.connect(conninfo) as conn:
                facts = server_facts(conn)
                results["server"], results["pgvector"] = facts["server"], facts["pgvector"]
                plain = [(vec_literal(v), 0) for v in qv]
                _, truth_all, _ = run_strategy(conn, table, "exact", None, plain)
                t_all, found_all, _ = run_strategy(conn, table, "planner_post_filter", None, plain)
                recall_all = statistics.mean(len(set(f) & set(g)) / K for f, g in zip(found_all, truth_all))
                out_kind["unfiltered_hnsw"] = {"p50_ms": round(float(np.percentile(t_all, 50)), 2), "recall_at_10": round(recall_all, 4)}
                print(f"\n== {kind} vectors: unfiltered HNSW p50 {np.percentile(t_all, 50):.2f} ms, recall@10 {recall_all:.3f}")
                for column, groups in (("source_id", args.sources), ("group_id", 10)):
                    share = 100.0 / groups
                    if kind == "random":
                        queries = [(vec_literal(v), int(rng.integers(groups))) for v in qv]
                    else:  # the filter value of the row the query was drawn near
                        queries = [(vec_literal(v), int(p % args.sources if column == "source_id" else (p // args.sources) % 10))
                                   for v, p in zip(qv, picks)]
                    run_strategy(conn, table, "exact", column, queries[:20])  # warm the cache
                    truth_t, truth, truth_plan = run_strategy(conn, table, "exact", column, queries)
                    print(f"filter {column} ({share:.1f} % of rows per value), {len(queries)} queries, k={K}, ef_search={EF_SEARCH}")
                    print(f"{'strategy':<20}{'p50 ms':>9}{'p95 ms':>9}{'recall@10':>11}{'short':>7}  plan")
                    rows = {}
                    for name in names:
                        t, found, plan = (truth_t, truth, truth_plan) if name == "exact" else run_strategy(conn, table, name, column, queries)
                        recall = statistics.mean(len(set(f) & set(g)) / K for f, g in zip(found, truth))
                        short = sum(len(f) < K for f in found) / len(found)
                        p50, p95 = float(np.percentile(t, 50)), float(np.percentile(t, 95))
                        rows[name] = {"p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "recall_at_10": round(recall, 4),
                                      "short_share": round(short, 3), "plan": plan}
                        print(f"{name:<20}{p50:>9.2f}{p95:>9.2f}{recall:>11.3f}{short:>7.1%}  {plan}")
                    out_kind["filters"][column] = {"share_pct": share, "strategies": rows}
            results["datasets"][kind] = out_kind
        out = REPO_ROOT / "bench" / "results" / "filtered_vector_search.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {out.relative_to(REPO_ROOT)}")
    finally:
        stop_postgres(settings)


if __name__ == "__main__":
    main()
