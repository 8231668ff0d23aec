"""RQ jobs of conversations (docs/conversations.md): analyse messages, analyse a conversation, run a local debate.

Enqueued by `mmos_core.services.conversations.enqueue_analysis` / `enqueue_debate` (default queue,
explicit job timeout, `Retry(max=2)`); they take ids, open their own sessions and commit message by
message, so the Conversations page sees each message and its health point as soon as it exists, and a
retried job resumes where the last attempt stopped (already analysed messages and already spoken
debate turns are skipped).
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

from rq import get_current_job

from mmos_core.core.config import get_settings
from mmos_core.core.db import session_scope
from mmos_core.core.domain import AiLogStatus, ConversationStatus
from mmos_core.llm.catalog import get_model, price_snapshot
from mmos_core.llm.cost import cost_usd
from mmos_core.llm.debate import chat_turn, debate_messages, strip_own_name
from mmos_core.services import conversations as svc
from mmos_core.services.budget_guard import release, reserve_with_wait, settle, worst_case_call_cost
from mmos_core.services.catalog.ai_logs import log_call
from mmos_core.services.model_registry import cached_registry_embedder

log = logging.getLogger(__name__)

#: Messages embedded per onnxruntime call while analysing a conversation.
EMBED_BATCH = 32


def _embedder():

    embedder = cached_registry_embedder()
    return embedder, svc.EmbeddingModel.of(embedder)


def analyze_message(message_id: int) -> dict[str, Any]:
    """Analyse one message (embed, candidates, detectors, persist; see `services.conversations.analyze_message`).

    Returns:
        {"message_id", "candidates", "contradictions", "loop", "health", "ms"}.
    Raises:
        ConversationNotFound: no such message. EmbedderUnavailable: the embedder is not provisioned.
    """
    embedder, model = _embedder()
    with session_scope() as session:
        out = svc.analyze_message(session=session, message_id=message_id, embed=embedder.embed, model=model)
    return _summary(out)


def analyze_conversation(conversation_id: int, force: bool = False) -> dict[str, Any]:
    """Analyse a conversation's messages in sequence order: those not analysed yet, or all with `force`.

    Idempotent: analysing twice gives the same findings and points. One transaction per message. A
    conversation whose debate is running is skipped (the debate analyses its own messages).

    Returns:
        {"conversation_id", "analyzed", "p50_ms", "p95_ms", "candidates"} or {"skipped": reason}.
    """
    with session_scope() as session:
        conv = svc.get_conversation(session=session, conversation_id=conversation_id)
        if conv.status == ConversationStatus.running.value:
            return {"skipped": "a debate is running in this conversation; it analyses its own messages"}
        ids = svc.pending_message_ids(session=session, conversation_id=conversation_id, force=force)
        svc.set_status(session=session, conversation_id=conversation_id, status=ConversationStatus.analyzing.value)
    embedder, model = _embedder()
    times: list[float] = []
    candidates = 0
    for start in range(0, len(ids), EMBED_BATCH):
        batch = ids[start : start + EMBED_BATCH]
        with session_scope() as session:
            contents = svc.message_contents(session=session, message_ids=batch)
        vectors = embedder.embed([contents[i] for i in batch])  # one onnxruntime call per batch
        for message_id, vector in zip(batch, vectors, strict=True):
            t0 = time.perf_counter()
            with session_scope() as session:
                msg = session.get(svc.Message, message_id)
                # stored right before its own analysis, so the index holds only earlier messages of the
                # conversation while the nearest-earlier query runs (no post-filter starvation)
                svc.store_embeddings(session=session, messages=[msg], vectors=vector[None, :], model=model)
                out = svc.analyze_message(session=session, message_id=message_id, embed=embedder.embed, model=model)
            times.append((time.perf_counter() - t0) * 1000)
            candidates += out.candidates
    with session_scope() as session:
        svc.set_status(session=session, conversation_id=conversation_id, status=ConversationStatus.completed.value)
    return {
        "conversation_id": conversation_id,
        "analyzed": len(ids),
        "p50_ms": statistics.median(times) if times else None,
        "p95_ms": _p95(times),
        "candidates": candidates,
    }


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def _summary(out: svc.AnalysisOutcome) -> dict[str, Any]:
    return {
        "message_id": out.message_id,
        "candidates": out.candidates,
        "contradictions": len(out.contradictions),
        "loop": out.loop.repetition_count if out.loop else None,
        "health": out.health.health_score if out.health else None,
        "ms": round(out.timings_ms.get("total", 0.0), 1),
    }


# --- debate (prompt, model call and answer clean-up: mmos_core.llm.debate) ------------------------


def run_debate(conversation_id: int) -> dict[str, Any]:
    """Run the debate stored on the conversation (`metadata.debate`: topic, rounds, agents with models).

    Round by round, each agent speaks in turn on its model (local llama.cpp models through litellm);
    each message is committed, then analysed in its own transaction, so the page updates live.
    Resumable: turns already stored (same round and turn index) are skipped.

    Returns:
        {"conversation_id", "messages": new messages, "turns": total turns}.
    Raises:
        ProviderError: a model call failed after its retries (RQ retries the job, which resumes).
        ValueError: the conversation is not a debate.
    """
    job = get_current_job()
    with session_scope() as session:
        conv = svc.get_conversation(session=session, conversation_id=conversation_id)
        config = (conv.metadata_ or {}).get("debate")
        if not config:
            raise ValueError(f"Conversation {conversation_id} is not a debate (no metadata.debate).")
        done = {
            (m.round_number, m.turn_index): m for m in svc.list_messages(session=session, conversation_id=conversation_id)
        }
        transcript = [(m.agent_name or "?", m.content) for m in sorted(done.values(), key=lambda m: m.sequence_number)]
        svc.set_status(session=session, conversation_id=conversation_id, status=ConversationStatus.running.value)
    embedder, model = _embedder()
    agents = config["agents"]
    names = [a["name"] for a in agents]
    new = 0
    for round_number in range(1, int(config["rounds"]) + 1):
        for turn, agent in enumerate(agents):
            if (round_number, turn) in done:
                continue
            others = [n for n in names if n != agent["name"]]
            messages = debate_messages(topic=config["topic"], speaker=agent["name"], others=others, transcript=transcript)
            spec = get_model(agent["model"])
            prices = price_snapshot(spec)
            # priced (cloud) debaters draw on the same daily budget as extraction (the reservations of docs/quality.md)
            reservation = reserve_with_wait(
                session_factory=session_scope, model_name=spec.name,
                amount_usd=worst_case_call_cost(spec=spec, prices=prices, messages=messages,
                                                max_tokens=get_settings().conversation_debate_max_tokens),
            )
            try:
                text_, completion_tokens, prompt_tokens, ms = chat_turn(agent["model"], messages)
            except Exception as exc:
                with session_scope() as session:
                    release(session=session, reservation=reservation)
                    log_call(session=session, model_name=spec.name, category_key="conversation_turn",
                             status=AiLogStatus.provider_error.value, selected_by="user_override",
                             attempts=getattr(exc, "attempts", 1) or 1, latency_ms=getattr(exc, "duration_ms", None),
                             error=str(exc))
                retryable = getattr(exc, "retryable", True)
                if not retryable and job is not None:
                    job.retries_left = 0  # an unknown model or a bad request will not fix itself
                    job.save()
                raise
            text_ = strip_own_name(text_, agent["name"])
            with session_scope() as session:
                msg = svc.add_message(
                    session=session,
                    conversation_id=conversation_id,
                    role="assistant",
                    content=text_,
                    agent_name=agent["name"],
                    agent_model=agent["model"],
                    round_number=round_number,
                    turn_index=turn,
                    tokens_used=completion_tokens or None,
                    response_time_ms=ms,
                    metadata={"prompt_tokens": prompt_tokens},
                )
                message_id = msg.id
                cost = cost_usd(prices, input_tokens=prompt_tokens, output_tokens=completion_tokens)
                settle(session=session, reservation=reservation, cost_usd=cost)
                log_call(session=session, model_name=spec.name, category_key="conversation_turn", status=AiLogStatus.ok.value,
                         selected_by="user_override", input_tokens=prompt_tokens, output_tokens=completion_tokens,
                         cost_usd=cost, latency_ms=ms)
            with session_scope() as session:
                svc.analyze_message(session=session, message_id=message_id, embed=embedder.embed, model=model)
            transcript.append((agent["name"], text_))
            new += 1
    with session_scope() as session:
        svc.set_status(session=session, conversation_id=conversation_id, status=ConversationStatus.completed.value)
    return {"conversation_id": conversation_id, "messages": new, "turns": int(config["rounds"]) * len(agents)}


def on_conversation_job_failure(job, connection, exc_type, exc_value, tb) -> None:
    """RQ failure callback: mark the conversation failed (final) or queued again (a retry is scheduled)."""
    conversation_id = int(job.args[0])
    error = f"{exc_type.__name__}: {exc_value}" if exc_type is not None else "job failed"
    final = (job.retries_left or 0) <= 0
    try:
        with session_scope() as session:
            svc.set_status(
                session=session,
                conversation_id=conversation_id,
                status=ConversationStatus.failed.value if final else ConversationStatus.queued.value,
                error=error if final else f"retrying after: {error}",
            )
    except Exception:
        log.exception("could not record the failure of conversation job %s", job.id)
