"""The optimizer (the optimizer design): the sweet spot, process_batch strategies, reprocess suggestions.

* `find_sweet_spot` — among models with completed batches in a scope (a source, a source type, a
  fragment category), the cheapest whose quality **lower bound** (95 %, `mmos_core.analysis.quality_score`) reaches
  the threshold and whose cost per fragment is within the budget. Using the lower bound means a model
  with three lucky fragments does not beat one with three hundred good ones.
* `process_batch(source_ids, strategy)` — `aggressive`: the cheapest model on every chunk;
  `conservative`: the model with the best measured quality lower bound for the source type (the most
  expensive when nothing is measured); `progressive`: the cheapest model on a sample of chunks, then
  escalate model by model while the sample's quality lower bound stays below the threshold (or its
  cost per fragment above the budget); the first that passes runs on every chunk. If none passes, the
  most expensive runs (the core design §7 A: "default to best"). Each step is an `optimization_runs` decision.
  A model whose provider fails is replaced by the next one, and that batch is marked `fallback`.
* `reprocess_suggestions` — the core design Workflow 2: expensive batches with average relevance < 8,
  with the sweet-spot model that would have cost less.

Per-source-type thresholds come from `settings.quality_thresholds` (the optimizer design's table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.analysis.quality_score import QualityScore
from mmos_core.core.config import get_settings
from mmos_core.core.domain import BatchStatus, OptimizationStatus
from mmos_core.core.vectors import Embed
from mmos_core.llm.catalog import available_models
from mmos_core.models import Fragment, OptimizationRun, ProcessingBatch, Source, SourceChunk, SourceProcessing
from mmos_core.services.batches import QueuedJob, queue_extraction
from mmos_core.services.model_quality import model_quality
from mmos_core.services.quality import COST_METRICS, batch_quality, model_cost_rank

STRATEGIES = ("progressive", "aggressive", "conservative")


def quality_threshold_for(source_type: str | None) -> float:
    """Minimum 0-10 quality for a source type (`settings.quality_thresholds`, else the default)."""
    settings = get_settings()
    return float(settings.quality_thresholds.get(source_type or "", settings.quality_threshold_default))


@dataclass(frozen=True)
class Candidate:
    """One model considered for the sweet spot, and why it was or was not chosen.

    `cost_per_fragment` in USD; `seconds_per_fragment` in model seconds (sum of LLM call durations).
    """

    model_name: str
    quality: QualityScore
    fragments: int
    batches: int
    cost_per_fragment: Decimal | None
    seconds_per_fragment: float | None
    eligible: bool
    reason: str

    def cost(self, metric: str) -> float:
        value = self.cost_per_fragment if metric == "usd" else self.seconds_per_fragment
        return float("inf") if value is None else float(value)


@dataclass(frozen=True)
class SweetSpot:
    """Result of `find_sweet_spot`: the chosen model (None when no model qualifies), every candidate,
    the baseline, and the saving against it on `cost_metric` (percent; None when not computable)."""

    model_name: str | None
    quality_threshold: float
    budget_per_fragment: Decimal | None
    cost_metric: str
    baseline_model: str | None
    saving_pct: float | None
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def chosen(self) -> Candidate | None:
        return next((c for c in self.candidates if c.model_name == self.model_name), None)


def find_sweet_spot(
    *,
    session: Session,
    source_id: int | None = None,
    source_type: str | None = None,
    category: str | None = None,
    quality_threshold: float | None = None,
    budget_per_fragment: Decimal | float | None = None,
    cost_metric: str = "usd",
    embed: Embed | None = None,
) -> SweetSpot:
    """The cheapest model whose quality lower bound ≥ threshold within the per-fragment budget.

    Args:
        source_id / source_type / category: the scope (all sources when none is given).
        quality_threshold: 0-10; default: the source type's threshold (`quality_threshold_for`).
        budget_per_fragment: USD per fragment; None = no budget.
        cost_metric: 'usd' (cost per fragment) or 'seconds' (model seconds per fragment — the real price
            of local models, whose USD cost is 0); cheaper = lower on this metric, ties by price rank.
    Raises:
        ValueError: unknown cost metric or a threshold outside 0-10.
    """
    if cost_metric not in COST_METRICS:
        raise ValueError(f"cost_metric must be one of {COST_METRICS}")
    if source_id is not None and source_type is None:
        source = session.get(Source, source_id)
        source_type = source.source_type if source else None
        scope = {"source_ids": [source_id]}
    else:
        scope = {"source_type": source_type}
    threshold = quality_threshold_for(source_type) if quality_threshold is None else float(quality_threshold)
    if not 0 <= threshold <= 10:
        raise ValueError("quality_threshold must be between 0 and 10")
    budget = None if budget_per_fragment is None else Decimal(str(budget_per_fragment))
    rows = model_quality(session=session, category=category, embed=embed, **scope)
    candidates = []
    for mq in rows:
        reasons = []
        if mq.score.low is None:
            reasons.append("no measured quality")
        elif mq.score.low < threshold:
            reasons.append(f"quality lower bound {mq.score.low:.2f} < {threshold:g}")
        if budget is not None and mq.cost_per_fragment is not None and mq.cost_per_fragment > budget:
            reasons.append(f"${mq.cost_per_fragment:.6f}/fragment > budget ${budget:.6f}")
        if not mq.fragments:
            reasons.append("no fragments")
        candidates.append(
            Candidate(
                model_name=mq.model_name,
                quality=mq.score,
                fragments=mq.fragments,
                batches=mq.batches,
                cost_per_fragment=mq.cost_per_fragment,
                seconds_per_fragment=mq.seconds_per_fragment,
                eligible=not reasons,
                reason="; ".join(reasons) or "meets threshold and budget",
            )
        )
    eligible = sorted(
        (c for c in candidates if c.eligible),
        key=lambda c: (c.cost(cost_metric), model_cost_rank(c.model_name), -(c.quality.score or 0)),
    )
    chosen = eligible[0] if eligible else None
    names = [c.model_name for c in candidates]
    configured = get_settings().quality_baseline_model
    baseline = configured if configured in names else max(
        candidates, key=lambda c: (model_cost_rank(c.model_name), c.cost("usd") if c.cost_per_fragment is not None else 0, c.model_name),
    ).model_name if candidates else None
    saving = None
    if chosen is not None and baseline is not None:
        base = next(c for c in candidates if c.model_name == baseline)
        b, c = base.cost(cost_metric), chosen.cost(cost_metric)
        if 0 < b < float("inf") and c < float("inf"):
            saving = round(100 * (b - c) / b, 1)
    return SweetSpot(
        model_name=chosen.model_name if chosen else None,
        quality_threshold=threshold,
        budget_per_fragment=budget,
        cost_metric=cost_metric,
        baseline_model=baseline,
        saving_pct=saving,
        candidates=candidates,
    )


# --- process_batch strategies --------------------------------------------------------------------


def default_model_ladder() -> list[str]:
    """Every model that can be queued now, cheapest first (`model_cost_rank`)."""
    return sorted((m.name for m in available_models()), key=model_cost_rank)


def sample_chunk_ids(session: Session, source_id: int, n: int) -> list[int]:
    """`n` chunks spread evenly over the source (first, …, last), or all when it has ≤ n."""
    ids = list(session.scalars(select(SourceChunk.id).where(SourceChunk.source_id == source_id).order_by(SourceChunk.chunk_index)))
    if len(ids) <= n:
        return ids
    picks = np.linspace(0, len(ids) - 1, n).round().astype(int)
    return sorted({ids[i] for i in picks})


def _decide(run: OptimizationRun, **decision) -> None:
    run.decisions = [*(run.decisions or []), decision]  # new list so the JSONB change is tracked


def process_batch(
    *,
    session: Session,
    source_ids: list[int],
    strategy: str,
    models: list[str] | None = None,
    quality_threshold: float | None = None,
    budget_per_fragment: Decimal | float | None = None,
    sample_chunks: int = 3,
    user_id: int | None = None,
) -> tuple[list[OptimizationRun], list[QueuedJob]]:
    """Start one optimization run per source (the optimizer design `process_batch`). Does not commit or enqueue:
    the caller commits, then hands the jobs to `services.batches.enqueue_batches`.

    Args:
        models: the ladder to use, cheapest first (default: `default_model_ladder`).
        quality_threshold: default per source type (`quality_threshold_for`).
        sample_chunks: chunks per progressive sample.
    Raises:
        ValueError: unknown strategy, no models, or no sources.
        LookupError: an unknown source.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
    if not source_ids:
        raise ValueError("Choose at least one source.")
    ladder = sorted(dict.fromkeys(models or default_model_ladder()), key=model_cost_rank)
    if not ladder:
        raise ValueError("No model is available.")
    budget = None if budget_per_fragment is None else Decimal(str(budget_per_fragment))
    runs, jobs = [], []
    for sid in source_ids:
        source = session.get(Source, sid)
        if source is None:
            raise LookupError(f"No source with id {sid}.")
        threshold = quality_threshold_for(source.source_type) if quality_threshold is None else float(quality_threshold)
        run = OptimizationRun(
            strategy=strategy, source_id=sid, models=ladder, quality_threshold=threshold,
            budget_per_fragment=budget, step=0, status=OptimizationStatus.full.value, batch_ids=[], decisions=[], created_by=user_id,
        )
        session.add(run)
        if strategy == "aggressive":
            model, why = ladder[0], "aggressive: the cheapest model on every chunk"
        elif strategy == "conservative":
            model, why = _best_measured(session, source.source_type, ladder)
        else:
            model, why = ladder[0], "progressive: the cheapest model first, on a sample"
            run.status = OptimizationStatus.sampling.value
            run.sample_chunk_ids = sample_chunk_ids(session, sid, sample_chunks)
        run.step = ladder.index(model)
        queued = queue_extraction(
            session=session, source_id=sid, model_names=[model], processor_name=f"optimizer:{strategy}",
            chunk_ids=run.sample_chunk_ids if run.status == OptimizationStatus.sampling.value else None, selected_by="auto",
        )
        run.batch_ids = [*run.batch_ids, queued[0].batch_id]
        _decide(run, step=run.step, model=model, action="sample" if run.status == OptimizationStatus.sampling.value else "full",
                batch_id=queued[0].batch_id, reason=why)
        session.flush()
        runs.append(run)
        jobs += queued
    return runs, jobs


def _best_measured(session: Session, source_type: str, ladder: list[str]) -> tuple[str, str]:
    rows = [mq for mq in model_quality(session=session, source_type=source_type) if mq.model_name in ladder and mq.score.low is not None]
    if rows:
        best = max(rows, key=lambda mq: (mq.score.low, model_cost_rank(mq.model_name)))
        return best.model_name, f"conservative: best measured quality lower bound for {source_type} ({best.score.low:.2f})"
    return ladder[-1], "conservative: nothing measured yet for this source type, so the most expensive model"


def advance_after_batch(*, session: Session, batch_id: int, embed: Embed | None = None) -> tuple[list[QueuedJob], dict | None]:
    """Next step of the optimization run that owns `batch_id` (call after the batch finished, in a
    new transaction). Returns (jobs to enqueue after commit, a `model.optimized` payload when the run
    has settled on its model — else None)."""
    run = session.scalar(
        select(OptimizationRun)
        .where(OptimizationRun.batch_ids.any(batch_id), OptimizationRun.status.in_((OptimizationStatus.sampling.value, OptimizationStatus.full.value)))
        .with_for_update()
    )
    batch = session.get(ProcessingBatch, batch_id)
    if run is None or batch is None or batch.batch_status not in (BatchStatus.completed.value, BatchStatus.failed.value):
        return [], None
    ladder = list(run.models)
    threshold = float(run.quality_threshold)

    if batch.batch_status == BatchStatus.failed.value:
        nxt = run.step + 1
        if nxt >= len(ladder):
            run.status = OptimizationStatus.failed.value
            _decide(run, step=run.step, model=batch.model_name, action="give_up", batch_id=batch_id,
                    reason=f"{batch.model_name} failed ({(batch.error_message or '')[:200]}) and no model is left")
            return [], None
        run.step = nxt
        action = "sample" if run.status == OptimizationStatus.sampling.value else OptimizationStatus.full.value
        queued = queue_extraction(
            session=session, source_id=run.source_id, model_names=[ladder[nxt]], processor_name=f"optimizer:{run.strategy}",
            chunk_ids=run.sample_chunk_ids if action == "sample" else None, selected_by="fallback",
        )
        run.batch_ids = [*run.batch_ids, queued[0].batch_id]
        _decide(run, step=nxt, model=ladder[nxt], action=action, batch_id=queued[0].batch_id,
                reason=f"fallback: {batch.model_name} failed ({(batch.error_message or '')[:200]})")
        return queued, None

    if run.status == OptimizationStatus.full.value:
        run.status = OptimizationStatus.completed.value
        run.chosen_model = batch.model_name
        q = batch_quality(session=session, batch_id=batch_id, embed=embed)
        _decide(run, step=run.step, model=batch.model_name, action="done", batch_id=batch_id,
                quality=q.score.score, quality_low=q.score.low, reason="full run completed")
        return [], _optimized_payload(session, run, q.score)

    # progressive sample finished: judge it
    q = batch_quality(session=session, batch_id=batch_id, embed=embed)
    per_fragment = (q.cost_usd / q.fragments) if q.fragments else None
    budget = run.budget_per_fragment
    passes = q.score.low is not None and q.score.low >= threshold
    within = budget is None or per_fragment is None or per_fragment <= budget
    last = run.step + 1 >= len(ladder)
    if (passes and within) or last:
        reason = (
            f"sample quality {q.score.score} (95% low {q.score.low}) ≥ {threshold:g}"
            if passes and within
            else f"no model reached {threshold:g} on the sample; seed rule: default to the best (most expensive)"
        )
        run.status = OptimizationStatus.full.value
        queued = queue_extraction(
            session=session, source_id=run.source_id, model_names=[batch.model_name],
            processor_name=f"optimizer:{run.strategy}", selected_by="auto",
            selection_confidence=None if q.score.low is None else min(1.0, q.score.low / 10),
        )
        run.batch_ids = [*run.batch_ids, queued[0].batch_id]
        _decide(run, step=run.step, model=batch.model_name, action="full", batch_id=queued[0].batch_id,
                sample_batch_id=batch_id, quality=q.score.score, quality_low=q.score.low,
                cost_per_fragment=None if per_fragment is None else float(per_fragment), reason=reason)
        return queued, None
    run.step += 1
    nxt = ladder[run.step]
    queued = queue_extraction(
        session=session, source_id=run.source_id, model_names=[nxt], processor_name=f"optimizer:{run.strategy}",
        chunk_ids=run.sample_chunk_ids, selected_by="auto",
    )
    run.batch_ids = [*run.batch_ids, queued[0].batch_id]
    why = (f"sample quality lower bound {q.score.low} < {threshold:g}" if not passes
           else f"${per_fragment:.6f}/fragment over the budget")
    _decide(run, step=run.step, model=nxt, action="sample", batch_id=queued[0].batch_id, sample_batch_id=batch_id,
            quality=q.score.score, quality_low=q.score.low, reason=f"escalate from {batch.model_name}: {why}")
    return queued, None


def _optimized_payload(session: Session, run: OptimizationRun, q: QualityScore) -> dict:
    source = session.get(Source, run.source_id)
    return {
        "run_id": run.id, "strategy": run.strategy, "source_id": run.source_id,
        "source_type": source.source_type if source else None, "model_name": run.chosen_model,
        "quality": q.score, "quality_low": q.low, "threshold": float(run.quality_threshold),
        "batches": list(run.batch_ids),
    }


def list_runs(*, session: Session, source_id: int | None = None, limit: int = 50) -> list[OptimizationRun]:
    """Latest optimization runs, newest first."""
    q = select(OptimizationRun).order_by(OptimizationRun.id.desc()).limit(limit)
    if source_id is not None:
        q = q.where(OptimizationRun.source_id == source_id)
    return list(session.scalars(q))


# --- reprocess suggestions (the core design workflow 2) -------------------------------------------------


@dataclass(frozen=True)
class ReprocessSuggestion:
    """An expensive, low-relevance batch and the cheaper sweet-spot model for its source type (USD)."""

    source_id: int
    source_code: str
    batch_id: int
    original_model: str
    original_cost_usd: Decimal
    fragments: int
    avg_relevance: float
    suggested_model: str | None
    expected_cost_usd: Decimal | None
    reason: str


def reprocess_suggestions(
    *, session: Session, min_cost_usd: Decimal | float = Decimal("1.00"), max_avg_relevance: float = 8.0
) -> list[ReprocessSuggestion]:
    """The core design workflow 2: completed batches costing more than `min_cost_usd` whose fragments average
    relevance < `max_avg_relevance`, most expensive first, each with the source type's sweet spot among
    cheaper models and its expected cost (its cost per fragment × this batch's fragment count)."""
    rows = session.execute(
        select(
            Source.id, Source.source_code, Source.source_type, ProcessingBatch.id, ProcessingBatch.model_name,
            ProcessingBatch.estimated_cost_usd, func.count(Fragment.id), func.avg(Fragment.relevance),
        )
        .join(SourceProcessing, SourceProcessing.source_id == Source.id)
        .join(ProcessingBatch, ProcessingBatch.id == SourceProcessing.batch_id)
        .join(Fragment, (Fragment.batch_id == ProcessingBatch.id) & (Fragment.source_id == Source.id))
        .where(ProcessingBatch.batch_status == BatchStatus.completed.value, ProcessingBatch.estimated_cost_usd > Decimal(str(min_cost_usd)))
        .group_by(Source.id, ProcessingBatch.id)
        .having(func.avg(Fragment.relevance) < max_avg_relevance)
        .order_by(ProcessingBatch.estimated_cost_usd.desc())
    ).all()
    out = []
    spots: dict[str, SweetSpot] = {}
    for sid, code, stype, bid, model, cost, n, rel in rows:
        spot = spots.get(stype) or spots.setdefault(stype, find_sweet_spot(session=session, source_type=stype))
        cheaper = [c for c in spot.candidates if c.eligible and model_cost_rank(c.model_name) < model_cost_rank(model)]
        cheaper.sort(key=lambda c: c.cost("usd"))
        pick = cheaper[0] if cheaper else None
        expected = (pick.cost_per_fragment * n) if pick and pick.cost_per_fragment is not None else None
        out.append(ReprocessSuggestion(
            source_id=sid, source_code=code, batch_id=bid, original_model=model, original_cost_usd=Decimal(cost),
            fragments=int(n), avg_relevance=round(float(rel), 2),
            suggested_model=pick.model_name if pick else None, expected_cost_usd=expected,
            reason=(f"{pick.model_name} meets the {stype} threshold {spot.quality_threshold:g} for less" if pick
                    else f"no cheaper model has measured quality ≥ {spot.quality_threshold:g} for {stype} yet"),
        ))
    return out
