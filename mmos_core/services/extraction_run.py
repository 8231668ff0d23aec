"""Running one extraction batch: stage each chunk's call, then publish all fragments at once.

Chunk answers are staged in `extraction_calls` (one committed row per call). Fragments are
written only by `finalize_batch`, in the same transaction that marks the batch completed, so a
batch is never half-visible; a retried job resumes after the last staged chunk.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mmos_core.core.domain import BatchStatus, CallStatus, QueueStatus, SourceProcessingStatus
from mmos_core.core.vectors import Embed
from mmos_core.llm.cost import PriceSnapshot, cost_usd
from mmos_core.llm.extraction import CallResult, ExtractedFragment, ProviderError
from mmos_core.models import (
    ExtractionCall,
    Fragment,
    ModelPerformance,
    ProcessingBatch,
    ProcessingQueue,
    Source,
    SourceChunk,
    SourceProcessing,
)
from mmos_core.services.budget_guard import check_fragment_cost
from mmos_core.services.catalog.ai_logs import log_extraction_call
from mmos_core.services.speakers import person_labels_of, turns_of
from mmos_core.text.intake import Cue
from mmos_core.text.locate import locate_quote
from mmos_core.text.speakers import UNLABELLED, speakers_of_span

#: A direct quote counts as located when its best span scores at least this (rapidfuzz 0-100).
LOCATE_MIN_SCORE = 85.0



@dataclass(frozen=True)
class PendingChunk:
    """A chunk still without a staged answer in this batch."""

    chunk_id: int
    chunk_index: int
    text: str
    #: speaker labels whose words are in this chunk, in order of appearance (empty: no labelled speakers)
    speakers: tuple[str, ...] = ()


@dataclass(frozen=True)
class BatchPlan:
    """What a job needs to run a batch: model, prices, source metadata and the chunks left."""

    batch_id: int
    model_name: str
    prices: PriceSnapshot
    source_id: int
    title: str
    person: str | None
    source_type: str
    pending: list[PendingChunk]
    chunks_total: int
    #: the person's speaker label(s) on the source (docs/quality.md, "Speaker turns")
    person_labels: tuple[str, ...] = ()
    #: the batch's prompt version: a batch queued under an older prompt keeps it when it resumes
    prompt_version: str = ""


class BatchNotRunnable(RuntimeError):
    """The batch is already completed or failed (or does not exist); the job has nothing to do."""


def _queue_row(session: Session, batch_id: int) -> ProcessingQueue | None:
    return session.scalar(select(ProcessingQueue).where(ProcessingQueue.batch_id == batch_id))


def start_attempt(*, session: Session, batch_id: int, worker_name: str | None) -> BatchPlan:
    """Mark the batch processing, count the attempt, and list the chunks without a staged answer.

    Raises:
        BatchNotRunnable: unknown batch, or it already completed / failed for good.
    """
    batch = session.get(ProcessingBatch, batch_id, with_for_update=True)
    if batch is None:
        raise BatchNotRunnable(f"No batch {batch_id}.")
    if batch.batch_status in (BatchStatus.completed.value, BatchStatus.failed.value):
        raise BatchNotRunnable(f"Batch {batch.batch_code} is already {batch.batch_status}.")
    link = session.scalar(select(SourceProcessing).where(SourceProcessing.batch_id == batch_id))
    if link is None:
        raise BatchNotRunnable(f"Batch {batch.batch_code} has no source.")
    source = session.get(Source, link.source_id)
    assert source is not None
    now = dt.datetime.now(dt.UTC)
    batch.batch_status = BatchStatus.processing.value
    batch.started_at = batch.started_at or now
    link.processing_status = SourceProcessingStatus.processing.value
    link.started_at = link.started_at or now
    queue = _queue_row(session, batch_id)
    if queue is not None:
        queue.queue_status = QueueStatus.processing.value
        queue.attempts = queue.attempts + 1
        queue.assigned_to = worker_name
        queue.scheduled_for = None

    answered = select(ExtractionCall.chunk_id).where(
        ExtractionCall.batch_id == batch_id,
        ExtractionCall.status.in_([CallStatus.ok.value, CallStatus.malformed.value]),
    )
    query = select(SourceChunk).where(SourceChunk.source_id == source.id, SourceChunk.id.not_in(answered))
    if batch.chunk_scope:
        query = query.where(SourceChunk.id.in_(batch.chunk_scope))
    chunks = session.scalars(query.order_by(SourceChunk.chunk_index)).all()
    turns = turns_of(source)
    labelled = any(t.speaker and t.speaker != UNLABELLED for t in turns)

    def chunk_speakers(c: SourceChunk) -> tuple[str, ...]:
        return tuple(s for s in speakers_of_span(turns, c.char_start, c.char_end).speech if s) if labelled else ()

    return BatchPlan(
        batch_id=batch.id,
        model_name=batch.model_name,
        prices=PriceSnapshot.from_dict(batch.price_snapshot),
        source_id=source.id,
        title=source.title,
        person=source.person,
        source_type=source.source_type,
        pending=[PendingChunk(c.id, c.chunk_index, source.content[c.char_start : c.char_end], chunk_speakers(c)) for c in chunks],
        chunks_total=batch.chunks_total,
        person_labels=tuple(person_labels_of(source)) if labelled else (),
        prompt_version=batch.prompt_version,
    )


def record_call(*, session: Session, plan: BatchPlan, chunk_id: int, result: CallResult) -> Decimal:
    """Stage one chunk's answer and add its usage and cost to the batch counters. Returns the call's cost (USD)."""
    cost = cost_usd(plan.prices, input_tokens=result.input_tokens, output_tokens=result.output_tokens)
    session.add(
        ExtractionCall(
            batch_id=plan.batch_id,
            chunk_id=chunk_id,
            attempt=result.attempts,
            status=result.status.value,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=cost,
            duration_ms=result.duration_ms,
            raw_response=result.raw_response,
            parsed=result.parsed_json() if result.status is CallStatus.ok else None,
            error=result.error,
        )
    )
    session.execute(
        update(ProcessingBatch)
        .where(ProcessingBatch.id == plan.batch_id)
        .values(
            chunks_done=ProcessingBatch.chunks_done + 1,
            total_input_tokens=ProcessingBatch.total_input_tokens + result.input_tokens,
            total_output_tokens=ProcessingBatch.total_output_tokens + result.output_tokens,
            estimated_cost_usd=ProcessingBatch.estimated_cost_usd + cost,
            malformed_responses=ProcessingBatch.malformed_responses
            + (1 if result.status is CallStatus.malformed else 0),
        )
    )

    log_extraction_call(session=session, plan=plan, chunk_id=chunk_id, result=result, cost=cost)
    return cost


def latest_answers(*, session: Session, batch_id: int) -> dict[int, ExtractionCall]:
    """The answer each chunk of the batch has now — its latest `ok` or `malformed` call — by chunk id.
    This is what `finalize_batch` publishes; provider errors are not answers."""
    latest: dict[int, ExtractionCall] = {}
    for call in session.scalars(
        select(ExtractionCall)
        .where(
            ExtractionCall.batch_id == batch_id,
            ExtractionCall.status.in_([CallStatus.ok.value, CallStatus.malformed.value]),
        )
        .order_by(ExtractionCall.id)
    ):
        latest[call.chunk_id] = call
    return latest


def check_batch_fragment_cost(*, session: Session, batch_id: int) -> None:
    """Stop the batch when its cost per staged fragment is above the per-fragment limit.

    Fragments so far = valid fragments in the batch's answered chunks (latest answer per chunk).

    Raises:
        mmos_core.services.budget_guard.FragmentCostExceeded: over the limit (message gives the figures).
    """

    batch = session.get(ProcessingBatch, batch_id)
    latest = latest_answers(session=session, batch_id=batch_id)
    fragments = sum(len((c.parsed or {}).get("fragments") or []) for c in latest.values())
    check_fragment_cost(
        session=session,
        cost_so_far=Decimal(batch.estimated_cost_usd or 0),
        fragments_so_far=fragments,
        chunks_done=len(latest),
    )


def record_provider_error(*, session: Session, plan: BatchPlan, chunk_id: int, error: ProviderError) -> None:
    """Keep a provider failure on record (no tokens, no cost) so the queue page can show it."""
    session.add(
        ExtractionCall(
            batch_id=plan.batch_id,
            chunk_id=chunk_id,
            attempt=error.attempts,
            status=CallStatus.provider_error.value,
            duration_ms=error.duration_ms,
            error=str(error)[:4000],
        )
    )

    log_extraction_call(session=session, plan=plan, chunk_id=chunk_id, error=error)


def _location(source: Source, chunk: SourceChunk, item: ExtractedFragment) -> dict[str, Any]:
    # Every branch returns the same keys: the rows go to one executemany INSERT.
    cues = [Cue(c[0], c[1], c[2], c[3], c[4]) for c in source.cues] if source.cues else None
    if item.fragment_type == "direct_quote":
        loc = locate_quote(
            source.content,
            item.content,
            window=(chunk.char_start, chunk.char_end),
            cues=cues,
            min_score=LOCATE_MIN_SCORE,
            pages=(source.metadata_ or {}).get("pages"),  # PDF quotes read "p. 12, ¶34, chars …" (docs/intake.md)
        )
        if loc is not None:
            return {
                "location_in_source": loc.label[:200],
                "char_start": loc.char_start,
                "char_end": loc.char_end,
                "location_score": round(loc.score, 2),
            }
        return {
            "location_in_source": f"{chunk.location_label} (quote not found)"[:200],
            "char_start": None,
            "char_end": None,
            "location_score": None,
        }
    # Paraphrases and inferences point at the chunk they were drawn from.
    return {
        "location_in_source": chunk.location_label[:200],
        "char_start": chunk.char_start,
        "char_end": chunk.char_end,
        "location_score": None,
    }


@dataclass(frozen=True)
class FinalizeResult:
    """Outcome of publishing a batch: fragments written and the batch's model time (seconds)."""

    fragments: int
    duration_s: float


def finalize_batch(*, session: Session, batch_id: int, embed: Embed) -> FinalizeResult:
    """Turn the staged answers into fragments (located, embedded), complete the batch, write its performance row.

    Args:
        embed: texts → (n, 384) float32 L2-normalised embeddings.
    Raises:
        BatchNotRunnable: the batch already finished (another attempt published it), or a chunk
            still has no staged answer.
    """
    batch = session.get(ProcessingBatch, batch_id, with_for_update=True)
    if batch is None or batch.batch_status in (BatchStatus.completed.value, BatchStatus.failed.value):
        # The row lock serialises two attempts racing to publish; the second one stops here.
        raise BatchNotRunnable(f"Batch {batch_id} is already finished or gone.")
    link = session.scalar(select(SourceProcessing).where(SourceProcessing.batch_id == batch_id))
    assert link is not None
    source = session.get(Source, link.source_id)
    assert source is not None
    latest = latest_answers(session=session, batch_id=batch_id)
    chunk_query = select(SourceChunk).where(SourceChunk.source_id == source.id)
    if batch.chunk_scope:
        chunk_query = chunk_query.where(SourceChunk.id.in_(batch.chunk_scope))
    chunks = {c.id: c for c in session.scalars(chunk_query)}
    missing = set(chunks) - set(latest)
    if missing:
        raise BatchNotRunnable(f"Batch {batch.batch_code}: {len(missing)} chunks have no answer yet.")

    rows: list[dict[str, Any]] = []
    for chunk_id in sorted(latest, key=lambda cid: chunks[cid].chunk_index):
        call = latest[chunk_id]
        if call.status != CallStatus.ok.value or not call.parsed:
            continue
        for raw in call.parsed.get("fragments", []):
            item = ExtractedFragment.model_validate(raw)
            rows.append(
                {
                    "source_id": source.id,
                    "batch_id": batch_id,
                    "chunk_id": chunk_id,
                    "category": item.category,
                    "fragment_type": item.fragment_type,
                    "content": item.content,
                    "context": item.context or None,
                    "insight": item.insight or None,
                    "relevance": item.relevance,
                    "confidence": round(item.confidence, 3),
                    **_location(source, chunks[chunk_id], item),
                }
            )
    if rows:
        vectors = embed([r["content"] for r in rows])
        for row, vec in zip(rows, vectors, strict=True):
            row["embedding"] = vec.tolist()
        session.execute(Fragment.__table__.insert(), rows)

    model_ms = session.scalar(
        select(func.coalesce(func.sum(ExtractionCall.duration_ms), 0)).where(ExtractionCall.batch_id == batch_id)
    )
    duration_s = float(model_ms or 0) / 1000.0
    now = dt.datetime.now(dt.UTC)
    batch.batch_status = BatchStatus.completed.value
    batch.completed_at = now
    batch.processing_duration_seconds = duration_s
    batch.error_message = None
    link.processing_status = SourceProcessingStatus.completed.value
    link.completed_at = now
    link.fragments_extracted = len(rows)
    queue = _queue_row(session, batch_id)
    if queue is not None:
        queue.queue_status = QueueStatus.completed.value
        queue.last_error = None
    session.flush()
    _write_performance(session, batch, source, rows, duration_s, calls_total=len(latest))
    return FinalizeResult(fragments=len(rows), duration_s=duration_s)


def _write_performance(
    session: Session,
    batch: ProcessingBatch,
    source: Source,
    rows: list[dict[str, Any]],
    duration_s: float,
    *,
    calls_total: int,
) -> None:
    n = len(rows)
    cost = Decimal(batch.estimated_cost_usd)
    quotes = [r for r in rows if r["fragment_type"] == "direct_quote"]
    located = [r for r in quotes if r.get("location_score") is not None]
    session.add(
        ModelPerformance(
            model_provider=batch.model_provider,
            model_name=batch.model_name,
            source_id=source.id,
            batch_id=batch.id,
            source_type=source.source_type,
            fragments_extracted=n,
            # The core design's rule, AVG(confidence × 10): the model's own grade of itself, kept for the
            # seed's queries and labelled "self-reported" wherever it is shown.
            extraction_quality_avg=round(sum(r["confidence"] for r in rows) / n * 10, 2) if n else None,
            relevance_score_avg=round(sum(r["relevance"] for r in rows) / n, 2) if n else None,
            confidence_avg=round(sum(r["confidence"] for r in rows) / n, 3) if n else None,
            cost_usd=cost,
            cost_per_fragment=(cost / n) if n else None,
            tokens_per_fragment=round(batch.total_output_tokens / n, 2) if n else None,
            time_per_fragment_seconds=round(duration_s / n, 3) if n else None,
            located_share=round(len(located) / len(quotes), 4) if quotes else None,
            malformed_share=round(batch.malformed_responses / calls_total, 4) if calls_total else None,
        )
    )


def mark_attempt_failed(
    *, session: Session, batch_id: int, error: str, retry_at: dt.datetime | None
) -> None:
    """After a failed attempt: back to `pending` with the retry time, or `failed` for good when `retry_at` is None."""
    batch = session.get(ProcessingBatch, batch_id, with_for_update=True)
    if batch is None or batch.batch_status == BatchStatus.completed.value:
        return
    queue = _queue_row(session, batch_id)
    if queue is not None and queue.queue_status == QueueStatus.cancelled.value:
        return  # a cancelled job that failed while stopping stays cancelled
    link = session.scalar(select(SourceProcessing).where(SourceProcessing.batch_id == batch_id))
    if retry_at is None:
        batch.batch_status = BatchStatus.failed.value
        batch.error_message = error[:4000]
        batch.completed_at = dt.datetime.now(dt.UTC)
        if link is not None:
            link.processing_status = SourceProcessingStatus.failed.value
        if queue is not None:
            queue.queue_status = QueueStatus.failed.value
            queue.last_error = error[:4000]
    else:
        batch.batch_status = BatchStatus.pending.value
        batch.error_message = f"{error[:3900]} (retry scheduled {retry_at:%H:%M:%S} UTC)"
        if link is not None:
            link.processing_status = SourceProcessingStatus.pending.value
        if queue is not None:
            queue.queue_status = QueueStatus.waiting.value
            queue.last_error = error[:4000]
            queue.scheduled_for = retry_at
