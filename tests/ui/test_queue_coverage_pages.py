"""Queue and Coverage pages through Streamlit's AppTest against the real embedded Postgres + Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 60
SMALL = "qwen2.5-coder-0.5b-instruct"


def page(role: str, path: str) -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["current_user"] = signed_in(role)
    at.run()
    at.switch_page(path)
    return at.run()


def _failed_job() -> tuple[int, int, str]:
    """A queued batch whose only attempt failed (as the worker's failure callback leaves it)."""
    from mmos_core.core.db import session_scope
    from mmos_core.services.batches import queue_extraction
    from mmos_core.services.extraction_run import mark_attempt_failed
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    with session_scope() as session:
        src = create_source(
            session=session, parsed=parse_pasted("My father was a man of great kindness.", max_bytes=10_000),
            title="Letters", person="Charles Darwin", source_type="letter", quality="primary", extraction_priority="HIGH",
        )
        [job] = queue_extraction(session=session, source_id=src.id, model_names=[SMALL])
    with session_scope() as session:
        mark_attempt_failed(session=session, batch_id=job.batch_id, error="InternalServerError: provider down", retry_at=None)
    return job.queue_id, job.batch_id, job.rq_job_id


@pytest.mark.usefixtures("clean_db")
def test_queue_page_lists_a_failed_job_and_retries_it(fake_llm):
    queue_id, batch_id, rq_job_id = _failed_job()
    at = page("analyst", "pages/queue.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "Queue"
    tabs = [t.label for t in at.tabs]
    assert "Failed (1)" in tabs and "Waiting (0)" in tabs
    [failed_table] = [d.value for d in at.dataframe if "last error" in d.value and len(d.value)]
    assert list(failed_table["id"]) == [queue_id]
    assert failed_table["last error"][0] == "InternalServerError: provider down"
    assert failed_table["attempts"][0] == "0/3"
    assert any("No worker is running" in t for t in texts(at.warning))

    assert at.button(key="queue_cancel").disabled  # a failed job cannot be cancelled
    at.button(key="queue_retry").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    [success] = texts(at.success)
    assert success.startswith(f"Job #{queue_id} is waiting again")
    tabs = [t.label for t in at.tabs]
    assert "Failed (0)" in tabs and "Waiting (1)" in tabs
    [waiting] = [d.value for d in at.dataframe if "last error" in d.value and len(d.value)]
    assert waiting["rq status"][0] == "queued"
    assert waiting["last error"][0].startswith("Retried by analyst-user after: InternalServerError")

    from mmos_core.core.db import session_scope
    from mmos_core.jobs.enqueue import get_queue
    from mmos_core.models import ProcessingBatch

    with session_scope() as session:
        assert session.get(ProcessingBatch, batch_id).batch_status == "pending"
    assert rq_job_id in get_queue("default").job_ids  # HIGH (6) × primary (2) = 12


@pytest.mark.usefixtures("clean_db")
def test_queue_page_cancels_a_waiting_job():
    from mmos_core.core.db import session_scope
    from mmos_core.models import ProcessingBatch

    queue_id, batch_id, _ = _failed_job()
    at = page("manager", "pages/queue.py")
    at.button(key="queue_retry").click()
    at.run()
    at.number_input(key=f"queue_priority_{queue_id}").set_value(9)
    at.button(key="queue_set_priority").click()
    at.run()
    assert texts(at.success) == [f"Job #{queue_id}: priority 9, effective 18, queue 'high' (moved)"]
    [waiting] = [d.value for d in at.dataframe if "last error" in d.value and len(d.value)]
    assert (waiting["priority"][0], waiting["effective"][0], waiting["rq queue"][0]) == (9, 18.0, "high")
    at.button(key="queue_cancel").click()
    at.run()
    assert not at.exception, at.exception
    assert texts(at.success) == [f"Job #{queue_id} cancelled (removed from RQ)."]
    assert "Cancelled (1)" in [t.label for t in at.tabs]
    with session_scope() as session:
        assert session.get(ProcessingBatch, batch_id).error_message == "cancelled by manager-user"


@pytest.mark.usefixtures("clean_db")
def test_reviewer_cannot_open_the_queue_page():
    st.cache_resource.clear()
    at = AppTest.from_file(str(Path(APP).parent / "pages" / "queue.py"), default_timeout=TIMEOUT)
    at.session_state["current_user"] = signed_in("reviewer")
    at.run()
    assert not at.exception, at.exception
    assert texts(at.error) == ["Your role (reviewer) does not allow this page."]
    assert not at.title and not at.button


@pytest.mark.usefixtures("clean_db")
def test_coverage_page_shows_critical_gaps_for_empty_categories():
    _failed_job()  # a source for Charles Darwin, without fragments
    at = page("reviewer", "pages/coverage.py")
    assert not at.exception, at.exception
    assert at.title[0].value == "Coverage"
    assert at.selectbox(key="coverage_person").options == ["All sources", "Charles Darwin"]
    at.selectbox(key="coverage_person").set_value("Charles Darwin")
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert len(table) == 8
    assert set(table["status"]) == {"CRITICAL GAP"} and set(table["fragments"]) == {0}
    assert any("8 of 8 categories are a critical gap" in t for t in texts(at.caption))
    assert any("No contradicting fragments" in t for t in texts(at.caption))
