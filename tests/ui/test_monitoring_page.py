"""The live inference page on real data."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from streamlit.testing.v1 import AppTest

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "monitoring.py")


@pytest.fixture()
def at(clean_db):
    from mmos_core.core.db import session_scope
    from mmos_core.services.auth import create_user

    with session_scope() as session:
        user = create_user(session=session, username="mona", role="manager", password="correct horse battery")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["current_user"] = user
    return at


def test_empty_page_says_so(at):
    at.run()
    assert not at.exception
    assert any("No inferences in the last hour" in i.value for i in at.info)


def test_page_shows_rate_hallucinations_and_latency(at):
    from mmos_core.core.db import session_scope

    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO asi_inferences (kind, input_text, flux_position, confidence, hallucination_detected, lake_worthy, processing_time_ms) "
                "VALUES ('search_query', 'a', 1, 0.9, false, true, 10), ('fragment_grounding', 'b', 2, 0.3, true, false, 30), "
                "('fragment_grounding', 'c', 3, 0.7, false, true, 20), ('fragment_grounding', 'd', 4, 0.2, true, false, 40)"
            )
        )
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Inferences, last hour"] == "4"
    assert metrics["Hallucination rate, 24 h"] == "50.0%"
    assert len(at.get("plotly_chart")) >= 4
