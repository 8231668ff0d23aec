"""The Conversations page through Streamlit's AppTest on the real embedded Postgres and Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "conversations.py")


@pytest.fixture()
def at(clean_db):
    user = signed_in("reviewer")
    app = AppTest.from_file(PAGE, default_timeout=90)
    app.session_state["current_user"] = user
    return app


def _analysed_conversation(messages, *, metadata=None, title="Bridge talk") -> int:
    from mmos_core.core.db import session_scope
    from mmos_core.services import conversations as svc
    from mmos_core.text.conversation_import import ParsedConversation, ParsedMessage
    from workers.conversations import analyze_conversation

    parsed = ParsedConversation(
        title=title, source_format="who_and_when" if metadata else "openai", metadata=metadata or {},
        messages=tuple(ParsedMessage(role="assistant", agent_name=a, content=c,
                                     metadata={"mistake_step": True} if metadata and i == metadata["failure_labels"]["mistake_step"] else {})
                       for i, (a, c) in enumerate(messages)),
    )
    with session_scope() as session:
        [cid] = svc.import_conversations(session=session, parsed=[parsed])
    analyze_conversation(cid)
    return cid


BRIDGE = [
    ("Alice", "The bridge on Main Street is safe for heavy trucks."),
    ("Bob", "We met at the station at noon to discuss the budget."),
    ("Bob", "The bridge on Main Street is not safe for heavy trucks."),
]


def test_empty_page_says_how_to_start(at):
    at.run()
    assert not at.exception
    assert any("No conversations yet" in t for t in texts(at.info))


def test_health_chart_and_contradiction_side_by_side_with_acknowledge(at, embedder_or_skip):
    from mmos_core.core.db import session_scope
    from mmos_core.models.conversations import Contradiction

    cid = _analysed_conversation(BRIDGE)
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Messages analysed"] == "3/3" and metrics["Status"] == "completed"
    assert metrics["Open contradictions"] == "1"
    assert at.get("plotly_chart")  # health over time
    shown = texts(at.info)
    assert "The bridge on Main Street is safe for heavy trucks." in shown
    assert "The bridge on Main Street is not safe for heavy trucks." in shown
    assert any("#0 · Alice" in t for t in texts(at.markdown)) and any("#2 · Bob" in t for t in texts(at.markdown))

    [ack] = [b for b in at.button if b.key and b.key.startswith("ack_c_")]
    ack.click().run()
    assert not at.exception
    with session_scope() as session:
        row = session.query(Contradiction).filter_by(conversation_id=cid).one()
        assert row.acknowledged and row.acknowledged_by is not None and not row.resolved
    [res] = [b for b in at.button if b.key and b.key.startswith("res_c_")]
    res.click().run()
    with session_scope() as session:
        assert session.query(Contradiction).filter_by(conversation_id=cid).one().resolved
    assert {m.label: m.value for m in at.metric}["Open contradictions"] == "0"


def test_the_logs_failure_labels_are_shown_next_to_the_detections(at, embedder_or_skip):
    labels = {"mistake_agent": "WebSurfer", "mistake_step": 1, "mistake_reason": "clicked an irrelevant link"}
    _analysed_conversation(
        [("Orchestrator", "Please search for martial arts schools near the stock exchange."),
         ("WebSurfer", "I clicked on an advertisement for shoes."),
         ("Orchestrator", "Please search for martial arts schools near the stock exchange.")],
        metadata={"failure_labels": labels}, title="Who&When/Hand-Crafted/1.json",
    )
    at.run()
    assert not at.exception
    banner = " ".join(texts(at.info))
    assert "WebSurfer" in banner and "step **1**" in banner and "clicked an irrelevant link" in banner
    table = at.dataframe[0].value
    assert list(table.loc[table["log's mistake step"], "#"]) == [1]


def test_pasted_conversation_is_imported_and_its_analysis_queued(at):
    from mmos_core.core.db import session_scope
    from mmos_core.jobs.enqueue import get_queue
    from mmos_core.services import conversations as svc

    at.run()
    at.text_area(key="conversation_paste").set_value("Alice: Trains are faster.\nBob: Cars are faster.")
    at.text_input(key="conversation_paste_title").set_value("Trains")
    at.button(key="conversation_import_submit").click().run()
    assert not at.exception
    assert any("Imported 1 conversation(s), 2 messages" in t for t in texts(at.success))
    with session_scope() as session:
        [row] = svc.list_conversations(session=session)
    assert (row.title, row.messages, row.status) == ("Trains", 2, "queued")
    assert get_queue("default").job_ids == [f"conv-analyze-{row.id}"]


def test_bad_paste_is_refused_and_nothing_is_written(at):
    from mmos_core.core.db import session_scope
    from mmos_core.services import conversations as svc

    at.run()
    at.text_area(key="conversation_paste").set_value("no speaker on this line")
    at.button(key="conversation_import_submit").click().run()
    assert any("does not start with a speaker" in t for t in texts(at.error))
    with session_scope() as session:
        assert svc.list_conversations(session=session) == []


def test_debate_form_queues_a_debate_job(at):
    from mmos_core.core.db import session_scope
    from mmos_core.jobs.enqueue import get_queue
    from mmos_core.services import conversations as svc

    at.run()
    at.radio(key="debate_n").set_value(3).run()
    at.text_area(key="debate_topic").set_value("Should cities ban cars?")
    at.slider(key="debate_rounds").set_value(2)
    at.button(key="debate_submit").click().run()
    assert not at.exception
    with session_scope() as session:
        [row] = svc.list_conversations(session=session)
        conv = svc.get_conversation(session=session, conversation_id=row.id)
        debate = conv.metadata_["debate"]
    assert debate["rounds"] == 2 and [a["name"] for a in debate["agents"]] == ["Alice", "Bob", "Carol"]
    assert get_queue("default").job_ids == [f"conv-debate-{row.id}"]
    # the page now follows the queued debate live
    at.run()
    assert any("Live: refreshing every" in t for t in texts(at.caption))
