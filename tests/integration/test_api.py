"""The HTTP API (docs/api.md) over real HTTP: uvicorn in a thread on a free port, the embedded PostgreSQL +
Redis, an RQ worker draining the queue and the LLM provider faked at the HTTP edge."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fakes import chat_completion, quote_answer
from rq import SimpleWorker
from typer.testing import CliRunner

from mmos_core.api.app import create_app
from mmos_core.core.config import get_settings
from mmos_core.core.db import session_scope
from mmos_core.core.domain import RQ_QUEUES
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import get_queue
from mmos_core.services.auth import create_user

pytestmark = pytest.mark.usefixtures("clean_db")

SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"
PASSWORD = "correct horse battery"

TEXT = "\n\n".join(
    f"Paragraph {i}. I spent the summer of 18{30 + i} collecting beetles near Cambridge with my cousin. "
    "Nothing gave me so much pleasure as finding a rare species under the bark of an old tree. "
    "My father thought it was a waste of time, and he said so at dinner more than once."
    for i in range(1, 15)
)


@pytest.fixture()
def api(services) -> Iterator[str]:
    """Base URL of the API served by uvicorn in a daemon thread (on a socket bound to a free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture()
def http(api) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=60) as client:
        yield client


def _users() -> None:
    with session_scope() as session:
        for name, role in (("ana", "analyst"), ("rita", "reviewer"), ("root", "admin")):
            create_user(session=session, username=name, role=role, password=PASSWORD)


def _token(http: httpx.Client, username: str) -> dict[str, str]:
    r = http.post("/tokens", json={"username": username, "password": PASSWORD, "name": "test"})
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _drain() -> None:
    SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)


def _first_sentence(request: dict) -> str:
    passage = request["messages"][1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]
    flat = " ".join(passage.split())
    return flat[: flat.index(". ", 40) + 1]


def test_tokens_roles_and_the_whole_flow(http, fake_llm, embedder_or_skip):
    _users()
    assert http.get("/health").json() == {"status": "ok", "database": True, "redis": True}
    assert http.post("/tokens", json={"username": "ana", "password": "wrong password"}).status_code == 401
    ana, rita = _token(http, "ana"), _token(http, "rita")
    assert ana["Authorization"].startswith("Bearer mmos_")

    # no token, a made-up token: 401 with a JSON error
    for headers in ({}, {"Authorization": "Bearer mmos_not-a-token"}, {"Authorization": "Basic YW5hOnB3"}):
        r = http.get("/sources", headers=headers)
        assert r.status_code == 401 and "token" in r.json()["error"]

    r = http.post("/sources", headers=ana, json={"text": TEXT, "title": "Beetles", "person": "Charles Darwin", "source_type": "letter"})
    assert r.status_code == 201, r.text
    source = r.json()
    assert source["source_code"] == "SRC_LETTER_001" and source["chunks"] >= 2
    assert [s["source_id"] for s in http.get("/sources", headers=rita).json()] == [source["id"]]

    # a reviewer may not queue extraction (the UI's permissions)
    r = http.post("/batches", headers=rita, json={"source_id": source["id"], "models": [SMALL]})
    assert r.status_code == 403 and "queue_extraction" in r.json()["error"]

    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer([_first_sentence(req)])))
    r = http.post("/batches", headers=ana, json={"source_id": source["id"], "models": [SMALL, LARGE]})
    assert r.status_code == 201, r.text
    queued = r.json()
    assert [e["model_name"] for e in queued["estimates"]] == [SMALL, LARGE]
    assert all(e["input_tokens"] > 0 and e["worst_case_usd"] == 0 for e in queued["estimates"])  # local models are free
    batch_ids = [b["batch_id"] for b in queued["batches"]]
    assert http.get(f"/batches/{batch_ids[0]}", headers=ana).json()["status"] == "pending"

    _drain()
    deadline = time.monotonic() + 60
    while True:
        progress = [http.get(f"/batches/{b}", headers=ana).json() for b in batch_ids]
        if all(p["status"] in ("completed", "failed") for p in progress) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert [p["status"] for p in progress] == ["completed", "completed"]
    assert all(p["fraction"] == 1.0 and p["fragments"] == source["chunks"] for p in progress)
    assert http.get("/batches/999999", headers=ana).status_code == 404

    compared = http.get("/models/compare", headers=ana, params={"source_id": source["id"]}).json()
    assert [b["model_name"] for b in compared["batches"]] == [SMALL, LARGE]
    assert compared["alignment"]["matched"] == source["chunks"]  # identical answers align 1:1

    # review: the next waiting fragment, verify it, reject another with a reason
    first = http.get("/queue/next", headers=rita).json()
    assert first["waiting"] == 2 * source["chunks"]
    fid = first["fragment"]["id"]
    assert http.post(f"/fragments/{fid}/verify", headers=ana).status_code == 403  # analysts do not review
    r = http.post(f"/fragments/{fid}/verify", headers=rita)
    assert r.status_code == 200 and r.json()["status"] == "verified" and r.json()["verified_by"] == "rita"
    following = http.get("/queue/next", headers=rita).json()
    assert following["fragment"]["id"] != fid and following["waiting"] == 2 * source["chunks"] - 1
    bad = http.post(f"/fragments/{following['fragment']['id']}/reject", headers=rita, json={"reason": "boring"})
    assert bad.status_code == 422 and "reason" in bad.json()["error"]
    r = http.post(f"/fragments/{following['fragment']['id']}/reject", headers=rita, json={"reason": "trivial"})
    assert r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["reject_reason"] == "trivial"
    assert http.post("/fragments/999999/verify", headers=rita).status_code == 404
    page = http.get("/fragments", headers=rita, params={"status": "verified", "source_id": source["id"]}).json()
    assert page["total"] == 1 and page["items"][0]["id"] == fid
    assert http.get("/fragments", headers=rita, params={"page_size": 2}).json()["pages"] == source["chunks"]
    r = http.post("/feedback", headers=rita, json={"feedback_type": "like", "fragment_id": fid})
    assert r.status_code == 201 and r.json()["model_name"] in (SMALL, LARGE)

    for path in ("/reports/quality", "/reports/sweet-spot", "/reports/coverage", "/reports/optimization"):
        assert http.get(path, headers=ana).status_code == 200, path
    coverage = {c["category"]: c for c in http.get("/reports/coverage", headers=ana).json()}
    assert coverage["Cognitive"]["verified_count"] == 1

    r = http.get("/export/fragments", headers=ana, params={"format": "jsonl", "source_id": source["id"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in r.text.splitlines()]
    assert len(rows) == 2 * source["chunks"]
    assert sum(row["verified"] for row in rows) == 1 and sum(row["rejected"] for row in rows) == 1
    assert http.get("/export/fragments", headers=rita).status_code == 403  # reviewers do not export
    csv = http.get("/export/fragments", headers=ana, params={"format": "csv"})
    assert csv.text.startswith("fragment_code,") and len(csv.text.splitlines()) == 1 + len(rows)
    parquet = http.get("/export/fragments", headers=ana, params={"format": "parquet"})
    assert parquet.content[:4] == b"PAR1"

    # tokens: last use recorded; revoked → 401
    mine = http.get("/tokens", headers=ana).json()
    assert len(mine) == 1 and mine[0]["last_used_at"] is not None and mine[0]["active"]
    assert http.get("/tokens", headers=ana, params={"all": "true"}).status_code == 403
    assert http.delete(f"/tokens/{mine[0]['id']}", headers=rita).status_code == 404  # not hers
    assert http.delete(f"/tokens/{mine[0]['id']}", headers=ana).json()["active"] is False
    assert http.get("/sources", headers=ana).status_code == 401


def test_refusals_are_json_with_their_status(http, monkeypatch):
    _users()
    ana = _token(http, "ana")

    r = http.post("/sources", headers={**ana, "Content-Type": "application/json"}, content=b'{"text": "x", "title": }')
    assert r.status_code == 422 and r.json()["error"].startswith("body: malformed JSON")
    r = http.post("/batches", headers={**ana, "Content-Type": "application/json"}, content=b"{not json")
    assert r.status_code == 422 and "malformed JSON" in r.json()["error"]
    # without a token the same body gets 401: nothing is said about a request from an unknown caller
    assert http.post("/batches", headers={"Content-Type": "application/json"}, content=b"{not json").status_code == 401
    assert http.post("/tokens", headers={"Content-Type": "application/json"}, content=b"{").status_code == 422
    r = http.post("/sources", headers=ana, json={"text": "Some words.", "title": "t", "source_type": "novel"})
    assert r.status_code == 422 and "source_type" in r.json()["error"]
    r = http.post("/sources", headers=ana, json={"text": "   ", "title": "t"})
    assert r.status_code == 422 and "empty" in r.json()["error"]
    r = http.post("/sources", headers=ana, files={"file": ("notes.odt", b"PK\x03\x04 ...")})
    assert r.status_code == 422 and "accepted are" in r.json()["error"]
    r = http.post("/sources", headers=ana, files={"file": ("notes.pdf", b"%PDF-1.4 ...")})  # documents are read (docs/intake.md)
    assert r.status_code == 422 and "damaged" in r.json()["error"]

    r = http.post("/sources", headers=ana, files={"file": ("talk.txt", TEXT.encode())}, data={"person": "Charles Darwin"})
    assert r.status_code == 201 and r.json()["title"] == "talk.txt"
    assert http.post("/sources", headers=ana, json={"text": TEXT, "title": "again"}).status_code == 409
    r = http.post("/batches", headers=ana, json={"source_id": r.json()["id"], "models": ["no-such-model"]})
    assert r.status_code == 404 and "no-such-model" in r.json()["error"]
    assert http.get("/no/such/path", headers=ana).json() == {"error": "Not Found"}

    # over the intake limit: intake's sentence (413); over the request envelope: refused before reading (413)
    monkeypatch.setenv("MMOS_MAX_SOURCE_BYTES", "2000")
    get_settings.cache_clear()
    try:
        r = http.post("/sources", headers=ana, files={"file": ("big.txt", b"word " * 600)})
        assert r.status_code == 413 and "over the limit of" in r.json()["error"]
        r = http.post("/sources", headers=ana, json={"text": "word " * 30_000, "title": "huge"})
        assert r.status_code == 413 and "at most" in r.json()["error"]
        # a chunked body (no Content-Length) is counted as it is read
        chunked = http.post("/sources", headers={**ana, "Content-Type": "application/json"}, content=iter([b" " * 50_000] * 3))
        assert chunked.status_code == 413 and "at most" in chunked.json()["error"]
    finally:
        monkeypatch.delenv("MMOS_MAX_SOURCE_BYTES")
        get_settings.cache_clear()


def test_cli_token_commands(services):
    from mmos_core.cli.app import app

    _users()
    runner = CliRunner()
    created = runner.invoke(app, ["users", "token", "create", "--username", "rita", "--name", "laptop"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("mmos_")
    listed = runner.invoke(app, ["users", "token", "list", "--username", "rita"])
    assert "laptop" in listed.stdout and token not in listed.stdout
    token_id = listed.stdout.splitlines()[1].split()[0]
    assert runner.invoke(app, ["users", "token", "revoke", token_id]).exit_code == 0
    from mmos_core.services.api_tokens import verify_token

    with session_scope() as session:
        assert verify_token(session=session, token=token) is None
    assert runner.invoke(app, ["users", "token", "create", "--username", "nobody"]).exit_code == 1
