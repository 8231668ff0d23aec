"""Daily budgets and the reservations held against them before each LLM call (docs/quality.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from mmos_core.core.domain import ReservationStatus
from mmos_core.models.base import Base, now


class Budget(Base):
    """Spending limits set by managers: daily cap (USD) and per-fragment limit (USD)."""

    __tablename__ = "budgets"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    daily_limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    per_fragment_limit_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now(), onupdate=func.now())


class BudgetReservation(Base):
    """Worst-case cost of one LLM call, held against the day's budget before the call is made.

    `held` counts against the daily cap until the call's cost is recorded (`settled`, in the same
    transaction as its `extraction_calls` row) or the call failed (`released`). A held row older than
    `settings.budget_reservation_ttl_s` (its worker died) stops counting.
    """

    __tablename__ = "budget_reservations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("processing_batches.id", ondelete="SET NULL"))
    chunk_id: Mapped[int | None] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(200))
    reserved_usd: Mapped[Decimal] = mapped_column(Numeric(12, 6))
    settled_usd: Mapped[Decimal | None] = mapped_column(Numeric(12, 6))
    status: Mapped[str] = mapped_column(String(10), default=ReservationStatus.held.value)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=now())
    settled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("status IN ('held','settled','released')", name="ck_reservations_status"),
        CheckConstraint("reserved_usd >= 0", name="ck_reservations_amount"),
        Index("ix_budget_reservations_day_status", "day", "status"),
    )
