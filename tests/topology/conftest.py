"""Fixtures of the topology tests (docs/deploy.md, "Testing the topology without Docker"): the external servers,
the processes a test starts, and the fake provider. Each one stops what it started, also when the test fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from topology_support import FakeProvider, Processes, Server, external_postgres, external_redis


@pytest.fixture()
def pg_server() -> Iterator[Server]:
    """PostgreSQL 18 + pgvector from the wheel's binaries, on a TCP port (role and database `mmos`)."""
    with external_postgres() as server:
        yield server


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[Server]:
    """redis-server on a TCP port, no persistence."""
    with external_redis(tmp_path / "redis") as server:
        yield server


@pytest.fixture()
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Where the test starts the workbench's processes (logs in `tmp_path/logs`); all stopped afterwards."""
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = Processes(logs=logs, env={})
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture()
def httpserver() -> Iterator[HTTPServer]:
    """A threaded fake provider (the plugin's default serves one request at a time; two workers with calls
    in flight, and answers held back on purpose, need more)."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture()
def provider(fake_llm, httpserver) -> Iterator[FakeProvider]:
    """`fake_llm`'s environment (OPENAI_API_BASE on the fake, OPENAI_API_KEY set: gpt-4o-mini is offered) with
    `FakeProvider` answering."""
    state = FakeProvider()
    httpserver.clear_all_handlers()
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(state.handle)
    yield state
    state.release.set()  # no handler thread left waiting
