"""Drill-down from a fragment to what produced it: its chunk (the fragment's span marked), the extraction
call(s) on that chunk (prompt messages, raw answer, parsed JSON, tokens, cost, latency, attempts, model
and prompt version) and the support judge's calls on the fragment; and from a debate turn (a message of a
debate conversation) to its LLM call (`turn_drilldown`). Read only; never commits.

A debate turn's `ai_logs` row (category `conversation_turn`, docs/conversations.md) carries no message id:
the worker writes it in the message's own transaction, so both share `created_at` (PostgreSQL's `now()` is
the transaction's start); failed calls of the same model between the previous message and this one are
the turn's failed attempts. The prompt is rebuilt with `llm.debate.debate_messages` from the topic and the
earlier messages, as the worker builds it.

`extraction_calls` does not store the prompt, so the messages are rebuilt with
`llm.extraction.build_messages` from the source, the chunk and the batch's `prompt_version`, exactly as
the worker builds them (`workers.extraction`); a rebuilt prompt is marked as such. Text that could
carry a credential (an API key in an error message or an echoed header) is masked by `redact` before it
leaves this module: the Review page never shows a key (README.md, "Pages and roles").
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mmos_core.llm.debate import debate_messages
from mmos_core.llm.extraction import PROMPT_VERSION, build_messages
from mmos_core.models import (
    AiLog,
    Conversation,
    ExtractionCall,
    Fragment,
    JudgeVerdict,
    Message,
    ProcessingBatch,
    ProcessingQueue,
    Source,
    SourceChunk,
)
from mmos_core.services.review import FragmentRow, ReviewError, get_fragment_row
from mmos_core.services.speakers import person_labels_of, turns_of
from mmos_core.text.speakers import UNLABELLED, speakers_of_span

_SECRET_PATTERNS = (
    re.compile(r"\b(sk|pk|rk|ghp|gho|xox[abp])[-_][A-Za-z0-9_\-]{8,}"),  # provider-style keys
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._\-~+/=]{8,}"),
    re.compile(r"(?i)((?:api[_-]?key|token|secret|password|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]{4,}"),
)
MASK = "••••"


def redact(text: str | None) -> str | None:
    """`text` with anything shaped like a credential replaced by `MASK` (None stays None)."""
    if not text:
        return text
    out = _SECRET_PATTERNS[0].sub(MASK, text)
    out = _SECRET_PATTERNS[1].sub(lambda m: f"{m.group(1)} {MASK}", out)
    return _SECRET_PATTERNS[2].sub(lambda m: f"{m.group(1)}{MASK}", out)


@dataclass(frozen=True)
class ChunkView:
    """The fragment's chunk. `text` is `source.content[char_start:char_end]`; `span` is the fragment's
    located span as offsets into `text` (None when it was not located inside this chunk)."""

    chunk_id: int
    chunk_index: int
    location_label: str
    char_start: int
    char_end: int
    text: str
    span: tuple[int, int] | None

    @property
    def parts(self) -> tuple[str, str, str]:
        """(before, span, after); the whole text is `before` when the span is unknown."""
        if self.span is None:
            return self.text, "", ""
        a, b = self.span
        return self.text[:a], self.text[a:b], self.text[b:]


@dataclass(frozen=True)
class CallAttempt:
    """One `extraction_calls` row: an LLM call on the chunk (tokens; cost in USD; latency in ms)."""

    id: int
    attempt: int
    status: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    duration_ms: int
    raw_response: str | None
    parsed_json: str | None
    error: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class ExtractionDrill:
    """The extraction behind a fragment: batch, model, prompt, its calls on the chunk (oldest first)
    and the batch job's attempts (`processing_queue`: attempts of max, status, last error)."""

    batch_id: int
    batch_code: str
    model_provider: str
    model_name: str
    prompt_version: str
    temperature: float
    messages: list[dict[str, str]]
    messages_rebuilt: bool
    calls: list[CallAttempt]
    job_status: str | None
    job_attempts: int | None
    job_max_attempts: int | None
    job_last_error: str | None


@dataclass(frozen=True)
class JudgeCall:
    """One `judge_verdicts` row on the fragment (tokens; cost in USD; latency in ms)."""

    judge_model: str
    rubric_version: str
    status: str
    support: str | None
    support_score: float | None
    judge_category: str | None
    category_agrees: bool | None
    reason: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal
    latency_ms: int | None
    raw_answer: str | None
    error_message: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class FragmentDrilldown:
    """Everything behind one fragment. `chunk` / `extraction` are None for imported fragments (no chunk)."""

    fragment: FragmentRow
    chunk: ChunkView | None
    extraction: ExtractionDrill | None
    judges: list[JudgeCall]


def _chunk_view(fragment: Fragment, chunk: SourceChunk, text: str) -> ChunkView:
    span = None
    if fragment.char_start is not None and fragment.char_end is not None:
        a, b = fragment.char_start - chunk.char_start, fragment.char_end - chunk.char_start
        if 0 <= a <= b <= len(text):
            span = (a, b)
    return ChunkView(chunk.id, chunk.chunk_index, chunk.location_label, chunk.char_start, chunk.char_end, text, span)


def _messages(source: Source, chunk: SourceChunk, text: str, prompt_version: str) -> list[dict[str, str]]:
    """The prompt as `workers.extraction` builds it for this chunk (speakers only on labelled sources)."""
    turns = turns_of(source)
    labelled = any(t.speaker and t.speaker != UNLABELLED for t in turns)
    speakers = tuple(s for s in speakers_of_span(turns, chunk.char_start, chunk.char_end).speech if s) if labelled else ()
    messages = build_messages(
        chunk_text=text, title=source.title, person=source.person, source_type=source.source_type,
        speakers=speakers, person_labels=tuple(person_labels_of(source)) if labelled else (),
        prompt_version=prompt_version or PROMPT_VERSION,
    )
    return [{"role": m["role"], "content": redact(m["content"]) or ""} for m in messages]


def _json(value: Any) -> str | None:
    return None if value is None else redact(json.dumps(value, indent=2, ensure_ascii=False))


def fragment_drilldown(*, session: Session, fragment_id: int) -> FragmentDrilldown:
    """The chunk, extraction calls and judge calls behind a fragment.

    Reads one chunk's slice of the source text (never the whole source unless the source has speaker
    turns to rebuild the prompt's speaker line from).

    Raises:
        ReviewError: no such fragment.
    """
    row = get_fragment_row(session=session, fragment_id=fragment_id)
    fragment = session.get(Fragment, fragment_id)
    assert fragment is not None
    judges = [
        JudgeCall(
            j.judge_model, j.rubric_version, j.status, j.support,
            float(j.support_score) if j.support_score is not None else None, j.judge_category, j.category_agrees,
            redact(j.reason), j.prompt_tokens, j.completion_tokens, j.cost_usd, j.latency_ms,
            redact(j.raw_answer), redact(j.error_message), j.created_at,
        )
        for j in session.scalars(select(JudgeVerdict).where(JudgeVerdict.fragment_id == fragment_id).order_by(JudgeVerdict.id))
    ]
    chunk = session.get(SourceChunk, fragment.chunk_id) if fragment.chunk_id is not None else None
    if chunk is None:
        return FragmentDrilldown(fragment=row, chunk=None, extraction=None, judges=judges)
    source = session.get(Source, fragment.source_id)
    if source is None:
        raise ReviewError(f"Fragment {row.fragment_code} has no source.")
    text = source.content[chunk.char_start : chunk.char_end]
    batch = session.get(ProcessingBatch, fragment.batch_id)
    assert batch is not None
    calls = [
        CallAttempt(
            c.id, int(c.attempt), c.status, c.input_tokens, c.output_tokens, c.cost_usd, c.duration_ms,
            redact(c.raw_response), _json(c.parsed), redact(c.error), c.created_at,
        )
        for c in session.scalars(
            select(ExtractionCall).where(ExtractionCall.batch_id == batch.id, ExtractionCall.chunk_id == chunk.id)
            .order_by(ExtractionCall.id)
        )
    ]
    job = session.scalar(select(ProcessingQueue).where(ProcessingQueue.batch_id == batch.id).order_by(ProcessingQueue.id.desc()).limit(1))
    extraction = ExtractionDrill(
        batch_id=batch.id, batch_code=batch.batch_code, model_provider=batch.model_provider, model_name=batch.model_name,
        prompt_version=batch.prompt_version, temperature=float(batch.temperature or 0),
        messages=_messages(source, chunk, text, batch.prompt_version), messages_rebuilt=True, calls=calls,
        job_status=job.queue_status if job else None, job_attempts=int(job.attempts) if job else None,
        job_max_attempts=int(job.max_attempts) if job else None, job_last_error=redact(job.last_error) if job else None,
    )
    return FragmentDrilldown(fragment=row, chunk=_chunk_view(fragment, chunk, text), extraction=extraction, judges=judges)


# --- debate turns ---------------------------------------------------------------------------------

TURN_CATEGORY = "conversation_turn"


@dataclass(frozen=True)
class TurnCall:
    """One `ai_logs` row of a debate turn: tokens, cost in USD, latency in ms, status, masked error."""

    id: int
    model_name: str
    provider: str | None
    status: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    latency_ms: int | None
    attempts: int
    error: str | None
    created_at: dt.datetime


@dataclass(frozen=True)
class TurnDrilldown:
    """A message and the LLM call behind it. `call` is None for imported messages (no call) or a turn
    whose log row is missing; `failed` lists failed attempts before it (oldest first); `messages` is the
    rebuilt prompt (empty when the conversation is not a debate)."""

    message_id: int
    conversation_id: int
    sequence: int
    agent: str | None
    model: str | None
    round_number: int | None
    turn_index: int | None
    content: str
    tokens_used: int | None
    response_time_ms: int | None
    is_debate: bool
    messages: list[dict[str, str]]
    call: TurnCall | None
    failed: list[TurnCall]


def _turn_call(row: AiLog) -> TurnCall:
    return TurnCall(id=row.id, model_name=row.model_name, provider=row.provider, status=row.status,
                    input_tokens=row.input_tokens, output_tokens=row.output_tokens, cost_usd=row.cost_usd,
                    latency_ms=row.latency_ms, attempts=row.attempts, error=redact(row.error), created_at=row.created_at)


def turn_drilldown(*, session: Session, message_id: int) -> TurnDrilldown:
    """The message `message_id` with its rebuilt prompt, its `conversation_turn` call and the failed attempts
    before it (see the module docstring for how they are matched).

    Raises:
        LookupError: no such message.
    """
    msg = session.get(Message, message_id)
    if msg is None:
        raise LookupError(f"Message {message_id} does not exist.")
    conv = session.get(Conversation, msg.conversation_id)
    debate = ((conv.metadata_ if conv else None) or {}).get("debate")
    is_turn = bool(debate) and msg.role == "assistant" and msg.round_number is not None
    messages: list[dict[str, str]] = []
    call, failed = None, []
    if is_turn:
        earlier = session.scalars(
            select(Message).where(Message.conversation_id == msg.conversation_id, Message.sequence_number < msg.sequence_number)
            .order_by(Message.sequence_number)
        ).all()
        names = [a["name"] for a in debate.get("agents", [])]
        messages = debate_messages(topic=debate.get("topic") or (conv.topic if conv else "") or "", speaker=msg.agent_name or "?",
                                   others=[n for n in names if n != msg.agent_name],
                                   transcript=[(m.agent_name or "?", m.content) for m in earlier])
        rows = session.scalars(
            select(AiLog).where(AiLog.category_key == TURN_CATEGORY, AiLog.created_at == msg.created_at,
                                AiLog.status == "ok").order_by(AiLog.id)
        ).all()
        # the same transaction wrote one ok row; should two turns share a timestamp, tokens and latency decide
        exact = [r for r in rows if r.output_tokens == (msg.tokens_used or 0) and r.latency_ms == msg.response_time_ms]
        match = (exact or rows or [None])[0]
        call = _turn_call(match) if match is not None else None
        since = earlier[-1].created_at if earlier else (conv.created_at if conv else None)
        model = match.model_name if match is not None else msg.agent_model
        q = select(AiLog).where(AiLog.category_key == TURN_CATEGORY, AiLog.status != "ok", AiLog.model_name == model,
                                AiLog.created_at <= msg.created_at)
        if since is not None:
            q = q.where(AiLog.created_at >= since)
        failed = [_turn_call(r) for r in session.scalars(q.order_by(AiLog.created_at, AiLog.id))]
    return TurnDrilldown(
        message_id=msg.id, conversation_id=msg.conversation_id, sequence=msg.sequence_number, agent=msg.agent_name,
        model=msg.agent_model, round_number=msg.round_number, turn_index=msg.turn_index, content=msg.content,
        tokens_used=msg.tokens_used, response_time_ms=msg.response_time_ms, is_debate=bool(debate), messages=messages,
        call=call, failed=failed,
    )
