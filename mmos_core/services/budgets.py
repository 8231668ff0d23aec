"""Budget rules: the daily budget row, who may change it, and the day's spend it is checked against.

The Dashboard shows these figures and the budget guard (`services.budget_guard`) enforces them per LLM
call; both read them from here, so the figure a manager sees is the one that stops a call
(docs/quality.md, "Budgets that hold"). Money is USD (`Decimal`); days are UTC calendar days.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.models import Budget, ExtractionCall
from mmos_core.services.auth import CurrentUser, Permission

#: Name of the `budgets` row the Dashboard writes and every LLM call is checked against.
DAILY_BUDGET = "daily"


class BudgetPermissionError(PermissionError):
    """The user's role may not change budgets; the message is safe to show."""


def spent_on_day(*, session: Session, day: dt.date) -> Decimal:
    """USD recorded on `extraction_calls` during the UTC day."""
    lo = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    hi = lo + dt.timedelta(days=1)
    return Decimal(
        session.scalar(
            select(func.coalesce(func.sum(ExtractionCall.cost_usd), 0)).where(
                ExtractionCall.created_at >= lo, ExtractionCall.created_at < hi
            )
        )
        or 0
    )


@dataclass(frozen=True)
class BudgetView:
    """The daily budget row: limits in USD (None = no limit), who changed it last and when."""

    daily_limit_usd: Decimal | None
    per_fragment_limit_usd: Decimal | None
    updated_by: int | None
    updated_at: dt.datetime | None


def get_budget(*, session: Session) -> BudgetView:
    """The 'daily' budget; all None when none has been set yet."""
    row = session.scalar(select(Budget).where(Budget.name == DAILY_BUDGET))
    if row is None:
        return BudgetView(None, None, None, None)
    return BudgetView(row.daily_limit_usd, row.per_fragment_limit_usd, row.updated_by, row.updated_at)


def set_budget(
    *,
    session: Session,
    user: CurrentUser,
    daily_limit_usd: Decimal | float | None,
    per_fragment_limit_usd: Decimal | float | None,
) -> BudgetView:
    """Set the 'daily' budget (create it on first use) and record `user` as its author. Does not commit.

    Args:
        daily_limit_usd: cap on the USD spent per UTC day; None removes the cap.
        per_fragment_limit_usd: cap on USD per extracted fragment; None removes it.
    Raises:
        BudgetPermissionError: the user's role lacks `Permission.change_budgets`.
        ValueError: a negative limit.
    """
    if not user.can(Permission.change_budgets):
        raise BudgetPermissionError(f"Your role ({user.role.value}) may not change budgets.")
    values = {}
    for name, value in (("daily", daily_limit_usd), ("per-fragment", per_fragment_limit_usd)):
        dec = None if value is None else Decimal(str(value))
        if dec is not None and dec < 0:
            raise ValueError(f"The {name} limit cannot be negative.")
        values[name] = dec
    row = session.scalar(select(Budget).where(Budget.name == DAILY_BUDGET).with_for_update())
    if row is None:
        row = Budget(name=DAILY_BUDGET)
        session.add(row)
    row.daily_limit_usd = values["daily"]
    row.per_fragment_limit_usd = values["per-fragment"]
    row.updated_by = user.id
    row.updated_at = dt.datetime.now(dt.UTC)
    session.flush()
    return BudgetView(row.daily_limit_usd, row.per_fragment_limit_usd, row.updated_by, row.updated_at)
