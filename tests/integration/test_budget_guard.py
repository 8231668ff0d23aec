"""Budgets that hold: reservations against the daily cap, under real concurrency (docs/quality.md)."""

from __future__ import annotations

import json
import time
from decimal import Decimal

import pytest
from fakes import chat_completion, quote_answer
from process_support import run_batches_at_once
from sqlalchemy import func, select

from mmos_core.core.db import session_scope
from mmos_core.models import BudgetReservation, ExtractionCall, ProcessingBatch, ProcessingQueue
from mmos_core.services.auth import CurrentUser, Role
from mmos_core.services.batches import queue_extraction
from mmos_core.services.budget_guard import BudgetExceeded, release, reserve, settle
from mmos_core.services.dashboard import set_budget
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted
from workers.extraction import run_extraction

pytestmark = pytest.mark.usefixtures("clean_db")

MANAGER = CurrentUser(id=None, username="manager", role=Role.manager, display_name=None)  # type: ignore[arg-type]
PARAGRAPH = (
    "I have steadily endeavoured to keep my mind free so as to give up any hypothesis, however much "
    "beloved, as soon as facts are shown to be opposed to it. {n} "
)


def _cap(daily: str | None, per_fragment: str | None = None) -> None:
    with session_scope() as s:
        set_budget(session=s, user=MANAGER, daily_limit_usd=daily, per_fragment_limit_usd=per_fragment)


def _source(n_chunks: int, tag: str) -> int:
    text = "\n\n".join(PARAGRAPH.format(n=f"{tag}-{i}") * 14 for i in range(n_chunks))
    with session_scope() as s:
        src = create_source(
            session=s, parsed=parse_pasted(text, max_bytes=5_000_000), title=f"Essay {tag}", person="Charles Darwin",
            source_type="book", quality="primary", extraction_priority="HIGH",
        )
        return src.id


def test_no_cap_means_no_reservation_and_free_calls_never_wait():
    with session_scope() as s:
        assert reserve(session=s, amount_usd=Decimal("5"), model_name="gpt-4o-mini") is None
    _cap("0.000001")
    with session_scope() as s:
        assert reserve(session=s, amount_usd=Decimal(0), model_name="local") is None  # local models cost 0


def test_a_call_that_would_cross_the_cap_fails_with_the_figures():
    _cap("0.010")
    with session_scope() as s:
        first = reserve(session=s, amount_usd=Decimal("0.006"), model_name="gpt-4o-mini")
    with pytest.raises(BudgetExceeded) as err, session_scope() as s:
        reserve(session=s, amount_usd=Decimal("0.006"), model_name="gpt-4o-mini")
    message = str(err.value)
    assert "$0.006000 reserved" in message and "cap is $0.010000" in message and "retry" in message
    with session_scope() as s:  # released money is available again
        release(session=s, reservation=first)
    with session_scope() as s:
        again = reserve(session=s, amount_usd=Decimal("0.006"), model_name="gpt-4o-mini")
        settle(session=s, reservation=again, cost_usd=Decimal("0.004"))
        statuses = dict(s.execute(select(BudgetReservation.id, BudgetReservation.status)).all())
    assert statuses == {first.id: "released", again.id: "settled"}


def test_eight_concurrent_jobs_never_spend_past_the_daily_cap(fake_llm, embedder_or_skip):
    """8 batches of a priced model run at once (the worker's own job function, 8 threads) against a cap
    that covers only a few calls: total spend stays ≤ cap, the stopped batches say why and keep their answers."""
    cap = Decimal("0.0030")
    _cap(str(cap))

    def respond(req):
        time.sleep(0.3)  # calls overlap, as they do with 8 workers
        return 200, chat_completion(quote_answer(["I have steadily endeavoured to keep my mind free"]),
                                    prompt_tokens=1000, completion_tokens=500)  # $0.00045 at gpt-4o-mini prices

    fake_llm["respond"] = respond
    batch_ids = []
    for i in range(8):
        sid = _source(3, f"s{i}")
        with session_scope() as s:
            jobs = queue_extraction(session=s, source_id=sid, model_names=["gpt-4o-mini"])
        batch_ids.append(jobs[0].batch_id)

    errors = run_batches_at_once(batch_ids)

    with session_scope() as s:
        spent = Decimal(s.scalar(select(func.coalesce(func.sum(ExtractionCall.cost_usd), 0))))
        calls = s.scalar(select(func.count()).select_from(ExtractionCall))
        held = s.scalar(select(func.count()).select_from(BudgetReservation).where(BudgetReservation.status == "held"))
        completed = s.scalar(select(func.count()).select_from(ProcessingBatch).where(ProcessingBatch.batch_status == "completed"))
        assert s.scalar(select(func.count()).select_from(ProcessingQueue)) == 8
    assert spent <= cap, f"spent {spent} > cap {cap}"
    assert calls == len(fake_llm["requests"])  # every call the provider saw is on record and paid for
    assert spent == Decimal("0.00045") * calls
    assert calls >= 3  # the cap was used, not refused outright
    assert held == 0  # every reservation settled or released
    assert errors and all("BudgetExceeded" in e and "Daily budget reached" in e for e in errors.values())
    assert completed + len(errors) == 8


def test_per_fragment_limit_stops_an_expensive_batch(fake_llm, embedder_or_skip, monkeypatch):
    # one call at a time, so the stop comes right after the second answer (with N in flight, up to N - 1
    # more calls finish first: tests/integration/test_concurrent_extraction.py)
    monkeypatch.setenv("MMOS_LLM_CONCURRENCY", "1")
    from mmos_core.core.config import get_settings

    get_settings.cache_clear()
    _cap(None, per_fragment="0.0001")
    fake_llm["respond"] = lambda req: (200, chat_completion(json.dumps({"fragments": [json.loads(
        quote_answer(["I have steadily endeavoured to keep my mind free"]))["fragments"][0]]}),
        prompt_tokens=1000, completion_tokens=500))
    sid = _source(4, "pf")
    with session_scope() as s:
        batch_id = queue_extraction(session=s, source_id=sid, model_names=["gpt-4o-mini"])[0].batch_id
    with pytest.raises(Exception) as err:
        run_extraction(batch_id)
    assert "per-fragment limit" in str(err.value)
    with session_scope() as s:
        # stopped after the second chunk (judged from 2 chunks on), answers kept for a later retry
        assert s.scalar(select(func.count()).select_from(ExtractionCall).where(ExtractionCall.batch_id == batch_id)) == 2
