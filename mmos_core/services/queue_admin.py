"""Managing the extraction queue: list jobs by status, retry, cancel and re-prioritise them.

These functions change only PostgreSQL and never commit. RQ follows after the caller commits:
`enqueue_batches` for a retry, `cancel_job` for a cancel, `move_batch_job` for a re-prioritise
(a job enqueued or moved before the commit could run against rows that are not visible yet).
`reconcile` brings PostgreSQL's queue rows and RQ back in line after a crash or a Redis restart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from redis import Redis
from rq.job import JobStatus
from sqlalchemy import case, select
from sqlalchemy.orm import Session

from mmos_core.core.domain import BatchStatus, QueueStatus, SourceProcessingStatus, effective_priority, rq_queue_for
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import fetch_job
from mmos_core.jobs.rq_admin import take_off_queue, worker_alive
from mmos_core.models import ProcessingBatch, ProcessingQueue, Source, SourceProcessing
from mmos_core.services.batches import QueuedJob, enqueue_batches
from mmos_core.services.extraction_run import mark_attempt_failed

#: The page's status groups, in display order: label → queue_status.
STATUS_GROUPS: dict[str, str] = {
    "Waiting": QueueStatus.waiting.value,
    "Running": QueueStatus.processing.value,
    "Failed": QueueStatus.failed.value,
    "Finished": QueueStatus.completed.value,
    "Cancelled": QueueStatus.cancelled.value,
}


class QueueActionError(ValueError):
    """The job is not in a state that allows the action; the message is safe to show."""


@dataclass(frozen=True)
class QueueJobRow:
    """One `processing_queue` row with its batch and source, as the queue page lists it."""

    queue_id: int
    batch_id: int | None
    batch_code: str | None
    source_code: str
    source_title: str
    model_name: str | None
    queue_status: str
    batch_status: str | None
    priority: int
    effective_priority: float
    attempts: int
    max_attempts: int
    scheduled_for: dt.datetime | None
    assigned_to: str | None
    rq_job_id: str | None
    rq_queue: str
    last_error: str | None
    chunks_done: int
    chunks_total: int
    created_at: dt.datetime
    updated_at: dt.datetime


def list_queue_jobs(*, session: Session, statuses: list[str] | None = None, limit: int = 200) -> list[QueueJobRow]:
    """Queue rows (optionally only these `queue_status` values), highest effective priority first.

    Waiting rows come in the order workers take them (effective priority, then age); others newest
    first. `last_error` is the queue row's, or else the batch's error message.
    """
    order_status = case((ProcessingQueue.queue_status == QueueStatus.waiting.value, 0), else_=1)
    q = (
        select(ProcessingQueue, ProcessingBatch, Source)
        .join(Source, Source.id == ProcessingQueue.source_id)
        .join(ProcessingBatch, ProcessingBatch.id == ProcessingQueue.batch_id, isouter=True)
        .order_by(
            order_status,
            case(
                (ProcessingQueue.queue_status == QueueStatus.waiting.value, -ProcessingQueue.effective_priority),
                else_=0,
            ),
            case((ProcessingQueue.queue_status == QueueStatus.waiting.value, ProcessingQueue.id), else_=-ProcessingQueue.id),
        )
        .limit(limit)
    )
    if statuses is not None:
        q = q.where(ProcessingQueue.queue_status.in_(statuses))
    out = []
    for row, batch, source in session.execute(q).all():
        out.append(
            QueueJobRow(
                queue_id=row.id,
                batch_id=row.batch_id,
                batch_code=batch.batch_code if batch else None,
                source_code=source.source_code,
                source_title=source.title,
                model_name=batch.model_name if batch else None,
                queue_status=row.queue_status,
                batch_status=batch.batch_status if batch else None,
                priority=int(row.priority),
                effective_priority=float(row.effective_priority),
                attempts=int(row.attempts),
                max_attempts=int(row.max_attempts),
                scheduled_for=row.scheduled_for,
                assigned_to=row.assigned_to,
                rq_job_id=row.rq_job_id,
                rq_queue=row.rq_queue,
                last_error=row.last_error or (batch.error_message if batch else None),
                chunks_done=batch.chunks_done if batch else 0,
                chunks_total=batch.chunks_total if batch else 0,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        )
    return out


def _locked_row(session: Session, queue_id: int) -> tuple[ProcessingQueue, ProcessingBatch | None]:
    row = session.get(ProcessingQueue, queue_id, with_for_update=True)
    if row is None:
        raise LookupError(f"No queue entry {queue_id}.")
    batch = session.get(ProcessingBatch, row.batch_id, with_for_update=True) if row.batch_id else None
    return row, batch


def _job(row: ProcessingQueue) -> QueuedJob:
    if row.batch_id is None or not row.rq_job_id:
        raise QueueActionError(f"Queue entry {row.id} has no extraction batch to run.")
    return QueuedJob(batch_id=row.batch_id, queue_id=row.id, rq_job_id=row.rq_job_id, rq_queue=row.rq_queue)


def retry_job(*, session: Session, queue_id: int, by: str) -> QueuedJob:
    """Put a failed (or cancelled) job back in the queue; staged chunk answers are kept, so it resumes.

    The queue row goes back to waiting with its attempts reset, the batch to pending; the caller
    commits and then passes the result to `services.batches.enqueue_batches`.

    Raises:
        LookupError: unknown queue entry.
        QueueActionError: the job is not failed or cancelled, or has no batch.
    """
    row, batch = _locked_row(session, queue_id)
    if row.queue_status not in (QueueStatus.failed.value, QueueStatus.cancelled.value):
        raise QueueActionError(f"Only failed or cancelled jobs can be retried; this one is {row.queue_status}.")
    job = _job(row)
    previous = row.last_error or (batch.error_message if batch else None)
    row.queue_status = QueueStatus.waiting.value
    row.attempts = 0
    row.scheduled_for = None
    row.assigned_to = None
    row.last_error = f"Retried by {by}" + (f" after: {previous}" if previous else "")
    row.last_error = row.last_error[:4000]
    if batch is not None:
        batch.batch_status = BatchStatus.pending.value
        batch.error_message = None
        batch.completed_at = None
    link = session.scalar(select(SourceProcessing).where(SourceProcessing.batch_id == row.batch_id))
    if link is not None:
        link.processing_status = SourceProcessingStatus.pending.value
        link.completed_at = None
    session.flush()
    return job


def cancel_queue_job(*, session: Session, queue_id: int, by: str) -> QueuedJob:
    """Cancel a waiting or running job: queue row 'cancelled', batch 'failed' with "cancelled by <by>".

    Nothing is half-published: a batch's fragments are written only when it completes, and a
    worker that still picks the job up finds the batch failed and skips it. The caller commits,
    then calls `mmos_core.jobs.rq_admin.cancel_job(result.rq_job_id)` to drop or stop the RQ job.

    Raises:
        LookupError: unknown queue entry.
        QueueActionError: the job is not waiting or running.
    """
    row, batch = _locked_row(session, queue_id)
    if row.queue_status not in (QueueStatus.waiting.value, QueueStatus.processing.value):
        raise QueueActionError(f"Only waiting or running jobs can be cancelled; this one is {row.queue_status}.")
    job = _job(row)
    message = f"cancelled by {by}"
    now = dt.datetime.now(dt.UTC)
    row.queue_status = QueueStatus.cancelled.value
    row.scheduled_for = None
    row.last_error = message
    if batch is not None:
        batch.batch_status = BatchStatus.failed.value
        batch.error_message = message
        batch.completed_at = now
    link = session.scalar(select(SourceProcessing).where(SourceProcessing.batch_id == row.batch_id))
    if link is not None:
        link.processing_status = SourceProcessingStatus.failed.value
        link.completed_at = now
    session.flush()
    return job


@dataclass(frozen=True)
class Reprioritised:
    """Outcome of a re-prioritise: the new numbers, and the job to move on RQ (None when not waiting)."""

    queue_id: int
    priority: int
    effective_priority: float
    rq_queue: str
    move: QueuedJob | None


def reprioritise_job(*, session: Session, queue_id: int, priority: int, by: str) -> Reprioritised:
    """Set a job's priority (0-10) and recompute its effective priority and RQ queue from the source's quality.

    For a waiting job the caller commits, then passes `result.move` to `move_batch_job`.
    A running or finished job keeps its RQ queue (only the numbers change).

    Raises:
        LookupError: unknown queue entry.
        QueueActionError: priority outside 0-10.
    """
    if not 0 <= int(priority) <= 10:
        raise QueueActionError("Priority must be between 0 and 10.")
    row = session.get(ProcessingQueue, queue_id, with_for_update=True)
    if row is None:
        raise LookupError(f"No queue entry {queue_id}.")
    source = session.get(Source, row.source_id)
    assert source is not None
    eff = effective_priority(int(priority), source.quality)
    old = int(row.priority)
    row.priority = int(priority)
    row.effective_priority = eff
    move = None
    if row.queue_status == QueueStatus.waiting.value:
        row.rq_queue = rq_queue_for(eff)
        move = _job(row)
    note = f"priority {old} → {int(priority)} by {by}"
    row.last_error = f"{row.last_error}; {note}"[:4000] if row.last_error else note
    session.flush()
    return Reprioritised(queue_id=row.id, priority=int(priority), effective_priority=eff, rq_queue=row.rq_queue, move=move)


def move_batch_job(job: QueuedJob, connection: Redis | None = None) -> bool:
    """Put a not-yet-started batch job on `job.rq_queue` after its re-prioritise was committed.

    Returns:
        Whether the job now waits on `job.rq_queue` (False: it had already started).
    """
    placed = take_off_queue(job.rq_job_id, job.rq_queue, connection)
    if placed is None:
        enqueue_batches([job], connection=connection)
        return True
    return placed


def reconcile(*, session: Session, connection: Redis | None = None, stale_after_s: int = 60) -> list[QueuedJob]:
    """Jobs to re-enqueue: waiting/processing rows whose RQ job is gone, failed, or was abandoned.

    A row in `processing` whose job is no longer started (its worker died) goes back to waiting; a
    row out of attempts is marked failed. Rows updated within `stale_after_s` seconds are left alone
    (their enqueue may still be in flight). Does not commit; the caller passes the result to
    `enqueue_batches(..., session=session)`.
    """
    connection = connection or get_redis()
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=stale_after_s)
    rows = session.scalars(
        select(ProcessingQueue).where(
            ProcessingQueue.queue_status.in_([QueueStatus.waiting.value, QueueStatus.processing.value]),
            ProcessingQueue.updated_at < cutoff,
            ProcessingQueue.batch_id.is_not(None),
        )
    ).all()
    todo = []
    for row in rows:
        job = fetch_job(row.rq_job_id or "", connection)
        status = job.get_status(refresh=True) if job is not None else None
        alive = status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED) or (
            status == JobStatus.STARTED and worker_alive(job, connection)  # type: ignore[arg-type]
        )
        if alive:
            continue
        if job is not None:
            job.delete()  # a dead worker's job would otherwise block its id from being enqueued again
        if row.attempts >= row.max_attempts:
            mark_attempt_failed(
                session=session,
                batch_id=row.batch_id,  # type: ignore[arg-type]
                error=f"Gave up after {row.attempts} attempts; the last one's worker stopped without finishing.",
                retry_at=None,
            )
            continue
        row.queue_status = QueueStatus.waiting.value
        todo.append(
            QueuedJob(batch_id=row.batch_id, queue_id=row.id, rq_job_id=row.rq_job_id, rq_queue=row.rq_queue)  # type: ignore[arg-type]
        )
    return todo
