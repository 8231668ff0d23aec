"""Figures for the live inference page: recent rate, latency per model, confidence, hallucinations, lake inflow.

Recent figures come from `asi_inferences` directly (the last hour at minute resolution, the last
24 hours at hour resolution); longer history from the `asi_performance_summary` rollup.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from mmos_core.services.inference_log import zero_shot_accuracy
from mmos_core.services.model_registry import performance_summary


@dataclass(frozen=True)
class LatencyRow:
    """Latency of one model over a window: p50 / p95 in ms and the number of inferences."""

    model_name: str
    n: int
    p50_ms: float
    p95_ms: float


def inference_rate(*, session: Session, minutes: int = 60) -> list[dict]:
    """Inferences per minute over the last `minutes`, by kind: [{minute, kind, n}] (UTC minutes)."""
    rows = session.execute(
        text(
            "SELECT date_trunc('minute', created_at) AS minute, kind, COUNT(*) AS n FROM asi_inferences "
            "WHERE created_at >= now() - make_interval(mins => :m) GROUP BY 1, 2 ORDER BY 1"
        ),
        {"m": minutes},
    )
    return [dict(r._mapping) for r in rows]


def latency_by_model(*, session: Session, minutes: int = 60) -> list[LatencyRow]:
    """p50 / p95 of processing_time_ms per model over the last `minutes` (percentile_cont, continuous)."""
    rows = session.execute(
        text(
            "SELECT COALESCE(m.name, '(unregistered)') AS model_name, COUNT(*) AS n, "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY i.processing_time_ms) AS p50, "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY i.processing_time_ms) AS p95 "
            "FROM asi_inferences i LEFT JOIN onnx_models m ON m.id = i.onnx_model_id "
            "WHERE i.created_at >= now() - make_interval(mins => :m) GROUP BY 1 ORDER BY 1"
        ),
        {"m": minutes},
    )
    return [LatencyRow(r.model_name, int(r.n), float(r.p50), float(r.p95)) for r in rows]


def confidence_values(*, session: Session, hours: int = 24, limit: int = 20_000) -> list[float]:
    """Measured confidences (0-1) of the latest inferences in the window, for a histogram."""
    rows = session.execute(
        text(
            "SELECT confidence FROM asi_inferences WHERE created_at >= now() - make_interval(hours => :h) "
            "ORDER BY created_at DESC LIMIT :lim"
        ),
        {"h": hours, "lim": limit},
    )
    return [float(r.confidence) for r in rows if r.confidence is not None]


def hourly(*, session: Session, hours: int = 24) -> list[dict]:
    """Per UTC hour of the last `hours`: inferences, hallucination rate, lake inflow (live, not the rollup)."""
    rows = session.execute(
        text(
            "SELECT date_trunc('hour', created_at, 'UTC') AS hour, COUNT(*) AS n, "
            "AVG(hallucination_detected::int)::float AS hallucination_rate, "
            "COUNT(*) FILTER (WHERE lake_worthy) AS lake_inflow "
            "FROM asi_inferences WHERE created_at >= now() - make_interval(hours => :h) GROUP BY 1 ORDER BY 1"
        ),
        {"h": hours},
    )
    return [dict(r._mapping) for r in rows]


def history(*, session: Session, days: int = 7) -> list[dict]:
    """The hourly rollup (`asi_performance_summary`, as of its last refresh) for the last `days`."""

    return performance_summary(session=session, since=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))


def recent_inferences(*, session: Session, limit: int = 50) -> list[dict]:
    """The latest inferences with their measured values and, separately, the monitoring design's convention fields."""
    rows = session.execute(
        text(
            "SELECT i.created_at, i.kind, left(i.input_text, 120) AS text, i.confidence, i.hallucination_detected, "
            "i.archetype, i.lake_worthy, i.processing_time_ms, i.flux_position, i.is_sacred, "
            "b.elp_channels FROM asi_inferences i LEFT JOIN beam_tensors b ON b.id = i.beam_tensor_id "
            "ORDER BY i.created_at DESC, i.id DESC LIMIT :n"
        ),
        {"n": limit},
    )
    return [dict(r._mapping) for r in rows]


def category_accuracy(*, session: Session) -> dict:
    """Zero-shot category accuracy against reviewers' corrections (training_samples): {n, accuracy}."""

    return zero_shot_accuracy(session=session)
