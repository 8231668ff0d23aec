"""The faster `model_quality` (verified reference read once per source) and the page cache's data
fingerprint (`services.data_version`) against the straightforward computation (bench/README.md, page timings)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pytest
from quality_support import two_models_on_one_source
from sqlalchemy import select

pytestmark = pytest.mark.usefixtures("clean_db")


def _unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=384)
    return (v / np.linalg.norm(v)).tolist()


def _second_source_with_reviews() -> int:
    """Two models on a second source with verified, rejected and unreviewed fragments of mixed types and
    categories, a rating and a batch comment: exercises the verified-reference path and human counts."""
    from mmos_core.core.db import session_scope
    from mmos_core.models import (
        AsiInference,
        ExtractionCall,
        Fragment,
        FragmentCheck,
        ProcessingBatch,
        SourceChunk,
        SourceProcessing,
        UserFeedback,
    )
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    text = "The voyage of the Beagle was the most important event in my life.\n\nI cared for shooting and dogs."
    now = dt.datetime.now(dt.UTC)
    with session_scope() as s:
        sid = create_source(session=s, parsed=parse_pasted(text, max_bytes=1_000_000), title="Letters",
                            source_type="letter", quality="primary", extraction_priority="HIGH").id
        chunk_id = s.scalar(select(SourceChunk.id).where(SourceChunk.source_id == sid))
        for i, (model, cost) in enumerate((("honest", "0.30"), ("inventive", "0.05"))):
            b = ProcessingBatch(batch_code=f"BATCH_R_{i}", model_provider="openai", model_name=model, prompt_version="v1",
                                batch_status="completed", estimated_cost_usd=Decimal(cost), completed_at=now)
            s.add(b)
            s.flush()
            s.add(SourceProcessing(source_id=sid, batch_id=b.id, processing_status="completed"))
            s.add(ExtractionCall(batch_id=b.id, chunk_id=chunk_id, status="ok", cost_usd=Decimal(cost), duration_ms=4000))
            for j in range(10):
                ftype = ("direct_quote", "paraphrase", "inference")[j % 3]
                f = Fragment(source_id=sid, batch_id=b.id, chunk_id=chunk_id,
                             category=("Biographical", "Emotional")[j % 2], fragment_type=ftype,
                             content=f"fragment {i}-{j}", relevance=5 + j % 5, confidence=0.8,
                             location_score=100 if j % 4 else None, embedding=_unit(100 * i + j if j % 3 else j),
                             verified=j % 5 == 0, rejected=j % 7 == 1,
                             verified_at=now if j % 5 == 0 else None, rejected_at=now if j % 7 == 1 else None)
                s.add(f)
                s.flush()
                if ftype != "direct_quote" and j % 2:  # grounding audit rows (the later one counts)
                    for conf in (0.2, 0.3 + j / 20):
                        s.add(AsiInference(kind="fragment_grounding", input_text=f.content, fragment_id=f.id, processing_time_ms=5,
                                           flux_position=1, confidence=conf))
                if j % 3 == 0:
                    s.add(FragmentCheck(fragment_id=f.id, rule_version="v1", verbatim=("exact", "near")[j % 2],
                                        attribution=("person", "other")[j % 4 == 3], support_baseline=0.6))
                if j == 2:
                    s.add(UserFeedback(fragment_id=f.id, model_name=model, feedback_type="rating", quality_rating=4))
            s.add(UserFeedback(batch_id=b.id, model_name=model, feedback_type="rating", quality_rating=2))
        return sid


def _straightforward(session, *, source_ids=None, source_type=None, category=None):
    """The pre-optimisation `model_quality` loop: every batch looks its reference up itself."""
    from sqlalchemy import func

    from mmos_core.analysis.quality_score import QualityCounts, score
    from mmos_core.models import Fragment, Source
    from mmos_core.services.quality import _model_seconds, batch_counts, completed_batches_on, model_cost_rank

    q = select(Source.id)
    if source_ids is not None:
        q = q.where(Source.id.in_(source_ids))
    if source_type:
        q = q.where(Source.source_type == source_type)
    pooled: dict[str, list] = {}
    for sid in session.scalars(q).all():
        for batch in completed_batches_on(session, sid):
            counts, _ = batch_counts(session=session, batch=batch, source_id=sid, category=category)
            fq = select(func.count()).select_from(Fragment).where(Fragment.batch_id == batch.id, Fragment.source_id == sid)
            if category:
                fq = fq.where(Fragment.category == category)
            n = int(session.scalar(fq) or 0)
            share = 1.0
            if category:
                total = session.scalar(select(func.count()).select_from(Fragment).where(Fragment.batch_id == batch.id)) or 0
                share = n / total if total else 0.0
            acc = pooled.setdefault(batch.model_name, [0, 0, Decimal(0), 0.0, QualityCounts()])
            acc[0] += 1
            acc[1] += n
            acc[2] += Decimal(batch.estimated_cost_usd or 0) * Decimal(str(share))
            acc[3] += _model_seconds(session, batch.id) * share
            acc[4] = acc[4] + counts
    rows = [(m, a[0], a[1], a[2], a[3], score(a[4])) for m, a in pooled.items()]
    return sorted(rows, key=lambda r: model_cost_rank(r[0]))


def test_optimised_model_quality_returns_the_same_scores_as_the_straightforward_loop():
    from mmos_core.core.db import session_scope
    from mmos_core.services.quality import model_quality

    two_models_on_one_source()
    letters = _second_source_with_reviews()
    scopes = [{}, {"category": "Emotional"}, {"category": "Biographical"}, {"source_type": "letter"},
              {"source_type": "book"}, {"source_ids": [letters]}, {"source_ids": [letters], "category": "Emotional"}]
    with session_scope() as s:
        for scope in scopes:
            fast = model_quality(session=s, **scope)
            slow = _straightforward(s, **scope)
            assert [(r.model_name, r.batches, r.fragments, r.cost_usd, r.model_seconds, r.score) for r in fast] == slow, scope
            assert any(r.score.counts.reference_fragments for r in fast), scope  # a reference was used
    with session_scope() as s:  # the fixture reaches grounding rows, checks, verdicts and feedback
        counts = [r.score.counts for r in model_quality(session=s, source_ids=[letters])]
        assert all(c.human_n and c.checked and c.direct_quotes and c.support_n for c in counts)


def test_data_version_is_stable_without_changes_and_moves_with_each_kind_of_change():
    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment, UserFeedback
    from mmos_core.services.data_version import data_version

    two_models_on_one_source()
    with session_scope() as s:
        before = data_version(session=s)
    with session_scope() as s:
        assert data_version(session=s) == before
    seen = [before]

    def changed() -> None:  # differs from the last state (taking a verdict back may restore an earlier one)
        with session_scope() as s:
            now = data_version(session=s)
        assert now != seen[-1]
        seen.append(now)

    with session_scope() as s:  # a reviewer verifies a fragment
        f = s.scalar(select(Fragment).order_by(Fragment.id).limit(1))
        f.verified, f.verified_at = True, dt.datetime.now(dt.UTC)
    changed()
    with session_scope() as s:  # ... and takes it back
        f = s.scalar(select(Fragment).order_by(Fragment.id).limit(1))
        f.verified, f.verified_at = False, None
    changed()
    with session_scope() as s:  # feedback
        s.add(UserFeedback(fragment_id=s.scalar(select(Fragment.id).limit(1)), model_name="honest", feedback_type="rating",
                            quality_rating=5))
    changed()
    _second_source_with_reviews()  # new source, batches and fragments
    changed()
