"""Import / export page (docs/export.md) through AppTest on the real database: the filtered export of
several sources in each format with its status box, and the preference pairs."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from export_support import make_world
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

PAGES = Path(__file__).resolve().parents[2] / "pages"

pytestmark = pytest.mark.usefixtures("clean_db")


def _page() -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(str(PAGES / "data_transfer.py"), default_timeout=60)
    at.session_state["current_user"] = signed_in("analyst")
    return at


def test_export_filters_formats_and_preference_pairs():
    ids = make_world()
    at = _page().run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    picker = at.multiselect(key="export_sources")
    picker.set_value([ids["A"], ids["B"]]).run()
    assert "**4** fragments match." in texts(at.markdown)
    at.multiselect(key="export_models").set_value(["honest"]).run()
    assert "**2** fragments match." in texts(at.markdown)
    for fmt in ("jsonl", "parquet", "csv"):
        at.radio(key="export_format").set_value(fmt).run()
        assert not at.exception, at.exception
        done = [s for s in at.status if s.label.startswith(f"2 fragments ready as {fmt.upper()}")]
        assert done and done[0].state == "complete", [s.label for s in at.status]

    at.multiselect(key="pref_sources").set_value([ids["A"], ids["B"]]).run()
    at.button(key="pref_build").click().run()
    assert not at.exception, at.exception
    assert "2 pairs: 1 from verdicts, 1 from feedback." in texts(at.markdown)
