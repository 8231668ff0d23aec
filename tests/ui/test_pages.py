"""The workbench pages driven through Streamlit's AppTest against the real embedded Postgres + Redis.

Only the LLM provider is faked (at its HTTP edge, `fake_llm`); the database, the queue and the
page code are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from fakes import chat_completion, quote_answer
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

APP = str(Path(__file__).resolve().parents[2] / "app.py")
TIMEOUT = 60

SMALL = "qwen2.5-coder-0.5b-instruct"
LARGE = "qwen2.5-coder-1.5b-instruct"

TEXT = (
    "I was born at Shrewsbury on February 12th, 1809, and my earliest recollection goes back "
    "only to when I was a few months over four years old.\n\n"
    "No pursuit at Cambridge was followed with nearly so much eagerness or gave me so much "
    "pleasure as collecting beetles.\n\n"
    "The voyage of the Beagle has been by far the most important event in my life, and has "
    "determined my whole career.\n\n"
    "My father said to me that I cared for nothing but shooting, dogs, and rat-catching.\n"
)
SHARED_QUOTE = "No pursuit at Cambridge was followed with nearly so much eagerness or gave me so much pleasure as collecting beetles."
ONLY_SMALL_QUOTE = "I was born at Shrewsbury on February 12th, 1809"
ONLY_LARGE_QUOTE = "The voyage of the Beagle has been by far the most important event in my life"


@pytest.fixture()
def app(clean_db) -> AppTest:
    """A fresh AppTest of app.py (the Sources page is the navigation default), caches emptied."""
    st.cache_resource.clear()  # model_names() and the sessionmaker are read afresh for this test's env
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["current_user"] = signed_in("admin")
    return at


def add_source(at: AppTest, text: str, title: str) -> AppTest:
    at.text_area(key="add_text").input(text)
    at.text_input(key="add_title").input(title)
    at.form_submit_button[0].click()
    return at.run()


def make_source(text: str = TEXT, title: str = "Autobiography") -> int:
    from mmos_core.core.db import session_scope
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    with session_scope() as session:
        source = create_source(
            session=session,
            parsed=parse_pasted(text, max_bytes=1_000_000),
            title=title,
            source_type="book",
            quality="primary",
            extraction_priority="HIGH",
        )
        return source.id


def test_sources_page_empty(app):
    at = app.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Sources"
    assert any("No sources yet" in t for t in texts(at.info))
    assert not at.dataframe


def test_add_source_by_pasted_text(app):
    at = add_source(app.run(), TEXT, "Darwin autobiography")
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    [success] = texts(at.success)
    assert success.startswith("Added SRC_BOOK_001:")
    assert "words in 1 chunks" in success
    table = at.dataframe[0].value
    assert list(table["code"]) == ["SRC_BOOK_001"]
    assert list(table["title"]) == ["Darwin autobiography"]
    assert list(table["batches"]) == [0]
    assert at.selectbox(key="source_picker").value == int(table["id"][0])


def test_add_empty_text_is_refused(app):
    at = add_source(app.run(), "   \n  ", "Nothing")
    assert not at.exception, at.exception
    [error] = texts(at.error)
    assert error.startswith("Refused:") and "empty" in error
    assert not at.success
    assert any("No sources yet" in t for t in texts(at.info))


def test_add_same_text_twice_is_a_duplicate(app):
    at = add_source(app.run(), TEXT, "First copy")
    assert texts(at.success) and not at.error
    at = add_source(at, TEXT, "Second copy")
    assert not at.exception, at.exception
    [error] = texts(at.error)
    assert "already stored as SRC_BOOK_001" in error
    assert not at.success
    assert list(at.dataframe[0].value["title"]) == ["First copy"]


def test_queue_extraction_shows_pending_batches(app, fake_llm):
    make_source()
    at = app.run()
    assert not at.exception, at.exception
    models = at.multiselect(key="queue_models")
    assert set(models.options) >= {SMALL, LARGE}
    assert models.value == [SMALL, LARGE]  # local models are preselected
    assert any("No batches for this source yet" in t for t in texts(at.caption))

    models.set_value([SMALL, LARGE])
    at.button(key="queue_extraction").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    [success] = texts(at.success)
    assert success.startswith("Queued 2 batch(es) on the '")

    panel = [t for t in texts(at.markdown) if t.startswith("**BATCH_")]
    assert len(panel) == 2
    for model in (SMALL, LARGE):
        [line] = [t for t in panel if f" · {model} · " in t]
        assert " · pending · chunks 0/1 · not started · " in line
    assert fake_llm["requests"] == []  # queueing never calls the model

    from rq import Queue

    from mmos_core.core.redis import get_redis

    queued = {job_id for name in ("high", "default", "low") for job_id in Queue(name, connection=get_redis()).job_ids}
    assert len(queued) == 2 and all(j.startswith("extract-batch-") for j in queued)


def test_comparison_without_completed_batches(app):
    make_source()
    at = app.run()
    at.switch_page("pages/comparison.py")
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Model comparison"
    assert any("No completed batches yet" in t for t in texts(at.info))
    assert not at.dataframe


def test_comparison_of_two_completed_batches(app, fake_llm, embedder_or_skip):
    from mmos_core.core.db import session_scope
    from mmos_core.services.batches import queue_extraction
    from workers.extraction import run_extraction

    answers = {SMALL: [SHARED_QUOTE, ONLY_SMALL_QUOTE], LARGE: [SHARED_QUOTE, ONLY_LARGE_QUOTE]}

    def respond(req: dict):
        model = req["model"].split("/")[-1]
        return 200, chat_completion(quote_answer(answers[model]), prompt_tokens=200, completion_tokens=50)

    fake_llm["respond"] = respond
    source_id = make_source()
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL, LARGE])
    for job in jobs:
        done = run_extraction(job.batch_id)
        assert done["fragments"] == 2, done
    assert len(fake_llm["requests"]) == 2

    at = app.run()
    at.switch_page("pages/comparison.py")
    at.run()
    assert not at.exception, at.exception
    assert not at.info or not any("No completed batches" in t for t in texts(at.info))

    table = at.dataframe[0].value
    assert list(table["model"]) == [SMALL, LARGE]
    assert list(table["fragments"]) == [2, 2]
    assert list(table["direct quotes"]) == [1.0, 1.0]
    assert list(table["quotes found in source"]) == [1.0, 1.0]
    assert list(table["input tokens"]) == [200, 200]
    assert list(table["cost (USD)"]) == [0.0, 0.0]  # local models are free
    assert list(table["malformed answers"]) == ["0/1", "0/1"]

    assert at.multiselect[0].value == [j.batch_id for j in jobs]
    assert at.subheader[0].value == "Fragments side by side"
    summary = [t for t in texts(at.markdown) if "matched pairs" in t]
    assert summary == ["**1** matched pairs · **1** only in A · **1** only in B"]
    shown = "\n".join(texts(at.markdown))
    for quote in (SHARED_QUOTE, ONLY_SMALL_QUOTE, ONLY_LARGE_QUOTE):
        assert f"> {quote}" in shown
    assert sum("— no match —" == t for t in texts(at.caption)) == 2

    # Choosing a single batch hides the side-by-side view.
    at.multiselect[0].set_value([jobs[0].batch_id])
    at.run()
    assert not at.exception, at.exception
    assert any("Choose two batches" in t for t in texts(at.info))
    assert len(at.dataframe[0].value) == 1


def test_batch_output_feedback_on_the_comparison_page(app, fake_llm, embedder_or_skip):
    """A reviewer likes a whole batch output and regenerates it; both land in ai_user_feedback."""
    from sqlalchemy import select

    from mmos_core.core.db import session_scope
    from mmos_core.models import ProcessingBatch, UserFeedback
    from mmos_core.services.batches import queue_extraction
    from workers.extraction import run_extraction

    source_id = make_source()
    fake_llm["respond"] = lambda req: (200, chat_completion(quote_answer(["I was born at Shrewsbury"])))
    with session_scope() as session:
        jobs = queue_extraction(session=session, source_id=source_id, model_names=[SMALL, LARGE])
    for job in jobs:
        run_extraction(job.batch_id)
    at = app.switch_page("pages/comparison.py").run()
    at.button(key=f"batch_like_{jobs[0].batch_id}").click().run()
    at.button(key=f"batch_regen_{jobs[0].batch_id}").click().run()
    assert not at.exception
    with session_scope() as session:
        kinds = [f.feedback_type for f in session.scalars(select(UserFeedback).order_by(UserFeedback.id))]
        regenerated = session.scalar(select(ProcessingBatch).where(ProcessingBatch.parent_batch_id == jobs[0].batch_id))
        row = session.scalar(select(UserFeedback).where(UserFeedback.feedback_type == "regenerate"))
        assert kinds == ["like", "regenerate"]
        assert row.user_id is not None and row.model_name == SMALL and row.regenerated_batch_id == regenerated.id
        assert regenerated.batch_status == "pending" and regenerated.chunks_total == 1
