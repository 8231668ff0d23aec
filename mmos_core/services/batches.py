"""Queueing extraction batches and reading their progress.

`queue_extraction` writes a pending batch, its source link and its `processing_queue` row per
model; `enqueue_batches(jobs, session=session)` puts their RQ jobs on the queue once the caller's
transaction commits (a job enqueued before the commit could start before its rows are visible).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.core.config import Settings, get_settings
from mmos_core.core.domain import (
    PRIORITY_POINTS,
    BatchStatus,
    ExtractionPriority,
    QueueStatus,
    SourceProcessingStatus,
    effective_priority,
    rq_queue_for,
)
from mmos_core.jobs.catalog import EXTRACT_BATCH
from mmos_core.jobs.enqueue import enqueue
from mmos_core.llm.catalog import get_model, price_snapshot
from mmos_core.llm.extraction import PROMPT_VERSION
from mmos_core.models import Fragment, ProcessingBatch, ProcessingQueue, Source, SourceChunk, SourceProcessing


@dataclass(frozen=True)
class QueuedJob:
    """What `enqueue_batches` needs to put one batch on RQ."""

    batch_id: int
    queue_id: int
    rq_job_id: str
    rq_queue: str


def enqueue_batches(jobs: Iterable[QueuedJob], *, session: Session | None = None, connection: Redis | None = None) -> None:
    """Enqueue the extraction job of each batch: when `session` commits, or at once without a session.

    Idempotent per batch (the job id is the queue row's `rq_job_id`; see `mmos_core.jobs.enqueue`).
    """
    for job in jobs:
        enqueue(
            EXTRACT_BATCH, job.batch_id, job_id=job.rq_job_id, queue=job.rq_queue, session=session,
            connection=connection, description=f"extract batch {job.batch_id}",
        )


@dataclass(frozen=True)
class BatchProgress:
    """Live view of one batch: chunks done of total, tokens, cost so far (USD), elapsed seconds."""

    batch_id: int
    batch_code: str
    model_name: str
    status: str
    chunks_done: int
    chunks_total: int
    fragments: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    malformed_responses: int
    elapsed_s: float | None
    error_message: str | None
    queue_status: str | None
    attempts: int
    max_attempts: int

    @property
    def fraction(self) -> float:
        """Share of chunks done, 0-1."""
        return self.chunks_done / self.chunks_total if self.chunks_total else 0.0


def _batch_code(session: Session, when: dt.datetime) -> str:
    prefix = f"BATCH_{when:%Y_%m_%d}_"
    count = session.scalar(
        select(func.count()).select_from(ProcessingBatch).where(ProcessingBatch.batch_code.like(f"{prefix}%"))
    )
    return f"{prefix}{int(count or 0) + 1:03d}"


def queue_extraction(
    *,
    session: Session,
    source_id: int,
    model_names: list[str],
    processor_name: str | None = None,
    priority: int | None = None,
    chunk_ids: list[int] | None = None,
    parent_batch_id: int | None = None,
    settings: Settings | None = None,
    selected_by: str = "user_override",
    selection_confidence: float | None = None,
) -> list[QueuedJob]:
    """Create one pending batch per model for this source, with queue rows. Does not commit or enqueue.

    Args:
        priority: queue priority 0-10; default from the source's extraction priority.
        chunk_ids: only these chunks of the source (regenerate); default every chunk.
        parent_batch_id: the batch whose output a regenerate replaces, shown next to it.
        selected_by: who chose the model — 'user_override' (a person), 'auto' (the optimizer) or
            'fallback' (after another model's provider failed); the catalog design's vocabulary.
        selection_confidence: 0-1 confidence of an automatic choice.
    Returns:
        One `QueuedJob` per model, in the order given.
    Raises:
        LookupError: unknown source.
        mmos_core.llm.catalog.UnknownModelError: a model is not available.
        ValueError: no model given, or the source has no chunks.
    """
    settings = settings or get_settings()
    if not model_names:
        raise ValueError("Choose at least one model.")
    source = session.get(Source, source_id)
    if source is None:
        raise LookupError(f"No source with id {source_id}.")
    chunk_filter = [SourceChunk.source_id == source_id]
    if chunk_ids:
        chunk_filter.append(SourceChunk.id.in_(chunk_ids))
    chunks_total = session.scalar(select(func.count()).select_from(SourceChunk).where(*chunk_filter))
    if chunk_ids and chunks_total != len(set(chunk_ids)):
        raise ValueError("Some chunks do not belong to this source.")
    if not chunks_total:
        raise ValueError(f"Source {source.source_code} has no text to extract from.")
    specs = [get_model(name, settings) for name in dict.fromkeys(model_names)]
    if priority is None:
        priority = PRIORITY_POINTS[ExtractionPriority(source.extraction_priority)]
    eff = effective_priority(priority, source.quality)
    rq_queue = rq_queue_for(eff)
    now = dt.datetime.now(dt.UTC)

    jobs: list[QueuedJob] = []
    for spec in specs:
        batch = ProcessingBatch(
            batch_code=_batch_code(session, now),
            model_provider=spec.provider,
            model_name=spec.name,
            temperature=settings.extraction_temperature,
            processor_name=processor_name,
            prompt_version=PROMPT_VERSION,
            batch_status=BatchStatus.pending.value,
            total_sources=1,
            chunks_total=int(chunks_total),
            price_snapshot=price_snapshot(spec).as_dict(),
            chunk_scope=sorted(set(chunk_ids)) if chunk_ids else None,
            parent_batch_id=parent_batch_id,
            selected_by=selected_by,
            selection_confidence=selection_confidence,
        )
        session.add(batch)
        session.flush()
        session.add(SourceProcessing(source_id=source_id, batch_id=batch.id, processing_status=SourceProcessingStatus.pending.value))
        rq_job_id = f"extract-batch-{batch.id}"
        row = ProcessingQueue(
            source_id=source_id,
            batch_id=batch.id,
            processing_type=f"extraction_{spec.name}",
            priority=priority,
            effective_priority=eff,
            queue_status=QueueStatus.waiting.value,
            attempts=0,
            max_attempts=settings.job_max_attempts,
            rq_job_id=rq_job_id,
            rq_queue=rq_queue,
        )
        session.add(row)
        session.flush()
        jobs.append(QueuedJob(batch_id=batch.id, queue_id=row.id, rq_job_id=rq_job_id, rq_queue=rq_queue))
    return jobs


def batch_progress(*, session: Session, batch_ids: list[int] | None = None, source_id: int | None = None) -> list[BatchProgress]:
    """Progress of the given batches, or of all batches of a source (newest first)."""

    q = (
        select(ProcessingBatch, ProcessingQueue)
        .join(ProcessingQueue, ProcessingQueue.batch_id == ProcessingBatch.id, isouter=True)
        .order_by(ProcessingBatch.id.desc())
    )
    if batch_ids is not None:
        q = q.where(ProcessingBatch.id.in_(batch_ids))
    if source_id is not None:
        q = q.join(SourceProcessing, SourceProcessing.batch_id == ProcessingBatch.id).where(
            SourceProcessing.source_id == source_id
        )
    rows = session.execute(q).all()
    ids = [b.id for b, _ in rows]
    counts = dict(
        session.execute(
            select(Fragment.batch_id, func.count()).where(Fragment.batch_id.in_(ids)).group_by(Fragment.batch_id)
        ).all()
    ) if ids else {}
    now = dt.datetime.now(dt.UTC)
    out = []
    for batch, queue in rows:
        if batch.started_at is None:
            elapsed = None
        elif batch.completed_at is not None:
            elapsed = float(batch.processing_duration_seconds or 0)
        else:
            elapsed = (now - batch.started_at).total_seconds()
        out.append(
            BatchProgress(
                batch_id=batch.id,
                batch_code=batch.batch_code,
                model_name=batch.model_name,
                status=batch.batch_status,
                chunks_done=batch.chunks_done,
                chunks_total=batch.chunks_total,
                fragments=int(counts.get(batch.id, 0)),
                input_tokens=int(batch.total_input_tokens),
                output_tokens=int(batch.total_output_tokens),
                cost_usd=Decimal(batch.estimated_cost_usd),
                malformed_responses=batch.malformed_responses,
                elapsed_s=elapsed,
                error_message=batch.error_message,
                queue_status=queue.queue_status if queue else None,
                attempts=queue.attempts if queue else 0,
                max_attempts=queue.max_attempts if queue else 0,
            )
        )
    return out
