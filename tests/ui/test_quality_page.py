"""The Quality & cost page through AppTest, on the real embedded database (no LLM calls)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from ui_support import signed_in, texts

PAGES = Path(__file__).resolve().parents[2] / "pages"
pytestmark = pytest.mark.usefixtures("clean_db")


def _unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=384)
    return (v / np.linalg.norm(v)).tolist()


def two_models_on_one_source() -> None:
    """'honest' quotes the text (all located); 'inventive' is cheaper but half its quotes are not found."""
    from mmos_core.db import session_scope
    from mmos_core.intake import parse_pasted
    from mmos_core.models import ExtractionCall, Fragment, ModelPerformance, ProcessingBatch, SourceChunk, SourceProcessing
    from mmos_core.services.sources import create_source

    text = "I was born at Shrewsbury on February 12th, 1809.\n\nNo pursuit at Cambridge was followed with eagerness."
    with session_scope() as s:
        sid = create_source(session=s, parsed=parse_pasted(text, max_bytes=1_000_000), title="Autobiography",
                            source_type="book", quality="primary", extraction_priority="HIGH").id
        chunk_id = s.scalar(select(SourceChunk.id).where(SourceChunk.source_id == sid))
        for i, (model, cost, located) in enumerate((("honest", "0.40", [True] * 12), ("inventive", "0.10", [True, False] * 6))):
            b = ProcessingBatch(batch_code=f"BATCH_Q_{i}", model_provider="openai", model_name=model, prompt_version="v1",
                                batch_status="completed", estimated_cost_usd=Decimal(cost), completed_at=dt.datetime.now(dt.UTC))
            s.add(b)
            s.flush()
            s.add(SourceProcessing(source_id=sid, batch_id=b.id, processing_status="completed"))
            s.add(ExtractionCall(batch_id=b.id, chunk_id=chunk_id, status="ok", cost_usd=Decimal(cost), duration_ms=6000))
            for j, ok in enumerate(located):
                s.add(Fragment(source_id=sid, batch_id=b.id, chunk_id=chunk_id, category="Biographical",
                               fragment_type="direct_quote", content=f"quote {i}-{j}", relevance=7, confidence=0.9,
                               location_score=100 if ok else None, embedding=_unit(j)))
            s.add(ModelPerformance(model_provider="openai", model_name=model, source_id=sid, batch_id=b.id,
                                   source_type="book", fragments_extracted=12, cost_usd=Decimal(cost),
                                   cost_per_fragment=Decimal(cost) / 12))


def page(role: str) -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(PAGES / "quality.py"), default_timeout=60)
    at.session_state["current_user"] = signed_in(role)
    return at


def test_manager_sees_measured_quality_and_the_sweet_spot():
    two_models_on_one_source()
    at = page("manager").run()
    assert not at.exception
    table = at.dataframe[0].value
    honest = table[table["model"] == "honest"].iloc[0]
    inventive = table[table["model"] == "inventive"].iloc[0]
    assert honest["grounded"] == 1.0 and inventive["grounded"] == 0.5
    assert inventive["hallucination rate"] == 0.5
    assert honest["95% low"] > inventive["95% high"]
    # threshold 7 (books): only the honest model's lower bound clears it, although it costs 4× more
    assert any("Sweet spot: **honest**" in t for t in texts(at.success))
    at.number_input(key="q_threshold").set_value(2.0).run()
    assert any("Sweet spot: **inventive**" in t and "saves 75%" in t for t in texts(at.success))


def test_reviewer_can_look_but_not_start_runs():
    two_models_on_one_source()
    at = page("reviewer").run()
    assert not at.exception
    assert not [b for b in at.button if b.label == "Start"]
