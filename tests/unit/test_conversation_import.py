"""Conversation import formats and refusals (pure parsing, no services)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import shared_dir

from mmos_core.text.conversation_import import (
    ConversationImportError,
    parse_conversation_file,
    parse_pasted_conversation,
)

LIMITS = {"max_bytes": 1_000_000, "max_messages": 1000, "max_message_chars": 10_000}


def parse(name: str, data: str | bytes, **overrides):
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return parse_conversation_file(name, raw, **{**LIMITS, **overrides})


def test_openai_message_list_keeps_agent_model_round_tokens_and_timing():
    data = json.dumps([
        {"role": "system", "content": "Debate the motion."},
        {"role": "assistant", "name": "Alice", "model": "qwen-1.5b", "content": "Cats are better.", "round": 1,
         "turn_index": 0, "tokens": 5, "response_time_ms": 1200},
        {"role": "assistant", "name": "Bob", "content": [{"type": "text", "text": "Dogs are."}], "usage": {"total_tokens": 3}},
    ])
    [conv] = parse("debate.json", data)
    assert conv.source_format == "openai" and conv.title == "debate"
    system, alice, bob = conv.messages
    assert system.role == "system" and system.agent_name is None
    assert (alice.agent_name, alice.agent_model, alice.round_number, alice.turn_index, alice.tokens_used, alice.response_time_ms) == (
        "Alice", "qwen-1.5b", 1, 0, 5, 1200)
    assert bob.content == "Dogs are." and bob.tokens_used == 3


def test_jsonl_of_messages_is_one_conversation_and_jsonl_of_chats_is_one_per_line():
    lines = "\n".join(json.dumps({"role": r, "content": c}) for r, c in [("user", "hi"), ("assistant", "hello"), ("user", "bye")])
    [conv] = parse("chat.jsonl", lines)
    assert [m.content for m in conv.messages] == ["hi", "hello", "bye"]

    chats = "\n".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}],
                                  "title": f"chat {i}"}) for i in range(3))
    convs = parse("many.jsonl", chats)
    assert [c.title for c in convs] == ["chat 0", "chat 1", "chat 2"]
    assert [len(c.messages) for c in convs] == [2, 2, 2]


def test_unknown_roles_become_assistant_and_human_becomes_user():
    [conv] = parse("x.json", json.dumps({"messages": [{"role": "human", "content": "a"}, {"role": "critic", "content": "b"}]}))
    assert [m.role for m in conv.messages] == ["user", "assistant"]


def test_pasted_agent_lines_with_models_and_continuations():
    conv = parse_pasted_conversation(
        "Alice (qwen2.5-coder-1.5b): I think the bridge is safe.\nIt was inspected in 2020.\n"
        "Bob: It is not safe.\nUser: Please settle this.",
        title="Bridge", **LIMITS,
    )
    assert [(m.agent_name, m.role) for m in conv.messages] == [("Alice", "assistant"), ("Bob", "assistant"), ("User", "user")]
    assert conv.messages[0].agent_model == "qwen2.5-coder-1.5b"
    assert conv.messages[0].content == "I think the bridge is safe.\nIt was inspected in 2020."
    assert conv.source_format == "pasted" and conv.title == "Bridge"


def test_txt_upload_is_read_as_pasted_lines():
    [conv] = parse("talk.txt", "Ann: one\nBen: two\n")
    assert [m.content for m in conv.messages] == ["one", "two"]


@pytest.mark.parametrize(
    ("name", "data", "reason", "words"),
    [
        ("empty.json", b"", "empty", "empty"),
        ("blank.jsonl", b"  \n\n ", "empty", "empty"),
        ("bad.json", b'{"messages": [{"role": "user", "content": "hi"}', "format", "line 1"),
        ("bad.jsonl", b'{"role": "user", "content": "a"}\n{"role": oops}\n', "format", "line 2"),
        ("shape.json", b'{"hello": "world"}', "format", "not a conversation"),
        ("nul.json", b'[{"role": "user", "content": "a\\u0000b"}]', "binary", "NUL"),
        ("image.json", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "binary", "PNG image; conversations are read from JSON"),
        ("latin.json", '[{"role": "user", "content": "café"}]'.encode("latin-1"), "encoding", "UTF-8"),
        ("nomsg.json", b'{"messages": []}', "empty", "empty"),
        ("num.json", b'{"messages": [{"role": "user", "content": 5}]}', "format", "must be text"),
    ],
)
def test_bad_input_is_refused_with_a_reason(name, data, reason, words):
    with pytest.raises(ConversationImportError) as exc:
        parse(name, data)
    assert exc.value.reason == reason
    assert words.lower() in str(exc.value).lower()


def test_limits_refuse_instead_of_cutting():
    with pytest.raises(ConversationImportError, match="over the limit") as exc:
        parse("big.json", json.dumps([{"role": "user", "content": "x" * 200}]), max_bytes=100)
    assert exc.value.reason == "too_large"
    with pytest.raises(ConversationImportError, match="per message") as exc:
        parse("long.json", json.dumps([{"role": "user", "content": "x" * 200}]), max_message_chars=100)
    assert exc.value.reason == "too_large"
    many = json.dumps([{"role": "user", "content": "x"}] * 11)
    with pytest.raises(ConversationImportError, match="11 messages") as exc:
        parse("many.json", many, max_messages=10)
    assert exc.value.reason == "too_many"


def test_pasted_text_without_speakers_is_refused():
    with pytest.raises(ConversationImportError, match="Line 1 does not start with a speaker"):
        parse_pasted_conversation("just some prose\nwith no names", title="t", **LIMITS)
    with pytest.raises(ConversationImportError) as exc:
        parse_pasted_conversation("   ", title="t", **LIMITS)
    assert exc.value.reason == "empty"


def _who_and_when(name: str) -> Path:
    path = shared_dir() / "data" / "who_and_when" / name
    if not path.exists():
        pytest.skip(f"{path} not found: the shared data folder is absent")
    return path


def test_who_and_when_hand_crafted_keeps_failure_labels_and_agents():
    path = _who_and_when("Hand-Crafted.jsonl")
    convs = parse_conversation_file(path.name, path.read_bytes(), max_bytes=20_000_000, max_messages=20_000, max_message_chars=200_000)
    assert len(convs) == 58
    first = convs[0]
    assert first.source_format == "who_and_when"
    labels = first.metadata["failure_labels"]
    assert labels["mistake_agent"] == "WebSurfer" and labels["mistake_step"] == 12
    assert "irrelevant website" in labels["mistake_reason"]
    assert first.metadata["question"].startswith("Where can I take martial arts classes")
    # the human asks; "Orchestrator (thought)" is the agent Orchestrator; the blamed step is marked
    assert (first.messages[0].agent_name, first.messages[0].role) == ("human", "user")
    assert first.messages[1].agent_name == "Orchestrator" and first.messages[1].metadata["log_role"] == "Orchestrator (thought)"
    assert first.messages[12].metadata.get("mistake_step") is True
    assert first.messages[12].agent_name == "WebSurfer"
    assert sum(len(c.messages) for c in convs) == 2993


def test_who_and_when_algorithm_generated_names_agents_from_name():
    path = _who_and_when("Algorithm-Generated.jsonl")
    convs = parse_conversation_file(path.name, path.read_bytes(), max_bytes=20_000_000, max_messages=20_000, max_message_chars=200_000)
    assert len(convs) == 126
    first = convs[0]
    assert first.messages[0].agent_name == "Excel_Expert"
    assert first.metadata["failure_labels"]["mistake_agent"] == "Excel_Expert"
    assert {m.agent_name for m in first.messages} >= {"Excel_Expert", "Computer_terminal"}
