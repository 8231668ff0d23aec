"""Progress bars of the long `mmos` commands on the real embedded PostgreSQL + Redis (`backup`,
`extract --wait`, `conversations import`), and the drill-down from a debate turn to its LLM call
(`services.drilldown.turn_drilldown`). No LLM and no worker: rows are written as the workers write them."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from mmos_core.cli.app import app
from mmos_core.core.db import session_scope

pytestmark = pytest.mark.usefixtures("clean_db")
ENV = {"COLUMNS": "160"}


def test_backup_shows_its_steps(tmp_path):
    result = CliRunner().invoke(app, ["backup", str(tmp_path)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "backup (steps)" in result.output and "4/4" in result.output
    assert "backup written to" in result.output


def test_backup_reports_increasing_steps(tmp_path):
    from mmos_core.storage.backup import BACKUP_LABEL, backup

    events: list[tuple[str, int, int]] = []
    backup(tmp_path, progress=lambda *e: events.append(e))
    assert events == [(BACKUP_LABEL, k, 4) for k in range(5)]


def test_extract_wait_draws_a_bar_per_batch_until_done(monkeypatch):
    """One batch runs while we watch (the fake sleep answers its chunks, as a worker would), one is done."""
    from mmos_core.cli import sources as cli_sources
    from mmos_core.models import ProcessingBatch

    with session_scope() as session:
        running = ProcessingBatch(batch_code="B_RUN", model_provider="local", model_name="model-run", prompt_version="t",
                                  batch_status="processing", price_snapshot={}, chunks_total=4, chunks_done=1)
        done = ProcessingBatch(batch_code="B_DONE", model_provider="openai", model_name="model-done", prompt_version="t",
                               batch_status="completed", price_snapshot={}, chunks_total=3, chunks_done=3,
                               estimated_cost_usd=Decimal("0.0123"))
        session.add_all([running, done])
        session.flush()
        ids = [running.id, done.id]
    polls: list[int] = []

    def worker_step(_seconds: float) -> None:
        with session_scope() as session:
            b = session.get(ProcessingBatch, ids[0])
            b.chunks_done += 1
            polls.append(b.chunks_done)
            if b.chunks_done == b.chunks_total:
                b.batch_status = "completed"

    monkeypatch.setattr(cli_sources.time, "sleep", worker_step)
    runner = CliRunner()
    with runner.isolation(env=ENV) as (out, _err, *_):
        cli_sources._wait_for(ids, poll_s=0)
        text = out.getvalue().decode()
    assert polls == [2, 3, 4]
    assert f"batch {ids[0]} model-run" in text and "4/4" in text and "completed" in text
    assert f"batch {ids[1]} model-done" in text and "3/3" in text and "$0.0123" in text


def test_conversations_import_shows_messages_imported(tmp_path):
    lines = [json.dumps({"title": f"Chat {i}", "messages": [{"role": "user", "name": "A", "content": f"Hello {i}"},
                                                              {"role": "assistant", "name": "B", "content": f"Hi {i}"},
                                                              {"role": "user", "name": "A", "content": "Bye."}]})
             for i in range(2)]
    path = tmp_path / "chats.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(app, ["conversations", "import", str(path), "--no-analyze"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "import (messages)" in result.output and "6/6" in result.output
    assert result.output.count("3 messages") == 2


def _debate_with_a_retried_turn():
    """A two-agent debate: Ann's turn failed once before it answered; Bob answered at once (as
    workers.conversations.run_debate logs them). Returns (conversation id, [message ids])."""
    from mmos_core.core.domain import AiLogStatus
    from mmos_core.services import conversations as svc
    from mmos_core.services.catalog.ai_logs import log_call

    agents = [svc.DebateAgent(name="Ann", model="model-a"), svc.DebateAgent(name="Bob", model="model-b")]
    with session_scope() as session:
        cid = svc.create_debate(session=session, topic="Trains or cars?", agents=agents, rounds=1).id
    with session_scope() as session:
        log_call(session=session, model_name="model-a", category_key="conversation_turn",
                 status=AiLogStatus.provider_error.value, selected_by="user_override", latency_ms=900,
                 error="timeout; api_key=sk-abcdefghijklmnop")
    ids = []
    for turn, (agent, model, text, tokens, ms) in enumerate(
        [("Ann", "model-a", "Trains are greener.", 5, 1200), ("Bob", "model-b", "Cars are flexible.", 4, 800)]
    ):
        with session_scope() as session:
            msg = svc.add_message(session=session, conversation_id=cid, role="assistant", content=text, agent_name=agent,
                                  agent_model=model, round_number=1, turn_index=turn, tokens_used=tokens,
                                  response_time_ms=ms, metadata={"prompt_tokens": 50 + turn})
            log_call(session=session, model_name=model, category_key="conversation_turn", status=AiLogStatus.ok.value,
                     selected_by="user_override", input_tokens=50 + turn, output_tokens=tokens,
                     cost_usd=Decimal("0.000100"), latency_ms=ms)
            ids.append(msg.id)
    return cid, ids


def test_turn_drilldown_finds_the_call_and_its_failed_attempts():
    from mmos_core.services.drilldown import MASK, turn_drilldown

    _cid, (ann, bob) = _debate_with_a_retried_turn()
    with session_scope() as session:
        a = turn_drilldown(session=session, message_id=ann)
        b = turn_drilldown(session=session, message_id=bob)
    assert a.call is not None and a.call.model_name == "model-a" and a.call.status == "ok"
    assert (a.call.input_tokens, a.call.output_tokens, a.call.latency_ms) == (50, 5, 1200)
    assert [f.status for f in a.failed] == ["provider_error"] and MASK in a.failed[0].error and "sk-abc" not in a.failed[0].error
    assert b.call is not None and (b.call.model_name, b.call.input_tokens, b.call.latency_ms) == ("model-b", 51, 800)
    assert b.failed == []
    # Bob's prompt was rebuilt with Ann's earlier message in it
    assert "Trains are greener." in " ".join(m["content"] for m in b.messages)
    assert "Trains are greener." not in " ".join(m["content"] for m in a.messages)
    with session_scope() as session, pytest.raises(LookupError):
        turn_drilldown(session=session, message_id=10**9)


def test_conversations_page_shows_a_turns_call():
    from pathlib import Path

    import streamlit as st
    from streamlit.testing.v1 import AppTest
    from ui_support import signed_in

    cid, (_ann, bob) = _debate_with_a_retried_turn()
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "pages" / "conversations.py"), default_timeout=60)
    at.session_state["current_user"] = signed_in("manager")
    at.run()
    assert not at.exception
    at.selectbox(key=f"turn_call_{cid}").set_value(1).run()
    shown = " ".join(m.value for m in at.markdown)
    assert "local/model-b" in shown or "/model-b" in shown
    assert "51 in / 4 out tokens" in shown and "800 ms" in shown


def test_conversations_import_now_shows_messages_analysed(tmp_path, embedder_or_skip):
    path = tmp_path / "chat.txt"
    path.write_text("Ann: Trains are greener than cars.\nBob: Cars are more flexible.\nAnn: Trains are greener than cars.\n")
    result = CliRunner().invoke(app, ["conversations", "import", str(path), "--now"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "import (messages)" in result.output and "analyse (messages)" in result.output
    assert result.output.count("3/3") == 2 and "analysed 3 messages" in result.output
