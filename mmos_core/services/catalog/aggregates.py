"""The catalog design `ai_model_performance_aggregates` (daily, weekly, monthly, all_time) from ai_logs and
ai_user_feedback, and the derived columns of mappings, models and user preferences.

`refresh_aggregates` recomputes everything in one transaction (delete + insert: a removed feedback row
leaves no stale figure), which at workbench scale takes well under a second (bench figures in
docs/model-catalog.md). Workers run it on their maintenance loop; `mmos catalog refresh` runs it now.

Periods (UTC dates): daily = the day; weekly = ISO week, Monday to Sunday; monthly = calendar month;
all_time = 1970-01-01 to the refresh day. Per row: requests, tokens, cost, mean latency, success rate
(share of calls with status ok) and error rate (1 − success), feedback counts, mean stars,
like_ratio = likes / (likes + dislikes), satisfaction_score = posterior mean and recommendation_score
= its 5 % lower bound (rule in `posterior`), posterior_high = the 95 % upper bound.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from mmos_core.analysis.posterior import FeedbackTally, posterior, user_preference_score
from mmos_core.core.domain import AiLogStatus
from mmos_core.models import UserFeedback
from mmos_core.models.catalog import (
    AiLog,
    AiModel,
    AiModelPerformanceAggregate,
    AiModelTaskMapping,
    AiTaskCategory,
    AiUserPreference,
)
from mmos_core.services.catalog.recommend import feedback_tally, feedback_tally_columns

ALL_TIME_START = dt.date(1970, 1, 1)
#: pg_advisory_xact_lock key serialising refreshes ("ai_aggr" in ASCII).
REFRESH_LOCK_KEY = 0x61695F61676772


def period_bounds(period_type: str, day: dt.date, *, today: dt.date) -> tuple[dt.date, dt.date]:
    """(start, end) of the period of `period_type` containing `day`; both inclusive.

    Raises:
        ValueError: unknown period type.
    """
    if period_type == "daily":
        return day, day
    if period_type == "weekly":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=6)
    if period_type == "monthly":
        start = day.replace(day=1)
        nxt = (start + dt.timedelta(days=32)).replace(day=1)
        return start, nxt - dt.timedelta(days=1)
    if period_type == "all_time":
        return ALL_TIME_START, max(today, day)
    raise ValueError(f"unknown period type {period_type!r}")


@dataclass
class _Cell:
    requests: int = 0
    ok: int = 0
    tokens: int = 0
    cost: Decimal = Decimal(0)
    latency_sum: int = 0
    latency_n: int = 0
    fb: FeedbackTally = field(default_factory=FeedbackTally)
    feedback_rows: int = 0


@dataclass
class AggregateReport:
    """What a refresh wrote."""

    rows: int = 0
    mappings_added: int = 0
    preferences: int = 0
    unknown_models: set[str] = field(default_factory=set)
    unknown_categories: set[str] = field(default_factory=set)

    def summary(self) -> str:
        """One line for the CLI."""
        line = f"{self.rows} aggregate rows, {self.mappings_added} mappings added, {self.preferences} user preference rows"
        if self.unknown_models:
            line += f"; not in the catalog (skipped): {', '.join(sorted(self.unknown_models)[:10])}"
        if self.unknown_categories:
            line += f"; unknown categories (skipped): {', '.join(sorted(self.unknown_categories))}"
        return line


def _utc_day(col: Any) -> Any:
    return func.date(func.timezone("UTC", col))


def _daily_cells(session: Session) -> dict[tuple[str, str, dt.date], _Cell]:
    cells: dict[tuple[str, str, dt.date], _Cell] = defaultdict(_Cell)
    day = _utc_day(AiLog.created_at)
    logs = session.execute(
        select(
            AiLog.model_name,
            AiLog.category_key,
            day,
            func.count(),
            func.count().filter(AiLog.status == AiLogStatus.ok.value),
            func.coalesce(func.sum(AiLog.input_tokens + AiLog.output_tokens), 0),
            func.coalesce(func.sum(AiLog.cost_usd), 0),
            func.coalesce(func.sum(AiLog.latency_ms), 0),
            func.count(AiLog.latency_ms),
        )
        .where(AiLog.category_key.is_not(None))
        .group_by(AiLog.model_name, AiLog.category_key, day)
    )
    for name, cat, d, n, ok, tokens, cost, lat_sum, lat_n in logs:
        c = cells[(name, cat, d)]
        c.requests, c.ok, c.tokens, c.cost = int(n), int(ok), int(tokens), Decimal(cost)
        c.latency_sum, c.latency_n = int(lat_sum), int(lat_n)

    fday = _utc_day(UserFeedback.created_at)
    fb = session.execute(
        select(
            UserFeedback.model_name,
            UserFeedback.category_key,
            fday,
            func.count(),
            *feedback_tally_columns(),
        ).group_by(UserFeedback.model_name, UserFeedback.category_key, fday)
    )
    for name, cat, d, n, *values in fb:
        c = cells[(name, cat, d)]
        c.feedback_rows = int(n)
        c.fb = feedback_tally(values)
    return cells


def _ratio(num: float, den: float) -> Decimal | None:
    return Decimal(str(round(num / den, 4))) if den else None


def refresh_aggregates(*, session: Session, today: dt.date | None = None) -> AggregateReport:
    """Recompute all aggregates and the derived catalog columns. Does not commit.

    Also: adds a mapping (base suitability 0.5) for each (model, category) that has calls or feedback
    but no mapping; writes the mappings' all-time totals and posterior mean (`suitability_score`); the
    models' mean latency, reliability (share of ok calls) and mean stars; and per user, model and
    category the preference counters and `preference_score` (pins are kept).
    """
    today = today or dt.datetime.now(dt.UTC).date()
    # Several workers run this on their maintenance loop: one at a time (the lock ends with the transaction),
    # or two delete-then-insert passes would collide on the period's unique key.
    session.execute(select(func.pg_advisory_xact_lock(REFRESH_LOCK_KEY)))
    report = AggregateReport()
    models = dict(session.execute(select(AiModel.model_id, AiModel.id)).all())
    categories = set(session.scalars(select(AiTaskCategory.category_key)))
    cells = _daily_cells(session)

    periods: dict[tuple[int, str, str, dt.date, dt.date], _Cell] = defaultdict(_Cell)
    for (name, cat, day), c in cells.items():
        if name not in models:
            report.unknown_models.add(name)
            continue
        if cat not in categories:
            report.unknown_categories.add(cat)
            continue
        for ptype in ("daily", "weekly", "monthly", "all_time"):
            start, end = period_bounds(ptype, day, today=today)
            p = periods[(models[name], cat, ptype, start, end)]
            p.requests += c.requests
            p.ok += c.ok
            p.tokens += c.tokens
            p.cost += c.cost
            p.latency_sum += c.latency_sum
            p.latency_n += c.latency_n
            p.fb = p.fb + c.fb
            p.feedback_rows += c.feedback_rows

    # Mappings for pairs in use, so the base suitability (prior) exists for every aggregated pair.
    pairs = {(mid, cat) for (mid, cat, ptype, _, _) in periods if ptype == "all_time"}
    if pairs:
        added = session.execute(
            insert(AiModelTaskMapping)
            .values([{"model_id": m, "category_key": c, "base_suitability": Decimal("0.5")} for m, c in sorted(pairs)])
            .on_conflict_do_nothing(index_elements=["model_id", "category_key"])
            .returning(AiModelTaskMapping.id)
        ).all()
        report.mappings_added = len(added)
    bases = {
        (m, c): float(b)
        for m, c, b in session.execute(
            select(AiModelTaskMapping.model_id, AiModelTaskMapping.category_key, AiModelTaskMapping.base_suitability)
        )
    }

    rows: list[dict[str, Any]] = []
    overall_mean: dict[tuple[int, str], float] = {}
    for (mid, cat, ptype, start, end), p in periods.items():
        post = posterior(p.fb, bases.get((mid, cat)))
        if ptype == "all_time":
            overall_mean[(mid, cat)] = post.mean
        rows.append(
            dict(
                model_id=mid, category_key=cat, period_type=ptype, period_start=start, period_end=end,
                total_requests=p.requests, total_tokens=p.tokens, total_cost_usd=p.cost,
                average_speed_ms=round(p.latency_sum / p.latency_n) if p.latency_n else None,
                success_rate=_ratio(p.ok, p.requests),
                error_rate=_ratio(p.requests - p.ok, p.requests),
                total_feedback=p.feedback_rows, like_count=p.fb.likes, dislike_count=p.fb.dislikes,
                regenerate_count=p.fb.regenerates, rating_count=p.fb.ratings,
                average_quality_rating=Decimal(str(round(p.fb.mean_stars, 2))) if p.fb.mean_stars is not None else None,
                like_ratio=_ratio(p.fb.likes, p.fb.likes + p.fb.dislikes),
                satisfaction_score=Decimal(str(round(post.mean, 4))),
                recommendation_score=Decimal(str(round(post.low, 4))),
                posterior_high=Decimal(str(round(post.high, 4))),
            )
        )
    session.execute(delete(AiModelPerformanceAggregate))
    for start in range(0, len(rows), 1000):
        session.execute(insert(AiModelPerformanceAggregate).values(rows[start : start + 1000]))
    report.rows = len(rows)

    # Derived columns: mappings from all_time rows, models across categories.
    per_model: dict[int, _Cell] = defaultdict(_Cell)
    for (mid, cat, ptype, _, _), p in periods.items():
        if ptype != "all_time":
            continue
        session.execute(
            update(AiModelTaskMapping)
            .where(AiModelTaskMapping.model_id == mid, AiModelTaskMapping.category_key == cat)
            .values(
                suitability_score=Decimal(str(round(overall_mean[(mid, cat)], 4))),
                total_uses=p.requests, total_likes=p.fb.likes, total_dislikes=p.fb.dislikes,
                total_regenerates=p.fb.regenerates,
                average_quality=Decimal(str(round(p.fb.mean_stars, 2))) if p.fb.mean_stars is not None else None,
                average_speed_ms=round(p.latency_sum / p.latency_n) if p.latency_n else None,
                success_rate=_ratio(p.ok, p.requests),
                updated_at=func.now(),
            )
        )
        m = per_model[mid]
        m.requests += p.requests
        m.ok += p.ok
        m.latency_sum += p.latency_sum
        m.latency_n += p.latency_n
        m.fb = m.fb + p.fb
    for mid, m in per_model.items():
        session.execute(
            update(AiModel)
            .where(AiModel.id == mid)
            .values(
                average_speed_ms=round(m.latency_sum / m.latency_n) if m.latency_n else None,
                reliability_score=_ratio(m.ok, m.requests),
                overall_quality_score=Decimal(str(round(m.fb.mean_stars, 2))) if m.fb.mean_stars is not None else None,
            )
        )
    report.preferences = _refresh_preferences(session, models, categories, overall_mean)
    return report


def _refresh_preferences(
    session: Session, models: dict[str, int], categories: set[str], overall_mean: dict[tuple[int, str], float]
) -> int:
    q = (
        select(
            UserFeedback.user_id,
            UserFeedback.model_name,
            UserFeedback.category_key,
            func.count(),
            *feedback_tally_columns(),
            func.min(UserFeedback.created_at),
            func.max(UserFeedback.created_at),
        )
        .where(UserFeedback.user_id.is_not(None))
        .group_by(UserFeedback.user_id, UserFeedback.model_name, UserFeedback.category_key)
    )
    rows = []
    for user_id, name, cat, n, *values, first, last in session.execute(q):
        if name not in models or cat not in categories:
            continue
        t = feedback_tally(values)
        mid = models[name]
        score = user_preference_score(t, overall_mean.get((mid, cat), 0.5))
        rows.append(
            dict(
                user_id=user_id, model_id=mid, category_key=cat,
                preference_score=Decimal(str(round(score, 4))), total_interactions=int(n),
                likes=t.likes, dislikes=t.dislikes, regenerates=t.regenerates, skips=t.skips,
                average_quality_rating=Decimal(str(round(t.mean_stars, 2))) if t.mean_stars is not None else None,
                total_ratings=t.ratings, first_used_at=first, last_used_at=last,
            )
        )
    for start in range(0, len(rows), 1000):
        stmt = insert(AiUserPreference).values(rows[start : start + 1000])
        keep = ("user_id", "model_id", "category_key", "id", "is_pinned", "created_at")
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["user_id", "model_id", "category_key"],
                set_={**{c: stmt.excluded[c] for c in rows[0] if c not in keep}, "updated_at": func.now()},
            )
        )
    return len(rows)
