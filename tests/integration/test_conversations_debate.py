"""A local debate as an RQ job, with the model server faked at the HTTP edge."""

from __future__ import annotations

import pytest
from fakes import chat_completion
from rq import SimpleWorker

from mmos_core.core.db import session_scope
from mmos_core.core.domain import RQ_QUEUES
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import get_queue
from mmos_core.services import conversations as svc

pytestmark = pytest.mark.usefixtures("clean_db")

SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"
AGENTS = [svc.DebateAgent("Alice", LARGE), svc.DebateAgent("Bob", SMALL), svc.DebateAgent("Carol", LARGE)]


def _drain() -> None:
    SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)


def _speaker(req: dict) -> str:
    return req["messages"][0]["content"].split("You are ", 1)[1].split(",", 1)[0]


def test_three_agents_debate_each_turn_stored_and_analysed(fake_llm, embedder_or_skip):
    turns = iter(range(100))

    def respond(req):
        n = next(turns)
        who = _speaker(req)
        return 200, chat_completion(f"{who}: Point {n}: cities should {'not ' if n % 2 else ''}ban cars downtown.",
                                    prompt_tokens=200, completion_tokens=17)

    fake_llm["respond"] = respond
    with session_scope() as session:
        conv = svc.create_debate(session=session, topic="Should cities ban cars?", agents=AGENTS, rounds=2)
        cid = conv.id
        assert conv.status == "queued"
    assert svc.enqueue_debate(cid) == f"conv-debate-{cid}"
    _drain()

    with session_scope() as session:
        conv = svc.get_conversation(session=session, conversation_id=cid)
        assert conv.status == "completed", conv.error_message
        msgs = svc.list_messages(session=session, conversation_id=cid)
        series = svc.health_series(session=session, conversation_id=cid)
    assert [(m.round_number, m.turn_index, m.agent_name, m.agent_model) for m in msgs] == [
        (1, 0, "Alice", LARGE), (1, 1, "Bob", SMALL), (1, 2, "Carol", LARGE),
        (2, 0, "Alice", LARGE), (2, 1, "Bob", SMALL), (2, 2, "Carol", LARGE),
    ]
    assert all(m.tokens_used == 17 and m.response_time_ms is not None and m.analyzed_at is not None for m in msgs)
    assert not msgs[0].content.startswith("Alice:")  # the echoed speaker name is stripped
    assert len(series) == 6  # every message analysed as it arrived
    # each agent's turn went to its own model; later turns saw the transcript
    models = [r["model"] for r in fake_llm["requests"]]
    assert models == [LARGE, SMALL, LARGE, LARGE, SMALL, LARGE]
    assert "Alice: Point 0" in fake_llm["requests"][1]["messages"][1]["content"]
    # every debate call is in ai_logs as a conversation turn (the catalog design)
    from sqlalchemy import select

    from mmos_core.models.catalog import AiLog

    with session_scope() as session:
        logs = session.scalars(select(AiLog).order_by(AiLog.id)).all()
    assert [(log.model_name, log.category_key, log.status, log.output_tokens) for log in logs] == [
        (m, "conversation_turn", "ok", 17) for m in models
    ]


def test_a_failed_debate_resumes_where_it_stopped(fake_llm, embedder_or_skip):
    state = {"fail": True, "n": 0}

    def respond(req):
        state["n"] += 1
        if state["fail"] and state["n"] == 3:
            return 400, {"error": {"message": "bad request", "type": "invalid_request_error"}}
        return 200, chat_completion(f"Turn {state['n']} by {_speaker(req)}: trains beat cars.")

    fake_llm["respond"] = respond
    with session_scope() as session:
        cid = svc.create_debate(session=session, topic="Trains or cars?", agents=AGENTS[:2], rounds=2).id
    svc.enqueue_debate(cid)
    _drain()
    with session_scope() as session:
        conv = svc.get_conversation(session=session, conversation_id=cid)
        # a 400 is not transient: no retry, the conversation says why
        assert conv.status == "failed" and "bad request" in (conv.error_message or "")
        assert len(svc.list_messages(session=session, conversation_id=cid)) == 2

    state["fail"] = False
    svc.enqueue_debate(cid)
    _drain()
    with session_scope() as session:
        msgs = svc.list_messages(session=session, conversation_id=cid)
        assert svc.get_conversation(session=session, conversation_id=cid).status == "completed"
    assert [(m.round_number, m.turn_index) for m in msgs] == [(1, 0), (1, 1), (2, 0), (2, 1)]
    assert state["n"] == 5  # two turns, one failed call, then only the two missing turns
    from sqlalchemy import select

    from mmos_core.models.catalog import AiLog

    with session_scope() as session:
        statuses = [log.status for log in session.scalars(select(AiLog).order_by(AiLog.id))]
    assert statuses == ["ok", "ok", "provider_error", "ok", "ok"]  # the failed call is on record too


@pytest.mark.parametrize(
    ("agents", "rounds", "topic", "message"),
    [
        (AGENTS[:1], 2, "t", "two or three agents"),
        (AGENTS + [svc.DebateAgent("Dan", SMALL)], 2, "t", "two or three agents"),
        ([svc.DebateAgent("A", SMALL), svc.DebateAgent("A", LARGE)], 2, "t", "distinct name"),
        (AGENTS[:2], 0, "t", "between 1 and 20"),
        (AGENTS[:2], 2, "  ", "topic"),
    ],
)
def test_bad_debate_settings_are_refused(services, agents, rounds, topic, message):
    with pytest.raises(ValueError, match=message):
        with session_scope() as session:
            svc.create_debate(session=session, topic=topic, agents=agents, rounds=rounds)
