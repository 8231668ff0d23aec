"""Compute the Quality & cost page's default reports in the background, so that the first visitor after a
deploy or a restart reads their per-source shares from Redis instead of computing them (docs/quality.md,
"Reports at scale"; bench/README.md, page timings).

Shares are keyed by a hash of the code that computes them (`services.data_version`), so after a deploy every
share is missing and the page's first render would compute every report over every source (10.7 s at
100,000 fragments). The maintenance job calls `warm_quality_reports` once a minute; it does nothing while
the data and the code are unchanged (one small query and one Redis lookup), and otherwise computes exactly
the reports the page opens with, with the page's own defaults, so the page then finds every share.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.orm import Session

from mmos_core.services.calibration import calibration
from mmos_core.services.data_version import data_version, mark_shares_warmed, shares_warmed
from mmos_core.services.model_quality import model_quality
from mmos_core.services.qa import cross_batch_agreement
from mmos_core.services.replay import replay_cascades

__all__ = ["REPLAY_DEFAULT_METRIC", "REPLAY_DEFAULT_MODELS", "replay_default_models", "warm_quality_reports"]

T = TypeVar("T")

#: How many models the cascade replay starts with (the first names in sorted order), and its cost measure:
#: the page's defaults, written once here so the warm-up computes the same reports the page asks for.
REPLAY_DEFAULT_MODELS = 3
REPLAY_DEFAULT_METRIC = "seconds"


def replay_default_models(names: Sequence[str]) -> list[str]:
    """The replay's default models: the first `REPLAY_DEFAULT_MODELS` of the sorted model names."""
    return sorted(names)[:REPLAY_DEFAULT_MODELS]


def warm_quality_reports(*, session: Session, force: bool = False) -> dict[str, float] | None:
    """Compute the page's default reports over all sources (pooled quality per model, cascade replay of
    the default models, cross-batch agreement, calibration), which stores each source's share in Redis.

    Args:
        force: compute even when this code already warmed this data version.
    Returns:
        Seconds each report took, e.g. {"model_quality": 0.2, "replay": 0.3, ...}; None when nothing was
        to do (unchanged data and code since the last warm-up).
    """
    version = data_version(session=session)
    if not force and shares_warmed(version):
        return None
    took: dict[str, float] = {}

    def timed(name: str, report: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        try:
            return report()
        finally:
            took[name] = time.perf_counter() - t0

    rows = timed("model_quality", lambda: model_quality(session=session))
    models = replay_default_models({r.model_name for r in rows})
    if len(models) >= 2:
        try:
            timed("replay", lambda: replay_cascades(session=session, models=models, cost_metric=REPLAY_DEFAULT_METRIC))
        except ValueError:  # no source where every default model has a full batch: the page says so too
            pass
    timed("qa", lambda: cross_batch_agreement(session=session))
    timed("calibration", lambda: calibration(session=session))
    mark_shares_warmed(version)
    return took
