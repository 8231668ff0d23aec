"""`JobSpec`: how one kind of RQ job runs (function path, queue, timeout, retries, failure handler).

A spec names its function by dotted path, so `mmos_core` never imports `workers/` (docs/ARCHITECTURE.md).
Values that users tune (timeouts, attempts) are read from `Settings` when the job is enqueued.
"""

from __future__ import annotations

import dataclasses

from rq import Callback, Retry

from mmos_core.core.config import Settings

__all__ = ["JobSpec"]


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """One kind of job, declared once in `mmos_core.jobs.catalog`.

    Attributes:
        name: prefix of job ids (`f"{name}-{key}"`) and of descriptions.
        func: dotted path of the job function in `workers/`.
        queue: RQ queue name; None when each enqueue picks it (extraction batches by priority).
        timeout_s: job timeout in seconds, or the name of the `Settings` field that holds it.
        retry_intervals: seconds before retry 1, 2, …; RQ repeats the last interval for later retries.
        max_retries: retries after the first attempt, or the name of a `Settings` field holding the
            number of *attempts* (retries = attempts − 1).
        on_failure: dotted path of the failure callback (runs once per failed attempt), or None.
        result_ttl_s, failure_ttl_s: how long RQ keeps a finished / failed job, in seconds.
    """

    name: str
    func: str
    queue: str | None
    timeout_s: int | str
    retry_intervals: tuple[int, ...] = ()
    max_retries: int | str = 0
    on_failure: str | None = None
    result_ttl_s: int = 7 * 24 * 3600
    failure_ttl_s: int = 30 * 24 * 3600

    def job_id(self, key: object) -> str:
        """The deterministic job id for `key` (one job per batch, conversation, …): `f"{name}-{key}"`."""
        return f"{self.name}-{key}"

    def timeout(self, settings: Settings) -> int:
        """Job timeout in seconds for these settings."""
        return int(getattr(settings, self.timeout_s)) if isinstance(self.timeout_s, str) else self.timeout_s

    def retries(self, settings: Settings) -> int:
        """Retries after the first attempt for these settings (≥ 0)."""
        if isinstance(self.max_retries, str):
            return max(0, int(getattr(settings, self.max_retries)) - 1)
        return max(0, self.max_retries)

    def enqueue_options(self, settings: Settings, *, retry_intervals: list[int] | None = None) -> dict:
        """Keyword arguments for `rq.Queue.enqueue` (timeout, TTLs, `Retry`, failure callback)."""
        retries = self.retries(settings)
        intervals = list(retry_intervals if retry_intervals is not None else self.retry_intervals) or [0]
        return {
            "job_timeout": self.timeout(settings),
            "result_ttl": self.result_ttl_s,
            "failure_ttl": self.failure_ttl_s,
            "retry": Retry(max=retries, interval=intervals) if retries else None,
            "on_failure": Callback(self.on_failure) if self.on_failure else None,
        }
