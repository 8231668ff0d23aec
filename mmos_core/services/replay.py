"""Offline replay of model cascades from stored batches — no new LLM call (docs/quality.md).

Given completed full batches of several models on the same sources, a cascade policy "cheapest model
first; escalate a chunk to the next model while the grounded share of its fragments is below x" is
replayed chunk by chunk from what each model actually answered for that chunk:

* cost of a chunk = Σ cost of every model tried on it (the cheap call is paid even when escalated);
* fragments kept = those of the last model tried; a chunk with no fragment counts as grounding 0.

Each policy (and each single model, "always model m") gets a cost and a quality score by one rule:
`mmos_core.analysis.quality_score.score` over the kept fragments' grounding and human judgements, plus agreement
with human-verified fragments when a source has any. The baseline-batch agreement is left out here
on purpose: the most expensive model would be its own reference, so cascades that escalate more
would look better for that reason alone.

Costs are `usd` (recorded call costs) or `seconds` (recorded call durations); `prices` can re-price
recorded token counts hypothetically ({model: (usd per 1M input tokens, usd per 1M output tokens)}),
e.g. to ask "what if the small model cost what gpt-4o-mini costs?" — always labelled as hypothetical.
The hull is the upper-left boundary: points no other point beats on both cost and quality (Pareto),
joined by their upper convex hull.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from mmos_core.analysis.quality_score import AGREEMENT_THRESHOLD, QualityCounts, QualityScore, human_weight, score
from mmos_core.models import Fragment, ProcessingBatch, Source
from mmos_core.services.comparison import match_pairs
from mmos_core.services.data_version import per_source, source_versions
from mmos_core.services.extraction_run import latest_answers
from mmos_core.services.quality import (
    COST_METRICS,
    FragmentFacts,
    _grounding_confidences,
    completed_batches_on,
    fragment_facts,
    is_grounded,
    model_cost_rank,
)

DEFAULT_THRESHOLDS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class ChunkAnswer:
    """What one model answered for one chunk: kept-fragment facts, call cost (USD) and seconds."""

    grounded: list[bool | None]
    human: list[float]
    vectors: np.ndarray
    cost_usd: float
    seconds: float
    input_tokens: int
    output_tokens: int

    @property
    def grounded_share(self) -> float:
        decided = [g for g in self.grounded if g is not None]
        return sum(decided) / len(decided) if decided else 0.0


@dataclass(frozen=True)
class ReplayPoint:
    """One policy's replayed outcome. `cost` is in the replay's metric (USD or seconds)."""

    label: str
    kind: str  # "single" | "cascade"
    threshold: float | None
    cost: float
    quality: QualityScore
    escalated_share: float
    on_hull: bool = False


@dataclass(frozen=True)
class Replay:
    """All points of a replay over `sources` (ids) with `models` (cheapest first)."""

    models: list[str]
    sources: list[int]
    chunks: int
    cost_metric: str
    hypothetical_prices: bool
    points: list[ReplayPoint]


def _answers(session: Session, batch: ProcessingBatch, source_id: int,
             prices: tuple[float, float] | None) -> dict[int, ChunkAnswer]:
    calls = latest_answers(session=session, batch_id=batch.id)  # what the batch published
    frags = fragment_facts(session, Fragment.batch_id == batch.id, Fragment.source_id == source_id)
    support = _grounding_confidences(session, [f.id for f in frags if f.fragment_type != "direct_quote"])
    by_chunk: dict[int | None, list[FragmentFacts]] = defaultdict(list)
    for f in frags:
        by_chunk[f.chunk_id].append(f)
    out = {}
    for chunk_id, call in calls.items():
        fs = by_chunk.get(chunk_id, [])
        if prices is None:
            cost = float(call.cost_usd or 0)
        else:
            cost = (call.input_tokens * prices[0] + call.output_tokens * prices[1]) / 1e6
        vecs = [f.embedding for f in fs if f.embedding is not None]
        out[chunk_id] = ChunkAnswer(
            grounded=[is_grounded(f, support.get(f.id)) for f in fs],
            human=[human_weight(verified=bool(f.verified)) for f in fs if f.verified or f.rejected],
            vectors=np.vstack(vecs) if vecs else np.zeros((0, 384), np.float32),
            cost_usd=cost,
            seconds=(call.duration_ms or 0) / 1000,
            input_tokens=call.input_tokens,
            output_tokens=call.output_tokens,
        )
    return out


def _verified(session: Session, source_id: int) -> np.ndarray:
    facts = fragment_facts(session, Fragment.source_id == source_id, Fragment.verified.is_(True),
                           Fragment.rejected.is_(False), Fragment.embedding.is_not(None))
    return np.vstack([f.embedding for f in facts]) if facts else np.zeros((0, 384), np.float32)


def _kept_counts(ans: ChunkAnswer) -> QualityCounts:
    decided = [g for g in ans.grounded if g is not None]
    return QualityCounts(checked=len(decided), grounded=sum(decided), human_n=len(ans.human), human_k=sum(ans.human))


def _agreement(vectors: list[np.ndarray], ref: np.ndarray) -> QualityCounts:
    """Agreement of the kept fragments of one source (`vectors`, chunk order) with its verified ones."""
    mine = np.vstack(vectors) if vectors else np.zeros((0, 384), np.float32)
    pairs = match_pairs(mine @ ref.T if len(mine) else np.zeros((0, 0)), AGREEMENT_THRESHOLD)
    return QualityCounts(batch_fragments=len(mine), batch_matched=len(pairs), reference_fragments=len(ref),
                         reference_matched=len(pairs))


@dataclass(frozen=True)
class _SourcePoint:
    """One policy on one source: the cost terms in the order the replay adds them, the kept answers' counts
    (`_kept_counts`, chunk order), the agreement with the source's verified fragments (None without any),
    and how many chunks were escalated."""

    costs: tuple[float, ...]
    kept: tuple[QualityCounts, ...]
    agreement: QualityCounts | None
    escalated: int


def _replay_source(session: Session, source_id: int, ladder: list[str], thresholds: tuple[float, ...],
                   cost_metric: str, prices: dict[str, tuple[float, float]]) -> tuple[int, tuple[_SourcePoint, ...]] | None:
    """Every policy (single models, then cascades by threshold) on one source: (chunks, points), or None when
    the source lacks a completed full batch of one of the models."""
    latest = {b.model_name: b for b in completed_batches_on(session, source_id)}
    if not all(m in latest for m in ladder):
        return None
    answers = {m: _answers(session, latest[m], source_id, prices.get(m)) for m in ladder}
    ref = _verified(session, source_id)
    chunk_ids = sorted(set.intersection(*(set(a) for a in answers.values())))

    def cost_of(ans: ChunkAnswer) -> float:
        return ans.cost_usd if cost_metric == "usd" else ans.seconds

    def point(kept: list[ChunkAnswer], costs: list[float], escalated: int) -> _SourcePoint:
        return _SourcePoint(tuple(costs), tuple(_kept_counts(a) for a in kept),
                            _agreement([a.vectors for a in kept], ref) if len(ref) else None, escalated)

    points = []
    for m in ladder:
        kept = [answers[m][cid] for cid in chunk_ids]
        points.append(point(kept, [cost_of(a) for a in kept], 0))
    for x in thresholds:
        costs, kept, escalated = [], [], 0
        for cid in chunk_ids:
            for level, m in enumerate(ladder):
                ans = answers[m][cid]
                costs.append(cost_of(ans))
                if ans.grounded_share >= x or level == len(ladder) - 1:
                    escalated += int(level > 0)
                    kept.append(ans)
                    break
        points.append(point(kept, costs, escalated))
    return len(chunk_ids), tuple(points)


def replay_cascades(
    *,
    session: Session,
    models: list[str],
    source_ids: list[int] | None = None,
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS,
    cost_metric: str = "usd",
    prices: dict[str, tuple[float, float]] | None = None,
) -> Replay:
    """Replay every single model and every cascade threshold over the sources where all `models` have a
    completed full batch (the latest per model); see the module docstring for the rules.

    Each source's policies are replayed once per fingerprint of the source (`services.data_version`) and
    then added up in the order of the whole replay (sources by id, chunks by id), so the figures are the same
    as replaying everything at once.

    Raises:
        ValueError: fewer than two models, an unknown cost metric, or no source with batches of every model.
    """
    if len(set(models)) < 2:
        raise ValueError("Choose at least two models to replay a cascade.")
    if cost_metric not in COST_METRICS:
        raise ValueError("cost_metric must be 'usd' or 'seconds'")
    ladder = sorted(dict.fromkeys(models), key=model_cost_rank)
    prices = prices or {}
    thresholds = tuple(thresholds)

    candidates = source_ids if source_ids is not None else list(session.scalars(select(Source.id).order_by(Source.id)))
    versions = source_versions(session=session)
    params = (tuple(ladder), thresholds, cost_metric, tuple((m, prices.get(m)) for m in ladder))
    table: dict[int, tuple[int, tuple[_SourcePoint, ...]]] = {}
    for sid in candidates:
        def compute(sid=sid):
            return _replay_source(session, sid, ladder, thresholds, cost_metric, prices)
        replayed = per_source("replay", sid, versions[sid], params, compute) if sid in versions else compute()
        if replayed is not None:
            table[sid] = replayed
    if not table:
        raise ValueError("No source has a completed batch of every chosen model.")
    chunks = sum(n for n, _ in table.values())

    def total(i: int, *, cascade: bool) -> tuple[float, QualityScore, int]:
        terms = [c for _, pts in table.values() for c in pts[i].costs]
        # the same left-to-right additions either way; a cascade's total starts from 0.0, a single model's from 0
        cost = sum(terms, 0.0) if cascade else sum(terms)
        counts = QualityCounts()
        for _, pts in table.values():
            for kept in pts[i].kept:
                counts = counts + kept
        for _, pts in table.values():
            if pts[i].agreement is not None:
                counts = counts + pts[i].agreement
        return cost, score(counts), sum(pts[i].escalated for _, pts in table.values())

    points = []
    for i, m in enumerate(ladder):
        cost, quality, _ = total(i, cascade=False)
        points.append(ReplayPoint(label=m, kind="single", threshold=None, cost=cost, quality=quality, escalated_share=0.0))
    for k, x in enumerate(thresholds):
        cost, quality, escalated = total(len(ladder) + k, cascade=True)
        points.append(ReplayPoint(label=f"cascade, escalate when grounded share < {x:g}", kind="cascade", threshold=x,
                                  cost=cost, quality=quality, escalated_share=escalated / chunks if chunks else 0.0))
    hull = set(upper_hull([(p.cost, p.quality.score or 0.0) for p in points]))
    points = [ReplayPoint(**{**p.__dict__, "on_hull": i in hull}) for i, p in enumerate(points)]
    return Replay(models=ladder, sources=sorted(table), chunks=chunks, cost_metric=cost_metric,
                  hypothetical_prices=bool(prices), points=points)


def upper_hull(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the cost-quality hull: Pareto-optimal points (no other is cheaper-or-equal and better),
    reduced to their upper convex hull (Andrew's monotone chain), cheapest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    pareto, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            pareto.append(i)
            best = points[i][1]
    hull: list[int] = []
    for i in pareto:
        while len(hull) >= 2:
            (x1, y1), (x2, y2), (x3, y3) = points[hull[-2]], points[hull[-1]], points[i]
            if (x2 - x1) * (y3 - y1) - (y2 - y1) * (x3 - x1) >= 0:  # hull[-1] lies on or below the chord
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def replay_table(replay: Replay) -> list[dict]:
    """Rows for display: label, cost, quality with interval, grounding, escalated share, on hull."""
    unit = "usd" if replay.cost_metric == "usd" else "model_seconds"
    return [
        {
            "policy": p.label,
            f"cost_{unit}": round(p.cost, 6 if unit == "usd" else 1),
            "quality": p.quality.score,
            "quality_low": p.quality.low,
            "quality_high": p.quality.high,
            "grounding": None if p.quality.grounding is None else round(p.quality.grounding, 3),
            "escalated_share": round(p.escalated_share, 3),
            "on_hull": p.on_hull,
        }
        for p in replay.points
    ]

