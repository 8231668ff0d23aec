"""`/batches`: queue a source for models with the cost estimate, and follow the batches (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from mmos_core.api.auth import DbSession, require
from mmos_core.api.errors import ApiError
from mmos_core.api.serialize import to_json
from mmos_core.services.auth import CurrentUser, Permission
from mmos_core.services.batches import BatchProgress, batch_progress, enqueue_batches, queue_extraction
from mmos_core.services.estimate import estimate_for_source

router = APIRouter(tags=["batches"])


class QueueRequest(BaseModel):
    """`POST /batches`: which source, on which models."""

    source_id: int
    models: list[str] = Field(min_length=1, description="Model names as `GET /models` lists them; one batch each.")
    priority: int | None = Field(None, ge=0, le=10, description="Queue priority 0-10; default from the source's extraction priority.")
    dry_run: bool = Field(False, description="Only estimate the cost; queue nothing.")


def _progress(p: BatchProgress) -> dict[str, Any]:
    return to_json(p, extra=("fraction",))


@router.post("/batches", status_code=201, summary="Queue a source for models (with the cost estimate)")
def queue(
    user: Annotated[CurrentUser, Depends(require(Permission.queue_extraction))],
    body: QueueRequest,
    session: DbSession,
) -> dict[str, Any]:
    """One pending batch per model (`services.batches.queue_extraction`), put on RQ when the request's
    transaction commits (`enqueue_batches(..., session=session)`), each with its estimate
    (`services.estimate.estimate_for_source`: input tokens, at-least and worst-case USD).

    With `dry_run` only the estimates come back (status 201 all the same, `batches` empty).
    404: unknown source or model; 400: the source has no chunks.
    """
    estimates = dict(estimate_for_source(session=session, source_id=body.source_id, model_names=body.models))
    out: dict[str, Any] = {
        "source_id": body.source_id,
        "estimates": [{"model_name": name, **to_json(e)} for name, e in estimates.items()],
        "batches": [],
    }
    if body.dry_run:
        return out
    jobs = queue_extraction(
        session=session, source_id=body.source_id, model_names=body.models, priority=body.priority,
        processor_name=user.username,
    )
    enqueue_batches(jobs, session=session)
    progress = {p.batch_id: p for p in batch_progress(session=session, batch_ids=[j.batch_id for j in jobs])}
    out["batches"] = [
        {"batch_id": j.batch_id, "queue_id": j.queue_id, "rq_queue": j.rq_queue, "model_name": progress[j.batch_id].model_name,
         "batch_code": progress[j.batch_id].batch_code, "status": progress[j.batch_id].status}
        for j in jobs
    ]
    return out


@router.get("/batches", summary="Batches of a source with their progress")
def list_batches(
    user: Annotated[CurrentUser, Depends(require(Permission.view_comparison))],
    session: DbSession,
    source_id: Annotated[int, Query(description="The source whose batches to list, newest first.")],
) -> list[dict[str, Any]]:
    """Every batch of the source (`services.batches.batch_progress`), newest first."""
    return [_progress(p) for p in batch_progress(session=session, source_id=source_id)]


@router.get("/batches/{batch_id}", summary="One batch's status and progress")
def get_batch(
    user: Annotated[CurrentUser, Depends(require(Permission.view_comparison))],
    session: DbSession,
    batch_id: int,
) -> dict[str, Any]:
    """Status, chunks done of total (`fraction` 0-1), fragments, tokens, cost in USD so far, elapsed seconds,
    the error message of a failed batch, and its queue row's status and attempts. 404: unknown batch."""
    found = batch_progress(session=session, batch_ids=[batch_id])
    if not found:
        raise ApiError(404, f"No batch {batch_id}.")
    return _progress(found[0])
