"""Parse conversations from uploaded JSON / JSONL and from pasted text (pure: no database).

Accepted shapes (detected from the content, not the file name):

- **OpenAI chat messages**: a JSON list of `{"role", "content", "name"?}`; a JSON object
  `{"messages": [...], "title"?, "topic"?}`; a list of such objects; or JSONL with one message per
  line (one conversation) or one `{"messages": [...]}` object per line (one conversation per line).
  Optional per message: `name`/`agent` (agent name), `model`, `round`, `turn_index`,
  `tokens`/`tokens_used` (or `usage.total_tokens`), `response_time_ms`.
- **Who&When multi-agent failure logs** (`../shared/data/who_and_when`, Zhang et al., ICML 2025):
  one object per line with `history` (messages) and the failure labels `mistake_agent`,
  `mistake_step` (index into `history`), `mistake_reason` (plus `mistake_type` / `labels` when
  present). Hand-Crafted logs name the agent in `role` ("WebSurfer", "Orchestrator (thought)",
  "human"); Algorithm-Generated logs in `name`. The labels are kept on the conversation's metadata
  (`failure_labels`) and the blamed step's message is marked (`metadata.mistake_step`).
- **Pasted text**: lines `Agent: message` (optionally `Agent (model): message`); a line without
  such a prefix continues the previous message. "User"/"Human" speak as role user, "System" as
  system, everyone else as assistant.

Every refusal is a `ConversationImportError` (a `mmos_core.text.intake.IntakeError`) whose message says
what is wrong and where (line / message number); nothing is returned half-parsed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mmos_core.text.intake import IntakeError, parse_pasted, parse_upload

__all__ = [
    "ConversationImportError",
    "ParsedConversation",
    "ParsedMessage",
    "parse_conversation_file",
    "parse_conversation_text",
    "parse_pasted_conversation",
]

#: Roles stored as they are; anything else (e.g. "agent", "function") is mapped by `_role`.
_ROLES = {"user", "assistant", "system", "tool"}
_ROLE_ALIASES = {"human": "user", "function": "tool", "agent": "assistant", "ai": "assistant", "bot": "assistant"}
# "Name: text" or "Name (model): text"; a name is one to five words starting with a letter, so
# "Note: ..." is a speaker but "10:30 ..." and URLs ("https://...") are not.
_SPEAKER = re.compile(
    r"^(?P<name>[A-Za-z][\w.'’\-]{0,40}(?: [\w.'’\-]{1,40}){0,4}?)"
    r"(?: ?[(\[](?P<model>[^)\]]{1,100})[)\]])?:[ \t]+(?P<text>\S.*)$"
)


class ConversationImportError(IntakeError):
    """Refused conversation input. `str(e)` says why and what to do; `reason` is one of
    "empty", "binary", "encoding", "too_large", "format", "too_many"."""


@dataclass(frozen=True)
class ParsedMessage:
    """One message as imported. `role` is one of user/assistant/system/tool; unknown numbers are None."""

    role: str
    content: str
    agent_name: str | None = None
    agent_model: str | None = None
    round_number: int | None = None
    turn_index: int | None = None
    tokens_used: int | None = None
    response_time_ms: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedConversation:
    """One conversation ready to store: `source_format` is "openai", "who_and_when" or "pasted"."""

    title: str
    source_format: str
    messages: tuple[ParsedMessage, ...]
    topic: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def parse_conversation_file(
    filename: str, data: bytes, *, max_bytes: int, max_messages: int, max_message_chars: int
) -> list[ParsedConversation]:
    """Decode and parse an uploaded `.json`, `.jsonl` or `.txt` file into conversations.

    Args:
        filename: used for its extension (`.txt`/`.md` = pasted-text format) and in messages/titles.
        data: the raw bytes; decoded strictly (UTF-8 with or without BOM, UTF-16 with BOM).
        max_bytes: largest accepted file; max_messages: most messages over all conversations;
        max_message_chars: longest accepted message (longer ones are refused, never cut).

    Raises:
        ConversationImportError: empty, binary, mis-encoded, over a limit, malformed JSON (with
            the line and column), or JSON of no accepted shape.
    """
    name = filename or "upload"
    lower = name.lower()
    try:
        # intake's strict decoding and refusals (binary, encoding, empty, size), read as plain text
        text = parse_upload(_as_txt(name), data, max_bytes=max_bytes).text
    except IntakeError as exc:
        raise _refusal(exc, name) from None
    if lower.endswith((".txt", ".md", ".text")):
        title = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return [_pasted(text, title=title, max_messages=max_messages, max_message_chars=max_message_chars)]
    return parse_conversation_text(
        text, name=name, max_messages=max_messages, max_message_chars=max_message_chars
    )


def parse_pasted_conversation(
    text: str, *, title: str, max_bytes: int, max_messages: int, max_message_chars: int
) -> ParsedConversation:
    """Parse pasted `Agent: message` lines (see the module docstring).

    Raises:
        ConversationImportError: empty, binary, over a limit, or no line starts with `Name:`.
    """
    try:
        text = parse_pasted(text, max_bytes=max_bytes).text
    except IntakeError as exc:
        raise _refusal(exc, "the pasted text") from None
    return _pasted(text, title=title, max_messages=max_messages, max_message_chars=max_message_chars)


def parse_conversation_text(
    text: str, *, name: str, max_messages: int, max_message_chars: int
) -> list[ParsedConversation]:
    """Parse decoded JSON or JSONL text (shapes: module docstring). `name` titles untitled conversations.

    Raises:
        ConversationImportError: malformed JSON / JSONL (with line and column) or an unknown shape.
    """
    stripped = text.strip()
    if not stripped:
        raise ConversationImportError("empty", f"“{name}” contains no JSON.")
    items: list[Any]
    try:
        whole = json.loads(stripped)
        items = [whole]
        jsonl = False
    except json.JSONDecodeError as whole_error:
        items, jsonl = _jsonl(stripped, name, whole_error), True
    stem = name.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    conversations = _conversations(items, jsonl=jsonl, stem=stem, max_message_chars=max_message_chars)
    total = sum(len(c.messages) for c in conversations)
    if total > max_messages:
        raise ConversationImportError(
            "too_many",
            f"“{name}” holds {total:,} messages, over the limit of {max_messages:,} per import. "
            "Split it into smaller files.",
        )
    return conversations


# --- shapes ---------------------------------------------------------------------------------------


def _jsonl(text: str, name: str, whole_error: json.JSONDecodeError) -> list[Any]:
    lines = [(i, line) for i, line in enumerate(text.split("\n"), start=1) if line.strip()]
    if len(lines) < 2:
        raise ConversationImportError(
            "format", f"“{name}” is not valid JSON: {whole_error.msg} at line {whole_error.lineno}, column {whole_error.colno}."
        )
    out = []
    for lineno, line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConversationImportError(
                "format",
                f"“{name}” is neither JSON nor JSONL: line {lineno} is not valid JSON ({exc.msg} at column {exc.colno}).",
            ) from None
    return out


def _is_message(obj: Any) -> bool:
    return isinstance(obj, dict) and "content" in obj and ("role" in obj or "name" in obj or "agent" in obj)


def _is_who_and_when(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("history"), list) and (
        "mistake_agent" in obj or "question" in obj
    )


def _is_chat(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("messages"), list)


def _conversations(items: list[Any], *, jsonl: bool, stem: str, max_message_chars: int) -> list[ParsedConversation]:
    if not jsonl and len(items) == 1:
        top = items[0]
        if isinstance(top, list) and top and all(_is_message(m) for m in top):
            return [_openai({"messages": top}, title=stem, where="the file", max_message_chars=max_message_chars)]
        if isinstance(top, list) and top and all(_is_chat(c) or _is_who_and_when(c) for c in top):
            items = top
        elif isinstance(top, dict):
            items = [top]
        elif isinstance(top, list) and not top:
            raise ConversationImportError("empty", f"“{stem}” is an empty JSON list: no messages to import.")
        else:
            raise _shape_error(stem)
    elif jsonl and items and all(_is_message(m) for m in items):
        return [_openai({"messages": items}, title=stem, where="the file", max_message_chars=max_message_chars)]

    out = []
    for i, obj in enumerate(items, start=1):
        where = f"line {i}" if jsonl else f"conversation {i}"
        title = f"{stem} #{i}" if len(items) > 1 else stem
        if _is_who_and_when(obj):
            out.append(_who_and_when(obj, title=title, where=where, max_message_chars=max_message_chars))
        elif _is_chat(obj):
            out.append(_openai(obj, title=obj.get("title") or title, where=where, max_message_chars=max_message_chars))
        else:
            raise _shape_error(stem, where)
    return out


def _shape_error(stem: str, where: str | None = None) -> ConversationImportError:
    at = f" ({where})" if where else ""
    return ConversationImportError(
        "format",
        f"“{stem}”{at} is JSON but not a conversation: expected a list of {{\"role\", \"content\"}} messages, "
        "{\"messages\": [...]} objects, or Who&When logs with a \"history\" list.",
    )


def _openai(obj: dict[str, Any], *, title: str, where: str, max_message_chars: int) -> ParsedConversation:
    raw = obj["messages"]
    if not raw:
        raise ConversationImportError("empty", f"{where.capitalize()} has an empty \"messages\" list.")
    messages = []
    for i, m in enumerate(raw, start=1):
        if not _is_message(m):
            raise ConversationImportError(
                "format", f"{where.capitalize()}, message {i}: expected an object with \"role\" and \"content\"."
            )
        content = _content(m.get("content"), where=f"{where}, message {i}", max_chars=max_message_chars)
        usage = m.get("usage") if isinstance(m.get("usage"), dict) else {}
        agent = m.get("name") or m.get("agent")
        messages.append(
            ParsedMessage(
                role=_role(m.get("role")),
                content=content,
                agent_name=str(agent) if agent else None,
                agent_model=_opt_str(m.get("model")),
                round_number=_opt_int(m.get("round", m.get("round_number")), f"{where}, message {i}: round"),
                turn_index=_opt_int(m.get("turn_index"), f"{where}, message {i}: turn_index"),
                tokens_used=_opt_int(
                    m.get("tokens_used", m.get("tokens", usage.get("total_tokens"))), f"{where}, message {i}: tokens"
                ),
                response_time_ms=_opt_int(m.get("response_time_ms"), f"{where}, message {i}: response_time_ms"),
            )
        )
    meta = {k: v for k, v in obj.items() if k not in ("messages", "title", "topic") and _small_json(v)}
    return ParsedConversation(
        title=str(title)[:500], source_format="openai", messages=tuple(messages), topic=_opt_str(obj.get("topic")), metadata=meta
    )


def _who_and_when(obj: dict[str, Any], *, title: str, where: str, max_message_chars: int) -> ParsedConversation:
    history = obj["history"]
    if not history:
        raise ConversationImportError("empty", f"{where.capitalize()} has an empty \"history\".")
    step = _opt_int(obj.get("mistake_step"), f"{where}: mistake_step")
    messages = []
    for i, m in enumerate(history):
        if not isinstance(m, dict) or "content" not in m:
            raise ConversationImportError("format", f"{where.capitalize()}, history[{i}]: expected an object with \"content\".")
        content = _content(m.get("content"), where=f"{where}, history[{i}]", max_chars=max_message_chars)
        raw_role = str(m.get("role") or "")
        if m.get("name"):  # Algorithm-Generated: agent in `name`, chat role in `role`
            agent, role = str(m["name"]), _role(raw_role)
        else:  # Hand-Crafted (Magentic-One): the agent is the `role` ("WebSurfer", "Orchestrator (thought)")
            # "Orchestrator (thought)" / "Orchestrator (-> WebSurfer)" are one agent, as the labels name it
            agent = re.sub(r"\s*\(.*\)$", "", raw_role) or raw_role or None
            role = "user" if raw_role.lower() in ("human", "user") else _role(raw_role)
        meta = {"log_role": raw_role} if raw_role and raw_role != role else {}
        if step is not None and i == step:
            meta["mistake_step"] = True
        messages.append(ParsedMessage(role=role, content=content, agent_name=agent, turn_index=i, metadata=meta))
    labels = {
        "mistake_agent": obj.get("mistake_agent"),
        "mistake_step": step,
        "mistake_reason": obj.get("mistake_reason"),
    }
    for extra in ("mistake_type", "labels"):
        if obj.get(extra) is not None:
            labels[extra] = obj[extra]
    meta = {
        "failure_labels": labels,
        **{k: obj[k] for k in ("question", "ground_truth", "level", "question_ID", "source_file", "is_correct", "is_corrected") if k in obj},
    }
    question = _opt_str(obj.get("question"))
    source = obj.get("source_file")
    nice = f"{source} — {question[:120]}" if source and question else (question[:160] if question else title)
    return ParsedConversation(
        title=nice[:500], source_format="who_and_when", messages=tuple(messages), topic=question, metadata=meta
    )


def _pasted(text: str, *, title: str, max_messages: int, max_message_chars: int) -> ParsedConversation:
    parts: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        m = _SPEAKER.match(line.strip())
        if m and "://" not in m.group("name"):
            parts.append({"agent": m.group("name").strip(), "model": m.group("model"), "lines": [m.group("text")], "line": lineno})
        elif parts:
            parts[-1]["lines"].append(line)
        elif line.strip():
            raise ConversationImportError(
                "format",
                f"Line {lineno} does not start with a speaker (“Agent: message”); every message needs one, "
                "e.g. “Alice: I think …”.",
            )
    if not parts:
        raise ConversationImportError("empty", "No “Agent: message” lines were found.")
    if len(parts) > max_messages:
        raise ConversationImportError(
            "too_many", f"The text holds {len(parts):,} messages, over the limit of {max_messages:,}. Split it."
        )
    messages = []
    for p in parts:
        content = "\n".join(p["lines"]).strip()
        content = _content(content, where=f"the message at line {p['line']}", max_chars=max_message_chars)
        agent = p["agent"]
        role = {"user": "user", "human": "user", "system": "system"}.get(agent.lower(), "assistant")
        messages.append(ParsedMessage(role=role, content=content, agent_name=agent, agent_model=p["model"]))
    return ParsedConversation(title=title[:500] or "Pasted conversation", source_format="pasted", messages=tuple(messages))


# --- fields ---------------------------------------------------------------------------------------


def _as_txt(name: str) -> str:
    return f"{name}.txt"


def _refusal(exc: IntakeError, name: str) -> ConversationImportError:
    """intake's refusal, worded for conversations (intake speaks of sources and their formats)."""
    message = str(exc).replace(_as_txt(name), name)
    if exc.reason == "binary":
        message = message.split(";")[0] + "; conversations are read from JSON, JSONL or “Agent: message” text."
    return ConversationImportError(exc.reason, message)


def _content(value: Any, *, where: str, max_chars: int) -> str:
    if isinstance(value, list):  # OpenAI content parts: keep the text parts
        value = "\n".join(p.get("text", "") for p in value if isinstance(p, dict) and p.get("type", "text") == "text")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ConversationImportError("format", f"{where.capitalize()}: \"content\" must be text, got {type(value).__name__}.")
    if "\x00" in value:
        raise ConversationImportError("binary", f"{where.capitalize()} contains NUL bytes; only text is accepted.")
    if len(value) > max_chars:
        raise ConversationImportError(
            "too_large",
            f"{where.capitalize()} is {len(value):,} characters, over the limit of {max_chars:,} per message "
            "(nothing is cut silently). Shorten it or raise MMOS_CONVERSATION_MAX_MESSAGE_CHARS.",
        )
    return value


def _role(value: Any) -> str:
    role = str(value or "").strip().lower()
    if role in _ROLES:
        return role
    return _ROLE_ALIASES.get(role, "assistant")


def _opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _opt_int(value: Any, what: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ConversationImportError("format", f"{what.capitalize()} must be a whole number, got {value!r}.") from None
    if out < 0:
        raise ConversationImportError("format", f"{what.capitalize()} must not be negative, got {out}.")
    return out


def _small_json(value: Any) -> bool:
    try:
        return len(json.dumps(value)) <= 10_000
    except (TypeError, ValueError):
        return False
