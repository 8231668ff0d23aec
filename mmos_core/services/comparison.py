"""Side-by-side comparison of batches: per-model figures and fragment alignment by embedding similarity."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.analysis.quality_score import AGREEMENT_THRESHOLD
from mmos_core.core.domain import BatchStatus
from mmos_core.models import Fragment, ModelPerformance, ProcessingBatch, SourceProcessing

#: Two fragments are "the same finding" when the cosine similarity of their all-MiniLM-L6-v2
#: embeddings is at least this. 0.70 was chosen by reading Darwin pairs: above it pairs share
#: the quote or its point, below it they are about different things.
DEFAULT_MATCH_THRESHOLD = AGREEMENT_THRESHOLD  # one matching rule for the page and for measured agreement


@dataclass(frozen=True)
class BatchStats:
    """One row of the comparison table (costs in USD, times in seconds of model time)."""

    batch_id: int
    batch_code: str
    model_name: str
    model_provider: str
    status: str
    fragments: int
    avg_relevance: float | None
    avg_confidence: float | None
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    cost_per_fragment: Decimal | None
    seconds: float | None
    seconds_per_fragment: float | None
    malformed_responses: int
    chunks_total: int
    direct_quote_share: float | None
    located_share: float | None
    #: of the direct quotes with checks: share verbatim, share said by the person; share of judged or
    #: measured insights the quote supports (docs/quality.md); None when not checked yet
    verbatim_share: float | None = None
    person_share: float | None = None
    support_rate: float | None = None
    quality_score: float | None = None


def batch_stats(*, session: Session, batch_ids: list[int]) -> list[BatchStats]:
    """Per-batch figures for the comparison table, in the order of `batch_ids`."""
    agg = {
        row.batch_id: row
        for row in session.execute(
            select(
                Fragment.batch_id,
                func.count().label("n"),
                func.avg(Fragment.relevance).label("rel"),
                func.avg(Fragment.confidence).label("conf"),
                func.count().filter(Fragment.fragment_type == "direct_quote").label("quotes"),
            )
            .where(Fragment.batch_id.in_(batch_ids))
            .group_by(Fragment.batch_id)
        )
    }
    perf = {
        p.batch_id: p
        for p in session.scalars(select(ModelPerformance).where(ModelPerformance.batch_id.in_(batch_ids)))
    }
    batches = {b.id: b for b in session.scalars(select(ProcessingBatch).where(ProcessingBatch.id.in_(batch_ids)))}
    out = []
    for bid in batch_ids:
        b = batches.get(bid)
        if b is None:
            continue
        a = agg.get(bid)
        n = int(a.n) if a else 0
        seconds = float(b.processing_duration_seconds) if b.processing_duration_seconds is not None else None
        cost = Decimal(b.estimated_cost_usd)
        p = perf.get(bid)
        out.append(
            BatchStats(
                batch_id=bid,
                batch_code=b.batch_code,
                model_name=b.model_name,
                model_provider=b.model_provider,
                status=b.batch_status,
                fragments=n,
                avg_relevance=float(a.rel) if a and a.rel is not None else None,
                avg_confidence=float(a.conf) if a and a.conf is not None else None,
                input_tokens=int(b.total_input_tokens),
                output_tokens=int(b.total_output_tokens),
                cost_usd=cost,
                cost_per_fragment=(cost / n) if n else None,
                seconds=seconds,
                seconds_per_fragment=(seconds / n) if (n and seconds is not None) else None,
                malformed_responses=b.malformed_responses,
                chunks_total=b.chunks_total,
                direct_quote_share=(int(a.quotes) / n) if n else None,
                located_share=float(p.located_share) if p and p.located_share is not None else None,
                verbatim_share=(p.quotes_exact / p.direct_quotes) if p and p.direct_quotes else None,
                person_share=(p.quotes_by_person / p.direct_quotes) if p and p.direct_quotes else None,
                support_rate=float(p.support_rate) if p and p.support_rate is not None else None,
                quality_score=float(p.quality_score) if p and p.quality_score is not None else None,
            )
        )
    return out


def completed_batches(*, session: Session, source_id: int) -> list[ProcessingBatch]:
    """Completed batches of a source, oldest first."""
    return list(
        session.scalars(
            select(ProcessingBatch)
            .join(SourceProcessing, SourceProcessing.batch_id == ProcessingBatch.id)
            .where(SourceProcessing.source_id == source_id, ProcessingBatch.batch_status == BatchStatus.completed.value)
            .order_by(ProcessingBatch.id)
        )
    )


@dataclass(frozen=True)
class FragmentView:
    """The fields of a fragment shown in the comparison."""

    id: int
    fragment_code: str
    category: str
    fragment_type: str
    content: str
    insight: str | None
    relevance: int
    confidence: float
    location_in_source: str | None


@dataclass(frozen=True)
class AlignedPair:
    """A row of the side-by-side view: a fragment of A, of B, or both with their cosine similarity."""

    left: FragmentView | None
    right: FragmentView | None
    similarity: float | None


def _fragments(session: Session, batch_id: int) -> tuple[list[FragmentView], np.ndarray]:
    rows = session.execute(
        select(Fragment).where(Fragment.batch_id == batch_id).order_by(Fragment.char_start.nulls_last(), Fragment.id)
    ).scalars()
    views, vecs = [], []
    for f in rows:
        views.append(
            FragmentView(
                id=f.id,
                fragment_code=f.fragment_code,
                category=f.category,
                fragment_type=f.fragment_type,
                content=f.content,
                insight=f.insight,
                relevance=f.relevance,
                confidence=float(f.confidence),
                location_in_source=f.location_in_source,
            )
        )
        vecs.append(np.asarray(f.embedding, dtype=np.float32) if f.embedding is not None else np.zeros(384, np.float32))
    return views, (np.vstack(vecs) if vecs else np.zeros((0, 384), np.float32))


def match_pairs(sim: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching on a similarity matrix: repeatedly take the most similar free pair ≥ threshold.

    Args:
        sim: (n_a, n_b) cosine similarities.
    Returns:
        (i, j, similarity) triples, most similar first; equal similarities in row-major order. Greedy rather
        than optimal assignment: with a high threshold the two agree in practice, and greedy is easy to
        explain to a reviewer.
    """
    if sim.size == 0:
        return []
    # only the entries at or above the threshold are sorted (compared in float64, as `float(s) < threshold`
    # was): sorting the whole matrix cost ~50 ms a batch at 100,000 fragments (bench/README.md)
    rows, cols = np.nonzero(sim >= np.float64(threshold))
    order = np.argsort(-sim[rows, cols], kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for k in order:
        i, j = int(rows[k]), int(cols[k])
        s = float(sim[i, j])
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        pairs.append((i, j, s))
    return pairs


def align_batches(
    *, session: Session, batch_a: int, batch_b: int, threshold: float = DEFAULT_MATCH_THRESHOLD
) -> list[AlignedPair]:
    """Fragments of two batches side by side: matched pairs first (most similar first), then the
    unmatched of A, then the unmatched of B."""
    left, va = _fragments(session, batch_a)
    right, vb = _fragments(session, batch_b)
    pairs = match_pairs(va @ vb.T if len(left) and len(right) else np.zeros((0, 0)), threshold)
    matched_a = {i for i, _, _ in pairs}
    matched_b = {j for _, j, _ in pairs}
    out = [AlignedPair(left[i], right[j], s) for i, j, s in pairs]
    out += [AlignedPair(f, None, None) for i, f in enumerate(left) if i not in matched_a]
    out += [AlignedPair(None, f, None) for j, f in enumerate(right) if j not in matched_b]
    return out
