"""Every LLM call of an extraction batch leaves an ai_logs row (provider faked at its HTTP edge)."""

from __future__ import annotations

import json

import pytest
from fakes import chat_completion
from rq import SimpleWorker
from sqlalchemy import select

from mmos_core.core.db import session_scope
from mmos_core.core.domain import RQ_QUEUES
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import get_queue
from mmos_core.models import ExtractionCall
from mmos_core.models.catalog import AiLog, AiModel
from mmos_core.services.batches import enqueue_batches, queue_extraction
from mmos_core.services.catalog.ai_logs import log_call, recent_logs
from mmos_core.services.catalog.sync import sync_catalog
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

SMALL = "qwen2.5-coder-0.5b-instruct"
TEXT = "My father was a man of great kindness.\n\nHe was also very tall and observant.\n\n" * 80


def _source() -> int:
    with session_scope() as session:
        return create_source(
            session=session, parsed=parse_pasted(TEXT, max_bytes=1_000_000), title="Notes", person="C. D.",
            source_type="letter", quality="primary", extraction_priority="HIGH",
        ).id


def _drain() -> None:
    SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)


def test_each_extraction_call_gets_an_ai_logs_row(fake_llm, embedder_or_skip):
    with session_scope() as session:
        sync_catalog(session=session, model_cost={}, price_source="test")  # local models + categories
    calls = {"n": 0}

    def respond(req):
        calls["n"] += 1
        if calls["n"] == 1:
            return 200, chat_completion('{"fragments": [', prompt_tokens=200, completion_tokens=7)  # malformed
        return 200, chat_completion(json.dumps({"fragments": []}), prompt_tokens=150, completion_tokens=20)

    fake_llm["respond"] = respond
    source_id = _source()
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as session:
        staged = session.scalars(select(ExtractionCall).order_by(ExtractionCall.id)).all()
        logs = session.scalars(select(AiLog).order_by(AiLog.id)).all()
        model_pk = session.scalar(select(AiModel.id).where(AiModel.model_id == SMALL))
        listed = recent_logs(session=session, limit=5)
    assert len(staged) >= 2 and len(logs) == len(staged)
    for call, log in zip(staged, logs, strict=True):
        assert (log.chunk_id, log.batch_id, log.status) == (call.chunk_id, jobs[0].batch_id, call.status)
        assert (log.input_tokens, log.output_tokens, log.latency_ms) == (call.input_tokens, call.output_tokens, call.duration_ms)
        assert log.cost_usd == call.cost_usd == 0
    first = logs[0]
    assert first.status == "malformed" and first.error and first.input_tokens == 200
    assert {l.status for l in logs[1:]} == {"ok"}
    assert all(
        (l.model_name, l.model_id, l.provider, l.category_key) == (SMALL, model_pk, "local", "fragment_extraction")
        for l in logs
    )
    # a person picked the model when queueing; the task columns come from the category's defaults
    assert all((l.selected_by, l.task_priority, l.task_complexity) == ("user_override", "quality", "moderate") for l in logs)
    assert listed[0].model_name == SMALL and len(listed) == min(5, len(logs))


def test_a_provider_failure_is_logged_too(fake_llm, embedder_or_skip, monkeypatch):
    monkeypatch.setenv("MMOS_LLM_MAX_RETRIES", "1")
    monkeypatch.setenv("MMOS_JOB_MAX_ATTEMPTS", "1")
    from mmos_core.core.config import get_settings

    get_settings.cache_clear()
    fake_llm["respond"] = lambda req: (500, {"error": {"message": "boom", "type": "server_error"}})
    source_id = _source()
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as session:
        log = session.scalar(select(AiLog))
    # the catalog was never synced: the row is written all the same, without model id or task defaults
    assert log.status == "provider_error" and "boom" in log.error and log.model_id is None
    assert (log.model_name, log.batch_id, log.input_tokens, log.cost_usd) == (SMALL, jobs[0].batch_id, 0, 0)


def test_fallback_calls_and_bad_values():
    with session_scope() as session:
        sync_catalog(session=session, model_cost={}, price_source="test")
        row = log_call(session=session, model_name=SMALL, category_key="conversation_turn", status="ok",
                       selected_by="fallback", selection_confidence=0.734, priority="speed")
        session.flush()
        assert (row.selected_by, float(row.confidence_score), row.task_priority, row.task_complexity) == (
            "fallback", 0.73, "speed", "moderate")
        for bad in ({"selected_by": "magic"}, {"status": "fine"}, {"selection_confidence": 1.5}, {"priority": "urgent"}):
            kwargs = {"selected_by": "auto", "status": "ok", **bad}
            with pytest.raises(ValueError):
                log_call(session=session, model_name=SMALL, category_key=None, **kwargs)
    with session_scope() as session:
        assert [r.selected_by for r in recent_logs(session=session, selected_by="fallback")] == ["fallback"]


def test_a_batch_queued_as_fallback_logs_its_calls_as_fallback(fake_llm, embedder_or_skip):
    with session_scope() as session:
        sync_catalog(session=session, model_cost={}, price_source="test")
    source_id = _source()
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL], selected_by="fallback",
                                selection_confidence=0.62)
    enqueue_batches(jobs)
    _drain()
    with session_scope() as session:
        logs = session.scalars(select(AiLog)).all()
    assert logs and {(l.selected_by, float(l.confidence_score)) for l in logs} == {("fallback", 0.62)}
