"""Seed the configured database with N realistic fragments for page-render benchmarks.

    MMOS_DATA_DIR=/tmp/bench-data python bench/seed_fragments.py --count 50000 [--fast-embeddings]

What it writes (see bench/README.md): the texts of --texts-dir cut into --sources sources (stored
with `create_source`, so chunks and offsets are the real ones), three completed batches per source
(one per model name), and --count fragments whose contents are real sentences of their source
(char_start/char_end point at them, chunk_id is the chunk holding them). Category, type,
relevance, confidence and review state are random with a fixed --seed. Embeddings come from the
ONNX all-MiniLM-L6-v2 embedder in batches of 64, or, with --fast-embeddings, random unit vectors
(search results are then meaningless, but row counts, sizes and index work are the same).

Fragments go in with COPY in chunks of --copy-rows; the HNSW index is dropped before and rebuilt
after (faster than maintaining it row by row; --keep-index to measure the row-by-row cost).
Prints rows/s per phase and the total time. Never run it against a database you care about:
it only adds rows, but it adds a lot of them.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

CATEGORIES = [
    "Biographical", "Cognitive", "Communicative", "Behavioral",
    "Values and Beliefs", "Social", "Emotional", "Meta-cognitive",
]
CATEGORY_WEIGHTS = [18, 16, 10, 14, 14, 12, 10, 6]
TYPES = ["direct_quote", "paraphrase", "inference"]
TYPE_WEIGHTS = [60, 25, 15]
MODELS = [("local", "qwen2.5-coder-0.5b-instruct"), ("local", "qwen2.5-coder-1.5b-instruct"), ("openai", "gpt-4o-mini")]
SOURCE_TYPES = ["book", "letter", "speech", "interview", "article"]
REVIEWERS = ["rita", "ramon", "admin"]
INSIGHTS = [
    "Shows persistence when a task is hard.",
    "Reveals how they weigh evidence before concluding.",
    "Suggests a habit of self-criticism.",
    "Describes a formative relationship.",
    "Indicates a long-held conviction.",
    "Illustrates the way they explain ideas to others.",
]
_SENTENCE = re.compile(r"[^.!?\n]{40,400}[.!?]")


def default_texts_dir() -> Path:
    """`$MMOS_SHARED_DIR/data/person_texts`, else `../shared/data/person_texts` beside the repo."""
    shared = Path(os.environ.get("MMOS_SHARED_DIR", REPO_ROOT.parent / "shared"))
    return shared / "data" / "person_texts"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count", type=int, default=50_000, help="fragments to write (default 50000)")
    p.add_argument("--texts-dir", type=Path, default=default_texts_dir(), help="folder of *.txt person texts")
    p.add_argument("--sources", type=int, default=40, help="sources to cut the texts into (default 40)")
    p.add_argument("--seed", type=int, default=20240601, help="random seed (default fixed)")
    p.add_argument("--fast-embeddings", action="store_true", help="random unit vectors instead of the ONNX embedder")
    p.add_argument("--embed-batch", type=int, default=64, help="texts per embedder call (default 64)")
    p.add_argument("--copy-rows", type=int, default=5_000, help="rows per COPY transaction (default 5000)")
    p.add_argument("--keep-index", action="store_true", help="keep the HNSW index during COPY (slower)")
    p.add_argument("--no-migrate", action="store_true", help="do not run `alembic upgrade head` first")
    return p.parse_args(argv)


def _phase(name: str, rows: int, started: float) -> None:
    took = time.perf_counter() - started
    rate = f"{rows / took:,.0f} rows/s" if took > 0 and rows else "-"
    print(f"{name:<22} {rows:>8,} rows  {took:8.2f} s  {rate}", flush=True)


def load_texts(texts_dir: Path) -> list[tuple[str, str]]:
    """(name, text) of every *.txt in `texts_dir`, sorted by name."""
    files = sorted(texts_dir.glob("*.txt"))
    if not files:
        raise SystemExit(f"no *.txt files in {texts_dir} (set --texts-dir or MMOS_SHARED_DIR)")
    return [(f.stem, f.read_text(encoding="utf-8", errors="replace")) for f in files]


def make_sources(session, texts: list[tuple[str, str]], n_sources: int, tag: str, rng: random.Random):
    """Cut the texts into `n_sources` parts (at paragraph breaks) and store each with `create_source`."""
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    per_text = max(1, n_sources // len(texts))
    made = []
    for name, text in texts:
        paragraphs = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
        step = max(1, -(-len(paragraphs) // per_text))
        for part in range(0, len(paragraphs), step):
            body = "\n\n".join(paragraphs[part:part + step])
            if len(body) < 2_000:
                continue
            header = f"[bench {tag}: {name} part {part // step + 1}]\n\n"
            source = create_source(
                session=session,
                parsed=parse_pasted(header + body, max_bytes=50_000_000),
                title=f"{name.replace('_', ' ').title()} (part {part // step + 1})",
                source_type=rng.choice(SOURCE_TYPES),
                quality=rng.choice(["primary", "primary", "secondary"]),
                extraction_priority=rng.choice(["HIGH", "MEDIUM", "LOW", "VERY_HIGH"]),
                person=name.split("_")[0].title(),
                created_by="bench",
            )
            made.append(source)
    return made


def make_batches(session, sources, tag: str, rng: random.Random) -> dict[int, list[int]]:
    """Three completed batches per source (one per model); returns source id -> batch ids."""
    from mmos_core.models import ProcessingBatch, SourceProcessing

    now = dt.datetime.now(dt.UTC)
    by_source: dict[int, list[int]] = {}
    for source in sources:
        for provider, model in MODELS:
            seconds = rng.uniform(20, 600)
            batch = ProcessingBatch(
                batch_code=f"BENCH_{tag}_{source.id}_{model}"[:64],
                model_provider=provider,
                model_name=model,
                prompt_version="bench",
                batch_status="completed",
                chunks_total=len(source.chunks),
                chunks_done=len(source.chunks),
                total_input_tokens=rng.randint(5_000, 200_000),
                total_output_tokens=rng.randint(1_000, 40_000),
                estimated_cost_usd=0 if provider == "local" else round(rng.uniform(0.001, 0.2), 6),
                started_at=now - dt.timedelta(seconds=seconds),
                completed_at=now,
                processing_duration_seconds=seconds,
                processor_name="bench",
            )
            session.add(batch)
            session.flush()
            session.add(SourceProcessing(source_id=source.id, batch_id=batch.id, processing_status="completed"))
            by_source.setdefault(source.id, []).append(batch.id)
    session.flush()
    return by_source


def plan_fragments(sources, batches: dict[int, list[int]], count: int, rng: random.Random) -> list[tuple]:
    """`count` fragment rows (without embeddings): real sentences of their source, random labels."""
    pools = []
    for source in sources:
        spans = []
        for m in _SENTENCE.finditer(source.content):  # trim so content == text[char_start:char_end]
            sentence = m.group()
            start = m.start() + len(sentence) - len(sentence.lstrip())
            end = m.end() - (len(sentence) - len(sentence.rstrip()))
            spans.append((start, end))
        starts = [c.char_start for c in source.chunks]
        if spans:
            pools.append((source, spans, starts))
    now = dt.datetime.now(dt.UTC)
    rows = []
    for _ in range(count):
        source, spans, starts = rng.choice(pools)
        start, end = rng.choice(spans)
        chunk = source.chunks[max(0, bisect.bisect_right(starts, start) - 1)]
        content = source.content[start:end]
        ftype = rng.choices(TYPES, TYPE_WEIGHTS)[0]
        state = rng.random()
        verified = state < 0.35
        rejected = 0.35 <= state < 0.45
        who = rng.choice(REVIEWERS) if verified or rejected else None
        when = now - dt.timedelta(minutes=rng.randint(1, 60 * 24 * 30)) if who else None
        rows.append((
            source.id, rng.choice(batches[source.id]), chunk.id,
            rng.choices(CATEGORIES, CATEGORY_WEIGHTS)[0], ftype, content,
            chunk.location_label, start, end,
            round(rng.uniform(85, 100), 2) if ftype == "direct_quote" else None,
            rng.choice(INSIGHTS) if ftype != "direct_quote" or rng.random() < 0.5 else None,
            rng.randint(1, 10), round(rng.betavariate(5, 2), 3),
            verified, who if verified else None, when if verified else None,
            rejected, who if rejected else None, when if rejected else None,
        ))
    return rows


def embed(texts: list[str], *, fast: bool, batch: int, seed: int) -> np.ndarray:
    """(len(texts), 384) float32 unit vectors: ONNX all-MiniLM-L6-v2, or random with `fast`."""
    from mmos_core.models import EMBEDDING_DIM

    if fast:
        vectors = np.random.default_rng(seed).standard_normal((len(texts), EMBEDDING_DIM)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    from mmos_core.embeddings.embedder import get_embedder

    embedder = get_embedder()
    out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
    for i in range(0, len(texts), batch):
        out[i:i + batch] = embedder.embed(texts[i:i + batch])
        if i and (i // batch) % 100 == 0:
            print(f"  embedded {i:,}/{len(texts):,}", flush=True)
    return out


COLUMNS = (
    "source_id, batch_id, chunk_id, category, fragment_type, content, location_in_source, char_start, "
    "char_end, location_score, insight, relevance, confidence, verified, verified_by, verified_at, "
    "rejected, rejected_by, rejected_at, embedding"
)
HNSW = (
    "CREATE INDEX IF NOT EXISTS idx_fragment_embedding ON fragments USING hnsw (embedding vector_cosine_ops) "
    "WITH (m = 16, ef_construction = 64)"
)


def copy_fragments(engine, rows: list[tuple], vectors: np.ndarray, chunk_rows: int) -> None:
    """COPY the rows (plus their vector as pgvector text) in transactions of `chunk_rows`."""
    for begin in range(0, len(rows), chunk_rows):
        with engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()
            with cursor.copy(f"COPY fragments ({COLUMNS}) FROM STDIN") as copy:
                for row, vector in zip(rows[begin:begin + chunk_rows], vectors[begin:begin + chunk_rows], strict=True):
                    copy.write_row((*row, "[" + ",".join(f"{v:.6g}" for v in vector.tolist()) + "]"))


# One staged call per (batch, chunk), spread over the last 30 days, so the dashboard's spend per day
# has data; the batch's cost and tokens are split evenly over its chunks.
CALLS_SQL = """
INSERT INTO extraction_calls (batch_id, chunk_id, attempt, status, input_tokens, output_tokens, cost_usd, duration_ms, created_at)
SELECT b.id, c.id, 1, 'ok', b.total_input_tokens / b.chunks_total, b.total_output_tokens / b.chunks_total,
       b.estimated_cost_usd / b.chunks_total, (b.processing_duration_seconds * 1000 / b.chunks_total)::int,
       now() - (random() * 30) * interval '1 day'
FROM processing_batches b
JOIN source_processing sp ON sp.batch_id = b.id
JOIN source_chunks c ON c.source_id = sp.source_id
WHERE b.batch_code LIKE :tag
"""

# model_performance as the worker writes it at completion (the core design section 4A).
PERFORMANCE_SQL = """
INSERT INTO model_performance (model_provider, model_name, source_id, batch_id, source_type, fragments_extracted,
    extraction_quality_avg, relevance_score_avg, confidence_avg, cost_usd, cost_per_fragment, tokens_per_fragment,
    time_per_fragment_seconds, located_share, malformed_share)
SELECT b.model_provider, b.model_name, s.id, b.id, s.source_type, COUNT(f.id),
       AVG(f.confidence) * 10, AVG(f.relevance), AVG(f.confidence), b.estimated_cost_usd,
       b.estimated_cost_usd / NULLIF(COUNT(f.id), 0), b.total_output_tokens::numeric / NULLIF(COUNT(f.id), 0),
       b.processing_duration_seconds / NULLIF(COUNT(f.id), 0),
       AVG(CASE WHEN f.fragment_type = 'direct_quote' THEN (f.location_score IS NOT NULL)::int END), 0
FROM processing_batches b
JOIN source_processing sp ON sp.batch_id = b.id
JOIN sources s ON s.id = sp.source_id
LEFT JOIN fragments f ON f.batch_id = b.id
WHERE b.batch_code LIKE :tag
GROUP BY b.id, s.id
"""


def main(argv: list[str] | None = None) -> None:
    """Seed the database; print per-phase rows/s and the total time."""
    args = _parse_args(argv)
    from sqlalchemy import func, select, text

    from mmos_core.core.config import get_settings
    from mmos_core.core.db import get_engine, session_scope
    from mmos_core.models import Fragment

    t0 = time.perf_counter()
    print(f"data dir {get_settings().data_dir.resolve()}  texts {args.texts_dir}  seed {args.seed}", flush=True)
    if not args.no_migrate:
        from mmos_core.core.migrate import upgrade

        upgrade("head")
    rng = random.Random(args.seed)
    tag = dt.datetime.now().strftime("%Y%m%d%H%M%S")

    t = time.perf_counter()
    with session_scope() as session:
        sources = make_sources(session, load_texts(args.texts_dir), args.sources, tag, rng)
        batches = make_batches(session, sources, tag, rng)
        chunks = sum(len(s.chunks) for s in sources)
        rows = plan_fragments(sources, batches, args.count, rng)
    _phase("sources + chunks", len(sources) + chunks, t)
    print(f"  {len(sources)} sources, {chunks} chunks, {sum(map(len, batches.values()))} batches")

    t = time.perf_counter()
    vectors = embed([r[5] for r in rows], fast=args.fast_embeddings, batch=args.embed_batch, seed=args.seed)
    _phase("embeddings" + (" (random)" if args.fast_embeddings else " (onnx)"), len(rows), t)

    engine = get_engine()
    if not args.keep_index:
        with engine.begin() as conn:
            conn.execute(text("DROP INDEX IF EXISTS idx_fragment_embedding"))
    t = time.perf_counter()
    try:
        copy_fragments(engine, rows, vectors, args.copy_rows)
        _phase("COPY fragments", len(rows), t)
    finally:
        if not args.keep_index:
            t = time.perf_counter()
            with engine.begin() as conn:
                conn.execute(text("SET maintenance_work_mem = '512MB'"))
                conn.execute(text(HNSW))
            with session_scope() as session:
                total = session.scalar(select(func.count()).select_from(Fragment))
            _phase("rebuild HNSW index", total, t)
    t = time.perf_counter()
    with engine.begin() as conn:
        calls = conn.execute(text(CALLS_SQL), {"tag": f"BENCH_{tag}_%"}).rowcount
        conn.execute(text(PERFORMANCE_SQL), {"tag": f"BENCH_{tag}_%"})
    _phase("extraction calls + performance", calls, t)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    took = time.perf_counter() - t0
    print(f"total {took:.1f} s: {len(rows):,} fragments at {len(rows) / took:,.0f} rows/s overall")


if __name__ == "__main__":
    main()
