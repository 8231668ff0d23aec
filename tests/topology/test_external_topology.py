"""docker-compose.yml's topology without Docker (docs/deploy.md, "Testing the topology without Docker").

PostgreSQL 18 + pgvector and redis-server run as external servers on TCP ports; `mmos migrate` runs once,
then the API, two `mmos worker`s and the Streamlit UI run as separate processes with the compose file's
environment (DATABASE_URL, REDIS_URL, MMOS_DATA_DIR). A script's session over the HTTP API queues a press
conference for gpt-4o-mini (faked at the HTTP edge) and sees it complete; a second batch's worker is then
killed with SIGKILL mid-batch, restarted as compose's `restart: unless-stopped` would, and the batch
finishes with every chunk answered, and paid, once and no fragment twice. `pytest -m topology -s` prints
the transcript.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter

import httpx
import pytest
import redis
from browser_support import free_port, unavailable
from conftest import shared_dir
from process_support import kill_worker
from rq import Worker
from rq.job import Job
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from topology_support import FakeProvider, Processes, Server, mmos

pytestmark = [pytest.mark.topology, pytest.mark.timeout(420)]

MODEL = "gpt-4o-mini"
FIRST = "1993-01-29-press-conference-gays-military.txt"  # 7 chunks
SECOND = "1981-01-29-first-press-conference.txt"  # 12 chunks
PASSWORD = "topology-password-1"
FROZEN_AFTER = 4  # chunks of the second batch answered before its worker is killed


def _say(line: str) -> None:
    """One line of the transcript (shown with `pytest -s`, and in the report of a failed test)."""
    print(line, flush=True)


def _press_conference(name: str) -> str:
    path = shared_dir() / "data" / "press_conferences" / name
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing in CI")
        pytest.skip(f"{path} not found: the shared data folder is absent")
    return path.read_text(encoding="utf-8")


def _require_embedder() -> None:
    from mmos_core.embeddings.provision import is_provisioned

    if not is_provisioned():
        unavailable("the ONNX embedder is not provisioned (publishing a batch embeds its fragments); run `mmos models provision`")


def _wait(what: str, check, procs: Processes, timeout: float = 120, every: float = 0.25):
    """Poll `check()` until it returns something truthy; fail with every log's tail after `timeout` s or when a
    started process died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
        except (httpx.HTTPError, redis.RedisError):
            got = None
        if got:
            return got
        dead = [name for name, p in procs.procs.items() if p.poll() is not None and name != "worker-killed"]
        if dead or time.monotonic() > deadline:
            pytest.fail(f"{what}: {'exited: ' + ', '.join(dead) if dead else f'not within {timeout:.0f} s'}\n{procs.report()}")
        time.sleep(every)


def _registered(rconn: redis.Redis, *names: str) -> dict[str, Worker] | None:
    workers = {w.name: w for w in Worker.all(connection=rconn)}
    return workers if workers.keys() >= set(names) else None


def _healthy(url: str, expect: str) -> bool:
    r = httpx.get(url, timeout=5)
    return r.status_code == 200 and expect in r.text


def _start_topology(procs: Processes) -> tuple[str, redis.Redis]:
    """migrate, then api, worker-a, worker-b and ui as compose starts them; returns the API's URL and a Redis client."""
    t0 = time.monotonic()
    done = procs.run("migrate", mmos("migrate"))
    assert done.returncode == 0 and "database at head" in done.stdout, procs.report()
    _say(f"  migrate   `mmos migrate` exit {done.returncode} in {time.monotonic() - t0:.1f} s: {done.stdout.strip()}")

    api_port = free_port()
    ui_port = next(p for p in iter(free_port, None) if p != api_port)
    t0 = time.monotonic()
    procs.start("api", mmos("api", "--host", "127.0.0.1", "--port", str(api_port)))
    for name in ("worker-a", "worker-b"):
        procs.start(name, mmos("worker", "--name", f"topology-{name}"))
    procs.start("ui", [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(ui_port), "--server.address",
                       "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"])
    api = f"http://127.0.0.1:{api_port}"
    rconn = redis.Redis.from_url(procs.env["REDIS_URL"])
    _wait("API /health", lambda: _healthy(f"{api}/health", '"database":true,"redis":true'), procs)
    _wait("UI /_stcore/health", lambda: _healthy(f"http://127.0.0.1:{ui_port}/_stcore/health", "ok"), procs)
    workers = _wait("both workers registered in RQ", lambda: _registered(rconn, "topology-worker-a", "topology-worker-b"), procs)
    took = time.monotonic() - t0
    _say(f"  api       `mmos api` 127.0.0.1:{api_port} pid {procs.procs['api'].pid}: GET /health ok")
    for name in ("worker-a", "worker-b"):
        w = workers[f"topology-{name}"]
        _say(f"  {name:<9} `mmos worker` pid {procs.procs[name].pid}: registered in RQ as {w.name} ({w.get_state()}, "
                    f"queues {', '.join(w.queue_names())})")
    _say(f"  ui        streamlit app.py 127.0.0.1:{ui_port} pid {procs.procs['ui'].pid}: GET /_stcore/health ok")
    _say(f"  (api, workers and ui healthy {took:.1f} s after they were started together)")
    return api, rconn


def _token(procs: Processes, api: str) -> dict[str, str]:
    """An analyst created from the deployment's shell, and a token taken over HTTP (docs/api.md)."""
    done = procs.run("users-create", mmos("users", "create", "--username", "ana", "--role", "analyst", "--password-stdin"),
                     stdin=PASSWORD + "\n")
    assert done.returncode == 0, procs.report()
    r = httpx.post(f"{api}/tokens", json={"username": "ana", "password": PASSWORD, "name": "topology"}, timeout=30)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _queue(client: httpx.Client, title: str, text_: str) -> tuple[dict, dict]:
    r = client.post("/sources", json={"text": text_, "title": title, "person": "the President", "source_type": "interview"})
    assert r.status_code == 201, r.text
    source = r.json()
    r = client.post("/batches", json={"source_id": source["id"], "models": [MODEL]})
    assert r.status_code == 201, r.text
    (batch,) = r.json()["batches"]
    return source, batch


def _batch(client: httpx.Client, batch_id: int) -> dict:
    r = client.get(f"/batches/{batch_id}")
    assert r.status_code == 200, r.text
    return r.json()


def _completed(client: httpx.Client, batch_id: int):
    got = _batch(client, batch_id)
    assert got["status"] not in ("failed", "cancelled"), got
    return got if got["status"] == "completed" else None


def _job_result(rconn: redis.Redis, job_id: str) -> dict | None:
    """The job's return value once RQ has it finished (the steps after publication included)."""
    job = Job.fetch(job_id, connection=rconn)
    status = job.get_status(refresh=True)
    assert status != "failed", job.latest_result()
    return job.return_value() if status == "finished" else None


def _frozen(client: httpx.Client, batch_id: int, provider: FakeProvider) -> dict | None:
    """The batch once FROZEN_AFTER chunks are answered and the next two calls wait at the provider."""
    got = _batch(client, batch_id)
    return got if got["chunks_done"] >= FROZEN_AFTER and provider.held == 2 else None


def _published(db, batch_id: int) -> dict:
    """What the batch left in PostgreSQL: fragments, duplicates (same chunk and quote), ok answers per chunk, RQ job id."""
    with db.connect() as conn:
        fragments = conn.execute(text("SELECT chunk_id, content FROM fragments WHERE batch_id = :b"), {"b": batch_id}).all()
        answers = Counter(conn.execute(text("SELECT chunk_id FROM extraction_calls WHERE batch_id = :b AND status = 'ok'"),
                                       {"b": batch_id}).scalars())
        job_id = conn.execute(text("SELECT rq_job_id FROM processing_queue WHERE batch_id = :b"), {"b": batch_id}).scalar_one()
    pairs = Counter((f.chunk_id, f.content) for f in fragments)
    return {"fragments": len(fragments), "duplicates": sum(n - 1 for n in pairs.values() if n > 1),
            "chunks_with_fragments": len({f.chunk_id for f in fragments}), "answers": answers, "job_id": job_id}


def test_compose_topology_as_external_processes(provider: FakeProvider, pg_server: Server, redis_server: Server,
                                                processes: Processes, tmp_path) -> None:
    first, second = _press_conference(FIRST), _press_conference(SECOND)
    _require_embedder()
    t_start = time.monotonic()
    pg, rds = pg_server, redis_server
    # the compose file's x-app environment, plus fake_llm's (OPENAI_API_BASE on the fake, OPENAI_API_KEY); two calls
    # in flight per batch, so that the second batch can be frozen with exactly two; no LLM judge (no judge model here)
    processes.env.update(os.environ)
    processes.env.update(DATABASE_URL=pg.url, REDIS_URL=rds.url, MMOS_DATA_DIR=str(tmp_path / "data"),
                         MMOS_LLM_CONCURRENCY="2", MMOS_JUDGE_ENABLED="false", PYTHONUNBUFFERED="1")
    db = create_engine(pg.url.replace("postgresql://", "postgresql+psycopg://"), poolclass=NullPool)
    _say("\ncompose topology as external processes (no Docker):")
    _say(f"  postgres  {pg.version} 127.0.0.1:{pg.port} pid {pg.pid}, {pg.detail}")
    _say(f"  redis     {rds.version} 127.0.0.1:{rds.port} pid {rds.pid} ({rds.detail}), --save '' --appendonly no")
    _say(f"  fake LLM  {MODEL} via OPENAI_API_BASE={os.environ['OPENAI_API_BASE']}, {provider.latency} s per answer")
    try:
        api, rconn = _start_topology(processes)
        with db.connect() as conn:
            ext = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar()
        assert ext, "the migrations did not create the vector extension"
        _say(f"  pgvector  {ext} created by the migrations (CREATE EXTENSION in 0001)")
        client = httpx.Client(base_url=api, headers=_token(processes, api), timeout=30)
        r = client.get("/models")
        assert r.status_code == 200 and MODEL in r.text, r.text
        _say(f"  session   analyst created by `mmos users create`, token from POST /tokens; GET /models offers {MODEL}")

        # 1. a source queued over HTTP, run by whichever worker takes it
        t0 = time.monotonic()
        source, batch = _queue(client, "Press conference, 29 January 1993", first)
        done = _wait(f"batch {batch['batch_code']} completed", lambda: _completed(client, batch["batch_id"]), processes, every=0.5)
        one = _published(db, batch["batch_id"]) | {"chunks": done["chunks_total"]}
        ran_on = Job.fetch(one["job_id"], connection=rconn).worker_name
        _say(f"batch 1: {done['batch_code']} ({source['source_code']}, {one['chunks']} chunks) POST /batches -> ran on {ran_on}, "
                    f"completed in {time.monotonic() - t0:.1f} s: {done['fragments']} fragments, {sum(one['answers'].values())} calls, "
                    f"${done['cost_usd']:.5f}, {one['duplicates']} duplicates")
        assert done["chunks_done"] == one["chunks"] and done["fragments"] == one["fragments"] > 0
        assert one["duplicates"] == 0 and set(one["answers"].values()) == {1} and len(one["answers"]) == one["chunks"]
        per_call = done["cost_usd"] / one["chunks"]

        # 2. a second batch frozen after FROZEN_AFTER answered chunks; its worker killed with calls in flight
        provider.hold_after = len(provider.log) + FROZEN_AFTER
        t0 = time.monotonic()
        source2, batch2 = _queue(client, "First press conference, 29 January 1981", second)
        frozen = _wait("second batch frozen mid-way", lambda: _frozen(client, batch2["batch_id"], provider), processes,
                       timeout=90, every=0.1)
        job_id = _published(db, batch2["batch_id"])["job_id"]
        holder = Job.fetch(job_id, connection=rconn).worker_name
        victim = holder.removeprefix("topology-")
        survivor = ({"worker-a", "worker-b"} - {victim}).pop()
        answered = {e["passage"] for e in provider.log if e["end"] is not None and not e.get("held")}
        t_kill = time.monotonic()
        kill_worker(processes.procs[victim].pid)
        processes.procs[victim].wait(timeout=10)  # reaped: reconcile sees its pid gone
        processes.procs["worker-killed"] = processes.procs.pop(victim)
        _say(f"batch 2: {frozen['batch_code']} ({source2['source_code']}, {frozen['chunks_total']} chunks) on {holder}: SIGKILL "
                    f"at {frozen['chunks_done']}/{frozen['chunks_total']} chunks with {provider.held} calls in flight, "
                    f"{t_kill - t0:.1f} s after queueing")
        provider.hold_after = None
        provider.release.set()
        # compose restarts the replica (restart: unless-stopped); a starting worker re-enqueues orphaned batches
        processes.start(f"{victim}-restarted", mmos("worker", "--name", f"topology-{victim}-restarted"))
        done2 = _wait(f"batch {batch2['batch_code']} completed after the kill", lambda: _completed(client, batch2["batch_id"]),
                      processes, every=0.5)
        two = _published(db, batch2["batch_id"]) | {"chunks": done2["chunks_total"]}
        finished_on = Job.fetch(two["job_id"], connection=rconn).worker_name
        resumed = [e for e in provider.log if e["start"] > t_kill]
        _say(f"  {victim}-restarted re-enqueued the orphaned job at start; finished on {finished_on} "
                    f"{time.monotonic() - t_kill:.1f} s after the kill (survivor: topology-{survivor})")
        _say(f"  completed: {done2['fragments']} fragments, {two['duplicates']} duplicates, {sum(two['answers'].values())} "
                    f"answered calls for {two['chunks']} chunks (max {max(two['answers'].values())} per chunk), "
                    f"${done2['cost_usd']:.5f} = {two['chunks']} x ${per_call:.5f}; provider asked {len(resumed)} more time(s) "
                    f"after the kill, none for a chunk answered before it")
        assert finished_on != holder
        assert done2["chunks_done"] == two["chunks"] == frozen["chunks_total"]
        assert two["duplicates"] == 0 and done2["fragments"] == two["fragments"] > 0
        assert len(two["answers"]) == two["chunks"] and set(two["answers"].values()) == {1}  # each chunk answered once
        assert done2["cost_usd"] == pytest.approx(per_call * two["chunks"])  # and paid once
        assert len(resumed) == two["chunks"] - FROZEN_AFTER and not {e["passage"] for e in resumed} & answered
        assert two["chunks_with_fragments"] == two["chunks"]
        assert f"re-enqueued 1 orphaned job(s): {two['job_id']}" in processes.tail(f"{victim}-restarted", chars=10**6), processes.report()
        # the jobs themselves end well too (the steps after publication: checks, grounding audit, quality)
        for batch_job in (one, two):
            result = _wait(f"{batch_job['job_id']} finished in RQ", lambda b=batch_job: _job_result(rconn, b["job_id"]), processes)
            assert result["fragments"] == batch_job["fragments"], result
        _say(f"  RQ: {one['job_id']} and {two['job_id']} finished (return values {result!r} for the second)")
        assert processes.alive("api") and processes.alive("ui") and processes.alive(survivor)
        _say(f"total {time.monotonic() - t_start:.1f} s (logs: {processes.logs})")
    finally:
        db.dispose()
