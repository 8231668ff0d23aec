"""RQ job: run one extraction batch (all chunks of its source through its model), then publish it.

Declared as `jobs.catalog.EXTRACT_BATCH` (job timeout, `Retry`, failure callback); each chunk's answer is
committed as soon as it arrives, so a retry (after a crash, a kill or a provider outage) resumes
where the last attempt stopped and never re-pays for finished chunks.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from rq import get_current_job
from sqlalchemy import select

from mmos_core.core.config import get_settings
from mmos_core.core.db import session_scope
from mmos_core.llm.catalog import get_model
from mmos_core.llm.extraction import ProviderError, build_messages, extract_chunk
from mmos_core.models import SourceProcessing
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.budget_guard import (
    BudgetExceeded,
    FragmentCostExceeded,
    release,
    reserve_with_wait,
    settle,
    worst_case_call_cost,
)
from mmos_core.services.extraction_run import (
    BatchNotRunnable,
    check_batch_fragment_cost,
    finalize_batch,
    mark_attempt_failed,
    record_call,
    record_provider_error,
    start_attempt,
)
from mmos_core.services.inference_log import log_grounding_for_batch
from mmos_core.services.model_registry import cached_registry_embedder, default_model
from mmos_core.services.optimizer import advance_after_batch
from mmos_core.services.quality import recompute_source
from mmos_core.services.webhooks import after_batch_finished, emit

log = logging.getLogger(__name__)


def run_extraction(batch_id: int) -> dict[str, Any]:
    """Extract fragments for batch `batch_id`.

    Returns:
        {"batch_id", "fragments", "duration_s"} when the batch completed; {"skipped": reason} when
        it was already finished.
    Raises:
        ProviderError: a chunk's provider call failed after its retries (RQ retries the job).
        mmos_core.embeddings.embedder.EmbedderUnavailable: the embedding model is not provisioned.
    """

    job = get_current_job()
    worker_name = job.worker_name if job is not None else None
    try:
        with session_scope() as session:
            plan = start_attempt(session=session, batch_id=batch_id, worker_name=worker_name)
    except BatchNotRunnable as exc:
        log.info("batch %s skipped: %s", batch_id, exc)
        return {"skipped": str(exc)}

    spec = get_model(plan.model_name)
    settings = get_settings()
    embedder = cached_registry_embedder()  # fail before paying for any call if embeddings are unavailable
    for chunk in plan.pending:
        messages = build_messages(chunk_text=chunk.text, title=plan.title, person=plan.person, source_type=plan.source_type)
        worst = worst_case_call_cost(
            spec=spec, prices=plan.prices, messages=messages, max_tokens=settings.llm_max_output_tokens
        )
        try:
            reservation = reserve_with_wait(
                session_factory=session_scope, amount_usd=worst, model_name=spec.name,
                batch_id=batch_id, chunk_id=chunk.chunk_id,
            )
        except BudgetExceeded:
            _no_more_retries(job)  # retrying within minutes cannot help; the analyst retries later
            raise
        try:
            result = extract_chunk(
                spec,
                chunk_text=chunk.text,
                title=plan.title,
                person=plan.person,
                source_type=plan.source_type,
            )
        except ProviderError as exc:
            with session_scope() as session:
                record_provider_error(session=session, plan=plan, chunk_id=chunk.chunk_id, error=exc)
                release(session=session, reservation=reservation)
            if not exc.retryable:
                _no_more_retries(job)  # a bad key or unknown model will not fix itself
            raise
        except BaseException:
            with session_scope() as session:
                release(session=session, reservation=reservation)
            raise
        with session_scope() as session:
            cost = record_call(session=session, plan=plan, chunk_id=chunk.chunk_id, result=result)
            settle(session=session, reservation=reservation, cost_usd=cost)
        try:
            with session_scope() as session:
                check_batch_fragment_cost(session=session, batch_id=batch_id)
        except FragmentCostExceeded:
            _no_more_retries(job)
            raise

    try:
        with session_scope() as session:
            done = finalize_batch(session=session, batch_id=batch_id, embed=embedder.embed)
    except BatchNotRunnable as exc:
        return {"skipped": str(exc)}
    _audit_grounding(batch_id, embedder.embed)
    _score_and_optimize(batch_id, embedder.embed)
    _emit_webhooks(batch_id)
    return {"batch_id": batch_id, "fragments": done.fragments, "duration_s": done.duration_s}


def _no_more_retries(job) -> None:
    if job is not None:
        job.retries_left = 0
        job.save()


def _emit_webhooks(batch_id: int) -> None:
    """batch.completed, and source.processed / queue.empty when they apply (seed 000); never fails the job."""

    try:
        with session_scope() as session:
            after_batch_finished(session=session, batch_id=batch_id)
    except Exception:
        log.exception("webhooks of batch %s failed", batch_id)


def _score_and_optimize(batch_id: int, embed) -> None:
    """After a batch finished: store measured quality for every batch on its source (a new batch can
    change the agreement reference), then let an optimization run that owns the batch take its next
    step (escalate, fall back, or settle — `model.optimized`). Own transactions; never fails the job."""

    try:
        with session_scope() as session:
            for source_id in session.scalars(select(SourceProcessing.source_id).where(SourceProcessing.batch_id == batch_id)):
                recompute_source(session=session, source_id=source_id, embed=embed)
    except Exception:
        log.exception("quality of batch %s could not be recorded", batch_id)
    try:
        with session_scope() as session:
            jobs, optimized = advance_after_batch(session=session, batch_id=batch_id, embed=embed)
            enqueue_batches(jobs, session=session)
        if optimized:
            emit("model.optimized", optimized)
    except Exception:
        log.exception("optimization step after batch %s failed", batch_id)


def _audit_grounding(batch_id: int, embed) -> None:
    """Log each new fragment's grounding in asi_inferences (seed 003), after the batch is published.

    Its own transaction: the audit trail can fail (and is retried by nobody) without touching the
    batch, which is already complete.
    """

    try:
        with session_scope() as session:
            model = default_model(session=session)
            log_grounding_for_batch(
                session=session, batch_id=batch_id, embed=embed, model_id=model.id if model else None
            )
    except Exception:
        log.exception("grounding audit of batch %s failed", batch_id)


def on_extraction_failure(job, connection, exc_type, exc_value, tb) -> None:
    """RQ failure callback (also called for abandoned jobs): mirror the outcome into Postgres.

    RQ calls it before it decides on a retry, so `job.retries_left` still counts this one.
    """
    batch_id = int(job.args[0])
    error = f"{exc_type.__name__}: {exc_value}" if exc_type is not None else "job failed"
    retry_at = None
    if (job.retries_left or 0) > 0:
        retry_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=job.get_retry_interval())
    with session_scope() as session:
        mark_attempt_failed(session=session, batch_id=batch_id, error=error, retry_at=retry_at)
    if retry_at is None:  # a final failure can finish the source, empty the queue, or need a fallback model
        _score_and_optimize(batch_id, None)
        _emit_webhooks(batch_id)
