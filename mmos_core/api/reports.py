"""`/reports`: measured quality, the sweet spot, category coverage and optimizer runs (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from mmos_core.api.auth import DbSession, require
from mmos_core.api.serialize import to_json
from mmos_core.services.auth import CurrentUser, Permission
from mmos_core.services.coverage import category_coverage
from mmos_core.services.model_quality import model_quality
from mmos_core.services.optimizer import find_sweet_spot, list_runs

router = APIRouter(prefix="/reports", tags=["reports"])

Viewer = Annotated[CurrentUser, Depends(require(Permission.view_comparison))]


@router.get("/quality", summary="Measured quality per model")
def quality(
    user: Viewer,
    session: DbSession,
    source_id: Annotated[list[int] | None, Query(description="Only these sources (repeat the parameter); default all.")] = None,
    source_type: str | None = None,
    category: str | None = None,
) -> list[dict[str, Any]]:
    """Pooled quality per model over completed batches, cheapest first (`services.model_quality.model_quality`):
    the 0-10 score with its 95 % interval and components (docs/quality.md), fragments, cost in USD and model
    seconds, per fragment too. Grounding not yet computed is not computed here (no embedder call)."""
    rows = model_quality(session=session, source_ids=source_id, source_type=source_type, category=category)
    return [to_json(r, extra=("cost_per_fragment", "seconds_per_fragment")) for r in rows]


@router.get("/sweet-spot", summary="The cheapest model that clears the quality bar")
def sweet_spot(
    user: Viewer,
    session: DbSession,
    source_id: int | None = None,
    source_type: str | None = None,
    category: str | None = None,
    quality_threshold: Annotated[float | None, Query(ge=0, le=10, description="0-10; default the source type's.")] = None,
    budget_per_fragment: Annotated[float | None, Query(ge=0, description="USD per fragment; default no budget.")] = None,
    cost_metric: Literal["usd", "seconds"] = "usd",
) -> dict[str, Any]:
    """`services.optimizer.find_sweet_spot`: the chosen model (null when none qualifies), every candidate
    with why it was or was not eligible, the baseline and the saving against it in percent."""
    spot = find_sweet_spot(
        session=session, source_id=source_id, source_type=source_type, category=category,
        quality_threshold=quality_threshold, budget_per_fragment=budget_per_fragment, cost_metric=cost_metric,
    )
    return to_json(spot)


@router.get("/coverage", summary="Coverage of the eight categories")
def coverage(
    user: Annotated[CurrentUser, Depends(require(Permission.view_coverage))],
    session: DbSession,
    person: str | None = None,
    source_id: Annotated[list[int] | None, Query(description="Only these sources (repeat the parameter).")] = None,
) -> list[dict[str, Any]]:
    """Per category: non-rejected fragments, verified count and share (%), distinct sources, mean relevance
    and the gap status (`services.coverage.category_coverage`)."""
    return [to_json(c) for c in category_coverage(session=session, person=person, source_ids=source_id)]


@router.get("/optimization", summary="Optimizer runs, newest first")
def optimization(
    user: Viewer,
    session: DbSession,
    source_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """`process_batch` strategy runs (`services.optimizer.list_runs`): models tried, status, chosen model,
    batches queued and every decision with the measured quality behind it."""
    return [to_json(r) for r in list_runs(session=session, source_id=source_id, limit=limit)]
