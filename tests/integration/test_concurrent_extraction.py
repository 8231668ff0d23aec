"""Concurrent chunk calls inside a batch, under per-provider limits shared by all workers (docs/throughput.md).

Real embedded PostgreSQL + Redis; the provider is faked at the HTTP edge by a *threaded* pytest-httpserver
(the plugin's default serves one request at a time, which would hide concurrency) whose handler records
every request: when it arrived, when it was answered, which chunk and model it was for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
from fakes import chat_completion, quote_answer
from process_support import kill_worker, run_batches_at_once
from pytest_httpserver import HTTPServer
from sqlalchemy import func, select
from werkzeug import Response

from mmos_core.core.config import get_settings
from mmos_core.core.db import session_scope
from mmos_core.llm.extraction import ProviderError
from mmos_core.models import BudgetReservation, ExtractionCall, Fragment, ProcessingBatch
from mmos_core.services.auth import CurrentUser, Role
from mmos_core.services.batches import enqueue_batches, queue_extraction
from mmos_core.services.dashboard import set_budget
from mmos_core.services.queue_admin import reconcile
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted
from workers.extraction import run_extraction

pytestmark = pytest.mark.usefixtures("clean_db")

CLOUD = "gpt-4o-mini"  # $0.15 / $0.60 per M tokens in litellm's map: 1,000 + 500 tokens = $0.00045
CALL_USD = Decimal("0.00045")
SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"
QUOTE = "I have steadily endeavoured to keep my mind free"
PARAGRAPH = (
    "I have steadily endeavoured to keep my mind free so as to give up any hypothesis, however much "
    "beloved, as soon as facts are shown to be opposed to it. {n} "
)
MANAGER = CurrentUser(id=None, username="manager", role=Role.manager, display_name=None)  # type: ignore[arg-type]


@pytest.fixture()
def httpserver():
    """A threaded fake provider (overrides the plugin's one-request-at-a-time server for this module)."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


class Provider:
    """The fake provider's script and log. `script(n, req)` → (status, body, headers) for the n-th request
    (1-based); `latency` seconds per answer; `slots` requests served at once (None: unlimited)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency = 0.0
        self.slot: threading.Semaphore | None = None
        self.in_flight = 0
        self.peak = 0
        self.peak_by_model: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.log: list[dict] = []
        self.script = lambda n, req: (200, chat_completion(quote_answer([QUOTE]), prompt_tokens=1000, completion_tokens=500), {})

    def handle(self, request):
        body = request.get_json()
        model = body["model"].split("/")[-1]
        if self.slot is not None:
            self.slot.acquire()  # like llama.cpp's server: one generation at a time, the others queue
        try:
            with self.lock:
                n = len(self.log) + 1
                entry = {"n": n, "model": model, "passage": _passage(body), "start": time.monotonic()}
                self.log.append(entry)
                self.in_flight += 1
                self.by_model[model] += 1
                self.peak = max(self.peak, self.in_flight)
                self.peak_by_model[model] = max(self.peak_by_model[model], self.by_model[model])
            status, payload, headers = self.script(n, body)
            if status == 200 and self.latency:
                time.sleep(self.latency)
            entry["status"] = status
        finally:
            with self.lock:
                self.in_flight -= 1
                self.by_model[model] -= 1
                entry["end"] = time.monotonic()
            if self.slot is not None:
                self.slot.release()
        return Response(json.dumps(payload), status=status, headers=headers, content_type="application/json")


@pytest.fixture()
def provider(fake_llm, httpserver) -> Provider:
    """`fake_llm`'s environment (local endpoint and OPENAI_API_BASE on the fake) with a recording handler."""
    state = Provider()
    httpserver.clear_all_handlers()
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(state.handle)
    return state


def _passage(body: dict) -> str:
    return body["messages"][1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]


def _env(monkeypatch, **values: str) -> None:
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


def _source(n_chunks: int, tag: str) -> int:
    text = "\n\n".join(PARAGRAPH.format(n=f"{tag}-{i}") * 14 for i in range(n_chunks))
    with session_scope() as s:
        src = create_source(
            session=s, parsed=parse_pasted(text, max_bytes=5_000_000), title=f"Essay {tag}", person="Charles Darwin",
            source_type="book", quality="primary", extraction_priority="HIGH",
        )
        assert len(src.chunks) == n_chunks
        return src.id


def _batch(source_id: int, model: str) -> int:
    with session_scope() as s:
        return queue_extraction(session=s, source_id=source_id, model_names=[model])[0].batch_id


def _cap(daily: str) -> None:
    with session_scope() as s:
        set_budget(session=s, user=MANAGER, daily_limit_usd=daily, per_fragment_limit_usd=None)


def _answers_per_chunk(batch_id: int) -> Counter[int]:
    with session_scope() as s:
        return Counter(s.scalars(select(ExtractionCall.chunk_id).where(
            ExtractionCall.batch_id == batch_id, ExtractionCall.status.in_(["ok", "malformed"]))))


def test_n_calls_in_flight_and_each_answer_committed_as_it_arrives(provider, embedder_or_skip, monkeypatch):
    _env(monkeypatch, MMOS_LLM_CONCURRENCY="4")
    provider.latency = 0.4
    batch_id = _batch(_source(10, "c"), CLOUD)
    seen: set[int] = set()
    job = threading.Thread(target=run_extraction, args=(batch_id,))
    job.start()
    while job.is_alive():  # what another session sees while the batch runs
        with session_scope() as s:
            seen.add(s.scalar(select(func.count()).select_from(ExtractionCall)))
        time.sleep(0.05)
    job.join()

    assert provider.peak == 4  # N calls in flight, never more
    with session_scope() as s:
        assert s.get(ProcessingBatch, batch_id).batch_status == "completed"
        assert s.scalar(select(func.count()).select_from(Fragment)) == 10
    assert set(_answers_per_chunk(batch_id).values()) == {1} and len(_answers_per_chunk(batch_id)) == 10
    assert any(0 < n < 10 for n in seen), f"answers appeared only all at once: {sorted(seen)}"
    # calls start in chunk order: the first four went out together
    assert {e["passage"].split()[-1] for e in provider.log[:4]} == {f"c-{i}" for i in range(4)}


def test_two_batches_on_one_local_server_interleave(provider, embedder_or_skip, monkeypatch):
    """Two workers, a local server whose four generation slots are shared by both batches, each batch keeping
    MMOS_LLM_SLOTS=2 calls in flight: the batches are served side by side instead of the second waiting for
    the whole first."""
    _env(monkeypatch, MMOS_LLM_SLOTS="2")
    provider.slot = threading.Semaphore(4)
    provider.latency = 0.15
    source_id = _source(5, "l")
    small, large = _batch(source_id, SMALL), _batch(source_id, LARGE)
    assert run_batches_at_once([small, large]) == {}

    served = sorted(provider.log, key=lambda e: e["start"])
    t0 = served[0]["start"]
    timeline = [f"{e['start'] - t0:5.2f}-{e['end'] - t0:5.2f} s {e['model']}" for e in served]
    order = [e["model"] for e in served]
    switches = sum(1 for a, b in zip(order, order[1:]) if a != b)
    print("\n".join(["four-slot local server, two workers with two calls each:", *timeline]))  # shown with -s (docs/throughput.md)
    assert provider.peak_by_model[SMALL] == provider.peak_by_model[LARGE] == 2, timeline  # llm_slots per batch
    assert switches >= 3, "\n".join(timeline)  # the batches alternate at the server, not 5 then 5
    first_large = min(e["start"] for e in served if e["model"] == LARGE)
    last_small = max(e["end"] for e in served if e["model"] == SMALL)
    assert first_large < last_small, "\n".join(timeline)
    with session_scope() as s:
        assert {s.get(ProcessingBatch, b).batch_status for b in (small, large)} == {"completed"}


def test_eight_jobs_with_n_calls_each_never_spend_past_the_daily_cap(provider, embedder_or_skip, monkeypatch):
    """8 jobs × 4 calls in flight against a cap that covers about ten calls: the reservation before every
    call holds the cap exactly (docs/quality.md, "Budgets that hold")."""
    _env(monkeypatch, MMOS_LLM_CONCURRENCY="4")
    cap = Decimal("0.0045")
    _cap(str(cap))
    provider.latency = 0.3
    batch_ids = [_batch(_source(6, f"b{i}"), CLOUD) for i in range(8)]
    errors = run_batches_at_once(batch_ids)

    with session_scope() as s:
        spent = Decimal(s.scalar(select(func.coalesce(func.sum(ExtractionCall.cost_usd), 0))))
        calls = s.scalar(select(func.count()).select_from(ExtractionCall))
        held = s.scalar(select(func.count()).select_from(BudgetReservation).where(BudgetReservation.status == "held"))
        completed = s.scalar(select(func.count()).select_from(ProcessingBatch).where(ProcessingBatch.batch_status == "completed"))
    assert spent <= cap, f"spent {spent} > cap {cap}"
    assert calls == len(provider.log)  # every call the provider saw is on record and paid for
    assert spent == CALL_USD * calls
    assert calls >= 5  # the cap was used, not refused outright
    assert held == 0  # every reservation settled or released
    assert provider.peak > 1
    assert errors and all("BudgetExceeded" in e and "Daily budget reached" in e for e in errors.values())
    assert completed + len(errors) == 8


def _drain() -> None:
    from rq import SimpleWorker

    from mmos_core.core.domain import RQ_QUEUES
    from mmos_core.core.redis import get_redis
    from mmos_core.jobs.enqueue import get_queue

    SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)


def _passages_of(chunk_ids: set[int]) -> set[str]:
    from mmos_core.models import Source, SourceChunk

    with session_scope() as s:
        rows = s.execute(select(SourceChunk, Source.content).join(Source, Source.id == SourceChunk.source_id)
                         .where(SourceChunk.id.in_(chunk_ids))).all()
        return {content[c.char_start:c.char_end] for c, content in rows}


def test_job_killed_with_calls_in_flight_resumes_without_paying_twice(provider, embedder_or_skip, monkeypatch):
    """`mmos worker` killed while 3 calls are in flight: answered chunks stay answered (and paid once), the
    calls that were in flight are asked again, nothing is published until every chunk has its answer."""
    _env(monkeypatch, MMOS_LLM_CONCURRENCY="3")
    _cap("1.00")
    provider.latency = 0.6
    n_chunks = 9
    source_id = _source(n_chunks, "k")
    with session_scope() as s:
        jobs = queue_extraction(session=s, source_id=source_id, model_names=[CLOUD])
    batch_id = jobs[0].batch_id
    enqueue_batches(jobs)
    worker = subprocess.Popen([sys.executable, "-m", "mmos_core.cli.app", "worker", "--burst"], env=dict(os.environ),
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with session_scope() as s:
                done = s.get(ProcessingBatch, batch_id).chunks_done
            if done >= 2 and provider.in_flight >= 2:
                break
            time.sleep(0.05)
        in_flight_at_kill = provider.in_flight
        kill_worker(worker.pid)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert in_flight_at_kill >= 2
    with session_scope() as s:
        batch = s.get(ProcessingBatch, batch_id)
        assert batch.batch_status == "processing" and 2 <= batch.chunks_done < n_chunks
        assert s.scalar(select(func.count()).select_from(Fragment)) == 0  # nothing half-published
        # the killed calls' reservations still count against the cap (until the TTL), never less
        assert s.scalar(select(func.count()).select_from(BudgetReservation).where(BudgetReservation.status == "held")) >= 1
        answered = set(s.scalars(select(ExtractionCall.chunk_id).where(ExtractionCall.batch_id == batch_id)))
    before = len(provider.log)

    with session_scope() as s:
        todo = reconcile(session=s, stale_after_s=0)
    assert [j.batch_id for j in todo] == [batch_id]
    enqueue_batches(todo)
    _drain()

    with session_scope() as s:
        batch = s.get(ProcessingBatch, batch_id)
        assert batch.batch_status == "completed"
        assert s.scalar(select(func.count()).select_from(Fragment)) == n_chunks
        assert Decimal(batch.estimated_cost_usd) == CALL_USD * n_chunks  # each chunk paid once
    per_chunk = _answers_per_chunk(batch_id)
    assert len(per_chunk) == n_chunks and set(per_chunk.values()) == {1}
    resumed = provider.log[before:]
    assert len(resumed) == n_chunks - len(answered)  # only the chunks without a committed answer
    assert not {e["passage"] for e in resumed} & _passages_of(answered)


def test_provider_429_with_retry_after_slows_the_batch_and_never_fails_it(provider, embedder_or_skip, monkeypatch):
    _env(monkeypatch, MMOS_LLM_CONCURRENCY="2", MMOS_LLM_MAX_RETRIES="2")
    _cap("1.00")
    ok = chat_completion(quote_answer([QUOTE]), prompt_tokens=1000, completion_tokens=500)
    limited = {"error": {"message": "Rate limit reached for requests", "type": "requests", "code": "rate_limit_exceeded"}}
    # more 429s in a row than llm_max_retries: none of them is a failed attempt
    provider.script = lambda n, req: (429, limited, {"Retry-After": "1"}) if n <= 5 else (200, ok, {})
    batch_id = _batch(_source(3, "r"), CLOUD)
    run_extraction(batch_id)

    with session_scope() as s:
        assert s.get(ProcessingBatch, batch_id).batch_status == "completed"
        calls = s.scalars(select(ExtractionCall).where(ExtractionCall.batch_id == batch_id)).all()
        statuses = Counter(s.scalars(select(BudgetReservation.status)))
    assert [c.status for c in calls] == ["ok"] * 3 and {c.attempt for c in calls} == {1}
    assert statuses == {"settled": 3, "released": 5}  # no reservation held through a wait
    assert len(provider.log) == 8
    for entry in provider.log:  # each chunk waited the Retry-After before asking again
        if entry["status"] == 429:
            later = [e for e in provider.log if e["passage"] == entry["passage"] and e["start"] > entry["start"]]
            assert later and min(e["start"] for e in later) - entry["end"] >= 1.0


def test_429_past_the_wait_bound_fails_the_attempt_retryably(provider, embedder_or_skip, monkeypatch):
    _env(monkeypatch, MMOS_LLM_RATE_LIMIT_MAX_WAIT_S="2")
    limited = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    provider.script = lambda n, req: (429, limited, {"Retry-After": "1"})
    batch_id = _batch(_source(1, "w"), CLOUD)
    with pytest.raises(ProviderError) as err:
        run_extraction(batch_id)
    assert err.value.retryable and "still rate limited" in str(err.value)
    assert len(provider.log) == 3  # waited 1 s + 1 s, a third wait would pass the 2 s bound
    with session_scope() as s:
        assert s.scalar(select(ExtractionCall.status)) == "provider_error"


def test_exhausted_credit_429_fails_at_once(provider, embedder_or_skip):
    quota = {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}
    provider.script = lambda n, req: (429, quota, {})
    batch_id = _batch(_source(1, "q"), CLOUD)
    with pytest.raises(ProviderError) as err:
        run_extraction(batch_id)
    assert not err.value.retryable and len(provider.log) == 1


def test_rpm_limit_paces_concurrent_batches(provider, embedder_or_skip, monkeypatch):
    """Two batches with 4 calls in flight each, 4 requests per (shortened) window for the provider: the
    provider never sees more than 4 in any window, and both batches complete."""
    from mmos_core.llm import rate_limits

    monkeypatch.setattr(rate_limits, "WINDOW_S", 2)
    _env(monkeypatch, MMOS_LLM_CONCURRENCY="4", MMOS_LLM_RPM_LIMITS='{"openai": 4}')
    batch_ids = [_batch(_source(4, f"p{i}"), CLOUD) for i in range(2)]
    assert run_batches_at_once(batch_ids) == {}
    starts = sorted(e["start"] for e in provider.log)
    assert len(starts) == 8
    most = max(sum(1 for t in starts if s <= t < s + 2) for s in starts)
    assert most <= 4, [round(t - starts[0], 2) for t in starts]


def test_rpm_and_tpm_windows_are_shared_across_processes(services):
    """Two processes count in the same Redis windows: 6 requests a minute in all, whoever sends them."""
    script = textwrap.dedent("""
        import sys
        from mmos_core.core.config import get_settings
        from mmos_core.llm.rate_limits import ProviderLimits, RateLimited
        limits = ProviderLimits.for_model(model_name="m", provider="shared-test", settings=get_settings())
        ok = 0
        for _ in range(10):
            try:
                limits.take(150)
                ok += 1
            except RateLimited as exc:
                assert exc.source == "limiter" and exc.retry_after_s > 0
        print(ok)
    """)
    env = dict(os.environ, REDIS_URL=services["redis_url"], MMOS_LLM_RPM_LIMITS='{"shared-test": 6}',
               MMOS_LLM_TPM_LIMITS='{"m": 100000}')
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    taken = [int(p.communicate(timeout=120)[0].strip()) for p in procs]
    assert sum(taken) == 6, taken
