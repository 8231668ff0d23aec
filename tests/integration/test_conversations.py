"""Conversations against the real embedded PostgreSQL + pgvector and Redis: import, jobs, findings, search."""

from __future__ import annotations

import json

import pytest
from conftest import shared_dir
from rq import SimpleWorker
from sqlalchemy import func, select, text

from mmos_core.core.db import session_scope
from mmos_core.core.domain import RQ_QUEUES
from mmos_core.core.redis import get_redis
from mmos_core.jobs.enqueue import get_queue
from mmos_core.models.conversations import (
    Contradiction,
    Conversation,
    ConversationLoop,
    ConversationQuality,
    Message,
    MessageCitation,
    MessageEmbedding,
)
from mmos_core.services import conversations as svc
from mmos_core.text.conversation_import import ParsedConversation, ParsedMessage, parse_conversation_file

pytestmark = pytest.mark.usefixtures("clean_db")

LOOP = "Let me check the file path again and re-run the same script to verify the count of even addresses."
FILLER = [
    "The spreadsheet has nine columns including the street address and the city.",
    "Odd-numbered houses face east, so they get the sunrise awning design.",
    "I will load the Excel file with pandas and extract the street numbers.",
    "The code printed the column index and the number four.",
    "We should double-check whether any address is missing a number.",
    "The final answer must be a single integer count of clients.",
]


def _drain() -> None:
    SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)


def _conversation(messages: list[tuple[str, str]], title: str = "test") -> int:
    parsed = ParsedConversation(
        title=title, source_format="openai",
        messages=tuple(ParsedMessage(role="assistant", agent_name=a, content=c) for a, c in messages),
    )
    with session_scope() as session:
        [cid] = svc.import_conversations(session=session, parsed=[parsed])
    return cid


def _count(model, *where) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def _looping_conversation() -> list[tuple[str, str]]:
    msgs = [("Planner", FILLER[0]), ("Coder", FILLER[1]), ("Coder", FILLER[2])]
    for i in range(4):  # the same step, over and over
        msgs += [("Coder", LOOP), ("Terminal", FILLER[3] if i % 2 == 0 else FILLER[4])]
    return msgs + [("Planner", FILLER[5])]


def test_import_then_one_job_analyses_every_message_in_order(embedder_or_skip):
    cid = _conversation(_looping_conversation())
    job_id = svc.enqueue_analysis(cid)
    assert job_id == f"conv-analyze-{cid}"
    assert svc.enqueue_analysis(cid) == job_id  # a second request while queued is the same job
    assert get_queue("default").count == 1
    _drain()

    n = len(_looping_conversation())
    with session_scope() as session:
        conv = session.get(Conversation, cid)
        assert conv.status == "completed"
        assert 0 <= conv.current_health_score <= 100
        series = svc.health_series(session=session, conversation_id=cid)
        assert [p["sequence"] for p in series] == list(range(n))  # one point per message, in order
        assert all(0 <= p["health"] <= 100 for p in series)
        msgs = svc.list_messages(session=session, conversation_id=cid)
        assert all(m.analyzed_at is not None and m.coherence_score is not None for m in msgs)
        models = set(session.scalars(select(MessageEmbedding.embedding_model).where(MessageEmbedding.conversation_id == cid)))
        assert models == {"all-MiniLM-L6-v2"}
        loops = svc.loop_alerts(session=session, conversation_id=cid)
    # the repeated step is flagged as a loop with its count and an intervention proposal
    assert loops, "the step repeated four times was not flagged"
    assert max(lp.repetition_count for lp in loops) >= 3
    assert all(lp.intervention_message for lp in loops)
    assert conv.has_loops


def test_candidates_come_from_the_index_not_all_pairs(embedder_or_skip, monkeypatch):
    monkeypatch.setenv("MMOS_CONVERSATION_CANDIDATE_K", "3")
    monkeypatch.setenv("MMOS_CONVERSATION_RECENT_TURNS", "2")
    from mmos_core.core.config import get_settings

    get_settings.cache_clear()
    try:
        sentences = [f"{FILLER[i % len(FILLER)]} Point number {i}." for i in range(40)]
        cid = _conversation([("A" if i % 2 else "B", s) for i, s in enumerate(sentences)])
        from workers.conversations import analyze_conversation

        out = analyze_conversation(cid)
    finally:
        get_settings.cache_clear()
    assert out["analyzed"] == 40
    # at most k nearest + 2 recent per message: far below n(n-1)/2 = 780 pairs
    assert out["candidates"] <= 40 * (3 + 2)
    with session_scope() as session:
        per_message = [p.analysis_metadata["candidates"] for p in session.scalars(
            select(ConversationQuality).where(ConversationQuality.conversation_id == cid))]
    assert max(per_message) <= 5 and per_message.count(0) == 1  # only the first message has no one to compare with


def test_nearest_messages_are_complete_even_when_the_index_scan_comes_back_short(embedder_or_skip, monkeypatch):
    """pgvector 0.6 filters after the HNSW scan (about ef_search rows over every conversation): with
    ef_search = 1 and the planner held on the index, the scan yields at most one row; the exact
    fallback still returns the k nearest earlier messages of the conversation."""
    import numpy as np

    from workers.conversations import analyze_conversation

    noise = _conversation([("X", f"noise {i}") for i in range(400)], "noise")  # other conversations fill the index
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 384)).astype(np.float32)
    model = svc.EmbeddingModel(name="all-MiniLM-L6-v2", version="x")
    with session_scope() as session:
        svc.store_embeddings(session=session, messages=svc.list_messages(session=session, conversation_id=noise),
                             vectors=vectors / np.linalg.norm(vectors, axis=1, keepdims=True), model=model)
    cid = _conversation([("A", f"{FILLER[i % 6]} Item {i}.") for i in range(8)])
    analyze_conversation(cid)
    monkeypatch.setenv("MMOS_CONVERSATION_HNSW_EF_SEARCH", "1")
    from mmos_core.core.config import get_settings

    get_settings.cache_clear()
    try:
        with session_scope() as session:
            session.execute(text("SET LOCAL enable_sort = off"))  # keep the planner on the HNSW index
            last = session.scalar(select(Message).where(Message.conversation_id == cid, Message.sequence_number == 7))
            vector = session.scalar(select(MessageEmbedding.embedding).where(MessageEmbedding.message_id == last.id))
            found = svc._nearest_earlier(session, last, vector, model, 3)
            seqs = set(session.scalars(select(Message.sequence_number).where(Message.id.in_(found))))
    finally:
        get_settings.cache_clear()
    assert len(found) == 3 and seqs <= set(range(7))


def test_contradiction_between_agents_with_acknowledge_and_resolve(embedder_or_skip):
    cid = _conversation([
        ("Alice", "The bridge on Main Street is safe for heavy trucks."),
        ("Bob", "We met at the station at noon to discuss the budget."),
        ("Bob", "The bridge on Main Street is not safe for heavy trucks."),
    ])
    from workers.conversations import analyze_conversation

    analyze_conversation(cid)
    with session_scope() as session:
        alerts = svc.contradiction_alerts(session=session, conversation_id=cid)
        users = session.execute(text("INSERT INTO users (username, role) VALUES ('rita', 'reviewer') RETURNING id")).scalar_one()
    assert len(alerts) == 1
    c = alerts[0]
    assert (c.sequence_1, c.sequence_2, c.agent_1, c.agent_2, c.same_agent) == (0, 2, "Alice", "Bob", False)
    assert "not safe" in c.statement_2 and "safe" in c.statement_1
    assert c.severity in ("LOW", "MEDIUM", "HIGH", "CRITICAL")
    before = _health_after(cid)

    with session_scope() as session:
        svc.acknowledge_contradiction(session=session, contradiction_id=c.id, user_id=users)
    # re-analysing keeps the acknowledgement (one row per message pair, updated in place)
    analyze_conversation(cid, force=True)
    with session_scope() as session:
        row = session.get(Contradiction, c.id)
        assert row.acknowledged and row.acknowledged_by == users and not row.resolved
        svc.resolve_contradiction(session=session, contradiction_id=c.id, user_id=users)
    assert svc_alerts(cid) == []
    analyze_conversation(cid, force=True)
    # a resolved contradiction no longer weighs on the health score
    assert _health_after(cid) >= before
    assert _count(Contradiction, Contradiction.conversation_id == cid) == 1


def svc_alerts(cid: int):
    with session_scope() as session:
        return svc.contradiction_alerts(session=session, conversation_id=cid)


def _health_after(cid: int) -> float:
    with session_scope() as session:
        return svc.health_series(session=session, conversation_id=cid)[-1]["health"]


def test_reanalysis_is_idempotent(embedder_or_skip):
    cid = _conversation(_looping_conversation())
    from workers.conversations import analyze_conversation

    analyze_conversation(cid)
    first = _snapshot(cid)
    assert analyze_conversation(cid)["analyzed"] == 0  # nothing new to analyse
    analyze_conversation(cid, force=True)
    assert _snapshot(cid) == first


def _snapshot(cid: int):
    with session_scope() as session:
        series = [(p["sequence"], round(p["health"], 6)) for p in svc.health_series(session=session, conversation_id=cid)]
        loops = [(lp.pattern_hash, lp.repetition_count) for lp in svc.loop_alerts(session=session, conversation_id=cid)]
        contra = [(c.message_1_id, c.message_2_id) for c in svc.contradiction_alerts(session=session, conversation_id=cid)]
        counts = (_count(ConversationQuality), _count(MessageEmbedding), _count(MessageCitation))
    return series, sorted(loops), sorted(contra), counts


def test_citations_are_stored_with_spans_and_never_silently_verified(embedder_or_skip):
    url = "https://example.org/awnings/report-2023"
    content = f'As the report says, "every awning ships in eight days" (see {url}).'
    cid = _conversation([("Alice", "What does the report say about delivery?"), ("Bob", content)])
    from workers.conversations import analyze_conversation

    analyze_conversation(cid)
    with session_scope() as session:
        cites = svc.citations_by_message(session=session, conversation_id=cid)
        rows = [c for cs in cites.values() for c in cs]
    urls = [c for c in rows if c.source_type == "url"]
    assert urls and urls[0].source_url == url
    assert content[urls[0].start_position:urls[0].end_position].startswith("https://example.org")
    # nothing in the workbench backs these citations: not verified (unverifiable or not found)
    assert all(c.verified is not True for c in rows)


def test_semantic_search_and_similar_messages(embedder_or_skip):
    a = _conversation([("A", "The cat sat on the warm windowsill all afternoon."), ("B", "Interest rates rose again this quarter.")], "one")
    b = _conversation([("C", "A kitten was sleeping in the sun by the window."), ("D", "The central bank raised its rates.")], "two")
    from workers.conversations import analyze_conversation

    analyze_conversation(a)
    analyze_conversation(b)
    with session_scope() as session:
        hits = svc.search_messages(session=session, query="cats sleeping in sunshine", embed=embedder_or_skip.embed, limit=2)
        assert {h.agent for h in hits} == {"A", "C"}
        only_b = svc.search_messages(session=session, query="cats sleeping in sunshine", conversation_id=b,
                                     embed=embedder_or_skip.embed, limit=1)
        assert [h.agent for h in only_b] == ["C"]
        cat = session.scalar(select(Message.id).where(Message.conversation_id == a, Message.sequence_number == 0))
        similar = svc.similar_messages(session=session, message_id=cat, limit=1)
        assert similar[0].agent == "C" and similar[0].message_id != cat and 0 < similar[0].similarity <= 1
        with pytest.raises(ValueError, match="Type something"):
            svc.search_messages(session=session, query="  ", embed=embedder_or_skip.embed)


def test_deleting_a_conversation_cascades(embedder_or_skip):
    cid = _conversation(_looping_conversation())
    from workers.conversations import analyze_conversation

    analyze_conversation(cid)
    assert _count(ConversationQuality) > 0 and _count(ConversationLoop) > 0
    with session_scope() as session:
        svc.delete_conversation(session=session, conversation_id=cid)
    for model in (Message, MessageEmbedding, ConversationQuality, ConversationLoop, Contradiction, MessageCitation):
        assert _count(model) == 0, model.__tablename__


def test_a_failing_import_writes_nothing(services):
    good = ParsedConversation(title="ok", source_format="openai", messages=(ParsedMessage(role="user", content="hi"),))
    bad = ParsedConversation(title="bad", source_format="openai", messages=(ParsedMessage(role="narrator", content="x"),))
    with pytest.raises(Exception, match="ck_messages_role"):
        with session_scope() as session:
            svc.import_conversations(session=session, parsed=[good, bad])
    assert _count(Conversation) == 0 and _count(Message) == 0


def test_score_columns_are_checked(services):
    cid = _conversation([("A", "hello")])
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError, match="ck_conversations_current_health_score"):
        with session_scope() as session:
            session.execute(text("UPDATE conversations SET current_health_score = 101 WHERE id = :i"), {"i": cid})


def test_who_and_when_log_keeps_its_labels_next_to_the_detections(embedder_or_skip):
    path = shared_dir() / "data" / "who_and_when" / "Algorithm-Generated.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found: the shared data folder is absent")
    [parsed] = [c for c in parse_conversation_file(path.name, path.read_bytes(), max_bytes=20_000_000,
                                                   max_messages=20_000, max_message_chars=200_000)][:1]
    with session_scope() as session:
        [cid] = svc.import_conversations(session=session, parsed=[parsed])
    from workers.conversations import analyze_conversation

    analyze_conversation(cid)
    with session_scope() as session:
        conv = svc.get_conversation(session=session, conversation_id=cid)
        labels = svc.failure_labels(conv)
        rows = svc.message_rows(session=session, conversation_id=cid)
        series = svc.health_series(session=session, conversation_id=cid)
    assert labels["mistake_agent"] == "Excel_Expert" and labels["mistake_step"] == 0
    assert rows[0]["log's mistake step"] is True and not any(r["log's mistake step"] for r in rows[1:])
    assert len(series) == len(parsed.messages)


def test_cli_imports_and_shows_a_conversation(embedder_or_skip, tmp_path):
    from typer.testing import CliRunner

    from mmos_core.cli.app import app

    f = tmp_path / "chat.json"
    f.write_text(json.dumps([{"role": "assistant", "name": a, "content": c} for a, c in _looping_conversation()]))
    runner = CliRunner()
    out = runner.invoke(app, ["conversations", "import", str(f), "--now"])
    assert out.exit_code == 0, out.output
    assert "analysed 12 messages" in out.output
    cid = int(out.output.split("conversation ", 1)[1].split(":", 1)[0])
    shown = runner.invoke(app, ["conversations", "show", str(cid)])
    assert shown.exit_code == 0 and "health curve" in shown.output and "loop #" in shown.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"messages": [')
    refused = runner.invoke(app, ["conversations", "import", str(bad)])
    assert refused.exit_code == 1 and "not valid JSON" in refused.output
    assert _count(Conversation) == 1
