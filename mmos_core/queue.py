"""RQ plumbing: the Redis connection, the three priority queues, enqueueing and reconciling jobs.

`processing_queue` in Postgres is the record analysts see; RQ in Redis is what workers pull from.
`reconcile` re-enqueues waiting rows whose RQ job is missing (Redis restarted, enqueue failed
after commit, or a worker died holding the job).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
from collections.abc import Iterable
from functools import lru_cache

from redis import Redis
from rq import Queue, Retry
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import select
from sqlalchemy.orm import Session

from mmos_core.config import get_settings
from mmos_core.domain import RQ_QUEUES
from mmos_core.embedded import redis_url
from mmos_core.models import ProcessingQueue
from mmos_core.services.batches import QueuedJob
from mmos_core.services.extraction_run import mark_attempt_failed

#: Seconds between job-level retries (attempt 2, 3, ...); chunk calls retry with their own backoff first.
RETRY_INTERVALS = [30, 120, 300]


@lru_cache(maxsize=1)
def get_redis() -> Redis:
    """Process-wide Redis connection (configured URL or the embedded server)."""
    return Redis.from_url(redis_url())


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    """One of the RQ queues `high`, `default`, `low`."""
    if name not in RQ_QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection or get_redis())


def enqueue(jobs: Iterable[QueuedJob], connection: Redis | None = None) -> list[Job]:
    """Put committed batches on RQ (job id = the queue row's `rq_job_id`); idempotent per job id."""
    from workers.extraction import on_extraction_failure, run_extraction

    settings = get_settings()
    retries = max(0, settings.job_max_attempts - 1)
    out = []
    for job in jobs:
        queue = get_queue(job.rq_queue, connection)
        existing = _fetch(job.rq_job_id, queue.connection)
        if existing is not None and existing.get_status(refresh=True) in (
            JobStatus.QUEUED,
            JobStatus.STARTED,
            JobStatus.SCHEDULED,
            JobStatus.DEFERRED,
        ):
            out.append(existing)
            continue
        if existing is not None:
            existing.delete()
        out.append(
            queue.enqueue(
                run_extraction,
                job.batch_id,
                job_id=job.rq_job_id,
                job_timeout=settings.job_timeout_s,
                result_ttl=7 * 24 * 3600,
                failure_ttl=30 * 24 * 3600,
                retry=Retry(max=retries, interval=RETRY_INTERVALS) if retries else None,
                on_failure=on_extraction_failure,
                description=f"extract batch {job.batch_id}",
            )
        )
    return out


def _fetch(job_id: str, connection: Redis) -> Job | None:
    try:
        return Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return None


def reconcile(*, session: Session, connection: Redis | None = None, stale_after_s: int = 60) -> list[QueuedJob]:
    """Jobs to re-enqueue: waiting/processing rows whose RQ job is gone, failed, or was abandoned.

    A row in `processing` whose job is no longer started (its worker died) goes back to waiting.
    Rows updated within `stale_after_s` are left alone (their enqueue may still be in flight).
    Does not commit; the caller commits, then calls `enqueue` with the result.
    """
    connection = connection or get_redis()
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=stale_after_s)
    rows = session.scalars(
        select(ProcessingQueue).where(
            ProcessingQueue.queue_status.in_(["waiting", "processing"]),
            ProcessingQueue.updated_at < cutoff,
            ProcessingQueue.batch_id.is_not(None),
        )
    ).all()
    todo = []
    for row in rows:
        job = _fetch(row.rq_job_id or "", connection)
        status = job.get_status(refresh=True) if job is not None else None
        alive = status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED) or (
            status == JobStatus.STARTED and _worker_alive(job, connection)
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
        row.queue_status = "waiting"
        todo.append(
            QueuedJob(batch_id=row.batch_id, queue_id=row.id, rq_job_id=row.rq_job_id, rq_queue=row.rq_queue)  # type: ignore[arg-type]
        )
    return todo


def _worker_alive(job: Job, connection: Redis, heartbeat_grace_s: float = 120) -> bool:
    """Whether the worker holding `job` still lives: registered, heartbeat recent, and (when it runs
    on this host) its process exists."""
    from rq import Worker

    name = job.worker_name
    if not name:
        return False
    for w in Worker.all(connection=connection):
        if w.name != name:
            continue
        if w.hostname == socket.gethostname() and w.pid and not _pid_exists(w.pid):
            return False
        beat = w.last_heartbeat
        return beat is None or (dt.datetime.now(dt.UTC) - beat.replace(tzinfo=dt.UTC)).total_seconds() < heartbeat_grace_s
    return False


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- Queue page helpers (issue 3): live status, cancel, move, workers ----------------------------


def job_statuses(job_ids: Iterable[str], connection: Redis | None = None) -> dict[str, str | None]:
    """Live RQ status ('queued', 'started', 'scheduled', 'failed', …) of each job id; None when RQ no longer has it."""
    connection = connection or get_redis()
    ids = [i for i in dict.fromkeys(job_ids) if i]
    if not ids:
        return {}
    jobs = Job.fetch_many(ids, connection=connection)
    out: dict[str, str | None] = {}
    for job_id, job in zip(ids, jobs, strict=True):
        status = job.get_status(refresh=False) if job is not None else None
        out[job_id] = status.value if status is not None else None
    return out


def cancel_job(rq_job_id: str, connection: Redis | None = None) -> str:
    """Make sure RQ never runs (or stops running) this job.

    A waiting, scheduled or deferred job is cancelled; a running one gets RQ's stop command (its
    worker kills the work horse; RQ marks it stopped and does not retry it). Call it after the
    queue row and batch were committed as cancelled, so a worker that picks the job up in between
    finds the batch already finished and skips it.

    Returns:
        What was done: 'cancelled', 'stopped', or 'absent' (RQ had no live job with that id).
    """
    from rq.command import send_stop_job_command

    connection = connection or get_redis()
    job = _fetch(rq_job_id, connection)
    if job is None:
        return "absent"
    status = job.get_status(refresh=True)
    if status == JobStatus.STARTED:
        job.retries_left = 0
        job.save()
        send_stop_job_command(connection, rq_job_id)
        return "stopped"
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        job.cancel()
        return "cancelled"
    return "absent"


def move_job(job: QueuedJob, connection: Redis | None = None) -> bool:
    """Put a not-yet-started job on the RQ queue `job.rq_queue` (after a re-prioritise was committed).

    A queued or scheduled job on another queue is deleted there and enqueued on the new one (a
    scheduled retry then runs as soon as a worker is free). A started job is left alone.

    Returns:
        Whether the job now waits on `job.rq_queue`.
    """
    connection = connection or get_redis()
    existing = _fetch(job.rq_job_id, connection)
    if existing is not None:
        status = existing.get_status(refresh=True)
        if status == JobStatus.STARTED:
            return False
        if status == JobStatus.QUEUED and existing.origin == job.rq_queue:
            return True
        existing.delete()
    enqueue([job], connection)
    return True


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """One RQ worker as the queue page shows it."""

    name: str
    state: str
    queues: list[str]
    current_job_id: str | None
    last_heartbeat: dt.datetime | None
    seconds_since_heartbeat: float | None


def list_workers(connection: Redis | None = None) -> list[WorkerInfo]:
    """Registered RQ workers: name, state, queues, current job and heartbeat age (seconds)."""
    from rq import Worker

    now = dt.datetime.now(dt.UTC)
    out = []
    for w in Worker.all(connection=connection or get_redis()):
        beat = w.last_heartbeat
        if beat is not None and beat.tzinfo is None:
            beat = beat.replace(tzinfo=dt.UTC)
        state = w.get_state()
        out.append(
            WorkerInfo(
                name=w.name,
                state=str(getattr(state, "value", state)),
                queues=w.queue_names(),
                current_job_id=w.get_current_job_id(),
                last_heartbeat=beat,
                seconds_since_heartbeat=(now - beat).total_seconds() if beat is not None else None,
            )
        )
    return sorted(out, key=lambda w: w.name)
