"""Measured quality of batches and models, from the database (docs/quality.md).

Counts are gathered here and scored by `mmos_core.analysis.quality_score.score` (the rule and its sources are in that
module and docs/quality.md). Grounding of paraphrases and inferences reads the `fragment_grounding`
audit rows (the monitoring design) the worker writes after each batch; a fragment without one is computed with
`embed` when given, otherwise left out of the grounding count (never guessed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from sqlalchemy import Integer, and_, any_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from mmos_core.analysis.quality_score import (
    AGREEMENT_THRESHOLD,
    GROUNDING_THRESHOLD,
    QUALITY_RULE,
    QualityCounts,
    QualityScore,
    human_weight,
    score,
)
from mmos_core.core.config import get_settings
from mmos_core.core.domain import BatchStatus
from mmos_core.core.vectors import Embed
from mmos_core.llm.catalog import get_model, price_snapshot
from mmos_core.llm.local_models import LOCAL_MODELS
from mmos_core.models import (
    AsiInference,
    ExtractionCall,
    Fragment,
    ModelPerformance,
    ProcessingBatch,
    Source,
    SourceChunk,
    SourceProcessing,
    UserFeedback,
)
from mmos_core.services.checks import FragmentChecks, checks_for
from mmos_core.services.comparison import match_pairs
from mmos_core.services.inference_log import evidence_windows, grounding_confidence


@dataclass(frozen=True)
class Reference:
    """What a batch is compared with: `kind` 'verified' (human-verified fragments of the source) or
    'baseline_batch' (the baseline model's latest completed batch on it); `vectors` (n, 384)."""

    kind: str
    vectors: np.ndarray
    categories: list[str]
    batch_id: int | None = None


@dataclass(frozen=True)
class BatchQuality:
    """Quality of one completed batch; `score` carries the counts, components and interval."""

    batch_id: int
    model_name: str
    source_id: int
    source_type: str
    fragments: int
    cost_usd: Decimal
    model_seconds: float
    reference_kind: str | None
    reference_size: int
    score: QualityScore


#: What "cheapest" can mean for the sweet spot and the cascade replay: dollars, or model seconds (local
#: models cost $0, so seconds tell them apart).
COST_METRICS = ("usd", "seconds")


def model_cost_rank(name: str) -> tuple[float, float, int]:
    """Sort key, cheapest first: (output price, input price, position among local models by size).

    Unknown or unpriced models rank by price 0; local models (all free) rank smallest first.
    """
    try:
        prices = price_snapshot(get_model(name))
        out_p, in_p = float(prices.output_cost_per_token), float(prices.input_cost_per_token)
    except Exception:
        out_p = in_p = 0.0
    local = list(LOCAL_MODELS)
    local_pos = local.index(name) if name in local else len(local)
    return out_p, in_p, local_pos


def completed_batches_on(session: Session, source_id: int) -> list[ProcessingBatch]:
    """Completed batches that processed `source_id`, oldest first (regenerate batches excluded)."""
    return list(
        session.scalars(
            select(ProcessingBatch)
            .join(SourceProcessing, SourceProcessing.batch_id == ProcessingBatch.id)
            .where(
                SourceProcessing.source_id == source_id,
                ProcessingBatch.batch_status == BatchStatus.completed.value,
                ProcessingBatch.chunk_scope.is_(None),
            )
            .order_by(ProcessingBatch.id)
        )
    )


def baseline_model_for(session: Session, source_id: int) -> str | None:
    """The baseline model on a source: `settings.quality_baseline_model` when it has a completed
    batch there, else the most expensive model that has one (`model_cost_rank`, largest local last)."""
    batches = completed_batches_on(session, source_id)
    if not batches:
        return None
    configured = get_settings().quality_baseline_model
    if configured and configured in {b.model_name for b in batches}:
        return configured
    # price rank first; models the catalog cannot price tie there, so the recorded cost decides, then the name
    recorded = {b.model_name: float(b.estimated_cost_usd or 0) for b in batches}
    return max(recorded, key=lambda m: (model_cost_rank(m), recorded[m], m))


@dataclass(frozen=True)
class FragmentFacts:
    """What quality, replay and QA need of a fragment; `embedding` (384,) float32 or None."""

    id: int
    chunk_id: int | None
    category: str
    fragment_type: str
    location_score: float | None
    verified: bool
    rejected: bool
    relevance: int
    confidence: float
    content: str
    embedding: np.ndarray | None


def _vector_from_send(data: bytes | None) -> np.ndarray | None:
    # pgvector's binary form (vector_send): int16 dim, int16 unused, dim × float32, all big-endian
    return None if data is None else np.frombuffer(data, dtype=">f4", offset=4).astype(np.float32)


def fragment_facts(session: Session, *where) -> list[FragmentFacts]:
    """Fragments matching `where` (SQLAlchemy criteria), ordered by id, with their embeddings read in
    pgvector's binary form (`vector_send`): parsing 384 floats from text cost ~0.13 ms a vector, which
    made scoring 50,000 fragments take tens of seconds."""
    rows = session.execute(
        select(
            Fragment.id, Fragment.chunk_id, Fragment.category, Fragment.fragment_type, Fragment.location_score,
            Fragment.verified, Fragment.rejected, Fragment.relevance, Fragment.confidence, Fragment.content,
            func.vector_send(Fragment.embedding),
        )
        .where(*where)
        .order_by(Fragment.id)
    )
    return [
        FragmentFacts(r[0], r[1], r[2], r[3], None if r[4] is None else float(r[4]), bool(r[5]), bool(r[6]), r[7],
                      float(r[8]), r[9], _vector_from_send(r[10]))
        for r in rows
    ]


def _vectors(fragments: Iterable[FragmentFacts]) -> np.ndarray:
    vecs = [f.embedding for f in fragments if f.embedding is not None]
    return np.vstack(vecs) if vecs else np.zeros((0, 384), np.float32)


def verified_reference(session: Session, source_id: int) -> Reference | None:
    """The human-verified (not rejected) fragments of the source with an embedding, None when there are none:
    the reference of every batch on the source (`reference_for`), so `model_quality` reads it once per source."""
    verified = fragment_facts(
        session,
        Fragment.source_id == source_id,
        Fragment.verified.is_(True),
        Fragment.rejected.is_(False),
        Fragment.embedding.is_not(None),
    )
    return Reference("verified", _vectors(verified), [f.category for f in verified]) if verified else None


def reference_for(session: Session, batch: ProcessingBatch, source_id: int) -> Reference | None:
    """Human-verified fragments of the source when there are any; otherwise the baseline model's
    latest completed batch on it; None when `batch` is itself that baseline batch (or there is none)."""
    verified = verified_reference(session, source_id)
    if verified is not None:
        return verified
    baseline = baseline_model_for(session, source_id)
    if baseline is None:
        return None
    candidates = [b for b in completed_batches_on(session, source_id) if b.model_name == baseline]
    if not candidates:
        return None
    ref_batch = candidates[-1]
    if ref_batch.id == batch.id or batch.model_name == baseline:
        return None
    frags = fragment_facts(session, Fragment.batch_id == ref_batch.id, Fragment.embedding.is_not(None))
    return Reference("baseline_batch", _vectors(frags), [f.category for f in frags], batch_id=ref_batch.id)


def _grounding_confidences(session: Session, fragment_ids: list[int]) -> dict[int, float]:
    """Latest `fragment_grounding` confidence per fragment (the monitoring design audit rows)."""
    if not fragment_ids:
        return {}
    rows = session.execute(
        select(AsiInference.fragment_id, AsiInference.confidence)
        .where(AsiInference.kind == "fragment_grounding",
               AsiInference.fragment_id == any_(bindparam("ids", [int(i) for i in fragment_ids], type_=ARRAY(Integer))))
        .order_by(AsiInference.fragment_id, AsiInference.id)
    ).all()
    return {fid: float(conf) for fid, conf in rows}  # later rows overwrite earlier ones


def compute_grounding(session: Session, fragments: list[Fragment], embed: Embed) -> dict[int, float]:
    out: dict[int, float] = {}
    for f in fragments:
        source = session.get(Source, f.source_id)
        chunk = session.get(SourceChunk, f.chunk_id) if f.chunk_id else None
        windows = evidence_windows(source, chunk, f)
        if not windows:
            out[f.id] = 0.0
            continue
        vec = np.asarray(f.embedding, dtype=np.float32) if f.embedding is not None else embed([f.content])[0]
        out[f.id] = grounding_confidence(vec, embed(windows))
    return out


def is_grounded(
    fragment: Fragment | FragmentFacts, embedding_support: float | None, checks: FragmentChecks | None = None
) -> bool | None:
    """Grounding of one fragment (rule in `mmos_core.analysis.quality_score`); None when it cannot be decided.

    A direct quote with stored checks is grounded only when verbatim (`exact`) and the person's; without
    checks (a batch scored before they existed) it falls back to being located in the source."""
    if fragment.fragment_type == "direct_quote":
        if checks is not None and checks.verbatim != "n/a":
            return checks.verbatim == "exact" and checks.attribution == "person"
        return fragment.location_score is not None
    if embedding_support is None:
        return None
    return embedding_support >= GROUNDING_THRESHOLD


def _human(session: Session, batch_id: int, fragments: list[FragmentFacts], *, include_batch_feedback: bool) -> tuple[int, float]:
    ids = [f.id for f in fragments]
    target = UserFeedback.fragment_id.in_(ids) if ids else UserFeedback.id.is_(None)
    if include_batch_feedback:
        target = or_(target, and_(UserFeedback.batch_id == batch_id, UserFeedback.fragment_id.is_(None)))
    feedback = session.execute(select(UserFeedback.feedback_type, UserFeedback.quality_rating).where(target)).all()
    return human_sum(fragments, feedback)


def human_sum(fragments: list[FragmentFacts], feedback: Iterable[tuple[str, int | None]]) -> tuple[int, float]:
    """(judgements, their summed worth): verdicts on `fragments`, then `feedback` (type, stars) rows."""
    n, k = 0, 0.0
    for f in fragments:
        if f.verified or f.rejected:
            n += 1
            k += human_weight(verified=bool(f.verified) and not f.rejected) or 0.0
    for ftype, stars in feedback:
        w = human_weight(feedback_type=ftype, stars=stars if ftype == "rating" else None)
        if w is None and stars is not None:
            w = human_weight(stars=stars)
        if w is not None:
            n += 1
            k += w
    return n, k


def batch_counts(
    *,
    session: Session,
    batch: ProcessingBatch,
    source_id: int,
    category: str | None = None,
    embed: Embed | None = None,
    reference: Reference | None | bool = True,
) -> tuple[QualityCounts, Reference | None]:
    """Pooled-ready counts of one batch on one source (optionally only fragments of `category`).

    `reference=True` looks the reference up (`reference_for`); pass a `Reference` or None to fix it.
    """
    where = [Fragment.batch_id == batch.id, Fragment.source_id == source_id]
    if category:
        where.append(Fragment.category == category)
    fragments = fragment_facts(session, *where)
    support = _grounding_confidences(session, [f.id for f in fragments if f.fragment_type != "direct_quote"])
    missing = [f.id for f in fragments if f.fragment_type != "direct_quote" and f.id not in support]
    if missing and embed is not None:
        full = list(session.scalars(select(Fragment).where(Fragment.id.in_(missing))))
        support.update(compute_grounding(session, full, embed))
    checks = checks_for(session=session, fragment_ids=[f.id for f in fragments])
    ref = reference_for(session, batch, source_id) if reference is True else reference or None
    human = _human(session, batch.id, fragments, include_batch_feedback=category is None)
    return tally(fragments, support, checks, ref, category, human), ref


def tally(
    fragments: list[FragmentFacts], support: dict[int, float], checks: dict[int, FragmentChecks],
    ref: Reference | None, category: str | None, human: tuple[int, float],
) -> QualityCounts:
    """The counts of one batch from what `batch_counts` (or `_pooled_batches`, a source's batches at once) read:
    its fragments (id order), grounding support and checks by fragment id, the reference, (human n, k)."""
    checked = grounded = 0
    support_n, support_k = 0, 0.0
    direct = exact = by_person = judged = 0
    for f in fragments:
        c = checks.get(f.id)
        g = is_grounded(f, support.get(f.id), c)
        if g is not None:
            checked += 1
            grounded += int(g)
        if f.fragment_type == "direct_quote" and c is not None and c.verbatim != "n/a":
            direct += 1
            exact += int(c.verbatim == "exact")
            by_person += int(c.attribution == "person")
        if c is not None and c.support is not None:
            support_n += 1
            support_k += c.support
            judged += int(c.judge_support is not None)

    batch_fragments = batch_matched = ref_n = ref_matched = 0
    if ref is not None:
        mine = _vectors(fragments)
        theirs = ref.vectors
        if category:
            theirs = theirs[[i for i, c in enumerate(ref.categories) if c == category]]
        if len(mine) or len(theirs):
            pairs = match_pairs(mine @ theirs.T if len(mine) and len(theirs) else np.zeros((0, 0)), AGREEMENT_THRESHOLD)
            batch_fragments, ref_n = len(mine), len(theirs)
            batch_matched = ref_matched = len(pairs)
    human_n, human_k = human
    return QualityCounts(
        checked=checked,
        grounded=grounded,
        batch_fragments=batch_fragments,
        batch_matched=batch_matched,
        reference_fragments=ref_n,
        reference_matched=ref_matched,
        human_n=human_n,
        human_k=human_k,
        support_n=support_n,
        support_k=support_k,
        direct_quotes=direct,
        quotes_exact=exact,
        quotes_by_person=by_person,
        judged=judged,
    )


def _model_seconds(session: Session, batch_id: int) -> float:
    ms = session.scalar(select(func.coalesce(func.sum(ExtractionCall.duration_ms), 0)).where(ExtractionCall.batch_id == batch_id))
    return float(ms or 0) / 1000


def batch_quality(*, session: Session, batch_id: int, embed: Embed | None = None) -> BatchQuality:
    """Measured quality of one batch on its (first) source.

    Raises:
        LookupError: no such batch, or it processed no source.
    """
    batch = session.get(ProcessingBatch, batch_id)
    link = session.scalar(select(SourceProcessing).where(SourceProcessing.batch_id == batch_id))
    if batch is None or link is None:
        raise LookupError(f"batch {batch_id} not found")
    source = session.get(Source, link.source_id)
    counts, ref = batch_counts(session=session, batch=batch, source_id=source.id, embed=embed)
    n = session.scalar(select(func.count()).select_from(Fragment).where(Fragment.batch_id == batch_id)) or 0
    return BatchQuality(
        batch_id=batch.id,
        model_name=batch.model_name,
        source_id=source.id,
        source_type=source.source_type,
        fragments=int(n),
        cost_usd=Decimal(batch.estimated_cost_usd or 0),
        model_seconds=_model_seconds(session, batch.id),
        reference_kind=ref.kind if ref else None,
        reference_size=len(ref.vectors) if ref else 0,
        score=score(counts),
    )


def _store(session: Session, bq: BatchQuality, baseline: str | None, base: ModelPerformance | None) -> ModelPerformance | None:
    perf = session.scalar(
        select(ModelPerformance).where(ModelPerformance.batch_id == bq.batch_id).order_by(ModelPerformance.id.desc())
    )
    if perf is None:
        return None
    s = bq.score
    c = s.counts
    perf.checked_fragments = c.checked
    perf.grounded_fragments = c.grounded
    perf.grounding_rate = _r(s.grounding, 4)
    perf.reference_kind = bq.reference_kind
    perf.reference_size = bq.reference_size
    perf.agreement_precision = _r(s.precision, 4)
    perf.agreement_recall = _r(s.recall, 4)
    perf.agreement_f1 = _r(s.agreement_f1, 4)
    perf.human_judgements = c.human_n
    perf.human_score = _r(s.human, 4)
    perf.quality_score = s.score
    perf.quality_ci_low = s.low
    perf.quality_ci_high = s.high
    perf.quality_rule = QUALITY_RULE
    perf.direct_quotes = c.direct_quotes
    perf.quotes_exact = c.quotes_exact
    perf.quotes_by_person = c.quotes_by_person
    perf.judged_fragments = c.judged
    perf.support_rate = _r(s.support, 4)
    perf.baseline_model = baseline
    perf.evaluation_date = dt.datetime.now(dt.UTC)
    if base is not None and base.quality_score is not None and s.score is not None:
        perf.quality_delta = round(float(s.score) - float(base.quality_score), 2)
    elif baseline == bq.model_name:
        perf.quality_delta = 0
    if base is not None and base.cost_per_fragment is not None and perf.cost_per_fragment is not None:
        perf.cost_delta = Decimal(perf.cost_per_fragment) - Decimal(base.cost_per_fragment)
    elif baseline == bq.model_name:
        perf.cost_delta = Decimal(0)
    session.flush()
    return perf


def _r(x: float | None, nd: int) -> float | None:
    return None if x is None else round(float(x), nd)


def stale_sources(*, session: Session) -> list[int]:
    """Sources whose stored quality predates a human judgement on them: a verdict on one of their
    fragments, or feedback on one of their fragments or batches, newer than the oldest
    `model_performance.evaluation_date` of the source."""
    evaluated = (
        select(ModelPerformance.source_id, func.min(ModelPerformance.evaluation_date).label("at"))
        .group_by(ModelPerformance.source_id)
        .subquery()
    )
    verdicts = select(Fragment.source_id).join(evaluated, evaluated.c.source_id == Fragment.source_id).where(
        or_(Fragment.verified_at > evaluated.c.at, Fragment.rejected_at > evaluated.c.at)
    )
    on_fragments = (
        select(Fragment.source_id)
        .join(UserFeedback, UserFeedback.fragment_id == Fragment.id)
        .join(evaluated, evaluated.c.source_id == Fragment.source_id)
        .where(UserFeedback.created_at > evaluated.c.at)
    )
    on_batches = (
        select(SourceProcessing.source_id)
        .join(UserFeedback, UserFeedback.batch_id == SourceProcessing.batch_id)
        .join(evaluated, evaluated.c.source_id == SourceProcessing.source_id)
        .where(UserFeedback.created_at > evaluated.c.at)
    )
    return sorted(set(session.scalars(verdicts.union(on_fragments, on_batches))))


def refresh_stale_quality(*, session: Session, embed: Embed | None = None) -> list[int]:
    """Re-score the sources `stale_sources` lists (workers call it every few minutes, so reviews
    reach `model_performance` without a new batch). Returns their ids."""
    ids = stale_sources(session=session)
    for sid in ids:
        recompute_source(session=session, source_id=sid, embed=embed)
    return ids


def recompute_source(*, session: Session, source_id: int, embed: Embed | None = None) -> list[BatchQuality]:
    """Re-score every completed batch on a source (after reviews changed, or a new baseline batch).

    Stores each batch's measured quality in its `model_performance` row with `quality_delta` and
    `cost_delta` against the baseline model's latest batch, which is scored once, first."""
    batches = completed_batches_on(session, source_id)
    baseline = baseline_model_for(session, source_id)
    base_batch = next((b for b in reversed(batches) if b.model_name == baseline), None)
    out, base_perf = [], None
    if base_batch is not None:
        base_q = batch_quality(session=session, batch_id=base_batch.id, embed=embed)
        base_perf = _store(session, base_q, baseline, None)
    for b in batches:
        if base_batch is not None and b.id == base_batch.id:
            out.append(base_q)
            continue
        bq = batch_quality(session=session, batch_id=b.id, embed=embed)
        _store(session, bq, baseline, base_perf)
        out.append(bq)
    return out
