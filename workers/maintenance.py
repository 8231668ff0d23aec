"""RQ job: recurring maintenance, enqueued once per period by `mmos_core.jobs.schedule.tick`."""

from __future__ import annotations

import logging
from typing import Any

from mmos_core.core.db import session_scope
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.catalog.aggregates import refresh_aggregates
from mmos_core.services.model_registry import refresh_performance_summary
from mmos_core.services.quality import refresh_stale_quality
from mmos_core.services.queue_admin import reconcile
from mmos_core.services.report_warmup import warm_quality_reports

log = logging.getLogger(__name__)


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
    out["warmed_reports"] = None
    try:
        with session_scope() as session:
            out["warmed_reports"] = warm_quality_reports(session=session)
    except Exception:
        log.exception("maintenance step report warm-up failed")
    if out["warmed_reports"]:
        log.info("quality reports warmed in %.1f s", sum(out["warmed_reports"].values()))
    if not full:
        return out
    for name, step in (("inference rollup", refresh_performance_summary), ("catalog aggregates", refresh_aggregates)):
        try:
            with session_scope() as session:
                step(session=session)
        except Exception:
            log.exception("maintenance step %s failed", name)
    with session_scope() as session:
        out["rescored_sources"] = refresh_stale_quality(session=session)
    if out["rescored_sources"]:
        log.info("quality re-scored for source(s) %s after new reviews", out["rescored_sources"])
    return out
