"""Cross-batch validation and QA reports (the core design: Workflow 3 and section 6 A; docs/quality.md).

* `cross_batch_agreement` — the core design Workflow 3 compares fragments of two batches of the same source
  whose `content` is identical; models rarely copy each other to the byte, so fragments are also
  matched one-to-one by embedding cosine ≥ `AGREEMENT_THRESHOLD` (greedy, best pair first). Per model
  pair: matched fragments (exact ones among them), mean |relevance difference| and mean |confidence
  difference| of the matched pairs.
* `largest_disagreements` — matched pairs with the biggest relevance difference, for a reviewer.
* `contradicting_fragments` — the core design §6 A as written: pairs linked by a `contradicts` relationship.
Reprocessing suggestions are `mmos_core.services.optimizer.reprocess_suggestions`; coverage is
`mmos_core.services.coverage`.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from mmos_core.analysis.quality_score import AGREEMENT_THRESHOLD
from mmos_core.models import Fragment, FragmentRelationship, ProcessingBatch, Source
from mmos_core.services.comparison import match_pairs
from mmos_core.services.data_version import per_source, source_versions
from mmos_core.services.quality import FragmentFacts, completed_batches_on, fragment_facts


@dataclass(frozen=True)
class MatchedPair:
    """Two fragments of one source from two batches, matched by embedding cosine."""

    source_id: int
    model_a: str
    model_b: str
    fragment_a: int
    fragment_b: int
    content_a: str
    content_b: str
    relevance_a: int
    relevance_b: int
    confidence_a: float
    confidence_b: float
    similarity: float

    @property
    def relevance_diff(self) -> int:
        return abs(self.relevance_a - self.relevance_b)


@dataclass(frozen=True)
class PairAgreement:
    """The core design Workflow 3 per model pair: matched fragments and their mean differences."""

    model_a: str
    model_b: str
    sources: int
    matching_fragments: int
    exact_matches: int
    avg_relevance_difference: float | None
    avg_confidence_difference: float | None


def _batch_fragments(session: Session, batch_id: int, source_id: int) -> tuple[list[FragmentFacts], np.ndarray]:
    frags = fragment_facts(session, Fragment.batch_id == batch_id, Fragment.source_id == source_id,
                           Fragment.embedding.is_not(None))
    vecs = np.vstack([f.embedding for f in frags]) if frags else np.zeros((0, 384), np.float32)
    return frags, vecs


def _source_pairs(session: Session, source_id: int, threshold: float) -> list[MatchedPair]:
    latest = {b.model_name: b for b in completed_batches_on(session, source_id)}
    loaded = {m: _batch_fragments(session, b.id, source_id) for m, b in latest.items()}
    out = []
    for ma, mb in combinations(sorted(loaded), 2):
        (fa, va), (fb, vb) = loaded[ma], loaded[mb]
        if not len(fa) or not len(fb):
            continue
        for i, j, sim in match_pairs(va @ vb.T, threshold):
            a, b = fa[i], fb[j]
            out.append(MatchedPair(source_id, ma, mb, a.id, b.id, a.content, b.content, a.relevance, b.relevance,
                                   float(a.confidence), float(b.confidence), round(sim, 4)))
    return out


def matched_pairs(*, session: Session, source_ids: list[int] | None = None,
                  threshold: float = AGREEMENT_THRESHOLD) -> list[MatchedPair]:
    """Matched fragments between the latest completed full batches of every two models on each source.

    Each source's pairs are matched once per fingerprint of the source (`services.data_version`), so the
    agreement table and the largest disagreements share one matching, and a change rematches only its source."""
    ids = source_ids if source_ids is not None else list(session.scalars(select(Source.id).order_by(Source.id)))
    versions = source_versions(session=session)
    out = []
    for sid in ids:
        def compute(sid=sid):
            return _source_pairs(session, sid, threshold)
        out += per_source("qa", sid, versions[sid], threshold, compute) if sid in versions else compute()
    return out


def cross_batch_agreement(*, session: Session, source_ids: list[int] | None = None) -> list[PairAgreement]:
    """Per model pair over the sources (module docstring), most matches first."""
    groups: dict[tuple[str, str], list[MatchedPair]] = {}
    for p in matched_pairs(session=session, source_ids=source_ids):
        groups.setdefault((p.model_a, p.model_b), []).append(p)
    rows = [
        PairAgreement(
            model_a=a, model_b=b, sources=len({p.source_id for p in ps}), matching_fragments=len(ps),
            exact_matches=sum(p.content_a.strip() == p.content_b.strip() for p in ps),
            avg_relevance_difference=round(sum(p.relevance_diff for p in ps) / len(ps), 2),
            avg_confidence_difference=round(sum(abs(p.confidence_a - p.confidence_b) for p in ps) / len(ps), 3),
        )
        for (a, b), ps in groups.items()
    ]
    return sorted(rows, key=lambda r: -r.matching_fragments)


def largest_disagreements(*, session: Session, source_ids: list[int] | None = None, limit: int = 20) -> list[MatchedPair]:
    """Matched pairs whose relevance differs most (same content judged differently)."""
    pairs = matched_pairs(session=session, source_ids=source_ids)
    return sorted(pairs, key=lambda p: (-p.relevance_diff, -p.similarity))[:limit]


@dataclass(frozen=True)
class ContradictionRow:
    """The core design §6 A: two fragments linked by `contradicts`."""

    source_id: int
    fragment_1: str
    fragment_2: str
    relevance_1: int
    relevance_2: int
    model_1: str
    model_2: str


def contradicting_fragments(*, session: Session, source_id: int | None = None) -> list[ContradictionRow]:
    """The core design §6 A, ordered by the relevance of both fragments (highest first)."""
    f1, f2 = aliased(Fragment), aliased(Fragment)
    b1, b2 = aliased(ProcessingBatch), aliased(ProcessingBatch)
    q = (
        select(f1.source_id, f1.content, f2.content, f1.relevance, f2.relevance, b1.model_name, b2.model_name)
        .join(FragmentRelationship, FragmentRelationship.fragment_id == f1.id)
        .join(f2, FragmentRelationship.related_fragment_id == f2.id)
        .join(b1, b1.id == f1.batch_id)
        .join(b2, b2.id == f2.batch_id)
        .where(FragmentRelationship.relationship_type == "contradicts")
        .order_by(f1.relevance.desc(), f2.relevance.desc())
    )
    if source_id is not None:
        q = q.where(f1.source_id == source_id)
    return [ContradictionRow(*row) for row in session.execute(q)]
