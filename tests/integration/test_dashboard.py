"""Dashboard aggregates on batches, calls and performance rows written to the real database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from mmos_core.core.db import session_scope
from mmos_core.models import Budget, ExtractionCall, ModelPerformance, ProcessingBatch, SourceChunk, SourceProcessing
from mmos_core.services.auth import create_user
from mmos_core.services.dashboard import (
    BudgetPermissionError,
    cheapest_above,
    cost_and_quality_by_model,
    days_against_budget,
    get_budget,
    models_over_fragment_limit,
    savings_vs_baseline,
    set_budget,
    spend_by,
    spend_on_day,
    spend_rows,
)
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

D1 = dt.date(2025, 3, 1)
D2 = dt.date(2025, 3, 2)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def make_source(session, text: str, source_type: str) -> tuple[int, int]:
    src = create_source(
        session=session, parsed=parse_pasted(text, max_bytes=100_000), title=text[:20],
        source_type=source_type, quality="primary", extraction_priority="HIGH",
    )
    session.flush()
    return src.id, session.scalar(select(SourceChunk.id).where(SourceChunk.source_id == src.id))


_n = {"batch": 0}


def make_batch(session, source_id: int, chunk_id: int, model: str, calls: list[tuple[dt.datetime, str]],
               *, fragments: int = 4, quality: float | None = 8.0, located: float | None = 1.0,
               chunk_scope=None) -> int:
    """A completed batch with these (time, cost) calls and its performance row (cost = Σ calls)."""
    _n["batch"] += 1
    cost = sum((Decimal(c) for _, c in calls), Decimal(0))
    when = max(t for t, _ in calls)
    b = ProcessingBatch(
        batch_code=f"BATCH_TEST_{_n['batch']:03d}", model_provider="openai", model_name=model, prompt_version="v1",
        batch_status="completed", estimated_cost_usd=cost, completed_at=when, chunk_scope=chunk_scope,
    )
    session.add(b)
    session.flush()
    session.add(SourceProcessing(source_id=source_id, batch_id=b.id, processing_status="completed"))
    for t, c in calls:
        session.add(ExtractionCall(batch_id=b.id, chunk_id=chunk_id, status="ok", cost_usd=Decimal(c),
                                   input_tokens=100, output_tokens=10, created_at=t))
    session.add(ModelPerformance(
        model_provider="openai", model_name=model, source_id=source_id, batch_id=b.id, source_type="book",
        fragments_extracted=fragments, extraction_quality_avg=quality, located_share=located, cost_usd=cost,
        cost_per_fragment=cost / fragments if fragments else None, evaluation_date=when,
    ))
    session.flush()
    return b.id


@pytest.fixture()
def spend_data():
    with session_scope() as s:
        book, book_chunk = make_source(s, "A book about beetles and barnacles, long ago.", "book")
        letter, letter_chunk = make_source(s, "Dear Hooker, the barnacles are done at last.", "letter")
        # big: a baseline; small: cheaper with lower self-reported quality; mid: in between
        make_batch(s, book, book_chunk, "big", [(at(D1, 23), "0.30"), (at(D2, 0), "0.10")], quality=9.0, located=0.9)
        make_batch(s, book, book_chunk, "small", [(at(D1), "0.04")], quality=6.0, located=1.0)
        make_batch(s, book, book_chunk, "mid", [(at(D2), "0.24")], quality=7.5, located=0.5)
        make_batch(s, letter, letter_chunk, "big", [(at(D2), "0.20")], quality=8.0, located=0.7)
        make_batch(s, letter, letter_chunk, "small", [(at(D2), "0.05")], quality=7.0, located=None)
        # a regenerate of the letter by small: counts as spend, not in savings
        make_batch(s, letter, letter_chunk, "small", [(at(D2), "0.50")], chunk_scope=[letter_chunk])
    return {"book": book, "letter": letter}


def test_spend_per_day_model_and_source_type(spend_data):
    with session_scope() as s:
        rows = spend_rows(session=s, start=D1, end=D2)
        assert spend_by(rows, "day") == {D1: Decimal("0.34"), D2: Decimal("1.09")}
        assert spend_by(rows, "model_name") == {"big": Decimal("0.60"), "mid": Decimal("0.24"), "small": Decimal("0.59")}
        assert spend_by(rows, "source_type") == {"book": Decimal("0.68"), "letter": Decimal("0.75")}
        assert sum(r.calls for r in rows) == 7
        # the range is inclusive and by UTC day: the batch that ran over midnight is split
        only_d1 = spend_rows(session=s, start=D1, end=D1)
        assert spend_by(only_d1, "model_name") == {"big": Decimal("0.30"), "small": Decimal("0.04")}
        assert spend_on_day(session=s, day=D2) == Decimal("1.09")
        assert spend_rows(session=s, start=D2 + dt.timedelta(days=1), end=D2 + dt.timedelta(days=5)) == []
        with pytest.raises(ValueError, match="before its start"):
            spend_rows(session=s, start=D2, end=D1)


def test_quality_per_model_and_cheapest_above_threshold(spend_data):
    with session_scope() as s:
        models = {m.model_name: m for m in cost_and_quality_by_model(session=s, start=D1, end=D2)}
    assert set(models) == {"big", "mid", "small"}
    big, mid, small = models["big"], models["mid"], models["small"]
    assert big.batches == 2 and big.sources == 2 and big.fragments == 8
    assert big.cost_per_fragment_usd == Decimal("0.60") / 8
    assert big.self_reported_quality == pytest.approx(8.5)
    assert big.located_share == pytest.approx(0.8)
    assert small.self_reported_quality == pytest.approx((6 + 7 + 8) / 3)  # the regenerate's row counts too
    # per fragment: small ≈ 0.049 < mid 0.06 < big 0.075; self-reported small 7.0, mid 7.5, big 8.5
    assert cheapest_above(list(models.values()), 7.0).model_name == "small"
    assert cheapest_above(list(models.values()), 7.2).model_name == "mid"
    assert cheapest_above(list(models.values()), 8.5).model_name == "big"
    assert cheapest_above(list(models.values()), 9.5) is None
    # measured signal: mid finds only half its quotes
    assert cheapest_above(list(models.values()), 0.4, metric="located").model_name == "small"
    assert cheapest_above([big, mid], 0.4, metric="located").model_name == "mid"
    assert cheapest_above([big, mid], 0.6, metric="located").model_name == "big"  # mid finds only half its quotes


def test_savings_against_a_baseline(spend_data):
    with session_scope() as s:
        savings = {x.model_name: x for x in savings_vs_baseline(session=s, baseline_model="big", start=D1, end=D2)}
    small, mid = savings["small"], savings["mid"]
    # small shares both sources with big: (0.40 − 0.04) + (0.20 − 0.05); the regenerate is left out
    assert small.sources == 2
    assert small.baseline_cost_usd == Decimal("0.60") and small.model_cost_usd == Decimal("0.09")
    assert small.savings_usd == Decimal("0.51")
    assert small.savings_pct == pytest.approx(85.0)
    # mid only shares the book: 0.40 − 0.24 = 0.16 → 40 %
    assert mid.sources == 1 and mid.savings_usd == Decimal("0.16") and mid.savings_pct == pytest.approx(40.0)
    assert "big" not in savings
    with session_scope() as s:
        against_small = {x.model_name: x for x in savings_vs_baseline(session=s, baseline_model="small", start=D1, end=D2)}
    assert against_small["big"].savings_usd == Decimal("-0.51")  # dearer than the baseline: negative savings


def test_budget_is_saved_by_a_manager_and_refused_to_a_reviewer(spend_data):
    with session_scope() as s:
        manager = create_user(session=s, username="mona", role="manager", password="long enough pw")
        reviewer = create_user(session=s, username="rita", role="reviewer", password="long enough pw")
        assert get_budget(session=s).daily_limit_usd is None
    with session_scope() as s:
        set_budget(session=s, user=manager, daily_limit_usd=0.5, per_fragment_limit_usd=0.05)
    with session_scope() as s:
        with pytest.raises(BudgetPermissionError, match="reviewer"):
            set_budget(session=s, user=reviewer, daily_limit_usd=100, per_fragment_limit_usd=None)
        with pytest.raises(ValueError, match="negative"):
            set_budget(session=s, user=manager, daily_limit_usd=-1, per_fragment_limit_usd=None)
    with session_scope() as s:
        budget = get_budget(session=s)
        assert budget.daily_limit_usd == Decimal("0.5") and budget.per_fragment_limit_usd == Decimal("0.05")
        assert budget.updated_by == manager.id
        assert len(s.scalars(select(Budget)).all()) == 1
        days = days_against_budget(spend_rows(session=s, start=D1, end=D2), budget)
        assert [(d.day, d.over) for d in days] == [(D1, False), (D2, True)]
        models = cost_and_quality_by_model(session=s, start=D1, end=D2)
        # big 0.075/fragment, mid 0.06, small 0.59/12 ≈ 0.049
        assert models_over_fragment_limit(models, budget) == ["big", "mid"]
