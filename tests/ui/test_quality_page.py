"""The Quality & cost page through AppTest, on the real embedded database (no LLM calls)."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from quality_support import two_models_on_one_source
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

PAGES = Path(__file__).resolve().parents[2] / "pages"
pytestmark = pytest.mark.usefixtures("clean_db")


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
    assert honest["quality (0-10)"] > inventive["quality (0-10)"]
    assert inventive["agreement F1"] == 1.0  # compared with the baseline (the dearer model), it agrees fully
    # threshold 7 (books): only the honest model's lower bound clears it, although it costs 4× more
    assert any("Sweet spot: **honest**" in t for t in texts(at.success))
    at.number_input(key="q_threshold").set_value(2.0).run()
    assert any("Sweet spot: **inventive**" in t and "saves 75%" in t for t in texts(at.success))


def test_reviewer_can_look_but_not_start_runs():
    two_models_on_one_source()
    at = page("reviewer").run()
    assert not at.exception
    assert not [b for b in at.button if b.label == "Start"]


def test_calibration_tab_says_uncalibrated_until_reviewers_have_judged_enough():
    two_models_on_one_source()
    at = page("manager").run()
    assert not at.exception
    assert any(t.startswith("Uncalibrated: 0 reviewed fragment(s), 30 needed") for t in texts(at.info))
    table = [d.value for d in at.dataframe if "check" in d.value.columns][0]
    assert set(table["check"]) >= {"verbatim", "attribution", "support", "support_baseline", "category", "composite"}
    assert all(v.startswith("uncalibrated") for v in table["AUROC (95%)"])
