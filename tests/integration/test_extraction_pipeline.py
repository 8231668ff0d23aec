"""A source through queue → RQ worker → staged calls → fragments, with the provider faked at the HTTP edge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from fakes import chat_completion, quote_answer
from process_support import kill_worker
from rq import SimpleWorker
from sqlalchemy import func, select

from mmos_core.core.db import session_scope
from mmos_core.core.domain import RQ_QUEUES
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import get_queue
from mmos_core.models import ExtractionCall, Fragment, ModelPerformance, ProcessingBatch, ProcessingQueue
from mmos_core.services.batches import batch_progress, enqueue_batches, queue_extraction
from mmos_core.services.comparison import align_batches, batch_stats
from mmos_core.services.queue_admin import reconcile
from mmos_core.services.sources import create_source
from mmos_core.text.intake import first_words, parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"


def _source(text: str, words: int | None = None) -> tuple[int, int]:
    parsed = parse_pasted(text, max_bytes=5_000_000)
    if words:
        parsed = first_words(parsed, words)
    with session_scope() as session:
        src = create_source(
            session=session, parsed=parsed, title="Autobiography", person="Charles Darwin",
            source_type="book", quality="primary", extraction_priority="HIGH",
        )
        return src.id, len(src.chunks)


def _user_passage(request: dict) -> str:
    return request["messages"][1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]


def _first_sentence(passage: str) -> str:
    flat = " ".join(passage.split())
    for end in (". ", "? ", "! "):
        if end in flat[40:]:
            return flat[: flat.index(end, 40) + 1]
    return flat[:120]


def _drain() -> None:
    SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)


def test_two_models_extract_traced_fragments(fake_llm, embedder_or_skip, darwin_text):
    source_id, n_chunks = _source(darwin_text, words=1500)
    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer([_first_sentence(_user_passage(req))])))
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL, LARGE])
        statuses = [session.get(ProcessingBatch, j.batch_id).batch_status for j in jobs]
    assert statuses == ["pending", "pending"]
    enqueue_batches(jobs)
    _drain()

    with session_scope() as session:
        progress = batch_progress(session=session, source_id=source_id)
        assert {p.status for p in progress} == {"completed"}
        assert all(p.chunks_done == p.chunks_total == n_chunks for p in progress)
        fragments = session.scalars(select(Fragment).order_by(Fragment.id)).all()
        assert len(fragments) == 2 * n_chunks
        for f in fragments:
            assert f.fragment_code.startswith("COG-")
            assert f.source_id == source_id and f.chunk_id is not None
            assert f.embedding is not None and len(f.embedding) == 384
            # the quote was taken verbatim from the passage, so it must be located exactly
            assert f.location_score == 100
            assert f.char_start is not None and f.char_end > f.char_start
        perf = session.scalars(select(ModelPerformance)).all()
        assert {p.model_name for p in perf} == {SMALL, LARGE}
        queue_rows = session.scalars(select(ProcessingQueue)).all()
        assert {q.queue_status for q in queue_rows} == {"completed"}
        assert all(q.effective_priority == 12 for q in queue_rows)  # HIGH (6) × primary (2)
        stats = batch_stats(session=session, batch_ids=[j.batch_id for j in jobs])
        assert all(s.input_tokens == 120 * n_chunks and s.output_tokens == 40 * n_chunks for s in stats)
        assert all(s.cost_usd == 0 for s in stats)  # local models are free
        pairs = align_batches(session=session, batch_a=jobs[0].batch_id, batch_b=jobs[1].batch_id)
        assert sum(1 for p in pairs if p.left and p.right) == n_chunks  # identical answers align 1:1
    # each request asked for schema-constrained JSON (llama-server compiles json_schema to a grammar)
    assert all(r["response_format"]["type"] == "json_schema" and r["response_format"]["json_schema"]["schema"]
               for r in fake_llm["requests"])


def test_cloud_model_cost_uses_the_snapshotted_litellm_price(fake_llm, embedder_or_skip):
    source_id, n_chunks = _source("Dear friend, I think the barnacles have taught me patience above all else.\n\n" * 1)
    fake_llm["respond"] = lambda req: (200, chat_completion(json.dumps({"fragments": []}), prompt_tokens=1000, completion_tokens=500))
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=["gpt-4o-mini"])
        snap = session.get(ProcessingBatch, jobs[0].batch_id).price_snapshot
    assert snap["input_cost_per_token"] == 1.5e-07 and snap["output_cost_per_token"] == 6e-07
    enqueue_batches(jobs)
    _drain()
    with session_scope() as session:
        batch = session.get(ProcessingBatch, jobs[0].batch_id)
        assert batch.batch_status == "completed"
        # 1000 × 0.15 $/M + 500 × 0.60 $/M = 0.00045 USD per chunk
        assert float(batch.estimated_cost_usd) == pytest.approx(0.00045 * n_chunks)
    assert fake_llm["requests"][0]["response_format"]["type"] == "json_schema"


def test_quotes_found_and_not_found_in_one_batch(fake_llm, embedder_or_skip, darwin_text):
    """A made-up 'quote' is kept but marked as not found; a paraphrase points at its chunk."""
    source_id, n_chunks = _source(darwin_text, words=400)

    def respond(req):
        real = _first_sentence(_user_passage(req))
        answer = json.loads(quote_answer([real, "I never once doubted the literal truth of every word in the Bible."]))
        answer["fragments"].append(dict(answer["fragments"][0], fragment_type="paraphrase", content="He liked to collect things."))
        return 200, chat_completion(json.dumps(answer))

    fake_llm["respond"] = respond
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as session:
        assert session.get(ProcessingBatch, jobs[0].batch_id).batch_status == "completed"
        rows = session.scalars(select(Fragment).order_by(Fragment.id)).all()
        assert len(rows) == 3 * n_chunks
        found = [f for f in rows if f.location_score is not None]
        missing = [f for f in rows if f.location_in_source.endswith("(quote not found)")]
        paraphrases = [f for f in rows if f.fragment_type == "paraphrase"]
        assert len(found) == len(missing) == len(paraphrases) == n_chunks
        assert all(f.char_start is None for f in missing)
        assert all(f.char_start is not None and f.location_score is None for f in paraphrases)
        perf = session.scalar(select(ModelPerformance))
        assert float(perf.located_share) == 0.5


def test_malformed_answer_is_recorded_and_batch_still_completes(fake_llm, embedder_or_skip, darwin_text):
    source_id, n_chunks = _source(darwin_text, words=900)
    assert n_chunks >= 2
    calls = {"n": 0}

    def respond(req):
        calls["n"] += 1
        if calls["n"] == 1:
            return 200, chat_completion('{"fragments": [{"category": "Cognitive", "content": "unterminated')
        if calls["n"] == 2:
            # one valid fragment, one with relevance out of range: the bad one is dropped, not the answer
            good = json.loads(quote_answer([_first_sentence(_user_passage(req))]))["fragments"][0]
            bad = dict(good, relevance=42)
            return 200, chat_completion(json.dumps({"fragments": [good, bad]}))
        return 200, chat_completion(json.dumps({"fragments": []}))

    fake_llm["respond"] = respond
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as session:
        batch = session.get(ProcessingBatch, jobs[0].batch_id)
        assert batch.batch_status == "completed" and batch.malformed_responses == 1
        call_rows = session.scalars(select(ExtractionCall).order_by(ExtractionCall.id)).all()
        assert call_rows[0].status == "malformed" and "unterminated" in call_rows[0].raw_response
        assert "not JSON" in call_rows[0].error
        assert len(call_rows[1].parsed["invalid_fragments"]) == 1
        assert session.scalar(select(func.count()).select_from(Fragment)) == 1


def test_transient_provider_errors_are_retried(fake_llm, embedder_or_skip, monkeypatch):
    source_id, _ = _source("I was always fond of collecting things, shells and seals and coins.")
    calls = {"n": 0}

    def respond(req):
        calls["n"] += 1
        if calls["n"] <= 2:
            return 503, {"error": {"message": "overloaded", "type": "server_error"}}
        return 200, chat_completion(quote_answer(["I was always fond of collecting things"]))

    fake_llm["respond"] = respond
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL])
    enqueue_batches(jobs)
    _drain()
    assert calls["n"] == 3
    with session_scope() as session:
        assert session.get(ProcessingBatch, jobs[0].batch_id).batch_status == "completed"


def test_persistent_provider_failure_keeps_the_error_and_no_fragments(fake_llm, embedder_or_skip, monkeypatch):
    monkeypatch.setenv("MMOS_LLM_MAX_RETRIES", "1")
    monkeypatch.setenv("MMOS_JOB_MAX_ATTEMPTS", "1")
    from mmos_core.core.config import get_settings

    get_settings.cache_clear()
    source_id, _ = _source("My father was a man of great kindness.\n\nHe was also very tall and observant.")
    fake_llm["respond"] = lambda req: (500, {"error": {"message": "boom", "type": "server_error"}})
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL])
    enqueue_batches(jobs)
    _drain()
    with session_scope() as session:
        batch = session.get(ProcessingBatch, jobs[0].batch_id)
        assert batch.batch_status == "failed"
        assert "InternalServerError" in batch.error_message or "boom" in batch.error_message
        queue_row = session.scalar(select(ProcessingQueue))
        assert queue_row.queue_status == "failed" and queue_row.last_error
        assert session.scalar(select(func.count()).select_from(Fragment)) == 0
        assert session.scalar(select(ExtractionCall.status)) == "provider_error"


def test_job_killed_half_way_leaves_no_fragments_and_resumes(fake_llm, embedder_or_skip, darwin_text, services):
    source_id, n_chunks = _source(darwin_text, words=2500)
    assert n_chunks >= 4

    def respond(req):
        time.sleep(0.3)
        return 200, chat_completion(quote_answer([_first_sentence(_user_passage(req))]))

    fake_llm["respond"] = respond
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL])
    batch_id = jobs[0].batch_id
    enqueue_batches(jobs)
    env = dict(os.environ)
    worker = subprocess.Popen([sys.executable, "-m", "mmos_core.cli.app", "worker", "--burst"], env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with session_scope() as session:
                done = session.get(ProcessingBatch, batch_id).chunks_done
            if done >= 2:
                break
            time.sleep(0.2)
        kill_worker(worker.pid)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    with session_scope() as session:
        batch = session.get(ProcessingBatch, batch_id)
        staged = batch.chunks_done
        assert 2 <= staged < n_chunks
        assert batch.batch_status == "processing"
        assert session.scalar(select(func.count()).select_from(Fragment)) == 0  # nothing half-published
    requests_before = len(fake_llm["requests"])

    with session_scope() as session:
        todo = reconcile(session=session, stale_after_s=0)
    assert [j.batch_id for j in todo] == [batch_id]
    enqueue_batches(todo)
    _drain()
    with session_scope() as session:
        batch = session.get(ProcessingBatch, batch_id)
        assert batch.batch_status == "completed"
        assert session.scalar(select(func.count()).select_from(Fragment)) == n_chunks
        assert session.scalar(select(ProcessingQueue.attempts)) == 2
    # the resumed attempt asked only for the chunks that had no staged answer
    assert len(fake_llm["requests"]) - requests_before <= n_chunks - staged + 1
