"""The Review page through Streamlit's AppTest on the real embedded Postgres (nothing faked)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
REVIEW_PAGE = str(ROOT / "pages" / "review.py")
TIMEOUT = 60
TEXT = (
    "I was born at Shrewsbury on February 12th, 1809, and my earliest recollection goes back "
    "only to when I was a few months over four years old.\n\n"
    "No pursuit at Cambridge was followed with nearly so much eagerness or gave me so much "
    "pleasure as collecting beetles.\n\n"
    "The voyage of the Beagle has been by far the most important event in my life, and has "
    "determined my whole career.\n"
)

QUOTES = [
    "I was born at Shrewsbury on February 12th, 1809",
    "No pursuit at Cambridge was followed with nearly so much eagerness or gave me so much pleasure as collecting beetles.",
    "The voyage of the Beagle has been by far the most important event in my life",
]


def make_source() -> int:
    from mmos_core.core.db import session_scope
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    with session_scope() as session:
        return create_source(
            session=session, parsed=parse_pasted(TEXT, max_bytes=1_000_000), title="Autobiography",
            source_type="book", quality="primary", extraction_priority="HIGH",
        ).id


def _fragments() -> list[tuple[int, str]]:
    """Three fragments of one batch of the test source, as (id, code)."""
    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment, ProcessingBatch, Source

    source_id = make_source()
    out = []
    with session_scope() as session:
        source = session.get(Source, source_id)
        batch = ProcessingBatch(
            batch_code="BATCH_T", model_provider="local", model_name="model-a", prompt_version="t",
            batch_status="completed", price_snapshot={},
        )
        session.add(batch)
        session.flush()
        for i, quote in enumerate(QUOTES):
            v = np.zeros(384, dtype=np.float32)
            v[i] = 1.0
            start = source.content.index(quote)
            f = Fragment(
                source_id=source_id, batch_id=batch.id, chunk_id=source.chunks[0].id, category="Biographical",
                fragment_type="direct_quote", content=quote, relevance=7, confidence=0.8,
                char_start=start, char_end=start + len(quote), embedding=v.tolist(),
            )
            session.add(f)
            session.flush()
            out.append((f.id, f.fragment_code))
    return out


def _review_as(role: str) -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["current_user"] = signed_in(role)
    at.run()
    at.switch_page("pages/review.py")
    return at.run()


@pytest.fixture()
def fragments(clean_db):
    return _fragments()


def _shown(at: AppTest) -> str:
    return "\n".join(texts(at.markdown))


def test_reviewer_sees_fragments_and_verifies_one(fragments):
    at = _review_as("reviewer")
    assert not at.exception, at.exception
    assert at.title[0].value == "Review"
    assert "**3** fragments match" in _shown(at)
    for _, code in fragments:
        assert f"`{code}`" in _shown(at)
    assert _shown(at).count("status: **pending**") == 3

    fid, code = fragments[1]
    at.button(key=f"verify_{fid}").click()
    at.run()
    assert not at.exception, at.exception
    assert f"{code} verified." in texts(at.success)
    assert any(t.startswith("status: **verified** by reviewer-user on ") for t in texts(at.markdown))
    assert at.button(key=f"verify_{fid}").disabled
    assert not at.button(key=f"reject_{fid}").disabled  # the author may change her own verdict

    at.selectbox(key="review_status").set_value("verified")
    at.run()
    assert "**1** fragments match" in _shown(at)


def test_another_reviewers_verdict_cannot_be_changed(fragments):
    from mmos_core.core.db import session_scope
    from mmos_core.services.auth import create_user
    from mmos_core.services.review import reject

    fid, _ = fragments[0]
    with session_scope() as session:
        other = create_user(session=session, username="other", role="reviewer", password="correct horse battery")
        reject(session=session, user=other, fragment_id=fid)
    at = _review_as("reviewer")
    assert not at.exception, at.exception
    assert at.button(key=f"verify_{fid}").disabled and at.button(key=f"reset_{fid}").disabled
    assert "Judged by other: only they or an admin can change this verdict." in texts(at.caption)
    assert not at.button(key=f"verify_{fragments[1][0]}").disabled


def test_analyst_may_not_open_the_review_page(clean_db):
    at = AppTest.from_file(REVIEW_PAGE, default_timeout=TIMEOUT)
    at.session_state["current_user"] = signed_in("analyst")
    at.run()
    assert not at.exception, at.exception
    assert texts(at.error) == ["Your role (analyst) does not allow this page."]
    assert not at.button


def test_full_text_search_shows_only_matching_fragments(fragments):
    at = _review_as("reviewer")
    at.text_input(key="review_query").input("beetle")
    at.run()
    assert not at.exception, at.exception
    shown = _shown(at)
    assert "**1** fragments match" in shown
    assert f"`{fragments[1][1]}`" in shown
    assert f"`{fragments[0][1]}`" not in shown and f"`{fragments[2][1]}`" not in shown
    assert any("collecting **beetles**" in t for t in texts(at.markdown))


def test_details_add_a_tag_and_a_relationship(fragments):
    (fid, code), (_other_id, other_code) = fragments[0], fragments[2]
    at = _review_as("reviewer")
    at.toggle(key=f"details_{fid}").set_value(True)
    at.run()
    assert not at.exception, at.exception
    assert "Never edited." in texts(at.caption)
    at.text_input(key=f"tag_new_{fid}").input("Childhood")
    at.button(key=f"tag_add_{fid}").click()
    at.run()
    assert not at.exception, at.exception
    assert "Tags: `childhood`" in texts(at.markdown)
    at.text_input(key=f"rel_code_{fid}").input(other_code.lower())
    at.selectbox(key=f"rel_type_{fid}").set_value("elaborates")
    at.button(key=f"FormSubmitter:relate_{fid}-Add relationship").click()
    at.run()
    assert not at.exception, at.exception
    assert "Relationship recorded." in texts(at.success)
    assert any(t.startswith(f"{code} **elaborates** `{other_code}`") for t in texts(at.markdown))

    at.text_input(key=f"reason_{fid}").input("exact and useful")
    at.button(key=f"like_{fid}").click()
    at.run()
    assert not at.exception, at.exception
    assert "Feedback recorded: like." in texts(at.success)
    assert any(t.startswith("1 likes · 0 dislikes") for t in texts(at.caption))
    from sqlalchemy import select

    from mmos_core.core.db import session_scope
    from mmos_core.models import UserFeedback

    with session_scope() as session:
        [row] = session.scalars(select(UserFeedback)).all()
        assert (row.fragment_id, row.feedback_type, row.reason, row.model_name) == (fid, "like", "exact and useful", "model-a")
