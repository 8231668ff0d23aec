"""Measured quality, the sweet spot and the progressive strategy, end to end through real jobs (docs/quality.md)."""

from __future__ import annotations

import json

import pytest
from fakes import chat_completion, quote_answer
from rq import SimpleWorker
from sqlalchemy import func, select

from mmos_core.analysis.quality_score import QUALITY_RULE
from mmos_core.core.db import session_scope
from mmos_core.core.domain import RQ_QUEUES
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import get_queue
from mmos_core.models import Fragment, ModelPerformance, OptimizationRun, ProcessingBatch
from mmos_core.services.batches import enqueue_batches, queue_extraction
from mmos_core.services.optimizer import find_sweet_spot, process_batch, reprocess_suggestions
from mmos_core.services.quality import batch_quality
from mmos_core.services.sources import create_source
from mmos_core.text.intake import first_words, parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"


def _source(text: str, words: int) -> int:
    with session_scope() as s:
        src = create_source(
            session=s, parsed=first_words(parse_pasted(text, max_bytes=5_000_000), words), title="Autobiography",
            person="Charles Darwin", source_type="book", quality="primary", extraction_priority="HIGH",
        )
        return src.id


def _passage(req: dict) -> str:
    return req["messages"][1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]


def _sentences(passage: str, n: int) -> list[str]:
    flat = " ".join(passage.split())
    out, start = [], 0
    while len(out) < n:
        end = flat.find(". ", start + 40)
        if end < 0:
            break
        out.append(flat[start : end + 1])
        start = end + 2
    return out or [flat[:120]]


def _drain() -> None:
    SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)


def _small_invents_large_quotes(req):
    """The small model 'quotes' sentences that are not in the text; the large one quotes the passage."""
    if req["model"].endswith(SMALL):
        return 200, chat_completion(quote_answer([
            "I was always certain that the stars were made of glass and ice.",
            "My father forbade me to ever read a single book about beetles.",
        ]))
    return 200, chat_completion(quote_answer(_sentences(_passage(req), 2)))


def test_progressive_run_escalates_from_a_hallucinating_model_and_the_sweet_spot_agrees(fake_llm, embedder_or_skip, darwin_text):
    sid = _source(darwin_text, 2500)
    fake_llm["respond"] = _small_invents_large_quotes
    with session_scope() as s:
        runs, jobs = process_batch(session=s, source_ids=[sid], strategy="progressive", models=[LARGE, SMALL],
                                   quality_threshold=3.0, sample_chunks=2)
    enqueue_batches(jobs)
    _drain()

    with session_scope() as s:
        run = s.get(OptimizationRun, runs[0].id)
        assert run.status == "completed" and run.chosen_model == LARGE
        steps = [(d["action"], d["model"]) for d in run.decisions]
        assert steps == [("sample", SMALL), ("sample", LARGE), ("full", LARGE), ("done", LARGE)]
        assert "quality lower bound 0.0 < 3" in run.decisions[1]["reason"]
        batches = {b.id: b for b in s.scalars(select(ProcessingBatch))}
        assert all(b.selected_by == "auto" for b in batches.values())
        assert [len(batches[b].chunk_scope or []) for b in run.batch_ids[:2]] == [2, 2]  # samples
        assert batches[run.batch_ids[2]].chunk_scope is None  # the full run

        full = batch_quality(session=s, batch_id=run.batch_ids[2])
        assert full.score.grounding == 1.0 and full.score.hallucination_rate == 0.0
        perf = s.scalar(select(ModelPerformance).where(ModelPerformance.batch_id == run.batch_ids[2]))
        assert perf.quality_score is not None and perf.quality_rule == QUALITY_RULE == "q-v2"
        assert float(perf.quality_ci_low) <= float(perf.quality_score) <= float(perf.quality_ci_high)

        spot = find_sweet_spot(session=s, source_id=sid, quality_threshold=3.0)
        assert spot.model_name == LARGE  # the only model with a full batch on the source


def test_agreement_uses_verified_fragments_when_there_are_any(fake_llm, embedder_or_skip, darwin_text):
    sid = _source(darwin_text, 800)
    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer(_sentences(_passage(req), 2))))
    with session_scope() as s:
        jobs = queue_extraction(session=s, source_id=sid, model_names=[SMALL, LARGE])
    enqueue_batches(jobs)
    _drain()
    small, large = (j.batch_id for j in jobs)
    with session_scope() as s:
        q = batch_quality(session=s, batch_id=small)
        assert q.reference_kind == "baseline_batch"  # the larger model's batch is the reference
        assert q.score.precision == q.score.recall == 1.0  # identical answers agree fully
        assert batch_quality(session=s, batch_id=large).reference_kind is None  # the baseline is not compared with itself
        first = s.scalar(select(Fragment).where(Fragment.batch_id == large).order_by(Fragment.id))
        first.verified = True
    with session_scope() as s:
        q = batch_quality(session=s, batch_id=small)
        assert q.reference_kind == "verified" and q.reference_size == 1
        assert q.score.recall == 1.0 and q.score.precision < 1.0
        assert batch_quality(session=s, batch_id=large).score.counts.human_n == 1


def test_sweet_spot_picks_the_cheaper_model_that_clears_the_bar(fake_llm, embedder_or_skip, darwin_text):
    sid = _source(darwin_text, 1500)
    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer(_sentences(_passage(req), 3))))
    with session_scope() as s:
        jobs = queue_extraction(session=s, source_id=sid, model_names=[SMALL, LARGE])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as s:
        spot = find_sweet_spot(session=s, source_id=sid, quality_threshold=5.0)
        assert spot.model_name == SMALL and spot.baseline_model == LARGE
        too_high = find_sweet_spot(session=s, source_id=sid, quality_threshold=9.9)
        assert too_high.model_name is None
        assert all("quality lower bound" in c.reason for c in too_high.candidates)
        assert reprocess_suggestions(session=s) == []  # local batches cost nothing: nothing to save


def test_a_failing_provider_falls_back_to_the_next_model(fake_llm, embedder_or_skip, darwin_text, monkeypatch):
    monkeypatch.setenv("MMOS_JOB_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("MMOS_LLM_MAX_RETRIES", "1")
    from mmos_core.core.config import get_settings

    get_settings.cache_clear()
    sid = _source(darwin_text, 600)

    def respond(req):
        if req["model"].endswith(SMALL):
            return 401, json.dumps({"error": {"message": "invalid api key", "type": "auth"}})
        return 200, chat_completion(quote_answer(_sentences(_passage(req), 1)))

    fake_llm["respond"] = respond
    with session_scope() as s:
        runs, jobs = process_batch(session=s, source_ids=[sid], strategy="aggressive", models=[SMALL, LARGE])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as s:
        run = s.get(OptimizationRun, runs[0].id)
        assert run.status == "completed" and run.chosen_model == LARGE
        assert "fallback" in run.decisions[1]["reason"]
        assert s.get(ProcessingBatch, run.batch_ids[1]).selected_by == "fallback"


def test_replayed_cascade_costs_and_quality_come_from_stored_answers(fake_llm, embedder_or_skip, darwin_text):
    from mmos_core.services.replay import replay_cascades

    sid = _source(darwin_text, 1500)

    def respond(req):
        passage = _passage(req)
        # the small model invents quotes on chunks that mention "father", quotes faithfully elsewhere
        if req["model"].endswith(SMALL) and "father" in passage:
            return 200, chat_completion(quote_answer(["My father forbade me to ever read a single book about beetles."]))
        return 200, chat_completion(quote_answer(_sentences(passage, 2)), prompt_tokens=1000, completion_tokens=200)

    fake_llm["respond"] = respond
    with session_scope() as s:
        jobs = queue_extraction(session=s, source_id=sid, model_names=[SMALL, LARGE])
    enqueue_batches(jobs)
    _drain()
    requests_before = len(fake_llm["requests"])
    with session_scope() as s:
        replay = replay_cascades(session=s, models=[LARGE, SMALL], prices={SMALL: (0.15, 0.6), LARGE: (2.5, 10.0)})
    assert len(fake_llm["requests"]) == requests_before  # no new call
    assert replay.models == [SMALL, LARGE] and replay.hypothetical_prices
    by = {p.label: p for p in replay.points}
    small, large = by[SMALL], by[LARGE]
    cascade = by["cascade, escalate when grounded share < 0.5"]
    assert small.cost < cascade.cost < small.cost + large.cost
    assert 0 < cascade.escalated_share < 1  # only the invented chunks were escalated
    assert small.quality.score < cascade.quality.score == large.quality.score
    # equal cascades (thresholds 0.25-1.0 escalate the same chunks here) count once on the hull
    assert small.on_hull and not large.on_hull  # a cascade reaches large's quality for less
    assert [p.threshold for p in replay.points if p.on_hull and p.kind == "cascade"] == [0.25]


def test_cross_batch_agreement_matches_fragments_of_two_models(fake_llm, embedder_or_skip, darwin_text):
    from mmos_core.services.qa import cross_batch_agreement, largest_disagreements

    sid = _source(darwin_text, 800)
    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer(
        _sentences(_passage(req), 2), relevance=3 if req["model"].endswith(SMALL) else 9)))
    with session_scope() as s:
        jobs = queue_extraction(session=s, source_id=sid, model_names=[SMALL, LARGE])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as s:
        [row] = cross_batch_agreement(session=s)
        n = s.scalar(select(func.count()).select_from(Fragment).where(Fragment.batch_id == jobs[0].batch_id))
        assert row.matching_fragments == row.exact_matches == n
        assert row.avg_relevance_difference == 6.0
        assert largest_disagreements(session=s, limit=1)[0].relevance_diff == 6


def test_a_review_after_scoring_marks_the_source_stale_until_it_is_rescored(fake_llm, embedder_or_skip, darwin_text):
    import datetime as dt

    from mmos_core.services.quality import refresh_stale_quality, stale_sources

    sid = _source(darwin_text, 600)
    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer(_sentences(_passage(req), 2))))
    with session_scope() as s:
        jobs = queue_extraction(session=s, source_id=sid, model_names=[SMALL])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as s:
        assert stale_sources(session=s) == []
        before = s.scalar(select(ModelPerformance.human_judgements))
        fragment = s.scalar(select(Fragment).order_by(Fragment.id))
        fragment.rejected, fragment.rejected_at = True, dt.datetime.now(dt.UTC)
    with session_scope() as s:
        assert stale_sources(session=s) == [sid]
        assert refresh_stale_quality(session=s) == [sid]
    with session_scope() as s:
        assert stale_sources(session=s) == []
        assert s.scalar(select(ModelPerformance.human_judgements)) == before + 1
