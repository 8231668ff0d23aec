"""Batches survive what `mmos up` supervises dying mid-batch (mmos_core/cli/supervise.py, docs/deploy.md,
"Supervision without Docker"). A `Supervisor` runs `mmos worker` as `mmos up` does, against a Redis of the
test's own (the embedded server's code and config, `core.embedded.ensure_redis`, in a data dir of its own,
so the session's Redis is never touched); providers answer slowly, so the batch is in flight when a process
is killed by PID.

- Redis killed: the worker exits, the supervisor restarts it (recorded in the state file), the restarted
  worker waits for Redis; once Redis is started again the batch completes, a batch queued afterwards
  completes, and RQ's scheduler (which runs job retries) is back.
- The LLM server killed (a stand-in server process, tests/llm_stub_server.py, supervised with a health URL
  as `mmos up` supervises `mmos llm serve`): the supervisor restarts it and sees it answer again; the chunk
  calls that met a refused connection meanwhile fail the attempt as retryable, RQ retries the job, and the
  batch completes from where it stopped; a later batch completes too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fakes import chat_completion, quote_answer
from llm_stub_server import first_sentence
from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from mmos_core.cli.supervise import Child, Supervisor
from mmos_core.core import embedded
from mmos_core.core.config import Settings
from mmos_core.core.db import session_scope
from mmos_core.core.supervision_state import read_state, state_path
from mmos_core.jobs.catalog import EXTRACT_BATCH
from mmos_core.jobs.enqueue import enqueue
from mmos_core.models import ExtractionCall, Fragment, ProcessingBatch, ProcessingQueue
from mmos_core.services.batches import enqueue_batches, queue_extraction
from mmos_core.services.sources import create_source
from mmos_core.text.intake import first_words, parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

SMALL = "qwen2.5-coder-0.5b-instruct"
MMOS = [sys.executable, "-m", "mmos_core.cli.app"]
STUB = str(Path(__file__).resolve().parents[1] / "llm_stub_server.py")
# one chunk call in flight per batch, whatever the local default: the batch is still running when a process dies
ONE_AT_A_TIME = {"MMOS_LLM_CONCURRENCY_OVERRIDES": json.dumps({"local": 1})}


def wait_for(cond: Callable[[], object], timeout_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log is not None and log.exists() else ""
            pytest.fail(f"{what}: not within {timeout_s:.0f} s\n{tail}")
        time.sleep(0.2)


def _source(text: str, words: int, title: str) -> int:
    parsed = first_words(parse_pasted(text, max_bytes=5_000_000), words)
    with session_scope() as session:
        return create_source(
            session=session, parsed=parsed, title=title, person="Charles Darwin",
            source_type="book", quality="primary", extraction_priority="HIGH",
        ).id


def _queue(source_id: int, connection: Redis, retry_intervals: list[int] | None = None) -> int:
    """Queue one batch of `SMALL` on `connection`'s RQ; `retry_intervals` shortens the job's 30 s first retry."""
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL])
    if retry_intervals is None:
        enqueue_batches(jobs, connection=connection)
    else:
        for job in jobs:
            enqueue(EXTRACT_BATCH, job.batch_id, job_id=job.rq_job_id, queue=job.rq_queue, connection=connection,
                    retry_intervals=retry_intervals)
    return jobs[0].batch_id


def _batch(batch_id: int) -> ProcessingBatch:
    with session_scope() as session:
        batch = session.get(ProcessingBatch, batch_id)
        session.expunge(batch)
        return batch


def _published(batch_id: int) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Fragment).where(Fragment.batch_id == batch_id))


def _child(state: Path, name: str) -> dict:
    return read_state(state)["children"][name]


@contextmanager
def _supervising(children: list[Child], state: Path, **options) -> Iterator[Supervisor]:
    """A running `Supervisor` (its poll loop in a thread, as `mmos up` runs it in the foreground)."""
    sup = Supervisor(children, state, poll_s=0.2, echo=lambda _: None, **options)
    sup.start()
    thread = threading.Thread(target=sup.run, daemon=True)
    thread.start()
    try:
        yield sup
    finally:
        sup.stop(timeout_s=20)
        thread.join(timeout=5)


@pytest.fixture()
def own_redis(tmp_path) -> Iterator[tuple[Settings, str]]:
    """The embedded Redis (its config: AOF, unix socket), in a data dir of this test's own."""
    settings = Settings(data_dir=tmp_path / "redis-home")
    url = embedded.ensure_redis(settings)
    yield settings, url
    _kill_redis(settings)


def _redis_pid(settings: Settings) -> int | None:
    try:
        return int((embedded.redis_dir(settings) / "redis.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _kill_redis(settings: Settings) -> None:
    pid = _redis_pid(settings)
    if pid is None:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("counted", [False, True], ids=["uncounted", "rpm-counted"])
def test_redis_killed_mid_batch_worker_restarted_batch_completes(counted, fake_llm, embedder_or_skip, darwin_text,
                                                                 own_redis, tmp_path):
    """`counted`: a requests-per-minute limit counts every call in Redis, so the batch cannot go on while Redis
    is down (the attempt fails and resumes after the restart); without one it runs on, and only its worker's
    bookkeeping meets the outage."""
    rsettings, url = own_redis
    conn = Redis.from_url(url)

    def respond(req):
        time.sleep(0.4)  # slow enough that the batch is in flight when Redis dies
        return 200, chat_completion(quote_answer([first_sentence(req)]))

    fake_llm["respond"] = respond
    log = tmp_path / "logs" / "worker-0.log"
    state = state_path(tmp_path)
    env = {"REDIS_URL": url, **ONE_AT_A_TIME, **({"MMOS_LLM_RPM_LIMITS": json.dumps({SMALL: 10_000})} if counted else {})}
    worker = Child("worker-0", [*MMOS, "worker"], env=env, log_file=log)
    with _supervising([worker], state, backoff_base_s=0.5, backoff_cap_s=4):
        first = _queue(_source(darwin_text, 3000, "Autobiography"), conn)
        n_chunks = _batch(first).chunks_total
        assert n_chunks >= 5
        wait_for(lambda: _batch(first).chunks_done >= 2, 180, "the first batch did not start", log)
        worker_pid = _child(state, "worker-0")["pid"]
        _kill_redis(rsettings)  # mid-batch, by PID, as a crash or an OOM kill would
        assert _batch(first).chunks_done < n_chunks, "the batch finished before Redis was killed"
        # RQ's worker quits once it cannot reach Redis; the supervisor restarts it, and the new one waits
        wait_for(lambda: _child(state, "worker-0")["restarts"] >= 1, 120, "the worker was not restarted", log)
        wait_for(lambda: "waiting for Redis" in log.read_text(errors="replace"), 60,
                 "the restarted worker did not wait for Redis", log)
        assert _child(state, "worker-0")["state"] == "running"  # waiting, not crashing into a growing backoff
        embedded.ensure_redis(rsettings)  # started again, as `mmos services start` / `mmos up` would
        wait_for(lambda: _batch(first).batch_status == "completed", 240, "the in-flight batch did not complete", log)
        assert _published(first) == n_chunks  # every chunk published once: none lost, none doubled
        second = _queue(_source(darwin_text, 600, "Later"), conn)
        wait_for(lambda: _batch(second).batch_status == "completed", 180, "a batch queued afterwards did not complete", log)
        if not counted:  # once is enough (a minute's wait)
            # job retries wait in RQ's scheduled registry: its scheduler (killed with Redis, its lock kept by
            # the AOF for a minute) must come back, or every retried batch would wait
            retried = Queue("low", connection=conn).enqueue_in(dt.timedelta(seconds=1), "os.getpid")
            wait_for(lambda: retried.get_status(refresh=True) == "finished", 200, "RQ's scheduler did not come back", log)

        child = _child(state, "worker-0")
        assert child["state"] == "running" and child["pid"] != worker_pid and child["restarts"] >= 1
        os.kill(child["pid"], 0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(600)
def test_llm_server_killed_mid_batch_is_restarted_and_the_batch_retried(embedder_or_skip, darwin_text, own_redis,
                                                                       tmp_path):
    _, url = own_redis
    conn = Redis.from_url(url)
    port = _free_port()
    env = {"MMOS_LLM_HOST": "127.0.0.1", "MMOS_LLM_PORT": str(port), "REDIS_URL": url, "MMOS_LLM_MAX_RETRIES": "2",
           **ONE_AT_A_TIME}
    health = f"http://127.0.0.1:{port}/v1/models"
    state = state_path(tmp_path)
    logs = tmp_path / "logs"
    llm = Child("llm", [sys.executable, STUB, "--port", str(port), "--delay", "0.3", "--models", SMALL],
                log_file=logs / "llm.log", health_url=health)
    worker = Child("worker-0", [*MMOS, "worker"], env=env, log_file=logs / "worker-0.log")
    # the server stays down for the 3 s backoff: longer than a chunk call's own retries (1 s)
    with _supervising([llm, worker], state, backoff_base_s=3, backoff_cap_s=6, health_every_s=0.3):
        wait_for(lambda: _child(state, "llm")["state"] == "running", 60, "the stand-in LLM server did not answer")
        first = _queue(_source(darwin_text, 3000, "Autobiography"), conn, retry_intervals=[5])
        n_chunks = _batch(first).chunks_total
        wait_for(lambda: _batch(first).chunks_done >= 2, 180, "the first batch did not start", logs / "worker-0.log")
        server_pid = _child(state, "llm")["pid"]
        os.kill(server_pid, signal.SIGKILL)  # mid-batch, by PID
        assert _batch(first).chunks_done < n_chunks, "the batch finished before the server was killed"
        wait_for(lambda: _child(state, "llm")["restarts"] == 1 and _child(state, "llm")["state"] == "running", 60,
                 "the LLM server was not restarted, or does not answer again", logs / "llm.log")
        wait_for(lambda: _batch(first).batch_status == "completed", 240, "the batch did not complete",
                 logs / "worker-0.log")
        second = _queue(_source(darwin_text, 600, "Later"), conn)
        wait_for(lambda: _batch(second).batch_status == "completed", 180, "a later batch did not complete",
                 logs / "worker-0.log")

        llm_state, worker_state = _child(state, "llm"), _child(state, "worker-0")
        assert llm_state["pid"] != server_pid and llm_state["last_exit"] == -signal.SIGKILL and llm_state["healthy_at"]
        assert worker_state["restarts"] == 0  # the worker rode it out: only the server was restarted
    with session_scope() as session:
        refused = session.scalars(select(ExtractionCall.error).where(
            ExtractionCall.batch_id == first, ExtractionCall.status == "provider_error")).all()
        attempts = session.scalar(select(ProcessingQueue.attempts).where(ProcessingQueue.batch_id == first))
    # litellm reports a refused connection as "InternalServerError … Connection error.": transient, so retryable
    assert refused and all("Connection error" in (e or "") for e in refused), refused
    assert attempts >= 2  # the failed attempt was retried by RQ, not failed for good
    assert _published(first) == n_chunks
