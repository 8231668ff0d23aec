"""Webhooks (docs/webhooks.md): enqueued on the real embedded Redis, delivered by an RQ worker to a
real HTTP receiver (pytest-httpserver), HMAC-signed, retried on non-2xx."""

from __future__ import annotations

import json
import time

import pytest
from rq import SimpleWorker
from rq.job import JobStatus
from werkzeug import Response

from mmos_core.core.config import get_settings
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import get_queue
from mmos_core.services.webhooks import WEBHOOK_QUEUE, emit, sign, verify_signature

SECRET = "whsec-test"


@pytest.fixture()
def hooks_on(clean_db, httpserver, monkeypatch):
    monkeypatch.setenv("MMOS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("MMOS_WEBHOOK_URLS", httpserver.url_for("/hook"))
    get_settings.cache_clear()
    yield httpserver
    get_settings.cache_clear()


def _drain() -> None:
    queue = get_queue(WEBHOOK_QUEUE)
    SimpleWorker([queue], connection=get_redis()).work(burst=True)


def test_emit_delivers_signed_json(hooks_on):
    hooks_on.expect_request("/hook", method="POST").respond_with_data("ok", status=200)
    jobs = emit("batch.completed", {"batch_id": 7, "cost_usd": "0.001200"})
    assert len(jobs) == 1
    assert jobs[0].origin == "low"
    assert jobs[0].timeout == 30
    _drain()

    assert len(hooks_on.log) == 1
    request, response = hooks_on.log[0]
    assert response.status_code == 200
    raw = request.get_data()
    body = json.loads(raw)
    assert body["event"] == "batch.completed"
    assert body["data"] == {"batch_id": 7, "cost_usd": "0.001200"}
    assert request.headers["X-MMOS-Event"] == "batch.completed"
    assert request.headers["Content-Type"] == "application/json"
    assert len(request.headers["X-MMOS-Delivery"]) == 36
    ts = request.headers["X-MMOS-Timestamp"]
    sig = request.headers["X-MMOS-Signature"]
    assert sig.startswith("sha256=")
    assert verify_signature(SECRET, ts, raw, sig)
    assert not verify_signature("other-secret", ts, raw, sig)
    assert not verify_signature(SECRET, ts, raw + b" ", sig)
    assert jobs[0].get_status(refresh=True) == JobStatus.FINISHED


def test_failed_delivery_is_scheduled_for_retry(hooks_on):
    hooks_on.expect_request("/hook", method="POST").respond_with_data("boom", status=500)
    (job,) = emit("queue.empty", {"last_batch_id": 1})
    assert job.retries_left == 5
    assert job.retry_intervals == [10, 30, 60, 300, 900]
    _drain()
    job.refresh()
    assert job.get_status(refresh=True) == JobStatus.SCHEDULED
    assert job.retries_left == 4
    assert len(hooks_on.log) == 1


def test_500_then_200_is_retried_until_delivered(hooks_on):
    answers = iter([500, 200])
    deliveries: list[str] = []

    def handler(request):
        deliveries.append(request.headers["X-MMOS-Delivery"])
        assert verify_signature(SECRET, request.headers["X-MMOS-Timestamp"], request.get_data(), request.headers["X-MMOS-Signature"])
        return Response("x", status=next(answers))

    hooks_on.expect_request("/hook", method="POST").respond_with_handler(handler)
    (job,) = emit("source.processed", {"source_id": 3}, retry_intervals=[0])
    _drain()
    assert len(deliveries) == 2
    assert deliveries[0] == deliveries[1], "a retry keeps its delivery id so receivers can dedupe"
    job.refresh()
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert job.retries_left == 4


@pytest.mark.parametrize(
    ("urls", "secret"),
    [("", ""), ("http://127.0.0.1:9/hook", ""), ("", SECRET), (" , ", SECRET)],
    ids=["nothing", "urls-without-secret", "secret-without-urls", "blank-urls"],
)
def test_off_without_urls_or_secret(clean_db, monkeypatch, urls, secret):
    monkeypatch.setenv("MMOS_WEBHOOK_URLS", urls)
    monkeypatch.setenv("MMOS_WEBHOOK_SECRET", secret)
    get_settings.cache_clear()
    try:
        assert emit("batch.completed", {"batch_id": 1}) == []
        assert get_queue(WEBHOOK_QUEUE).count == 0
    finally:
        get_settings.cache_clear()


def test_unknown_event_rejected(hooks_on):
    with pytest.raises(ValueError):
        emit("batch.exploded", {})


def test_one_job_per_url(clean_db, httpserver, monkeypatch):
    monkeypatch.setenv("MMOS_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("MMOS_WEBHOOK_URLS", f"{httpserver.url_for('/a')},{httpserver.url_for('/b')}")
    get_settings.cache_clear()
    httpserver.expect_request("/a", method="POST").respond_with_data("ok")
    httpserver.expect_request("/b", method="POST").respond_with_data("ok")
    try:
        assert len(emit("model.optimized", {"source_type": "book", "model_name": "gpt-4o-mini"})) == 2
        _drain()
        assert sorted(r.path for r, _ in httpserver.log) == ["/a", "/b"]
    finally:
        get_settings.cache_clear()


def test_verify_signature_rejects_stale_and_malformed():
    body = b'{"event":"queue.empty"}'
    now = int(time.time())
    good = sign(SECRET, now, body)
    assert verify_signature(SECRET, now, body, good)
    assert verify_signature(SECRET, str(now), body.decode(), good)
    assert not verify_signature(SECRET, now - 3600, body, sign(SECRET, now - 3600, body))
    assert verify_signature(SECRET, now - 3600, body, sign(SECRET, now - 3600, body), max_age_s=None)
    assert not verify_signature(SECRET, "soon", body, good)
    assert not verify_signature(SECRET, now, body, good.removeprefix("sha256="))
    assert not verify_signature("", now, body, good)
    assert not verify_signature(SECRET, now, body, None)


def test_after_batch_finished_emits_batch_source_and_queue_events(hooks_on):
    from sqlalchemy import select

    from mmos_core.core.db import session_scope
    from mmos_core.llm.catalog import local_models
    from mmos_core.models import ProcessingBatch, ProcessingQueue
    from mmos_core.services.batches import queue_extraction
    from mmos_core.services.sources import create_source
    from mmos_core.services.webhooks import after_batch_finished
    from mmos_core.text.intake import parse_pasted

    hooks_on.expect_request("/hook", method="POST").respond_with_data("ok")
    with session_scope() as session:
        src = create_source(
            session=session, parsed=parse_pasted("I was born at Shrewsbury in 1809.\n\nMy father was a doctor.", max_bytes=10_000),
            title="Autobiography", person="Charles Darwin", source_type="book", quality="primary", extraction_priority="HIGH",
        )
        names = [m.name for m in local_models()]
        jobs = queue_extraction(session=session, source_id=src.id, model_names=names)
        source_id = src.id
    first, second = (j.batch_id for j in jobs)

    def finish(batch_id: int, status: str) -> list[str]:
        with session_scope() as session:
            session.get(ProcessingBatch, batch_id).batch_status = status
            row = session.scalars(select(ProcessingQueue).where(ProcessingQueue.batch_id == batch_id)).one()
            row.queue_status = status
        with session_scope() as session:
            return after_batch_finished(session=session, batch_id=batch_id)

    assert finish(first, "completed") == ["batch.completed"]  # the other batch is still waiting
    assert finish(second, "failed") == ["source.processed", "queue.empty"]
    _drain()
    events = [json.loads(r.get_data()) for r, _ in hooks_on.log]
    assert [e["event"] for e in events] == ["batch.completed", "source.processed", "queue.empty"]
    assert events[0]["data"]["batch_id"] == first and events[0]["data"]["source_ids"] == [source_id]
    assert {b["status"] for b in events[1]["data"]["batches"]} == {"completed", "failed"}
