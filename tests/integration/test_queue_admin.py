"""Queue management against the real embedded Postgres + Redis: retry, cancel, re-prioritise, list."""

from __future__ import annotations

import pytest
from fakes import chat_completion, quote_answer
from rq import SimpleWorker
from rq.job import Job
from sqlalchemy import func, select

from mmos_core.core.db import session_scope
from mmos_core.core.domain import RQ_QUEUES
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import get_queue
from mmos_core.jobs.rq_admin import cancel_job, job_statuses, list_workers
from mmos_core.models import ExtractionCall, Fragment, ProcessingBatch, ProcessingQueue
from mmos_core.services.batches import enqueue_batches, queue_extraction
from mmos_core.services.extraction_run import mark_attempt_failed
from mmos_core.services.queue_admin import (
    QueueActionError,
    cancel_queue_job,
    list_queue_jobs,
    move_batch_job,
    reprioritise_job,
    retry_job,
)
from mmos_core.services.sources import create_source
from mmos_core.text.intake import first_words, parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

SMALL = "qwen2.5-coder-0.5b-instruct"


def _source(text: str, *, words: int | None = None, priority: str = "HIGH", quality: str = "primary") -> tuple[int, int]:
    parsed = parse_pasted(text, max_bytes=5_000_000)
    if words:
        parsed = first_words(parsed, words)
    with session_scope() as session:
        src = create_source(
            session=session, parsed=parsed, title="Autobiography", person="Charles Darwin",
            source_type="book", quality=quality, extraction_priority=priority,
        )
        return src.id, len(src.chunks)


def _queue(source_id: int):
    with session_scope() as session:
        [job] = queue_extraction(session=session, source_id=source_id, model_names=[SMALL])
    enqueue_batches([job])
    return job


def _drain() -> None:
    SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)


def _passage_sentence(req: dict) -> str:
    passage = req["messages"][1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]
    flat = " ".join(passage.split())
    return flat[: flat.index(". ", 40) + 1] if ". " in flat[40:] else flat[:120]


def test_retry_of_a_failed_batch_resumes_and_completes(fake_llm, embedder_or_skip, darwin_text, monkeypatch):
    monkeypatch.setenv("MMOS_LLM_MAX_RETRIES", "1")
    monkeypatch.setenv("MMOS_JOB_MAX_ATTEMPTS", "1")
    from mmos_core.core.config import get_settings

    get_settings.cache_clear()
    source_id, n_chunks = _source(darwin_text, words=900)
    assert n_chunks >= 2
    state = {"outage": False}

    def respond(req):
        if state["outage"]:
            return 500, {"error": {"message": "provider down", "type": "server_error"}}
        state["outage"] = True  # the first chunk is answered, then the provider goes down
        return 200, chat_completion(quote_answer([_passage_sentence(req)]))

    fake_llm["respond"] = respond
    job = _queue(source_id)
    _drain()
    with session_scope() as session:
        [failed] = list_queue_jobs(session=session, statuses=["failed"])
        assert failed.batch_id == job.batch_id and failed.batch_status == "failed"
        assert "provider down" in failed.last_error
        assert failed.chunks_done == 1
    answered_before = len(fake_llm["requests"])

    state["outage"] = False
    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer([_passage_sentence(req)])))
    with session_scope() as session:
        retried = retry_job(session=session, queue_id=job.queue_id, by="alice")
    with session_scope() as session:
        [waiting] = list_queue_jobs(session=session, statuses=["waiting"])
        assert waiting.batch_status == "pending" and waiting.attempts == 0
        assert waiting.last_error.startswith("Retried by alice after:")
    enqueue_batches([retried])
    _drain()

    with session_scope() as session:
        batch = session.get(ProcessingBatch, job.batch_id)
        assert batch.batch_status == "completed" and batch.chunks_done == n_chunks
        assert session.scalar(select(func.count()).select_from(Fragment)) == n_chunks
        row = session.get(ProcessingQueue, job.queue_id)
        assert row.queue_status == "completed" and row.attempts == 1
        ok_calls = session.scalar(select(func.count()).select_from(ExtractionCall).where(ExtractionCall.status == "ok"))
        assert ok_calls == n_chunks
    # the staged first chunk was not asked again: only the chunks without an answer were sent
    assert len(fake_llm["requests"]) - answered_before == n_chunks - 1


def test_retry_refuses_a_job_that_has_not_failed():
    source_id, _ = _source("I was always fond of collecting things, shells and seals and coins.")
    job = _queue(source_id)
    with session_scope() as session, pytest.raises(QueueActionError, match="Only failed or cancelled"):
        retry_job(session=session, queue_id=job.queue_id, by="alice")


def test_cancelled_waiting_job_is_never_run(fake_llm):
    source_id, _ = _source("I was always fond of collecting things, shells and seals and coins.")
    job = _queue(source_id)
    assert job_statuses([job.rq_job_id]) == {job.rq_job_id: "queued"}
    with session_scope() as session:
        cancelled = cancel_queue_job(session=session, queue_id=job.queue_id, by="alice")
    assert cancel_job(cancelled.rq_job_id) == "cancelled"
    _drain()

    assert fake_llm["requests"] == []  # the model was never called
    assert job_statuses([job.rq_job_id])[job.rq_job_id] in ("canceled", "cancelled")
    with session_scope() as session:
        batch = session.get(ProcessingBatch, job.batch_id)
        assert batch.batch_status == "failed" and batch.error_message == "cancelled by alice"
        [row] = list_queue_jobs(session=session, statuses=["cancelled"])
        assert row.queue_id == job.queue_id and row.last_error == "cancelled by alice"
        assert session.scalar(select(func.count()).select_from(Fragment)) == 0
    # and a second cancel is refused
    with session_scope() as session, pytest.raises(QueueActionError, match="Only waiting or running"):
        cancel_queue_job(session=session, queue_id=job.queue_id, by="bob")


def test_job_picked_up_before_rq_cancel_still_skips(fake_llm):
    """A worker that takes the job between the commit and the RQ cancel finds the batch cancelled."""
    source_id, _ = _source("I was always fond of collecting things, shells and seals and coins.")
    job = _queue(source_id)
    with session_scope() as session:
        cancel_queue_job(session=session, queue_id=job.queue_id, by="alice")
    _drain()  # RQ still had the job
    assert fake_llm["requests"] == []
    assert Job.fetch(job.rq_job_id, connection=get_redis()).return_value()["skipped"].endswith("already failed.")
    with session_scope() as session:
        assert session.get(ProcessingQueue, job.queue_id).queue_status == "cancelled"
        assert session.get(ProcessingBatch, job.batch_id).error_message == "cancelled by alice"


def test_reprioritise_moves_the_waiting_job_to_the_high_queue():
    # MEDIUM (4) × primary (2) = 8 → 'default'
    source_id, _ = _source("My father was a man of great kindness.", priority="MEDIUM")
    job = _queue(source_id)
    assert job.rq_queue == "default"
    assert job.rq_job_id in get_queue("default").job_ids

    with session_scope() as session:
        result = reprioritise_job(session=session, queue_id=job.queue_id, priority=9, by="alice")
    assert result.effective_priority == 18 and result.rq_queue == "high"
    assert move_batch_job(result.move) is True

    assert job.rq_job_id in get_queue("high").job_ids
    assert job.rq_job_id not in get_queue("default").job_ids
    with session_scope() as session:
        [row] = list_queue_jobs(session=session, statuses=["waiting"])
        assert (row.priority, row.effective_priority, row.rq_queue) == (9, 18.0, "high")
        assert "priority 4 → 9 by alice" in row.last_error

    with session_scope() as session, pytest.raises(QueueActionError):
        reprioritise_job(session=session, queue_id=job.queue_id, priority=11, by="alice")


def test_reprioritise_of_a_failed_job_changes_numbers_only():
    source_id, _ = _source("My father was a man of great kindness.", priority="MEDIUM", quality="secondary")
    job = _queue(source_id)
    with session_scope() as session:
        mark_attempt_failed(session=session, batch_id=job.batch_id, error="boom", retry_at=None)
    with session_scope() as session:
        result = reprioritise_job(session=session, queue_id=job.queue_id, priority=2, by="alice")
    assert result.move is None and result.effective_priority == 3.0  # 2 × secondary (1.5)


def test_lists_order_waiting_by_effective_priority_and_workers_are_empty():
    low, _ = _source("Some words about barnacles and patience.", priority="LOW")
    high, _ = _source("Some other words about pigeons and breeding.", priority="CRITICAL")
    first = _queue(low)
    second = _queue(high)
    with session_scope() as session:
        rows = list_queue_jobs(session=session)
    assert [r.queue_id for r in rows] == [second.queue_id, first.queue_id]
    assert [r.effective_priority for r in rows] == [20.0, 4.0]
    assert list_workers() == []
