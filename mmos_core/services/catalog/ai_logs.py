"""Write and read `ai_logs`: one row per LLM call (the catalog design's task columns included).

Every extraction call is logged from `services.extraction_run.record_call` / `record_provider_error`
(category `fragment_extraction`); other callers use `log_call`. Writers never commit: the row belongs
to the caller's transaction, so a call and its log row are stored together or not at all.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mmos_core.core.domain import AiLogStatus
from mmos_core.models import ProcessingBatch
from mmos_core.models.catalog import (
    LOG_STATUSES,
    SELECTED_BY,
    TASK_COMPLEXITIES,
    TASK_PRIORITIES,
    AiLog,
    AiModel,
    AiTaskCategory,
)

EXTRACTION_CATEGORY = "fragment_extraction"
#: selected_by of an extraction batch whose plan does not say: a person picked its model when queueing.
DEFAULT_EXTRACTION_SELECTED_BY = "user_override"


def log_call(
    *,
    session: Session,
    model_name: str,
    category_key: str | None,
    status: str,
    selected_by: str = "auto",
    selection_confidence: float | None = None,
    priority: str | None = None,
    complexity: str | None = None,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost_usd: Decimal | float = 0,
    latency_ms: int | None = None,
    attempts: int = 1,
    error: str | None = None,
    batch_id: int | None = None,
    chunk_id: int | None = None,
    user_id: int | None = None,
) -> AiLog:
    """Add one `ai_logs` row. Does not commit.

    `priority` / `complexity` default to the category's `default_priority` / `default_complexity`
    (null when the category is not in the catalog); `model_id` and `provider` come from the catalog
    row named `model_name` (null when the model is not in it — logging never fails on catalog state).

    Raises:
        ValueError: selected_by, status, priority or complexity outside their vocabularies, or a
            selection confidence outside 0-1.
    """
    if selected_by not in SELECTED_BY:
        raise ValueError(f"selected_by must be one of {', '.join(SELECTED_BY)}, not {selected_by!r}")
    if status not in LOG_STATUSES:
        raise ValueError(f"status must be one of {', '.join(LOG_STATUSES)}, not {status!r}")
    if priority is not None and priority not in TASK_PRIORITIES:
        raise ValueError(f"priority must be one of {', '.join(TASK_PRIORITIES)}, not {priority!r}")
    if complexity is not None and complexity not in TASK_COMPLEXITIES:
        raise ValueError(f"complexity must be one of {', '.join(TASK_COMPLEXITIES)}, not {complexity!r}")
    if selection_confidence is not None and not 0 <= selection_confidence <= 1:
        raise ValueError("selection confidence is a 0-1 value")
    model = session.execute(select(AiModel.id, AiModel.provider).where(AiModel.model_id == model_name)).first()
    if category_key is not None and (priority is None or complexity is None):
        defaults = session.execute(
            select(AiTaskCategory.default_priority, AiTaskCategory.default_complexity).where(
                AiTaskCategory.category_key == category_key
            )
        ).first()
        if defaults is not None:
            priority = priority or defaults[0]
            complexity = complexity or defaults[1]
    row = AiLog(
        model_id=model[0] if model else None,
        model_name=model_name,
        provider=model[1] if model else None,
        category_key=category_key,
        task_priority=priority,
        task_complexity=complexity,
        selected_by=selected_by,
        confidence_score=None if selection_confidence is None else round(Decimal(str(selection_confidence)), 2),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=Decimal(str(cost_usd)),
        latency_ms=latency_ms,
        attempts=attempts,
        status=status,
        error=error[:4000] if error else None,
        batch_id=batch_id,
        chunk_id=chunk_id,
        user_id=user_id,
    )
    session.add(row)
    return row


def log_extraction_call(
    *,
    session: Session,
    plan: Any,
    chunk_id: int,
    result: Any = None,
    error: Any = None,
    cost: Decimal | None = None,
) -> AiLog:
    """The `ai_logs` row of one extraction call: from a `CallResult` (ok / malformed) or a `ProviderError`.

    `plan` is the batch's `services.extraction_run.BatchPlan`. How the model was chosen comes from the
    batch row (`processing_batches.selected_by` / `selection_confidence`, set by `queue_extraction`);
    attributes of the same names on the plan win, as do `task_priority` / `task_complexity` (default:
    the category's). Without either: 'user_override' (a person picked the batch's model).
    """
    selected_by = getattr(plan, "selected_by", None)
    confidence = getattr(plan, "selection_confidence", None)
    if selected_by is None:
        # the batch row records how its model was chosen (queue_extraction's selected_by)
        row = session.execute(
            select(ProcessingBatch.selected_by, ProcessingBatch.selection_confidence).where(
                ProcessingBatch.id == plan.batch_id
            )
        ).first()
        if row is not None:
            selected_by = row[0]
            confidence = confidence if confidence is not None else (float(row[1]) if row[1] is not None else None)
    common = dict(
        session=session,
        model_name=plan.model_name,
        category_key=EXTRACTION_CATEGORY,
        selected_by=selected_by or DEFAULT_EXTRACTION_SELECTED_BY,
        selection_confidence=confidence,
        priority=getattr(plan, "task_priority", None),
        complexity=getattr(plan, "task_complexity", None),
        batch_id=plan.batch_id,
        chunk_id=chunk_id,
    )
    if result is not None:
        return log_call(
            **common,
            status=result.status.value,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            cost_usd=cost if cost is not None else Decimal(0),
            latency_ms=result.duration_ms,
            attempts=result.attempts,
            error=result.error,
        )
    return log_call(
        **common,
        status=AiLogStatus.provider_error.value,
        latency_ms=getattr(error, "duration_ms", None),
        attempts=getattr(error, "attempts", 1),
        error=str(error),
    )


@dataclass(frozen=True)
class LogRow:
    """One logged call as the Models page lists it."""

    created_at: dt.datetime
    model_name: str
    category_key: str | None
    task_priority: str | None
    task_complexity: str | None
    selected_by: str
    confidence: float | None
    status: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms: int | None
    batch_id: int | None
    error: str | None


def recent_logs(
    *, session: Session, limit: int = 100, selected_by: str | None = None, model_name: str | None = None
) -> list[LogRow]:
    """The latest logged calls, newest first, optionally only one `selected_by` or one model."""
    q = select(AiLog).order_by(AiLog.created_at.desc(), AiLog.id.desc()).limit(limit)
    if selected_by:
        q = q.where(AiLog.selected_by == selected_by)
    if model_name:
        q = q.where(AiLog.model_name == model_name)
    return [
        LogRow(
            created_at=r.created_at,
            model_name=r.model_name,
            category_key=r.category_key,
            task_priority=r.task_priority,
            task_complexity=r.task_complexity,
            selected_by=r.selected_by,
            confidence=float(r.confidence_score) if r.confidence_score is not None else None,
            status=r.status,
            input_tokens=r.input_tokens,
            output_tokens=r.output_tokens,
            cost_usd=float(r.cost_usd),
            latency_ms=r.latency_ms,
            batch_id=r.batch_id,
            error=r.error,
        )
        for r in session.scalars(q)
    ]
