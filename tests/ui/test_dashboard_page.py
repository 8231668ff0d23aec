"""Dashboard and Import / export pages through AppTest, on the real embedded database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

PAGES = Path(__file__).resolve().parents[2] / "pages"
DATA = Path(__file__).resolve().parents[1] / "data"
TIMEOUT = 60


def make_source() -> int:
    from mmos_core.core.db import session_scope
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    text = "I was born at Shrewsbury on February 12th, 1809.\n\nNo pursuit at Cambridge was followed with eagerness."
    with session_scope() as session:
        return create_source(
            session=session, parsed=parse_pasted(text, max_bytes=1_000_000), title="Autobiography",
            source_type="book", quality="primary", extraction_priority="HIGH",
        ).id


def page(name: str, role: str) -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(PAGES / name), default_timeout=TIMEOUT)
    at.session_state["current_user"] = signed_in(role)
    return at


def spend_today(source_id: int) -> None:
    """Two models' completed batches on the source, with calls made now."""
    from mmos_core.core.db import session_scope
    from mmos_core.models import ExtractionCall, ModelPerformance, ProcessingBatch, SourceChunk, SourceProcessing

    with session_scope() as s:
        chunk_id = s.scalar(select(SourceChunk.id).where(SourceChunk.source_id == source_id))
        for i, (model, cost, quality) in enumerate((("big", "0.40", 9.0), ("small", "0.10", 7.5)), start=1):
            b = ProcessingBatch(batch_code=f"BATCH_UI_{i:03d}", model_provider="openai", model_name=model,
                                prompt_version="v1", batch_status="completed", estimated_cost_usd=Decimal(cost),
                                completed_at=dt.datetime.now(dt.UTC))
            s.add(b)
            s.flush()
            s.add(SourceProcessing(source_id=source_id, batch_id=b.id, processing_status="completed"))
            s.add(ExtractionCall(batch_id=b.id, chunk_id=chunk_id, status="ok", cost_usd=Decimal(cost)))
            s.add(ModelPerformance(model_provider="openai", model_name=model, source_id=source_id, batch_id=b.id,
                                   source_type="book", fragments_extracted=4, extraction_quality_avg=quality,
                                   located_share=1.0, cost_usd=Decimal(cost), cost_per_fragment=Decimal(cost) / 4))


def test_manager_sees_charts_and_saves_a_budget(clean_db):
    spend_today(make_source())
    at = page("dashboard.py", "manager").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Dashboard"
    assert not at.error, texts(at.error)
    assert [m.value for m in at.metric][:2] == ["$0.5000", "none"]
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # per day, per model, per source type, quality against cost
    scatter = charts[3].proto.spec
    assert "cheapest above threshold" in scatter and "Quality against cost per fragment" in scatter
    assert any(t == "Cheapest model at or above 7: **small** ($0.025000 per fragment)" for t in texts(at.markdown))
    savings = at.dataframe[1].value  # [0] is the per-model quality table
    assert list(savings["model"]) == ["small"] and list(savings["saved (USD)"]) == [pytest.approx(0.30)]
    assert list(savings["saved (%)"]) == [pytest.approx(75.0)]

    at.slider(key="quality_threshold").set_value(8.0).run()
    assert any("**big** ($0.100000 per fragment)" in t for t in texts(at.markdown))

    at.number_input(key="budget_daily").set_value(0.25)
    at.number_input(key="budget_per_fragment").set_value(0.05)
    at.form_submit_button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert texts(at.success) == ["Budget saved."]
    assert any("Over the daily limit on:" in t for t in texts(at.warning))

    from mmos_core.core.db import session_scope
    from mmos_core.models import Budget, User

    with session_scope() as s:
        budget = s.scalar(select(Budget).where(Budget.name == "daily"))
        assert budget.daily_limit_usd == Decimal("0.25") and budget.per_fragment_limit_usd == Decimal("0.05")
        assert s.get(User, budget.updated_by).username == "manager-user"
    fresh = page("dashboard.py", "admin").run()
    assert [m.value for m in fresh.metric][1] == "$0.2500"


def test_dashboard_without_data_says_so(clean_db):
    at = page("dashboard.py", "admin").run()
    assert not at.exception, at.exception
    info = texts(at.info)
    assert "No LLM calls in this date range." in info
    assert "No completed batches evaluated in this date range." in info
    assert not at.get("plotly_chart")


def test_reviewer_cannot_open_the_dashboard(clean_db):
    at = page("dashboard.py", "reviewer").run()
    assert not at.exception, at.exception
    assert texts(at.error) == ["Your role (reviewer) does not allow this page."]
    assert not at.get("plotly_chart") and not at.metric


def test_analyst_opens_import_export(clean_db, embedder_or_skip):
    from mmos_core.core.db import session_scope
    from mmos_core.services.transfer import import_legacy_fragments, parse_legacy_file

    source_id = make_source()
    rows = parse_legacy_file("l.csv", (DATA / "legacy_fragments.csv").read_bytes(), max_bytes=1_000_000)
    with session_scope() as s:
        import_legacy_fragments(session=s, source_id=source_id, rows=rows)
    at = page("data_transfer.py", "analyst").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Import / export"
    assert not at.error, texts(at.error)
    assert "**3** fragments match." in texts(at.markdown)
    assert "Comparison table of the source's **1** completed batches." in texts(at.markdown)


def test_reviewer_cannot_open_import_export(clean_db):
    at = page("data_transfer.py", "reviewer").run()
    assert texts(at.error) == ["Your role (reviewer) does not allow this page."]
