"""Putting jobs on RQ: one "already queued?" rule, and enqueueing only after the caller's commit.

A job enqueued before its transaction commits can start before its rows are visible (or after they
were rolled back), so every enqueue that belongs to a transaction goes through
`enqueue(..., session=session)`: the job is held in `session.info` and handed to RQ by a SQLAlchemy
`after_commit` hook; a rollback drops it. Without a session the job is enqueued at once.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from redis import Redis
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from sqlalchemy import event
from sqlalchemy.orm import Session

from mmos_core.core.config import get_settings
from mmos_core.core.domain import RQ_QUEUES
from mmos_core.core.redis import get_redis
from mmos_core.jobs.spec import JobSpec

__all__ = ["PendingJob", "enqueue", "failed_enqueues", "fetch_job", "get_queue", "is_waiting_or_running"]

log = logging.getLogger(__name__)

_PENDING_KEY = "mmos_pending_jobs"
_FAILED_KEY = "mmos_failed_enqueues"
_LIVE = (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


@dataclasses.dataclass(frozen=True)
class PendingJob:
    """A job held until its transaction commits."""

    spec: JobSpec
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    job_id: str
    queue: str
    description: str
    retry_intervals: list[int] | None = None


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    """One of the RQ queues `high`, `default`, `low`.

    Raises:
        ValueError: `name` is not one of them.
    """
    if name not in RQ_QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection or get_redis())


def fetch_job(job_id: str, connection: Redis | None = None) -> Job | None:
    """The RQ job with this id, or None when RQ no longer has it."""
    try:
        return Job.fetch(job_id, connection=connection or get_redis())
    except NoSuchJobError:
        return None


def is_waiting_or_running(job: Job | None) -> bool:
    """The one "already queued?" rule: queued, started, scheduled (a retry) or deferred."""
    return job is not None and job.get_status(refresh=True) in _LIVE


def enqueue(
    spec: JobSpec,
    *args: Any,
    job_id: str,
    queue: str | None = None,
    session: Session | None = None,
    connection: Redis | None = None,
    description: str | None = None,
    retry_intervals: list[int] | None = None,
    **kwargs: Any,
) -> Job | None:
    """Enqueue `spec` with `args`/`kwargs` under `job_id`, now or when `session` commits.

    Idempotent per job id: a job that is waiting, running or scheduled for a retry is left as it is;
    a finished or failed one is replaced.

    Args:
        queue: the RQ queue when the spec has none (extraction batches by priority).
        session: the caller's open transaction; the job is enqueued after it commits, dropped on rollback.
        retry_intervals: override of the spec's intervals (tests use [0]).
    Returns:
        The RQ job when enqueued now; None when deferred to the commit.
    Raises:
        ValueError: no queue given for a spec without one, or an unknown queue.
    """
    queue_name = queue or spec.queue
    if queue_name is None:
        raise ValueError(f"job {spec.name} needs a queue")
    pending = PendingJob(
        spec=spec, args=args, kwargs=kwargs, job_id=job_id, queue=queue_name,
        description=description or f"{spec.name} {job_id}", retry_intervals=retry_intervals,
    )
    if session is not None:
        session.info.setdefault(_PENDING_KEY, []).append(pending)
        return None
    return _enqueue_now(pending, connection)


def _enqueue_now(job: PendingJob, connection: Redis | None = None) -> Job:
    queue = get_queue(job.queue, connection)
    existing = fetch_job(job.job_id, queue.connection)
    if is_waiting_or_running(existing):
        return existing  # type: ignore[return-value]
    if existing is not None:
        existing.delete()  # a finished or failed job would block its id
    return queue.enqueue(
        job.spec.func,
        args=job.args,
        kwargs=job.kwargs,
        job_id=job.job_id,
        description=job.description,
        **job.spec.enqueue_options(get_settings(), retry_intervals=job.retry_intervals),
    )


def failed_enqueues(session: Session) -> list[str]:
    """Why jobs held by `session` could not be enqueued when it committed ([] when all were).

    The rows are committed either way; pages show this so the analyst knows the work waits for the
    maintenance job's reconcile (batches) or a "Re-analyse" (conversations).
    """
    return list(session.info.get(_FAILED_KEY, []))


@event.listens_for(Session, "after_commit")
def _enqueue_pending(session: Session) -> None:
    pending: list[PendingJob] = session.info.pop(_PENDING_KEY, [])
    for job in pending:
        try:
            _enqueue_now(job)
        except Exception as exc:
            # The rows are committed; the maintenance job's reconcile re-enqueues a batch whose RQ
            # job is missing, so a Redis blip here delays the work but never loses it.
            log.exception("could not enqueue %s after commit", job.job_id)
            session.info.setdefault(_FAILED_KEY, []).append(f"{job.job_id}: {exc}")


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
