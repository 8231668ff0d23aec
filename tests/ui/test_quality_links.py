"""The Quality & cost page keeps its view in the URL: scope, source, category, the open tab and its
choices; a copied link reopens the same view (AppTest on the real embedded database, no LLM)."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from quality_support import two_models_on_one_source
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "quality.py")
pytestmark = pytest.mark.usefixtures("clean_db")


def _page(params: dict | None = None, username: str | None = None) -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["current_user"] = signed_in("manager", username)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    return at.run()


def _params(at: AppTest) -> dict[str, str]:
    return {k: at.query_params[k] for k in at.query_params}


def test_choices_go_into_the_link_and_the_link_reopens_them():
    two_models_on_one_source()
    at = _page()
    assert not at.exception
    assert not {"scope", "category", "tab", "threshold"} & set(_params(at))  # defaults make no parameters
    at.radio(key="q_scope").set_value("One source").run()
    at.selectbox(key="q_category").set_value(at.selectbox(key="q_category").options[1]).run()
    at.number_input(key="q_threshold").set_value(2.0).run()
    at.radio(key="q_metric").set_value("seconds").run()
    params = _params(at)
    assert params["scope"] == "source" and params["source"] == str(at.selectbox(key="q_source").value)
    assert params["category"] == at.selectbox(key="q_category").value
    assert params["threshold"] == "2.0" and params["cheapest"] == "seconds"

    reopened = _page(params, "colleague")  # a new browser session opening the copied link
    assert not reopened.exception
    assert reopened.radio(key="q_scope").value == "One source"
    assert reopened.selectbox(key="q_category").value == params["category"]
    assert reopened.number_input(key="q_threshold").value == 2.0
    assert reopened.radio(key="q_metric").value == "seconds"
    assert _params(reopened) == params


def test_open_tab_is_in_the_link_and_bad_values_are_ignored():
    two_models_on_one_source()
    at = _page({"tab": "calibration", "scope": "nonsense", "threshold": "99", "category": "No such category"})
    assert not at.exception
    assert at.session_state["q_tab"] == "Calibration"
    assert at.radio(key="q_scope").value == "All sources"
    assert at.selectbox(key="q_category").value == "(all)"
    assert at.query_params["tab"] == "calibration"
    assert "scope" not in at.query_params and "category" not in at.query_params
    assert any(t.startswith("Uncalibrated") for t in texts(at.info))
