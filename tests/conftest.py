"""Shared fixtures: a real embedded PostgreSQL + pgvector and Redis in a temporary data dir,
migrated with Alembic, and a fake OpenAI-compatible provider at the HTTP edge."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# The LLM judge runs as its own job after every completed batch; tests of other behaviour would then wait
# on a judge model that is not served. Tests of judging turn it on themselves (tests/integration/test_judging.py).
os.environ.setdefault("MMOS_JUDGE_ENABLED", "false")


def shared_dir() -> Path:
    """`../shared` beside the repo (or MMOS_SHARED_DIR)."""
    return Path(os.environ.get("MMOS_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def darwin_text() -> str:
    """Darwin's autobiography from ../shared/data (skips when the folder is absent)."""
    path = shared_dir() / "data" / "person_texts" / "darwin_autobiography.txt"
    if not path.exists():
        pytest.skip(f"{path} not found: the shared data folder is absent")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Embedded PostgreSQL + Redis for the whole test session, schema at Alembic head."""
    data_dir = tmp_path_factory.mktemp("mmosdata")
    # Run as root, the embedded PostgreSQL runs as its own unprivileged user, which must be able to
    # traverse pytest's temp folders (created 0700, and reset so by every new pytest session).
    for folder in (data_dir, *data_dir.parents):
        if folder == Path(tempfile.gettempdir()) or not str(folder).startswith(tempfile.gettempdir()):
            break
        folder.chmod(folder.stat().st_mode | 0o011)
    saved = {k: os.environ.get(k) for k in ("MMOS_DATA_DIR", "DATABASE_URL", "REDIS_URL")}
    os.environ["MMOS_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("REDIS_URL", None)
    from mmos_core.core import db, embedded
    from mmos_core.core.config import get_settings
    from mmos_core.core.migrate import upgrade

    get_settings.cache_clear()
    db.reset()
    urls = {"database_url": embedded.database_url(), "redis_url": embedded.redis_url()}
    upgrade("head")
    yield urls
    db.reset()
    from mmos_core.core.redis import get_redis

    get_redis.cache_clear()
    embedded.stop_redis()
    embedded.stop_postgres()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    get_settings.cache_clear()


@pytest.fixture()
def clean_db(services: dict[str, str]) -> Iterator[None]:
    """Empty tables and Redis before a test (the schema stays)."""
    from sqlalchemy import text

    from mmos_core.core.db import get_engine
    from mmos_core.core.redis import get_redis

    with get_engine().begin() as conn:
        # every table of ours (new migrations need no edit here); alembic_version keeps the schema's revision
        tables = conn.execute(
            text("SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
        ).scalar_one()
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        # the fragment-code sequences belong to no column, so TRUNCATE does not restart them
        for (seq,) in conn.execute(text("SELECT sequencename FROM pg_sequences WHERE sequencename LIKE 'fragment_code_seq_%'")):
            conn.execute(text(f"ALTER SEQUENCE {seq} RESTART"))
    get_redis().flushdb()
    # the confidence lake is append-only files beside the database: empty it too, so a test that counts
    # lake entries does not see another test's grounding audits
    import shutil

    from mmos_core.storage.lake import lake_dir

    shutil.rmtree(lake_dir(), ignore_errors=True)
    yield


@pytest.fixture()
def fake_llm(httpserver, monkeypatch) -> Iterator[dict]:
    """Point the local-model endpoint (and OPENAI_API_BASE) at a fake OpenAI-compatible server.

    Yields a dict: set `respond` to a callable (request_json) -> (status, body dict | str) to
    script answers; `requests` collects every request body received.
    """
    from fakes import chat_completion
    from werkzeug import Response

    from mmos_core.core.config import get_settings

    state: dict = {"requests": []}

    def default(req: dict):
        return 200, chat_completion(json.dumps({"fragments": []}))

    state["respond"] = default

    def handler(request):
        body = request.get_json()
        state["requests"].append(body)
        status, payload = state["respond"](body)
        text = payload if isinstance(payload, str) else json.dumps(payload)
        return Response(text, status=status, content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
    monkeypatch.setenv("MMOS_LLM_PORT", str(httpserver.port))
    monkeypatch.setenv("MMOS_LLM_HOST", "127.0.0.1")
    monkeypatch.setenv("MMOS_LLM_MAX_RETRIES", "3")
    # pytest-httpserver answers one request at a time, like a one-slot server: local batches keep one call
    # in flight, so scripted answers ("the first call is malformed") meet the chunks in order. Tests of
    # concurrency set MMOS_LLM_SLOTS / MMOS_LLM_CONCURRENCY themselves (test_concurrent_extraction.py).
    monkeypatch.setenv("MMOS_LLM_SLOTS", "1")
    monkeypatch.setenv("OPENAI_API_BASE", f"http://127.0.0.1:{httpserver.port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    get_settings.cache_clear()
    yield state
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def embedder_or_skip():
    """The provisioned ONNX embedder, or a skip that says how to provision it."""
    from mmos_core.embeddings.embedder import EmbedderUnavailable, get_embedder

    try:
        return get_embedder()
    except EmbedderUnavailable as exc:
        if os.environ.get("MMOS_REQUIRE_MODELS"):
            pytest.fail(f"MMOS_REQUIRE_MODELS is set but the embedder is unavailable: {exc}")
        pytest.skip(f"embedding model not provisioned ({exc}); run `mmos models provision`")


