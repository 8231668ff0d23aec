"""Manager dashboard: spend (per day, model, source type), quality against cost, budgets and savings.

Money is USD throughout (`Decimal`). Days are calendar days in UTC. A date range `start`..`end`
is inclusive at both ends.

Spend is read from `extraction_calls.cost_usd` (one row per LLM call, priced with the batch's
litellm price snapshot), grouped by the day the call was made: a batch that runs over midnight
is split between the two days, which a per-batch total could not do.

Quality is what the workbench measures today, and it is labelled for what it is:

* "self-reported quality" = `model_performance.extraction_quality_avg`, the core design section 4's
  AVG(confidence × 10) on a 0-10 scale: the model grading itself;
* "quotes found in source" = `model_performance.located_share`, 0-1: the share of a batch's
  direct quotes that were located in the source text — measured, not claimed.
"""

from __future__ import annotations

__all__ = ["DAILY_BUDGET", "BudgetPermissionError", "BudgetView", "get_budget", "set_budget"]

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.core.domain import BatchStatus
from mmos_core.models import (
    ExtractionCall,
    ModelPerformance,
    ProcessingBatch,
    Source,
    SourceChunk,
)
from mmos_core.services.budgets import (  # re-exported: the Dashboard page reads budgets from here
    DAILY_BUDGET,
    BudgetPermissionError,
    BudgetView,
    get_budget,
    set_budget,
    spent_on_day,
)

#: The core design section 7 ("Progressive Model Downgrade"): a model is good enough at quality ≥ 7.0 (0-10).
DEFAULT_QUALITY_THRESHOLD = 7.0

QualityMetric = Literal["measured", "self_reported", "located"]

#: Human labels of the quality signals, for charts and tables.
QUALITY_LABELS: dict[str, str] = {
    "measured": "measured quality (grounding, agreement, human verdicts; docs/quality.md), 0-10",
    "self_reported": "self-reported quality = avg confidence × 10 (the core design rule), 0-10",
    "located": "quotes found in source (measured share, 0-1)",
}


# --- spend ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpendRow:
    """Spend of the LLM calls of one (UTC day, model, source type)."""

    day: dt.date
    model_name: str
    source_type: str
    cost_usd: Decimal
    calls: int
    input_tokens: int
    output_tokens: int


def _range_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    if end < start:
        raise ValueError("The end of the date range is before its start.")
    lo = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return lo, hi


def spend_rows(*, session: Session, start: dt.date, end: dt.date) -> list[SpendRow]:
    """Spend of every LLM call made between `start` and `end` (inclusive, UTC days).

    Returns:
        One `SpendRow` per (day, model, source type) with calls, ordered by day, model, source type.
        Failed and malformed calls count: they were paid for.
    Raises:
        ValueError: `end` before `start`.
    """
    lo, hi = _range_bounds(start, end)
    day = func.date(func.timezone("UTC", ExtractionCall.created_at)).label("day")
    q = (
        select(
            day,
            ProcessingBatch.model_name,
            Source.source_type,
            func.coalesce(func.sum(ExtractionCall.cost_usd), 0).label("cost"),
            func.count().label("calls"),
            func.coalesce(func.sum(ExtractionCall.input_tokens), 0).label("tin"),
            func.coalesce(func.sum(ExtractionCall.output_tokens), 0).label("tout"),
        )
        .join(ProcessingBatch, ProcessingBatch.id == ExtractionCall.batch_id)
        .join(SourceChunk, SourceChunk.id == ExtractionCall.chunk_id)
        .join(Source, Source.id == SourceChunk.source_id)
        .where(ExtractionCall.created_at >= lo, ExtractionCall.created_at < hi)
        .group_by(day, ProcessingBatch.model_name, Source.source_type)
        .order_by(day, ProcessingBatch.model_name, Source.source_type)
    )
    return [
        SpendRow(
            day=r.day,
            model_name=r.model_name,
            source_type=r.source_type,
            cost_usd=Decimal(r.cost),
            calls=int(r.calls),
            input_tokens=int(r.tin),
            output_tokens=int(r.tout),
        )
        for r in session.execute(q)
    ]


def spend_by(rows: list[SpendRow], key: Literal["day", "model_name", "source_type"]) -> dict[object, Decimal]:
    """Total USD of `rows` per value of `key` (a day, a model name or a source type), in key order."""
    totals: dict[object, Decimal] = defaultdict(Decimal)
    for r in rows:
        totals[getattr(r, key)] += r.cost_usd
    return dict(sorted(totals.items()))


def spend_on_day(*, session: Session, day: dt.date) -> Decimal:
    """USD recorded on `extraction_calls` during the UTC day (the same figure the budget guard checks)."""
    return spent_on_day(session=session, day=day)


# --- quality against cost ------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelCostQuality:
    """One model over the completed batches evaluated in the range (the core design section 4 B, per model).

    `self_reported_quality` is the average of the batches' AVG(confidence × 10) (0-10);
    `located_share` the average share of direct quotes found in the source (0-1, None when the
    model produced no direct quotes); `cost_per_fragment_usd` = total cost / total fragments.
    """

    model_name: str
    model_provider: str
    batches: int
    sources: int
    fragments: int
    cost_usd: Decimal
    cost_per_fragment_usd: Decimal | None
    self_reported_quality: float | None
    located_share: float | None
    relevance_avg: float | None
    measured_quality: float | None = None

    def quality(self, metric: QualityMetric) -> float | None:
        """The chosen quality signal: 'measured' (0-10, mean of the batches' measured scores),
        'self_reported' (0-10) or 'located' (0-1)."""
        if metric == "measured":
            return self.measured_quality
        return self.self_reported_quality if metric == "self_reported" else self.located_share


def cost_and_quality_by_model(*, session: Session, start: dt.date, end: dt.date) -> list[ModelCostQuality]:
    """Quality and cost per model from `model_performance` rows evaluated between `start` and `end`.

    Legacy imports write no performance row (their cost and model are unknown), so they never
    appear here. Ordered by model name.

    Raises:
        ValueError: `end` before `start`.
    """
    lo, hi = _range_bounds(start, end)
    q = (
        select(
            ModelPerformance.model_name,
            func.min(ModelPerformance.model_provider).label("provider"),
            func.count(func.distinct(ModelPerformance.batch_id)).label("batches"),
            func.count(func.distinct(ModelPerformance.source_id)).label("sources"),
            func.coalesce(func.sum(ModelPerformance.fragments_extracted), 0).label("fragments"),
            func.coalesce(func.sum(ModelPerformance.cost_usd), 0).label("cost"),
            func.avg(ModelPerformance.extraction_quality_avg).label("quality"),
            func.avg(ModelPerformance.located_share).label("located"),
            func.avg(ModelPerformance.relevance_score_avg).label("relevance"),
            func.avg(ModelPerformance.quality_score).label("measured"),
        )
        .where(ModelPerformance.evaluation_date >= lo, ModelPerformance.evaluation_date < hi)
        .group_by(ModelPerformance.model_name)
        .order_by(ModelPerformance.model_name)
    )
    out = []
    for r in session.execute(q):
        n = int(r.fragments)
        cost = Decimal(r.cost)
        out.append(
            ModelCostQuality(
                model_name=r.model_name,
                model_provider=r.provider,
                batches=int(r.batches),
                sources=int(r.sources),
                fragments=n,
                cost_usd=cost,
                cost_per_fragment_usd=(cost / n) if n else None,
                self_reported_quality=float(r.quality) if r.quality is not None else None,
                located_share=float(r.located) if r.located is not None else None,
                relevance_avg=float(r.relevance) if r.relevance is not None else None,
                measured_quality=float(r.measured) if r.measured is not None else None,
            )
        )
    return out


def cheapest_above(
    models: list[ModelCostQuality], threshold: float, metric: QualityMetric = "self_reported"
) -> ModelCostQuality | None:
    """The cheapest model whose quality reaches `threshold` (the core design section 7's downgrade rule).

    Args:
        threshold: on the metric's scale — 0-10 for 'self_reported', 0-1 for 'located'.
    Returns:
        Among models with quality ≥ threshold and at least one fragment, the one with the lowest
        cost per fragment (ties: higher quality, then model name); None when no model qualifies.
    """
    eligible = [
        m
        for m in models
        if m.cost_per_fragment_usd is not None and m.quality(metric) is not None and m.quality(metric) >= threshold
    ]
    if not eligible:
        return None
    return min(eligible, key=lambda m: (m.cost_per_fragment_usd, -(m.quality(metric) or 0), m.model_name))


# --- savings against a baseline ------------------------------------------------------------------


@dataclass(frozen=True)
class Savings:
    """What a model saved against the baseline on the sources both processed.

    `savings_usd` = Σ_s (baseline_cost(s) − model_cost(s));
    `savings_pct` = savings_usd / Σ_s baseline_cost(s) × 100 (None when the baseline cost nothing).
    Positive means the model is cheaper than the baseline.
    """

    model_name: str
    sources: int
    baseline_cost_usd: Decimal
    model_cost_usd: Decimal
    savings_usd: Decimal
    savings_pct: float | None


def savings_vs_baseline(
    *, session: Session, baseline_model: str, start: dt.date, end: dt.date
) -> list[Savings]:
    """Savings of every other model against `baseline_model`, source by source.

    Formula: for each source s with a completed full-source batch of both the baseline B and the
    model M evaluated in the range (the latest such batch of each when there are several;
    regenerate batches, which cover only some chunks, are left out):

        savings_usd(M) = Σ_s [cost(B, s) − cost(M, s)]
        savings_pct(M) = savings_usd(M) / Σ_s cost(B, s) × 100

    where cost(X, s) is `model_performance.cost_usd` of X's batch on s (the batch's litellm cost,
    USD). Models sharing no source with the baseline are omitted. Ordered by savings_usd,
    largest first.

    Raises:
        ValueError: `end` before `start`.
    """
    lo, hi = _range_bounds(start, end)
    rows = session.execute(
        select(ModelPerformance.model_name, ModelPerformance.source_id, ModelPerformance.batch_id, ModelPerformance.cost_usd)
        .join(ProcessingBatch, ProcessingBatch.id == ModelPerformance.batch_id)
        .where(
            ModelPerformance.evaluation_date >= lo,
            ModelPerformance.evaluation_date < hi,
            ProcessingBatch.batch_status == BatchStatus.completed.value,
            ProcessingBatch.chunk_scope.is_(None),
        )
        .order_by(ModelPerformance.batch_id)
    ).all()
    latest: dict[tuple[str, int], Decimal] = {}
    for model, source_id, _batch_id, cost in rows:  # ordered by batch id: later batches overwrite
        latest[(model, source_id)] = Decimal(cost)
    baseline = {s: c for (m, s), c in latest.items() if m == baseline_model}
    per_model: dict[str, list[tuple[Decimal, Decimal]]] = defaultdict(list)
    for (model, source_id), cost in latest.items():
        if model != baseline_model and source_id in baseline:
            per_model[model].append((baseline[source_id], cost))
    out = []
    for model, pairs in per_model.items():
        base = sum((b for b, _ in pairs), Decimal(0))
        mine = sum((c for _, c in pairs), Decimal(0))
        saved = base - mine
        out.append(
            Savings(
                model_name=model,
                sources=len(pairs),
                baseline_cost_usd=base,
                model_cost_usd=mine,
                savings_usd=saved,
                savings_pct=float(saved / base * 100) if base else None,
            )
        )
    return sorted(out, key=lambda s: (-s.savings_usd, s.model_name))


def models_with_performance(*, session: Session) -> list[str]:
    """Names of the models that have at least one `model_performance` row (baseline choices)."""
    return list(session.scalars(select(ModelPerformance.model_name).distinct().order_by(ModelPerformance.model_name)))


# --- budget --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayAgainstBudget:
    """One day's spend against the daily limit: `over` is True when spend exceeds the limit."""

    day: dt.date
    spent_usd: Decimal
    limit_usd: Decimal | None
    over: bool


def days_against_budget(rows: list[SpendRow], budget: BudgetView) -> list[DayAgainstBudget]:
    """Each day present in `rows` with its spend compared with `budget.daily_limit_usd`."""
    limit = budget.daily_limit_usd
    return [
        DayAgainstBudget(day=d, spent_usd=c, limit_usd=limit, over=limit is not None and c > limit)
        for d, c in spend_by(rows, "day").items()
    ]


def models_over_fragment_limit(models: list[ModelCostQuality], budget: BudgetView) -> list[str]:
    """Names of the models whose cost per fragment exceeds `budget.per_fragment_limit_usd`."""
    limit = budget.per_fragment_limit_usd
    if limit is None:
        return []
    return [m.model_name for m in models if m.cost_per_fragment_usd is not None and m.cost_per_fragment_usd > limit]
