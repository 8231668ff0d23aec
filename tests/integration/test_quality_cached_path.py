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
    from mmos_core.services.model_quality import model_quality

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


def _greedy_over_the_whole_matrix(sim: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """The matching before it sorted only the entries at or above the threshold."""
    if sim.size == 0:
        return []
    pairs, used_a, used_b = [], set(), set()
    for flat in np.argsort(-sim, axis=None, kind="stable"):
        i, j = divmod(int(flat), sim.shape[1])
        s = float(sim[i, j])
        if s < threshold:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j, s))
    return pairs


def test_matching_only_the_entries_above_the_threshold_pairs_as_sorting_the_whole_matrix():
    from mmos_core.services.comparison import match_pairs

    rng = np.random.default_rng(7)
    for n, m in ((1, 1), (5, 40), (60, 45), (200, 180)):
        a = rng.normal(size=(n, 16))
        b = np.vstack([a[rng.integers(0, n, m // 2)] + rng.normal(scale=0.5, size=(m // 2, 16)), rng.normal(size=(m - m // 2, 16))])
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        sim = (a @ b.T).astype(np.float32)
        sim[0, 0] = np.float32(0.7)  # just below 0.7 in float64: compared as `float(s) < threshold` was
        for threshold in (0.3, 0.7, 0.95):
            assert match_pairs(sim, threshold) == _greedy_over_the_whole_matrix(sim, threshold), (n, m, threshold)
    assert match_pairs(np.zeros((0, 0)), 0.7) == []


def _straightforward_replay(session, models, source_ids=None, thresholds=(0.25, 0.5, 0.75, 1.0), cost_metric="usd", prices=None):
    """The replay before each source's policies were remembered: every chunk of every source in one loop."""
    from mmos_core.analysis.quality_score import AGREEMENT_THRESHOLD, QualityCounts, score
    from mmos_core.models import Source
    from mmos_core.services.comparison import match_pairs
    from mmos_core.services.quality import completed_batches_on, model_cost_rank
    from mmos_core.services.replay import _answers, _verified, upper_hull

    ladder = sorted(dict.fromkeys(models), key=model_cost_rank)
    prices = prices or {}
    ids = source_ids if source_ids is not None else list(session.scalars(select(Source.id).order_by(Source.id)))
    table = {}
    for sid in ids:
        latest = {b.model_name: b for b in completed_batches_on(session, sid)}
        if all(m in latest for m in ladder):
            table[sid] = {m: _answers(session, latest[m], sid, prices.get(m)) for m in ladder}
    references = {sid: _verified(session, sid) for sid in table}
    chunks = [(sid, cid) for sid, per in table.items() for cid in sorted(set.intersection(*(set(a) for a in per.values())))]

    def cost_of(ans):
        return ans.cost_usd if cost_metric == "usd" else ans.seconds

    def quality(kept):
        counts, per_source = QualityCounts(), {}
        for sid, ans in kept:
            decided = [g for g in ans.grounded if g is not None]
            counts = counts + QualityCounts(checked=len(decided), grounded=sum(decided), human_n=len(ans.human),
                                            human_k=sum(ans.human))
            per_source.setdefault(sid, []).append(ans.vectors)
        for sid, ref in references.items():
            if len(ref):
                mine = np.vstack(per_source[sid]) if per_source.get(sid) else np.zeros((0, 384), np.float32)
                n = len(match_pairs(mine @ ref.T if len(mine) else np.zeros((0, 0)), AGREEMENT_THRESHOLD))
                counts = counts + QualityCounts(batch_fragments=len(mine), batch_matched=n, reference_fragments=len(ref),
                                                reference_matched=n)
        return score(counts)

    points = []
    for m in ladder:
        kept = [(sid, table[sid][m][cid]) for sid, cid in chunks]
        points.append((m, sum(cost_of(a) for _, a in kept), quality(kept), 0.0))
    for x in thresholds:
        total, kept, escalated = 0.0, [], 0
        for sid, cid in chunks:
            for level, m in enumerate(ladder):
                ans = table[sid][m][cid]
                total += cost_of(ans)
                if ans.grounded_share >= x or level == len(ladder) - 1:
                    escalated += int(level > 0)
                    kept.append((sid, ans))
                    break
        points.append((f"cascade, escalate when grounded share < {x:g}", total, quality(kept), escalated / len(chunks)))
    hull = set(upper_hull([(c, q.score or 0.0) for _, c, q, _ in points]))
    return sorted(table), len(chunks), [(*p, i in hull) for i, p in enumerate(points)]


def _reports(session, letters: int) -> dict:
    from mmos_core.services import qa
    from mmos_core.services.calibration import calibration
    from mmos_core.services.model_quality import model_quality
    from mmos_core.services.optimizer import find_sweet_spot
    from mmos_core.services.replay import replay_cascades

    def replay(**kw):
        r = replay_cascades(session=session, **kw)
        return r.sources, r.chunks, [(p.label, p.cost, p.quality, p.escalated_share, p.on_hull) for p in r.points]

    return {
        "quality": [model_quality(session=session, **scope) for scope in ({}, {"category": "Emotional"}, {"source_ids": [letters]})],
        "spot": find_sweet_spot(session=session, quality_threshold=2.0),
        "replay usd": replay(models=["honest", "inventive"]),
        "replay seconds": replay(models=["honest", "inventive"], cost_metric="seconds", prices={"inventive": (0.15, 0.6)}),
        "qa": (qa.cross_batch_agreement(session=session), qa.largest_disagreements(session=session, limit=5)),
        "calibration": calibration(session=session, min_verdicts=1),
    }


def _changes(letters: int) -> list:
    """One change of each kind to the Letters source, as (name, function of a session)."""
    from mmos_core.core.db import session_scope
    from mmos_core.models import AsiInference, Fragment, FragmentCheck, JudgeVerdict, ProcessingBatch, SourceProcessing, UserFeedback
    from mmos_core.services.auth import Role, create_user
    from mmos_core.services.review import edit_fragment, reject, verify

    with session_scope() as s:
        reviewer = create_user(session=s, username="rita", role=Role.admin, password="correct horse battery")

    def fragment(s, *where):
        return s.scalar(select(Fragment.id).where(Fragment.source_id == letters, *where).order_by(Fragment.id).limit(1))

    def new_batch(s):
        b = ProcessingBatch(batch_code="BATCH_R_2", model_provider="local", model_name="inventive", prompt_version="v2",
                            batch_status="completed", estimated_cost_usd=Decimal("0.01"), completed_at=dt.datetime.now(dt.UTC))
        s.add(b)
        s.flush()
        s.add(SourceProcessing(source_id=letters, batch_id=b.id, processing_status="completed"))
        s.add(Fragment(source_id=letters, batch_id=b.id, category="Emotional", fragment_type="paraphrase",
                       content="I cared for dogs.", relevance=6, confidence=0.7, embedding=_unit(1)))

    return [
        ("verify", lambda s: verify(session=s, user=reviewer, fragment_id=fragment(s, Fragment.verified.is_(False),
                                                                                   Fragment.rejected.is_(False)))),
        ("reject", lambda s: reject(session=s, user=reviewer, fragment_id=fragment(s, Fragment.verified.is_(True)),
                                    reason="misquote")),
        ("check", lambda s: s.add(FragmentCheck(fragment_id=fragment(s, ~Fragment.id.in_(select(FragmentCheck.fragment_id))),
                                                rule_version="v1", verbatim="n/a", attribution="n/a", support_baseline=0.9))),
        ("judge", lambda s: s.add(JudgeVerdict(fragment_id=fragment(s), judge_model="j", rubric_version="r1", status="ok",
                                               support="no", category_agrees=False))),
        ("grounding", lambda s: s.add(AsiInference(kind="fragment_grounding", input_text="x", processing_time_ms=1,
                                                   fragment_id=fragment(s, Fragment.fragment_type == "paraphrase"),
                                                   flux_position=1, confidence=0.9))),
        ("batch feedback", lambda s: s.add(UserFeedback(batch_id=s.scalar(select(Fragment.batch_id).where(
            Fragment.source_id == letters).limit(1)), model_name="honest", feedback_type="dislike"))),
        ("edit", lambda s: edit_fragment(session=s, user=reviewer, fragment_id=fragment(s, Fragment.category == "Emotional"),
                                         category="Biographical")),
        ("new batch", new_batch),
    ]


def test_source_fingerprints_move_only_for_the_source_a_change_touches():
    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment
    from mmos_core.services.data_version import source_versions

    two_models_on_one_source()
    letters = _second_source_with_reviews()
    with session_scope() as s:
        before = source_versions(session=s)
    (other,) = set(before) - {letters}
    for name, change in _changes(letters):
        with session_scope() as s:
            change(s)
        with session_scope() as s:
            now = source_versions(session=s)
        assert now[letters] != before[letters], name
        assert now[other] == before[other], name
        before = now
    with session_scope() as s:  # a field changed twice in one transaction, without an edit row
        f = s.scalar(select(Fragment).where(Fragment.source_id == other).limit(1))
        f.relevance = 1
        s.flush()
        from mmos_core.services.data_version import _source_rows

        first = _source_rows(s)[other]
        f.relevance = 2
        s.flush()
        assert _source_rows(s)[other] != first


def test_reports_reuse_unchanged_sources_and_equal_a_fresh_computation_after_each_change():
    """Each report remembered per source (`services.data_version.per_source`) gives what the straightforward code
    gives, before and after each kind of change to one source, and what it gives with nothing remembered."""
    from mmos_core.core.db import session_scope
    from mmos_core.services import data_version as dv

    two_models_on_one_source()
    letters = _second_source_with_reviews()
    dv.clear_memo()

    def check(s, remembered):
        quality = [[(r.model_name, r.batches, r.fragments, r.cost_usd, r.model_seconds, r.score) for r in rows]
                   for rows in remembered["quality"]]
        assert quality == [_straightforward(s, **scope) for scope in ({}, {"category": "Emotional"}, {"source_ids": [letters]})]
        assert remembered["replay usd"] == _straightforward_replay(s, ["honest", "inventive"])
        assert remembered["replay seconds"] == _straightforward_replay(s, ["honest", "inventive"], cost_metric="seconds",
                                                                       prices={"inventive": (0.15, 0.6)})
        dv.clear_memo()
        assert _reports(s, letters) == remembered  # nothing remembered: the same figures

    with session_scope() as s:
        first = _reports(s, letters)
        assert first["qa"][0] and len(first["replay usd"][0]) == 2
        assert _reports(s, letters) == first  # remembered
        check(s, first)
    previous = first
    for name, change in _changes(letters):
        with session_scope() as s:
            _reports(s, letters)  # every source remembered before the change
        with session_scope() as s:
            change(s)
        with session_scope() as s:
            after = _reports(s, letters)  # the other source from the memo, Letters recomputed
            check(s, after)
        assert after != previous, name
        previous = after


def test_a_restarted_process_reads_each_sources_share_from_redis_instead_of_recomputing_it(monkeypatch):
    """After a restart (the process's memo empty) the reports come from the shares kept in Redis: the same
    figures, and no source is scored again; a changed source is, and only that one."""
    from mmos_core.core.db import session_scope
    from mmos_core.services import data_version as dv
    from mmos_core.services import model_quality as quality

    two_models_on_one_source()
    letters = _second_source_with_reviews()
    dv.clear_memo()
    with session_scope() as s:
        first = _reports(s, letters)
    dv.clear_memo(shared=False)  # a new UI process: nothing in memory, Redis as it was
    scored: list[int] = []
    real = quality._pooled_batches
    monkeypatch.setattr(quality, "_pooled_batches", lambda session, sid, *a, **k: scored.append(sid) or real(session, sid, *a, **k))
    with session_scope() as s:
        assert _reports(s, letters) == first
    assert scored == []
    name, change = _changes(letters)[0]
    with session_scope() as s:
        change(s)
    dv.clear_memo(shared=False)
    with session_scope() as s:
        after = _reports(s, letters)
    assert after != first, name
    assert set(scored) == {letters}
