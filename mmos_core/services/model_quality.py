"""Quality pooled per model over many sources, one source's share at a time (docs/quality.md, "Reports at scale").

`model_quality` adds up, per model, the counts of every completed full batch in a scope; each source's batches
are scored by `_pooled_batches` (the per-batch counts of `services.quality`, read with one query per kind for
the whole source) and remembered under the source's fingerprint (`services.data_version.per_source`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from mmos_core.analysis.quality_score import QualityCounts, QualityScore, score
from mmos_core.core.config import get_settings
from mmos_core.core.vectors import Embed
from mmos_core.models import AsiInference, ExtractionCall, Fragment, Source, UserFeedback
from mmos_core.services.checks import checks_for
from mmos_core.services.data_version import per_source, source_versions
from mmos_core.services.quality import (
    completed_batches_on,
    compute_grounding,
    fragment_facts,
    human_sum,
    model_cost_rank,
    reference_for,
    tally,
    verified_reference,
)


@dataclass(frozen=True)
class PooledBatch:
    """One completed full batch's share of `model_quality` in a scope: its model and cost (USD), its counts, the
    fragments in scope, their share of the batch's fragments (1 without a category) and its model seconds."""

    model_name: str
    cost_usd: Decimal
    counts: QualityCounts
    fragments: int
    share: float
    seconds: float


def _pooled_batches(session: Session, source_id: int, category: str | None, embed: Embed | None) -> list[PooledBatch]:
    """`PooledBatch` of every completed full batch of one source, oldest first: `batch_counts`' counts, but the
    source's fragments, grounding rows, checks and feedback read with one query each instead of one per batch,
    and fragment totals and model seconds with one grouped query: the per-batch loop spent most of its time
    at 100,000 fragments in ~920 small queries with IN lists psycopg had to parse (bench/README.md)."""
    batches = completed_batches_on(session, source_id)
    if not batches:
        return []
    batch_ids = [b.id for b in batches]
    seconds = dict(session.execute(
        select(ExtractionCall.batch_id, func.coalesce(func.sum(ExtractionCall.duration_ms), 0))
        .where(ExtractionCall.batch_id.in_(batch_ids)).group_by(ExtractionCall.batch_id)
    ).all())
    totals = dict(session.execute(
        select(Fragment.batch_id, func.count()).where(Fragment.batch_id.in_(batch_ids)).group_by(Fragment.batch_id)
    ).all()) if category else {}
    where = [Fragment.source_id == source_id, Fragment.batch_id.in_(batch_ids)]
    if category:
        where.append(Fragment.category == category)
    facts = fragment_facts(session, *where)
    batch_of = dict(session.execute(select(Fragment.id, Fragment.batch_id).where(*where)).all())
    by_batch: dict[int, list] = defaultdict(list)
    for f in facts:  # id order within each batch, as batch_counts reads them
        by_batch[batch_of[f.id]].append(f)
    scope = select(Fragment.id).where(*where)
    support = {fid: float(conf) for fid, conf in session.execute(  # later rows overwrite earlier ones
        select(AsiInference.fragment_id, AsiInference.confidence)
        .where(AsiInference.kind == "fragment_grounding",
               AsiInference.fragment_id.in_(scope.where(Fragment.fragment_type != "direct_quote")))
        .order_by(AsiInference.fragment_id, AsiInference.id)
    )}
    missing = [f.id for f in facts if f.fragment_type != "direct_quote" and f.id not in support]
    if missing and embed is not None:
        full = list(session.scalars(select(Fragment).where(Fragment.id.in_(missing))))
        support.update(compute_grounding(session, full, embed))
    checks = checks_for(session=session, fragment_ids=[f.id for f in facts])
    target = UserFeedback.fragment_id.in_(scope)
    if category is None:
        target = or_(target, and_(UserFeedback.batch_id.in_(batch_ids), UserFeedback.fragment_id.is_(None)))
    feedback: dict[int, list] = defaultdict(list)
    for fid, bid, ftype, stars in session.execute(
        select(UserFeedback.fragment_id, UserFeedback.batch_id, UserFeedback.feedback_type, UserFeedback.quality_rating)
        .where(target).order_by(UserFeedback.id)
    ):
        feedback[batch_of[fid] if fid is not None else bid].append((ftype, stars))
    verified = verified_reference(session, source_id)
    out = []
    for batch in batches:
        mine = by_batch.get(batch.id, [])
        ref = verified if verified is not None else reference_for(session, batch, source_id)
        counts = tally(mine, support, checks, ref, category, human_sum(mine, feedback.get(batch.id, [])))
        share = (len(mine) / totals[batch.id] if totals.get(batch.id) else 0.0) if category else 1.0
        out.append(PooledBatch(batch.model_name, Decimal(batch.estimated_cost_usd or 0), counts, len(mine), share,
                               float(seconds.get(batch.id, 0) or 0) / 1000))
    return out


def pooled_batches(session: Session, source_id: int, category: str | None = None, *,
                   versions: dict[int, tuple] | None = None) -> list[PooledBatch]:
    """`_pooled_batches` of one source, remembered under the source's fingerprint (`services.data_version`;
    `versions`: `source_versions` when the caller has it): after a verdict, a check or a new batch only the
    sources that changed are scored again."""
    versions = source_versions(session=session) if versions is None else versions
    if source_id not in versions:  # created after the fingerprints were taken
        return _pooled_batches(session, source_id, category, None)
    return per_source("model_quality", source_id, versions[source_id],
                      (category, get_settings().quality_baseline_model),
                      lambda: _pooled_batches(session, source_id, category, None))


@dataclass(frozen=True)
class ModelQuality:
    """One model's quality pooled over its completed batches in a scope (sources, type, category).

    Cost and time are per fragment over the same batches: `cost_per_fragment` in USD, `seconds_per_fragment`
    in model seconds (sum of the batch's LLM call durations).
    """

    model_name: str
    batches: int
    fragments: int
    cost_usd: Decimal
    model_seconds: float
    score: QualityScore

    @property
    def cost_per_fragment(self) -> Decimal | None:
        return (self.cost_usd / self.fragments) if self.fragments else None

    @property
    def seconds_per_fragment(self) -> float | None:
        return self.model_seconds / self.fragments if self.fragments else None


def model_quality(
    *,
    session: Session,
    source_ids: list[int] | None = None,
    source_type: str | None = None,
    category: str | None = None,
    embed: Embed | None = None,
) -> list[ModelQuality]:
    """Pooled quality per model over completed full batches of the chosen sources (all when no filter),
    sorted cheapest first (`model_cost_rank`). Each source's batches are scored once per fingerprint of
    that source (`pooled_batches`), so repeated calls (the page's tabs, the sweet spot) reuse them."""
    q = select(Source.id)
    if source_ids is not None:
        q = q.where(Source.id.in_(source_ids))
    if source_type:
        q = q.where(Source.source_type == source_type)
    pooled: dict[str, list] = {}
    # without `embed` nothing is computed beyond the stored rows, so a source's share can be remembered
    versions = source_versions(session=session) if embed is None else {}
    for sid in list(session.scalars(q)):
        for b in pooled_batches(session, sid, category, versions=versions) if embed is None else _pooled_batches(session, sid, category, embed):
            # a category gets the batch's cost and time in proportion to its share of the fragments,
            # so its cost per fragment is the batch's, not the whole bill over a few fragments
            acc = pooled.setdefault(b.model_name, [0, 0, Decimal(0), 0.0, QualityCounts()])
            acc[0] += 1
            acc[1] += b.fragments
            acc[2] += b.cost_usd * Decimal(str(b.share))
            acc[3] += b.seconds * b.share
            acc[4] = acc[4] + b.counts
    out = [
        ModelQuality(model_name=m, batches=a[0], fragments=a[1], cost_usd=a[2], model_seconds=a[3], score=score(a[4]))
        for m, a in pooled.items()
    ]
    return sorted(out, key=lambda mq: model_cost_rank(mq.model_name))
