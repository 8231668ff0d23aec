"""Recurring maintenance, once per period for the whole deployment however many workers run.

Every worker calls `tick()` every `RECONCILE_EVERY_S` seconds; the first to take the period's Redis
key (`SET NX` with an expiry) enqueues the `MAINTENANCE` job under a job id naming the period, so N
worker replicas enqueue — and one of them runs — the work once (docs/ARCHITECTURE.md, "Jobs").
"""

from __future__ import annotations

import time

from redis import Redis

from mmos_core.core.redis import get_redis
from mmos_core.jobs.catalog import MAINTENANCE
from mmos_core.jobs.enqueue import enqueue

__all__ = ["RECONCILE_EVERY_S", "ROLLUP_EVERY_PERIODS", "tick"]

#: Seconds between maintenance runs (reconcile orphaned batches).
RECONCILE_EVERY_S = 60
#: Every this many periods the run also refreshes rollups, aggregates and stale quality (5 min).
ROLLUP_EVERY_PERIODS = 5
_LOCK_PREFIX = "mmos:maintenance:period:"


def tick(*, connection: Redis | None = None, now: float | None = None, period_s: int = RECONCILE_EVERY_S) -> bool:
    """Enqueue this period's maintenance job unless another worker already did.

    Args:
        now: seconds since the epoch (default: the clock); the period is `now // period_s`.
    Returns:
        Whether this call enqueued the job.
    """
    connection = connection or get_redis()
    period = int((time.time() if now is None else now) // period_s)
    if not connection.set(f"{_LOCK_PREFIX}{period}", "1", nx=True, ex=period_s * 3):
        return False
    enqueue(
        MAINTENANCE, full=(period % ROLLUP_EVERY_PERIODS == 0), stale_after_s=period_s,
        job_id=MAINTENANCE.job_id(period), connection=connection, description=f"maintenance period {period}",
    )
    return True
