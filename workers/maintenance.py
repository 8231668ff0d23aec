"""RQ job: recurring maintenance, enqueued once per period by `mmos_core.jobs.schedule.tick`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from mmos_core.core.db import session_scope
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.catalog.aggregates import refresh_aggregates
from mmos_core.services.model_registry import refresh_performance_summary
from mmos_core.services.quality import refresh_stale_quality
from mmos_core.services.queue_admin import reconcile
from mmos_core.services.report_warmup import warm_quality_reports

log = logging.getLogger(__name__)
T = TypeVar("T")


def _step(name: str, step: Callable[..., T]) -> T | None:
    """Run one maintenance step in its own transaction; a failure is logged and gives None, so it does not
    undo or stop the other steps."""
    try:
        with session_scope() as session:
            return step(session=session)
    except Exception:
        log.exception("maintenance step %s failed", name)
        return None


def run_maintenance(full: bool = False, stale_after_s: int = 60) -> dict[str, Any]:
    """Re-enqueue orphaned batches and compute the Quality & cost page's default reports if the data or the
    code changed since the last time (`services.report_warmup`); with `full`, also refresh the hourly inference
    rollup, the model catalog's aggregates and the quality of sources with new reviews (docs/quality.md).

    Each step has its own transaction, so one failing step (logged) does not undo the others.

    Returns:
        {"reenqueued": [job ids], "warmed_reports": {report: seconds} or None, "rescored_sources": [ids]}
        (the last only with `full`).
    """
    out: dict[str, Any] = {}
    with session_scope() as session:
        todo = reconcile(session=session, stale_after_s=stale_after_s)
        enqueue_batches(todo, session=session)
    out["reenqueued"] = [j.rq_job_id for j in todo]
    if todo:
        log.info("re-enqueued %d orphaned job(s): %s", len(todo), ", ".join(out["reenqueued"]))
    out["warmed_reports"] = _step("report warm-up", warm_quality_reports)
    if out["warmed_reports"]:
        log.info("quality reports warmed in %.1f s", sum(out["warmed_reports"].values()))
    if not full:
        return out
    _step("inference rollup", refresh_performance_summary)
    _step("catalog aggregates", refresh_aggregates)
    with session_scope() as session:
        out["rescored_sources"] = refresh_stale_quality(session=session)
    if out["rescored_sources"]:
        log.info("quality re-scored for source(s) %s after new reviews", out["rescored_sources"])
    return out
