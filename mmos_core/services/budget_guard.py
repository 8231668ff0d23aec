"""Budgets that hold: reserve each LLM call's worst-case cost against the daily cap before making it.

Protocol (docs/quality.md), per call:

1. `reserve` — in its own short transaction: lock the 'daily' `budgets` row (`SELECT … FOR UPDATE`, so
   concurrent reservers queue one behind the other), add today's recorded spend (`extraction_calls`,
   UTC day) and today's still-held reservations, and insert a `held` reservation only if that sum plus
   this call's worst case stays ≤ the cap; otherwise raise `BudgetExceeded`.
2. the call.
3. `settle` in the same transaction that records the call's cost (`extraction_calls` row) — so at every
   committed instant each call is counted exactly once, as held or as spent — or `release` when the
   call failed without a cost.

Worst case = (prompt tokens × `INPUT_TOKEN_MARGIN`) × input price + `max_tokens` × output price, prompt
tokens counted by `litellm.token_counter` over the exact messages sent. The margin covers a provider
tokenizer counting more than litellm's estimate. A reservation still held after
`settings.budget_reservation_ttl_s` (its worker died mid-call) stops counting.
With no daily cap set, `reserve` returns None and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mmos_core.core.config import get_settings
from mmos_core.core.domain import ReservationStatus
from mmos_core.llm.catalog import ModelSpec, litellm
from mmos_core.llm.cost import PriceSnapshot, cost_usd
from mmos_core.models import Budget, BudgetReservation
from mmos_core.services.budgets import DAILY_BUDGET, spent_on_day

#: Safety factor on litellm's prompt-token count when reserving (providers' tokenizers differ).
INPUT_TOKEN_MARGIN = 1.25


class BudgetExceeded(RuntimeError):
    """A call would take the day's spend past the daily cap. All amounts in USD."""

    def __init__(self, *, cap: Decimal, spent: Decimal, held: Decimal, needed: Decimal, model_name: str):
        self.cap, self.spent, self.held, self.needed = cap, spent, held, needed
        super().__init__(
            f"Daily budget reached: ${spent:.6f} spent and ${held:.6f} reserved by running calls today, "
            f"and the next {model_name} call may cost up to ${needed:.6f}; the cap is ${cap:.6f}. "
            "The batch keeps every answer it already has: retry it when the budget allows (tomorrow, or "
            "after a manager raises the cap on the Dashboard)."
        )


class FragmentCostExceeded(RuntimeError):
    """A batch's cost per fragment so far is above the per-fragment limit (USD)."""


@dataclass(frozen=True)
class Reservation:
    """A held reservation: its id and amount (USD)."""

    id: int
    reserved_usd: Decimal


def worst_case_call_cost(*, spec: ModelSpec, prices: PriceSnapshot, messages: list[dict[str, str]], max_tokens: int) -> Decimal:
    """Largest USD one call can cost (module docstring formula); 0 for free models (no token count)."""
    if not prices.input_cost_per_token and not prices.output_cost_per_token:
        return Decimal(0)
    n = int(litellm().token_counter(model=spec.litellm_model, messages=messages))
    return cost_usd(prices, input_tokens=int(n * INPUT_TOKEN_MARGIN) + 1, output_tokens=max_tokens)


def _utc_day(now: dt.datetime | None = None) -> dt.date:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).date()


def held_today(*, session: Session, day: dt.date, ttl_s: int | None = None) -> Decimal:
    """USD of reservations still held for the day (younger than the TTL)."""
    ttl_s = get_settings().budget_reservation_ttl_s if ttl_s is None else ttl_s
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=ttl_s)
    return Decimal(
        session.scalar(
            select(func.coalesce(func.sum(BudgetReservation.reserved_usd), 0)).where(
                BudgetReservation.day == day,
                BudgetReservation.status == ReservationStatus.held.value,
                BudgetReservation.created_at >= cutoff,
            )
        )
        or 0
    )


def reserve(
    *, session: Session, amount_usd: Decimal, model_name: str, batch_id: int | None = None, chunk_id: int | None = None
) -> Reservation | None:
    """Hold `amount_usd` against today's cap. The caller commits at once (the lock is held until then).

    Returns:
        The reservation, or None when no daily cap is set (or the amount is 0: free calls never wait).
    Raises:
        BudgetExceeded: spent + held + amount would exceed the cap.
    """
    if amount_usd <= 0:
        return None
    budget = session.scalar(select(Budget).where(Budget.name == DAILY_BUDGET).with_for_update())
    if budget is None or budget.daily_limit_usd is None:
        return None
    day = _utc_day()
    spent = spent_on_day(session=session, day=day)
    held = held_today(session=session, day=day)
    cap = Decimal(budget.daily_limit_usd)
    if spent + held + amount_usd > cap:
        raise BudgetExceeded(cap=cap, spent=spent, held=held, needed=amount_usd, model_name=model_name)
    row = BudgetReservation(
        day=day, batch_id=batch_id, chunk_id=chunk_id, model_name=model_name, reserved_usd=amount_usd, status=ReservationStatus.held.value
    )
    session.add(row)
    session.flush()
    return Reservation(row.id, amount_usd)


def reserve_with_wait(*, session_factory, amount_usd: Decimal, model_name: str, batch_id: int | None = None,
                      chunk_id: int | None = None, wait_s: float | None = None, poll_s: float = 1.0) -> Reservation | None:
    """`reserve` in its own committed transaction, retried for up to `wait_s` (default
    `settings.budget_wait_s`) while the cap is reached, so held reservations can settle.

    Args:
        session_factory: a context manager factory yielding a session and committing on exit
            (e.g. `mmos_core.core.db.session_scope`).
    Raises:
        BudgetExceeded: still over the cap after waiting.
    """
    wait_s = get_settings().budget_wait_s if wait_s is None else wait_s
    deadline = time.monotonic() + max(0.0, wait_s)
    while True:
        try:
            with session_factory() as session:
                return reserve(session=session, amount_usd=amount_usd, model_name=model_name,
                               batch_id=batch_id, chunk_id=chunk_id)
        except BudgetExceeded:
            if time.monotonic() >= deadline:
                raise
            time.sleep(poll_s)


def settle(*, session: Session, reservation: Reservation | None, cost_usd: Decimal) -> None:
    """Mark a reservation settled at the call's real cost; call in the transaction that records the call."""
    if reservation is None:
        return
    session.execute(
        update(BudgetReservation)
        .where(BudgetReservation.id == reservation.id)
        .values(status=ReservationStatus.settled.value, settled_usd=cost_usd, settled_at=func.now())
    )


def release(*, session: Session, reservation: Reservation | None) -> None:
    """Give a reservation back (the call failed and cost nothing)."""
    if reservation is None:
        return
    session.execute(
        update(BudgetReservation)
        .where(BudgetReservation.id == reservation.id, BudgetReservation.status == ReservationStatus.held.value)
        .values(status=ReservationStatus.released.value, settled_usd=0, settled_at=func.now())
    )


def check_fragment_cost(*, session: Session, cost_so_far: Decimal, fragments_so_far: int, chunks_done: int,
                        min_chunks: int = 2) -> None:
    """Stop a batch whose cost per fragment so far is above the per-fragment limit.

    Judged after `min_chunks` answered chunks (one chunk says little); a batch with cost and no fragment
    yet counts as cost / 1.

    Raises:
        FragmentCostExceeded: with the figures, when over the limit.
    """
    budget = session.scalar(select(Budget).where(Budget.name == DAILY_BUDGET))
    if budget is None or budget.per_fragment_limit_usd is None or chunks_done < min_chunks or cost_so_far <= 0:
        return
    per = cost_so_far / max(1, fragments_so_far)
    if per > Decimal(budget.per_fragment_limit_usd):
        raise FragmentCostExceeded(
            f"Cost per fragment ${per:.6f} after {chunks_done} chunks ({fragments_so_far} fragments, "
            f"${cost_so_far:.6f}) is above the per-fragment limit ${Decimal(budget.per_fragment_limit_usd):.6f}. "
            "The batch stopped and keeps its answers; choose a cheaper model or raise the limit."
        )
