"""`/models`: what can be queued, and a source's models side by side (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from mmos_core.api.auth import DbSession, require
from mmos_core.api.errors import ApiError
from mmos_core.api.serialize import to_json
from mmos_core.llm.catalog import available_models
from mmos_core.models import Source
from mmos_core.services.auth import CurrentUser, Permission
from mmos_core.services.comparison import DEFAULT_MATCH_THRESHOLD, align_batches, batch_stats, completed_batches

router = APIRouter(tags=["comparison"])

Viewer = Annotated[CurrentUser, Depends(require(Permission.view_comparison))]


@router.get("/models", summary="Models that can be queued now")
def models(user: Viewer) -> list[dict[str, Any]]:
    """Local models, then cloud models whose provider key is set (`llm.catalog.available_models`)."""
    return [{"name": m.name, "provider": m.provider, "is_local": m.is_local} for m in available_models()]


def _ids(raw: str | None) -> list[int] | None:
    if not raw:
        return None
    try:
        return [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise ApiError(422, "query.batch_ids: comma-separated batch ids, e.g. 3,4.") from None


@router.get("/models/compare", summary="A source's batches side by side")
def compare(
    user: Viewer,
    session: DbSession,
    source_id: int,
    batch_ids: Annotated[str | None, Query(description="Comma-separated batch ids; default every completed batch of the source.")] = None,
    pairs: Annotated[int, Query(ge=0, le=500, description="How many aligned fragment pairs of the first two batches to return.")] = 20,
    threshold: Annotated[float, Query(ge=0, le=1, description="Cosine similarity from which two fragments are the same finding.")] = DEFAULT_MATCH_THRESHOLD,
) -> dict[str, Any]:
    """Per-batch figures (`services.comparison.batch_stats`: fragments, tokens, cost in USD, model seconds,
    per-fragment cost and time, quote and located shares) and, with two batches or more, the first two's
    fragments aligned by embedding cosine (`align_batches`): counts of matched / only-A / only-B and the
    first `pairs` rows. 404: unknown source."""
    if session.get(Source, source_id) is None:
        raise ApiError(404, f"No source with id {source_id}.")
    ids = _ids(batch_ids) or [b.id for b in completed_batches(session=session, source_id=source_id)]
    out: dict[str, Any] = {"source_id": source_id, "batches": [to_json(s) for s in batch_stats(session=session, batch_ids=ids)]}
    out["alignment"] = None
    if len(ids) >= 2:
        aligned = align_batches(session=session, batch_a=ids[0], batch_b=ids[1], threshold=threshold)
        out["alignment"] = {
            "batch_a": ids[0],
            "batch_b": ids[1],
            "threshold": threshold,
            "matched": sum(1 for p in aligned if p.left and p.right),
            "only_a": sum(1 for p in aligned if p.left and not p.right),
            "only_b": sum(1 for p in aligned if p.right and not p.left),
            "pairs": [to_json(p) for p in aligned[:pairs]],
        }
    return out
