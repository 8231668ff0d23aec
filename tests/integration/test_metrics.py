"""`mmos prometheus serve` scraped over real HTTP: batches, fragments, LLM calls, tokens, cost, latency, queues,
workers and the budget, as recorded in PostgreSQL and Redis (services/metrics.py, docs/deploy.md "Metrics")."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from mmos_core.core.db import session_scope
from mmos_core.models import Budget, ExtractionCall, ProcessingBatch, SourceChunk
from mmos_core.services.batches import enqueue_batches, queue_extraction
from mmos_core.services.budgets import DAILY_BUDGET
from mmos_core.services.metrics import build_registry
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

REPO = Path(__file__).resolve().parents[2]
MODELS = ["gpt-4o-mini", "claude-haiku-4-5"]


def _populate() -> None:
    """Two pending batches (queued in RQ), three recorded calls on the first, a $2 daily cap."""
    with session_scope() as s:
        parsed = parse_pasted("Recollections of my mind and character. " * 30, max_bytes=1_000_000)
        src = create_source(session=s, parsed=parsed, title="Autobiography", source_type="book", quality="primary",
                            extraction_priority="HIGH", person="Charles Darwin")
        jobs = queue_extraction(session=s, source_id=src.id, model_names=MODELS)
        enqueue_batches(jobs, session=s)
        batch = s.get(ProcessingBatch, jobs[0].batch_id)
        chunk = s.scalars(select(SourceChunk.id).where(SourceChunk.source_id == src.id)).first()
        now = dt.datetime.now(dt.UTC)
        for status, ms, tin, tout, usd in (("ok", 800, 1000, 200, "0.25"), ("ok", 3500, 1200, 300, "0.50"),
                                           ("provider_error", 45_000, 0, 0, "0")):
            s.add(ExtractionCall(batch_id=batch.id, chunk_id=chunk, status=status, duration_ms=ms, input_tokens=tin,
                                 output_tokens=tout, cost_usd=Decimal(usd), created_at=now))
        s.add(Budget(name=DAILY_BUDGET, daily_limit_usd=Decimal("2")))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(url: str, deadline_s: float = 60) -> str:
    end = time.monotonic() + deadline_s
    while True:
        try:
            resp = httpx.get(url, timeout=10)
            resp.raise_for_status()
            return resp.text
        except httpx.HTTPError:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_serve_exposes_the_recorded_figures_over_http(services, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test-not-a-real-key")
    _populate()
    port = _free_port()
    env = {**os.environ, "MMOS_LOG_JSON": "true"}
    proc = subprocess.Popen([sys.executable, "-m", "mmos_core.cli.app", "prometheus", "serve", "--port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        body = _scrape(f"http://127.0.0.1:{port}/metrics")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert "sk-test-not-a-real-key" not in out + err
    m = _samples(body)

    def v(name: str, **labels: str) -> float:
        return m[(name, frozenset(labels.items()))]

    first, second = MODELS
    assert v("mmos_up", component="postgres") == 1 and v("mmos_up", component="redis") == 1
    assert v("mmos_batches", model=first, status="pending") == 1
    assert v("mmos_batches", model=second, status="pending") == 1
    assert ("mmos_fragments", frozenset({("model", first)})) not in m  # nothing published yet
    assert v("mmos_llm_calls_total", model=first, status="ok") == 2
    assert v("mmos_llm_calls_total", model=first, status="provider_error") == 1
    assert v("mmos_llm_call_errors_total", model=first) == 1
    assert v("mmos_llm_tokens_total", model=first, direction="input") == 2200
    assert v("mmos_llm_tokens_total", model=first, direction="output") == 500
    assert v("mmos_llm_cost_usd_total", model=first) == pytest.approx(0.75)
    assert v("mmos_llm_call_duration_seconds_bucket", model=first, le="1.0") == 1
    assert v("mmos_llm_call_duration_seconds_bucket", model=first, le="5.0") == 2
    assert v("mmos_llm_call_duration_seconds_bucket", model=first, le="+Inf") == 3
    assert v("mmos_llm_call_duration_seconds_count", model=first) == 3
    assert v("mmos_llm_call_duration_seconds_sum", model=first) == pytest.approx(49.3)
    assert sum(v("mmos_rq_queue_depth", queue=q) for q in ("high", "default", "low")) == 2
    assert v("mmos_rq_workers", state="all") == 0
    assert v("mmos_budget_spent_today_usd") == pytest.approx(0.75)
    assert v("mmos_budget_daily_limit_usd") == 2
    assert v("mmos_budget_used_ratio") == pytest.approx(0.375)


def test_a_component_that_fails_is_reported_down_not_fatal(services):
    def broken_scope():
        raise RuntimeError("database is down (password=never-logged)")

    from prometheus_client import generate_latest

    from mmos_core.core.redis import get_redis

    text = generate_latest(build_registry(session_scope=broken_scope, redis_connection=get_redis)).decode()
    m = _samples(text)
    assert m[("mmos_up", frozenset({("component", "postgres")}))] == 0
    assert m[("mmos_up", frozenset({("component", "redis")}))] == 1
    assert not any(name == "mmos_batches" for name, _ in m)
