"""What the Queue page and maintenance ask RQ: live job statuses, cancel / stop, workers and their heartbeats.

`processing_queue` in PostgreSQL is the record analysts see; RQ in Redis is what workers pull from
(`services.queue_admin.reconcile` brings the two back in line).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from collections.abc import Iterable

from redis import Redis
from rq.job import Job, JobStatus

from mmos_core.core.redis import get_redis
from mmos_core.core.supervision_state import pid_alive
from mmos_core.jobs.enqueue import fetch_job


def worker_alive(job: Job, connection: Redis, heartbeat_grace_s: float = 120) -> bool:
    """Whether the worker holding `job` still lives: registered, heartbeat recent, and (when it runs
    on this host) its process exists."""
    from rq import Worker

    name = job.worker_name
    if not name:
        return False
    for w in Worker.all(connection=connection):
        if w.name != name:
            continue
        if w.hostname == socket.gethostname() and w.pid and not pid_alive(w.pid):
            return False
        beat = w.last_heartbeat
        return beat is None or (dt.datetime.now(dt.UTC) - beat.replace(tzinfo=dt.UTC)).total_seconds() < heartbeat_grace_s
    return False


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
    job = fetch_job(rq_job_id, connection)
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


def take_off_queue(rq_job_id: str, target_queue: str, connection: Redis | None = None) -> bool | None:
    """Prepare a not-yet-started job to move to `target_queue` (after a re-prioritise was committed).

    A queued or scheduled job on another queue is deleted there, so the caller can enqueue it on the
    new one (a scheduled retry then runs as soon as a worker is free). A started job is left alone.

    Returns:
        False: the job has started (leave it); True: it already waits on `target_queue`;
        None: it is gone now, enqueue it on `target_queue`.
    """
    connection = connection or get_redis()
    existing = fetch_job(rq_job_id, connection)
    if existing is not None:
        status = existing.get_status(refresh=True)
        if status == JobStatus.STARTED:
            return False
        if status == JobStatus.QUEUED and existing.origin == target_queue:
            return True
        existing.delete()
    return None


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
