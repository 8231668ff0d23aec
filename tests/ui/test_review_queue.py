"""The Review page's queue mode, drill-down, bulk verdicts and links (query parameters), through
Streamlit's AppTest on the real embedded Postgres and Redis (nothing faked)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

ROOT = Path(__file__).resolve().parents[2]
REVIEW_PAGE = str(ROOT / "pages" / "review.py")
TIMEOUT = 60
SENTENCES = [
    "I was born at Shrewsbury on February 12th, 1809.",
    "My mother died in July 1817, when I was a little over eight years old.",
    "No pursuit at Cambridge gave me so much pleasure as collecting beetles.",
    "The voyage of the Beagle has been by far the most important event in my life.",
    "I have steadily endeavoured to keep my mind free so as to give up any hypothesis.",
    "My love of natural science was steady and ardent.",
]
TEXT = "\n\n".join(SENTENCES) + "\n"
SECRET = "sk-live-abcdef0123456789XYZ"


def _seed() -> list[tuple[int, str]]:
    """Six fragments of one batch, one extraction call (with a key in its error text) and one judge verdict."""
    from mmos_core.core.db import session_scope
    from mmos_core.models import ExtractionCall, Fragment, JudgeVerdict, ProcessingBatch, ProcessingQueue, Source
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    out = []
    with session_scope() as session:
        source_id = create_source(
            session=session, parsed=parse_pasted(TEXT, max_bytes=1_000_000), title="Autobiography",
            source_type="book", quality="primary", extraction_priority="HIGH",
        ).id
        source = session.get(Source, source_id)
        batch = ProcessingBatch(batch_code="BATCH_Q", model_provider="local", model_name="model-a",
                                prompt_version="extract-v3", batch_status="completed", price_snapshot={})
        session.add(batch)
        session.flush()
        chunk = source.chunks[0]
        session.add(ExtractionCall(
            batch_id=batch.id, chunk_id=chunk.id, attempt=2, status="ok", input_tokens=321, output_tokens=45,
            cost_usd=Decimal("0.000123"), duration_ms=987, raw_response='{"fragments": [{"content": "beetles"}]}',
            parsed={"fragments": [{"content": "beetles"}]}, error=f"retry after 429; api_key={SECRET}",
        ))
        session.add(ProcessingQueue(source_id=source_id, batch_id=batch.id, processing_type="extraction",
                                    effective_priority=5, queue_status="completed", attempts=2, max_attempts=3))
        for i, quote in enumerate(SENTENCES):
            v = np.zeros(384, dtype=np.float32)
            v[i] = 1.0
            start = source.content.index(quote)
            f = Fragment(
                source_id=source_id, batch_id=batch.id, chunk_id=chunk.id, category="Biographical",
                fragment_type="direct_quote", content=quote, relevance=7, confidence=0.8,
                char_start=start, char_end=start + len(quote), embedding=v.tolist(),
            )
            session.add(f)
            session.flush()
            out.append((f.id, f.fragment_code))
        session.add(JudgeVerdict(fragment_id=out[0][0], judge_model="judge-model", rubric_version="support-v1",
                                 status="ok", support="yes", support_score=Decimal("0.90"), judge_category="Biographical",
                                 category_agrees=True, reason="The quote states the birth.", prompt_tokens=150,
                                 completion_tokens=20, latency_ms=420, raw_answer='{"support": "yes"}'))
    return out


@pytest.fixture()
def fragments(clean_db):
    return _seed()


def _page(role: str = "reviewer", username: str | None = None, params: dict | None = None) -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(REVIEW_PAGE, default_timeout=TIMEOUT)
    at.session_state["current_user"] = signed_in(role, username)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    return at.run()


def _queue(at: AppTest) -> AppTest:
    at.radio(key="review_view").set_value("Queue")
    return at.run()


def _served(at: AppTest) -> str:
    """The code of the fragment the queue shows."""
    heads = [t for t in texts(at.markdown) if t.startswith("`") and "· BATCH_Q" in t]
    assert len(heads) == 1, texts(at.markdown)
    return heads[0].split("`")[1]


def _progress(at: AppTest) -> str:
    return next(t for t in texts(at.markdown) if t.startswith("You: "))


def _db_state() -> dict[str, tuple[bool, bool, str | None]]:
    from sqlalchemy import select

    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment

    with session_scope() as session:
        return {f.fragment_code: (f.verified, f.rejected, f.reject_reason) for f in session.scalars(select(Fragment))}


def test_queue_verify_three_reject_one_skip_one(fragments):
    at = _queue(_page())
    assert not at.exception, at.exception
    assert _progress(at) == "You: **0 of 6** judged in this scope · **6** waiting"
    codes = [c for _, c in fragments]
    for expected in codes[:3]:
        assert _served(at) == expected
        at.button(key="rq_verify").click().run()
        assert not at.exception, at.exception
    assert f"{codes[2]} verified." in texts(at.success)
    assert _served(at) == codes[3]
    at.selectbox(key="rq_reason").set_value("misquote")
    at.button(key="rq_reject").click().run()
    assert f"{codes[3]} rejected (misquote)." in texts(at.success)
    assert _served(at) == codes[4]
    at.button(key="rq_skip").click().run()
    assert not at.exception, at.exception
    assert _served(at) == codes[5]
    assert _progress(at) == "You: **4 of 6** judged in this scope · **1** waiting"
    assert "Batch BATCH_Q: 4 of 6 judged (by anyone)" in texts(at.caption)
    state = _db_state()
    assert [state[c][:2] for c in codes[:3]] == [(True, False)] * 3
    assert state[codes[3]] == (False, True, "misquote")
    assert state[codes[4]] == (False, False, None)  # skipped: still pending

    # previous goes back to the skipped one, next returns
    at.button(key="rq_previous").click().run()
    assert _served(at) == codes[4]
    at.button(key="rq_next").click().run()
    assert _served(at) == codes[5]
    assert at.query_params["view"] == "Queue" and at.query_params["fragment"] == str(fragments[5][0])


def test_two_reviewers_never_share_a_claimed_fragment_and_agreement_mode(fragments):
    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment, ReviewVerdict

    first = _queue(_page(username="ana"))
    second = _queue(_page(username="ben"))
    assert _served(first) == fragments[0][1]
    assert _served(second) == fragments[1][1]  # the first is claimed by ana

    first.button(key="rq_verify").click().run()
    # ben, in agreement mode, is served what ana judged; his verdict is his own
    second.toggle(key="rq_agreement").set_value(True).run()
    assert not second.exception, second.exception
    assert _served(second) == fragments[0][1]
    second.selectbox(key="rq_reason").set_value("trivial")
    second.button(key="rq_reject").click().run()
    assert not second.exception, second.exception
    with session_scope() as session:
        f = session.get(Fragment, fragments[0][0])
        assert f.verified and f.verified_by == "ana"
        own = {(v.user_id, v.verdict, v.reason) for v in session.query(ReviewVerdict).filter_by(fragment_id=f.id)}
        assert len(own) == 2 and any(v == "rejected" and r == "trivial" for _, v, r in own)


def test_drilldown_shows_chunk_calls_and_judge_without_secrets(fragments):
    at = _queue(_page())
    at.button(key="rq_details_btn").click().run()
    assert not at.exception, at.exception
    md = "\n".join(texts(at.markdown))
    assert ":orange-background[I was born at Shrewsbury on February 12th, 1809\\.]" in md
    assert "attempt 2" in md and "**ok**" in md and "321 in / 45 out tokens" in md and "$0.000123" in md and "987 ms" in md
    assert "judge-model · rubric support-v1 · **ok** · support yes" in md
    code = "\n".join(texts(at.code))
    assert "Passage:" in code and "Source: Autobiography (book)" in code  # the prompt, rebuilt
    assert '"content": "beetles"' in code  # parsed JSON
    assert '{"support": "yes"}' in code
    caps = "\n".join(texts(at.caption))
    assert "job completed, attempt 2 of 3" in caps and "prompt extract-v3" in caps
    everything = md + code + caps + "\n".join(texts(at.text))
    assert SECRET not in everything and "api_key=••••" in caps


def test_bulk_reject_with_confirmation(fragments):
    at = _page()
    ids = [fragments[0][0], fragments[2][0]]
    at.multiselect(key="bulk_ids").set_value(ids)
    at.radio(key="bulk_verdict").set_value("rejected").run()
    at.selectbox(key="bulk_reason").set_value("wrong_category")
    at.run()
    assert at.button(key="bulk_apply").disabled  # not confirmed yet
    at.checkbox(key="bulk_confirm").check().run()
    at.button(key="bulk_apply").click().run()
    assert not at.exception, at.exception
    assert "2 fragment(s) rejected." in texts(at.success)
    state = _db_state()
    assert state[fragments[0][1]] == (False, True, "wrong_category") == state[fragments[2][1]]
    assert state[fragments[1][1]] == (False, False, None)


def test_links_keep_filters_and_the_queue_fragment(fragments):
    at = _page(params={"status": "pending", "category": "Biographical", "q": "beetles"})
    assert not at.exception, at.exception
    assert at.selectbox(key="review_status").value == "pending"
    assert at.text_input(key="review_query").value == "beetles"
    assert "**1** fragments match" in "\n".join(texts(at.markdown))
    at.selectbox(key="review_status").set_value("verified").run()
    assert at.query_params["status"] == "verified" and at.query_params["q"] == "beetles"
    assert at.query_params["category"] == "Biographical"

    # a copied queue link opens the same fragment
    fid, code = fragments[3]
    linked = _page(username="other", params={"view": "Queue", "fragment": str(fid)})
    assert not linked.exception, linked.exception
    assert _served(linked) == code

    # a stale link (unknown status) falls back instead of failing
    stale = _page(username="third", params={"status": "nonsense", "source": "999"})
    assert not stale.exception, stale.exception
    assert stale.selectbox(key="review_status").value is None
