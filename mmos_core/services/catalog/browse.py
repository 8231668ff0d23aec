"""Read the catalog for the Models page and the CLI: filtered model lists, filter values, categories."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.models.catalog import AiModel, AiTaskCategory


@dataclass(frozen=True)
class ModelRow:
    """One catalog model as listed: prices in USD per 1M tokens (None when the map has none)."""

    model_id: str
    provider: str
    status: str
    is_active: bool
    cost_bucket: str
    input_per_1m: float | None
    output_per_1m: float | None
    context_window: int | None
    max_tokens: int | None
    capabilities: list[str]
    deprecated_at: dt.date | None
    average_speed_ms: int | None
    reliability: float | None


@dataclass(frozen=True)
class CatalogFacets:
    """The values the page offers as filters, and how many models there are."""

    providers: list[str]
    cost_buckets: list[str]
    statuses: list[str]
    capabilities: list[str]
    total: int


def facets(*, session: Session) -> CatalogFacets:
    """Distinct providers, cost buckets, statuses and capability tags in the catalog."""
    providers = list(session.scalars(select(AiModel.provider).distinct().order_by(AiModel.provider)))
    buckets = list(session.scalars(select(AiModel.cost_bucket).distinct().order_by(AiModel.cost_bucket)))
    statuses = list(session.scalars(select(AiModel.status).distinct().order_by(AiModel.status)))
    cap = select(func.unnest(AiModel.capabilities).label("cap")).subquery()
    caps = list(session.scalars(select(cap.c.cap).distinct().order_by(cap.c.cap)))
    total = session.scalar(select(func.count()).select_from(AiModel)) or 0
    return CatalogFacets(providers, buckets, statuses, caps, total)


def list_models(
    *,
    session: Session,
    providers: list[str] | None = None,
    cost_buckets: list[str] | None = None,
    statuses: list[str] | None = None,
    capabilities: list[str] | None = None,
    search: str | None = None,
    limit: int = 500,
) -> tuple[list[ModelRow], int]:
    """Catalog models matching every given filter (a model must have all `capabilities`), cheapest
    first (unknown prices last). Returns (at most `limit` rows, the number of matches)."""
    q = select(AiModel)
    if providers:
        q = q.where(AiModel.provider.in_(providers))
    if cost_buckets:
        q = q.where(AiModel.cost_bucket.in_(cost_buckets))
    if statuses:
        q = q.where(AiModel.status.in_(statuses))
    if capabilities:
        q = q.where(AiModel.capabilities.contains(capabilities))
    if search and search.strip():
        q = q.where(AiModel.model_id.ilike(f"%{search.strip()}%"))
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    blended = (3 * AiModel.input_cost_per_1m + AiModel.output_cost_per_1m) / 4
    rows = session.scalars(q.order_by(blended.asc().nulls_last(), AiModel.model_id).limit(limit))
    return [
        ModelRow(
            model_id=m.model_id,
            provider=m.provider,
            status=m.status,
            is_active=m.is_active,
            cost_bucket=m.cost_bucket,
            input_per_1m=float(m.input_cost_per_1m) if m.input_cost_per_1m is not None else None,
            output_per_1m=float(m.output_cost_per_1m) if m.output_cost_per_1m is not None else None,
            context_window=m.context_window,
            max_tokens=m.max_tokens,
            capabilities=list(m.capabilities or []),
            deprecated_at=m.deprecated_at,
            average_speed_ms=m.average_speed_ms,
            reliability=float(m.reliability_score) if m.reliability_score is not None else None,
        )
        for m in rows
    ], total


def task_categories(*, session: Session, active_only: bool = True) -> list[AiTaskCategory]:
    """The task categories, workbench ones (fragment_extraction, conversation_turn) first."""
    q = select(AiTaskCategory)
    if active_only:
        q = q.where(AiTaskCategory.is_active.is_(True))
    rows = list(session.scalars(q.order_by(AiTaskCategory.category_key)))
    first = ("fragment_extraction", "conversation_turn")
    return sorted(rows, key=lambda c: (c.category_key not in first, first.index(c.category_key) if c.category_key in first else 0, c.category_key))
