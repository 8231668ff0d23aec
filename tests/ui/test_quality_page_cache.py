"""The Quality & cost page reuses its reports while the data is unchanged and recomputes them after a
change (`ui.data_version`; bench/README.md, page timings)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import streamlit as st
from quality_support import two_models_on_one_source
from sqlalchemy import select
from streamlit.testing.v1 import AppTest
from ui_support import signed_in

PAGES = Path(__file__).resolve().parents[2] / "pages"
pytestmark = pytest.mark.usefixtures("clean_db")


def test_rerun_with_unchanged_data_reuses_quality_and_a_review_recomputes_it(monkeypatch):
    import mmos_core.services.model_quality as quality
    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment

    calls = []
    real = quality.model_quality

    def counting(**kwargs):
        calls.append(kwargs.get("category"))
        return real(**kwargs)

    monkeypatch.setattr(quality, "model_quality", counting)
    two_models_on_one_source()
    st.cache_data.clear()
    at = AppTest.from_file(str(PAGES / "quality.py"), default_timeout=60)
    at.session_state["current_user"] = signed_in("manager")
    at.run()
    assert not at.exception
    first = at.dataframe[0].value
    computed = len(calls)
    assert computed >= 1
    at.run()
    assert not at.exception and len(calls) == computed  # unchanged data: served from the cache
    assert at.dataframe[0].value.equals(first)

    with session_scope() as s:  # a reviewer verifies a fragment: the figures must follow
        f = s.scalar(select(Fragment).order_by(Fragment.id).limit(1))
        f.verified, f.verified_at = True, dt.datetime.now(dt.UTC)
    at.run()
    assert not at.exception and len(calls) > computed
    after = at.dataframe[0].value
    assert after["judgements"].sum() == first["judgements"].sum() + 1
