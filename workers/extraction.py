"""RQ job: run one extraction batch (all chunks of its source through its model), then publish it.

Declared as `jobs.catalog.EXTRACT_BATCH` (job timeout, `Retry`, failure callback). Up to
`concurrency_for(model)` chunk calls are in flight at once (a thread pool inside the job, each thread
with its own `session_scope()`), paced by the model's per-minute limits shared by all workers
(docs/throughput.md). Every call reserves its worst-case cost first and settles it in the transaction
that commits its answer (docs/quality.md, "Budgets that hold"), so a retry (after a crash, a kill or a
provider outage) resumes where the last attempt stopped and never re-pays for an answered chunk.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from rq import get_current_job
from sqlalchemy import select

from mmos_core.core.config import Settings, get_settings
from mmos_core.core.db import session_scope
from mmos_core.llm.catalog import ModelSpec, get_model, litellm
from mmos_core.llm.extraction import PROMPT_VERSION, ProviderError, build_messages, extract_chunk
from mmos_core.llm.rate_limits import ProviderLimits, RateLimited, concurrency_for
from mmos_core.models import Fragment, SourceProcessing
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.budget_guard import (
    BudgetExceeded,
    FragmentCostExceeded,
    Reservation,
    release,
    reserve_with_wait,
    settle,
    worst_case_call_cost,
)
from mmos_core.services.checks import check_fragments
from mmos_core.services.extraction_run import (
    BatchNotRunnable,
    BatchPlan,
    PendingChunk,
    check_batch_fragment_cost,
    finalize_batch,
    mark_attempt_failed,
    record_call,
    record_provider_error,
    start_attempt,
)
from mmos_core.services.inference_log import log_grounding_for_batch
from mmos_core.services.judging import enqueue_judging
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
        ProviderError: a chunk's provider call failed after its retries (RQ retries the job), or stayed
            rate-limited (429) longer than `llm_rate_limit_max_wait_s`.
        BudgetExceeded, FragmentCostExceeded: a budget rule stopped the batch (no RQ retry).
        mmos_core.embeddings.embedder.EmbedderUnavailable: the embedding model is not provisioned.
    When one chunk fails, no further chunk starts; the calls already in flight finish and are committed
    before the error is raised.
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
    run = _BatchRun(plan=plan, spec=spec, settings=settings,
                    limits=ProviderLimits.for_model(model_name=spec.name, provider=spec.provider, settings=settings))
    error = _run_chunks(run, concurrency_for(model_name=spec.name, provider=spec.provider, settings=settings))
    if error is not None:
        if _is_final(error):
            _no_more_retries(job)  # a budget rule, a bad key or an unknown model will not fix itself within minutes
        raise error

    try:
        with session_scope() as session:
            done = finalize_batch(session=session, batch_id=batch_id, embed=embedder.embed)
    except BatchNotRunnable as exc:
        return {"skipped": str(exc)}
    _audit_grounding(batch_id, embedder.embed)
    _check_and_queue_judge(batch_id, embedder.embed)
    _score_and_optimize(batch_id, embedder.embed)
    _emit_webhooks(batch_id)
    return {"batch_id": batch_id, "fragments": done.fragments, "duration_s": done.duration_s}


@dataclass
class _BatchRun:
    """What every chunk thread of one attempt shares; `stop` is set when one chunk fails."""

    plan: BatchPlan
    spec: ModelSpec
    settings: Settings
    limits: ProviderLimits
    stop: threading.Event = field(default_factory=threading.Event)


class _Stopped(Exception):
    """A sibling chunk failed while this one waited: leave the chunk to the job's retry."""


def _is_final(exc: BaseException) -> bool:
    return isinstance(exc, BudgetExceeded | FragmentCostExceeded) or (isinstance(exc, ProviderError) and not exc.retryable)


def _run_chunks(run: _BatchRun, concurrency: int) -> BaseException | None:
    """Run the plan's pending chunks, at most `concurrency` at once, in chunk order.

    Returns:
        None when every chunk has an answer; else the error that stopped the batch (the first one that
        retrying will not fix, else the first one), once every call in flight has finished.
    Raises:
        Whatever interrupts the waiting job itself (RQ's job timeout, a shutdown signal): queued chunks
        are dropped, calls in flight are left to end with the work horse.
    """
    pending = run.plan.pending
    if not pending:
        return None
    litellm()  # import litellm once here, not in several pool threads at once
    width = max(1, min(concurrency, len(pending)))
    log.info("batch %s: %d chunks to call, %d in flight, limits %s", run.plan.batch_id, len(pending), width,
             run.limits.describe())
    pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"batch-{run.plan.batch_id}")
    errors: list[BaseException] = []
    try:
        futures: list[Future[None]] = [pool.submit(_run_chunk, run, chunk) for chunk in pending]
        for future in as_completed(futures):
            exc = future.exception()
            if exc is not None:
                run.stop.set()  # no new chunk starts; the ones in flight finish and commit
                errors.append(exc)
    except BaseException:
        run.stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if not errors:
        return None
    return next((e for e in errors if _is_final(e)), errors[0])


def _pause(run: _BatchRun, seconds: float) -> None:
    """Sleep `seconds`, or raise `_Stopped` as soon as a sibling chunk fails."""
    if run.stop.wait(max(0.0, seconds)):
        raise _Stopped


def _release(reservation: Reservation | None) -> None:
    with session_scope() as session:
        release(session=session, reservation=reservation)


def _run_chunk(run: _BatchRun, chunk: PendingChunk) -> None:
    """One chunk, in a pool thread: wait for room in the per-minute windows, reserve the worst case, call,
    commit the answer with its cost and settle the reservation (one transaction), check the per-fragment
    limit. A 429 or a full window releases the reservation and waits (Retry-After) before trying again;
    only provider 429 waits count against `llm_rate_limit_max_wait_s`.

    Raises:
        BudgetExceeded, FragmentCostExceeded, ProviderError: the chunk (and so the batch) cannot go on.
    """
    plan, spec, settings, limits = run.plan, run.spec, run.settings, run.limits
    if run.stop.is_set():
        return
    messages = build_messages(
        chunk_text=chunk.text, title=plan.title, person=plan.person, source_type=plan.source_type,
        speakers=chunk.speakers, person_labels=plan.person_labels, prompt_version=plan.prompt_version or PROMPT_VERSION,
    )
    worst = worst_case_call_cost(spec=spec, prices=plan.prices, messages=messages, max_tokens=settings.llm_max_output_tokens)
    tokens = limits.request_tokens(litellm_model=spec.litellm_model, messages=messages, max_tokens=settings.llm_max_output_tokens)
    waited_429, refusals = 0.0, 0
    try:
        while True:
            limits.wait_for_room(tokens, sleep=lambda s: _pause(run, s))
            if run.stop.is_set():
                return
            reservation = reserve_with_wait(
                session_factory=session_scope, amount_usd=worst, model_name=spec.name,
                batch_id=plan.batch_id, chunk_id=chunk.chunk_id,
            )
            try:
                result = extract_chunk(
                    spec, chunk_text=chunk.text, title=plan.title, person=plan.person, source_type=plan.source_type,
                    settings=settings, messages=messages, limits=limits, request_tokens=tokens,
                )
            except RateLimited as exc:
                _release(reservation)  # nothing was billed; a reservation is never held through a wait
                if exc.source == "provider":
                    refusals += 1
                    wait = exc.retry_after_s if exc.retry_after_s is not None else min(30.0, 2.0 ** refusals)
                    if waited_429 + wait > settings.llm_rate_limit_max_wait_s:
                        _give_up_rate_limited(run, chunk, exc, waited_429)
                    waited_429 += wait
                    log.info("batch %s chunk %s: 429 from %s, waiting %.1f s (Retry-After)",
                             plan.batch_id, chunk.chunk_index, spec.name, wait)
                else:
                    wait = exc.retry_after_s or 0.05
                _pause(run, wait)
                continue
            except ProviderError as exc:
                with session_scope() as session:
                    record_provider_error(session=session, plan=plan, chunk_id=chunk.chunk_id, error=exc)
                    release(session=session, reservation=reservation)
                raise
            except BaseException:
                _release(reservation)
                raise
            with session_scope() as session:  # the answer, its cost and the settlement commit together
                cost = record_call(session=session, plan=plan, chunk_id=chunk.chunk_id, result=result)
                settle(session=session, reservation=reservation, cost_usd=cost)
            with session_scope() as session:
                check_batch_fragment_cost(session=session, batch_id=plan.batch_id)
            return
    except _Stopped:
        return


def _give_up_rate_limited(run: _BatchRun, chunk: PendingChunk, exc: RateLimited, waited_s: float) -> None:
    """Record and raise a retryable `ProviderError`: the provider kept answering 429 past the wait bound."""
    error = ProviderError(
        f"{run.spec.name}: still rate limited (429) after waiting {waited_s:.0f} s "
        f"(MMOS_LLM_RATE_LIMIT_MAX_WAIT_S={run.settings.llm_rate_limit_max_wait_s:.0f}); the job will be retried: {exc}",
        retryable=True, attempts=exc.attempts, duration_ms=exc.duration_ms,
    )
    with session_scope() as session:
        record_provider_error(session=session, plan=run.plan, chunk_id=chunk.chunk_id, error=error)
    raise error from exc


def _no_more_retries(job) -> None:
    if job is not None:
        job.retries_left = 0
        job.save()


def _emit_webhooks(batch_id: int) -> None:
    """batch.completed, and source.processed / queue.empty when they apply (the core design); never fails the job."""

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


def _check_and_queue_judge(batch_id: int, embed) -> None:
    """Store each new fragment's checks (verbatim, attribution, support baseline; docs/quality.md) and queue
    the LLM judge for the batch. Own transaction after publication: never fails the job."""
    try:
        with session_scope() as session:
            ids = list(session.scalars(select(Fragment.id).where(Fragment.batch_id == batch_id)))
            check_fragments(session=session, fragment_ids=ids, embed=embed)
            enqueue_judging(batch_id, session=session)
    except Exception:
        log.exception("checks of batch %s failed", batch_id)


def _audit_grounding(batch_id: int, embed) -> None:
    """Log each new fragment's grounding in asi_inferences (the monitoring design), after the batch is published.

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
