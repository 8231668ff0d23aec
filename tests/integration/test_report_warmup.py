"""The maintenance job computes the Quality & cost page's default reports in the background, so the first
visitor of a fresh UI process (after a deploy or a restart) computes no report (services.report_warmup)."""

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


def _count_computations(monkeypatch) -> list[str]:
    """Every share computed (not read back from memory or Redis) is written to Redis once: count those writes."""
    from mmos_core.services import data_version as dv

    written: list[str] = []
    real = dv._shared_put
    monkeypatch.setattr(dv, "_shared_put", lambda key, value: written.append(key.split(":")[2]) or real(key, value))
    return written


def test_after_the_warm_up_a_fresh_process_renders_the_quality_page_without_computing(monkeypatch):
    from mmos_core.core.db import session_scope
    from mmos_core.services import data_version as dv
    from workers.maintenance import run_maintenance

    two_models_on_one_source()
    dv.clear_memo()  # nothing kept from another test, in memory or Redis
    written = _count_computations(monkeypatch)
    out = run_maintenance()
    assert set(out["warmed_reports"]) == {"model_quality", "replay", "qa", "calibration"}
    assert {"model_quality", "replay", "qa", "calibration"} <= set(written)

    dv.clear_memo(shared=False)  # a new UI process: nothing in memory, Redis as the worker left it
    st.cache_data.clear()
    written.clear()
    at = AppTest.from_file(str(PAGES / "quality.py"), default_timeout=60)
    at.session_state["current_user"] = signed_in("manager")
    at.run()
    assert not at.exception
    assert set(at.dataframe[0].value["model"]) == {"honest", "inventive"}
    assert written == []  # every report the page opens with was read, none computed

    # unchanged data and code: the next minute's maintenance does nothing
    assert run_maintenance()["warmed_reports"] is None

    # a reviewer's verdict moves the data: the next run warms again (only the changed source is computed)
    from mmos_core.models import Fragment

    with session_scope() as s:
        f = s.scalar(select(Fragment).order_by(Fragment.id).limit(1))
        f.verified, f.verified_at = True, dt.datetime.now(dt.UTC)
    assert run_maintenance()["warmed_reports"] is not None


def test_the_page_and_the_warm_up_start_the_replay_with_the_same_models():
    from mmos_core.services.report_warmup import REPLAY_DEFAULT_MODELS, replay_default_models

    names = ["gpt-4o-mini", "claude-haiku", "qwen2.5-coder-0.5b-instruct", "gemini-flash"]
    assert replay_default_models(names) == sorted(names)[:REPLAY_DEFAULT_MODELS]
    assert replay_default_models(set(names)) == replay_default_models(names)  # any order in, one answer out
