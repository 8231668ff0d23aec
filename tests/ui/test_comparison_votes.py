"""The Comparison page's filters, word diff, source passage, links and A / B / tie votes (AppTest on the
real embedded Postgres; fragments written directly, no LLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from ui_support import signed_in, texts

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "comparison.py")
TEXT = (
    "I was born at Shrewsbury on February 12th, 1809.\n\n"
    "No pursuit at Cambridge gave me so much pleasure as collecting beetles.\n\n"
    "The voyage of the Beagle has been by far the most important event in my life.\n\n"
    "My love of natural science was steady and ardent.\n"
)
SAME = "I was born at Shrewsbury on February 12th, 1809."
A_BEETLES = "No pursuit at Cambridge gave me so much pleasure as collecting beetles."
B_BEETLES = "No pursuit at Cambridge gave me such pleasure as collecting beetles."
ONLY_A = "The voyage of the Beagle has been by far the most important event in my life."
ONLY_B = "My love of natural science was steady and ardent."


def _vec(i: int, tilt: float = 0.0) -> list[float]:
    v = np.zeros(384, dtype=np.float32)
    v[i] = 1.0
    v[10] = tilt
    return (v / np.linalg.norm(v)).tolist()


@pytest.fixture()
def two_batches(clean_db):
    """Batches A (model-a) and B (model-b) of one source: one identical pair, one pair differing in
    words, one fragment only in A and one only in B. Returns ({content: fragment id}, batch ids)."""
    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment, ProcessingBatch, Source, SourceProcessing
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    ids: dict[str, int] = {}
    with session_scope() as session:
        source_id = create_source(
            session=session, parsed=parse_pasted(TEXT, max_bytes=1_000_000), title="Autobiography",
            source_type="book", quality="primary", extraction_priority="HIGH",
        ).id
        source = session.get(Source, source_id)
        batches = []
        for code, model, contents in (
            ("BATCH_A", "model-a", [(SAME, _vec(0)), (A_BEETLES, _vec(1)), (ONLY_A, _vec(2))]),
            ("BATCH_B", "model-b", [(SAME, _vec(0)), (B_BEETLES, _vec(1, 0.2)), (ONLY_B, _vec(3))]),
        ):
            batch = ProcessingBatch(batch_code=code, model_provider="local", model_name=model, prompt_version="t",
                                    batch_status="completed", price_snapshot={})
            session.add(batch)
            session.flush()
            session.add(SourceProcessing(source_id=source_id, batch_id=batch.id, processing_status="completed"))
            batches.append(batch.id)
            for content, vec in contents:
                start = source.content.find(content)
                f = Fragment(source_id=source_id, batch_id=batch.id, chunk_id=source.chunks[0].id, category="Biographical",
                             fragment_type="direct_quote", content=content, relevance=7, confidence=0.8,
                             char_start=start if start >= 0 else None, char_end=start + len(content) if start >= 0 else None,
                             embedding=vec)
                session.add(f)
                session.flush()
                ids[f"{code}:{content}"] = f.id
    return ids, batches


def _page(params: dict | None = None, username: str | None = None) -> AppTest:
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["current_user"] = signed_in("reviewer", username)
    for k, v in (params or {}).items():
        at.query_params[k] = v
    return at.run()


def _quotes(at: AppTest) -> list[str]:
    return [t[2:] for t in texts(at.markdown) if t.startswith("> ")]


def test_filters_diff_and_source_passage(two_batches):
    ids, _ = two_batches
    at = _page()
    assert not at.exception, at.exception
    assert "**2** matched pairs · **1** only in A · **1** only in B" in texts(at.markdown)
    assert len(_quotes(at)) == 6
    caps = texts(at.caption)
    assert "cosine similarity 1.00 · same words" in caps
    assert any("words: No pursuit at Cambridge gave me ~~so much~~ → **such** pleasure" in c for c in caps), [c for c in caps if "cosine" in c]

    at.radio(key="cmp_show").set_value("differences").run()
    assert sorted(_quotes(at)) == sorted([A_BEETLES, B_BEETLES, ONLY_A, ONLY_B])
    assert at.query_params["show"] == "differences"
    at.radio(key="cmp_show").set_value("unmatched").run()
    assert sorted(_quotes(at)) == sorted([ONLY_A, ONLY_B])

    at.toggle(key=f"cmp_src_{ids['BATCH_A:' + ONLY_A]}").set_value(True).run()
    assert not at.exception, at.exception
    assert any("**The voyage of the Beagle" in t for t in texts(at.markdown))


def test_a_link_reopens_the_same_view(two_batches):
    _, (a, b) = two_batches
    at = _page({"a": str(b), "b": str(a), "show": "unmatched", "match": "0.8"})
    assert not at.exception, at.exception
    assert at.selectbox(key="cmp_a").value == b and at.selectbox(key="cmp_b").value == a
    assert at.radio(key="cmp_show").value == "unmatched"
    assert at.slider(key="cmp_threshold").value == pytest.approx(0.8)
    assert at.query_params["source"] and at.query_params["a"] == str(b)


def test_vote_is_feedback_and_counts_in_recommendations(two_batches):
    from mmos_core.core.db import session_scope
    from mmos_core.services.catalog.recommend import feedback_tallies

    ids, _ = two_batches
    fa, fb_ = ids["BATCH_A:" + A_BEETLES], ids["BATCH_B:" + B_BEETLES]
    at = _page()
    at.button(key=f"vote_A_{fa}_{fb_}").click().run()
    assert not at.exception, at.exception
    assert "your vote: A" in texts(at.caption)
    with session_scope() as session:
        t = feedback_tallies(session=session, task_category="fragment_extraction")
    assert (t["model-a"].likes, t["model-a"].dislikes, t["model-b"].likes, t["model-b"].dislikes) == (1, 0, 0, 1)

    # changing the vote replaces it; a tie counts for neither
    at.button(key=f"vote_tie_{fa}_{fb_}").click().run()
    assert "your vote: tie" in texts(at.caption)
    with session_scope() as session:
        t = feedback_tallies(session=session, task_category="fragment_extraction")
    assert (t["model-a"].likes, t["model-a"].dislikes, t["model-b"].likes, t["model-b"].dislikes) == (0, 0, 0, 0)
    assert t["model-a"].skips == 1 and t["model-b"].skips == 1


def test_coverage_link_keeps_the_scope(two_batches):
    from mmos_core.core.db import session_scope
    from mmos_core.services.coverage import source_choices

    with session_scope() as session:
        sid = source_choices(session=session)[0].source_id
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "pages" / "coverage.py"), default_timeout=60)
    at.session_state["current_user"] = signed_in("reviewer")
    at.query_params["scope"] = "Sources"
    at.query_params["sources"] = str(sid)
    at.run()
    assert not at.exception, at.exception
    assert at.radio(key="coverage_scope").value == "Sources"
    assert at.multiselect(key="coverage_sources").value == [sid]
    at.radio(key="coverage_scope").set_value("Person").run()
    assert "sources" not in at.query_params and "scope" not in at.query_params


def test_long_alignments_are_paged_and_aligned_once_per_data_version(two_batches, monkeypatch):
    """Two batches with 60 more unmatched fragments each: 124 rows drawn 50 a page (the page is in the link);
    turning a page reuses the alignment, a data change aligns again (bench/README.md, page timings)."""
    import mmos_core.services.comparison as comparison
    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment

    ids, (a, b) = two_batches
    with session_scope() as session:
        first = session.get(Fragment, ids["BATCH_A:" + SAME])
        for batch, offset in ((a, 20), (b, 100)):
            for i in range(60):
                session.add(Fragment(source_id=first.source_id, batch_id=batch, chunk_id=first.chunk_id, category="Biographical",
                                     fragment_type="paraphrase", content=f"extra {batch}-{i}", relevance=5, confidence=0.5,
                                     embedding=_vec(offset + i)))
    calls = []
    real = comparison.align_batches
    monkeypatch.setattr(comparison, "align_batches", lambda **kw: calls.append(kw) or real(**kw))

    at = _page()
    assert not at.exception, at.exception
    assert "**2** matched pairs · **61** only in A · **61** only in B" in texts(at.markdown)
    assert len([t for t in texts(at.markdown) if t.startswith("`")]) == 2 * 2 + 48  # 2 matched pairs, 48 single rows
    assert at.number_input(key="cmp_page").max == 3 and len(calls) == 1
    at.number_input(key="cmp_page").set_value(3).run()
    assert not at.exception, at.exception
    assert at.query_params["pairs_page"] == "3"
    assert len([t for t in texts(at.markdown) if t.startswith("`")]) == 24  # rows 101-124
    assert len(calls) == 1  # the alignment came from the cache

    with session_scope() as session:  # a new fragment: the alignment is computed again
        session.add(Fragment(source_id=first.source_id, batch_id=b, chunk_id=first.chunk_id, category="Biographical",
                             fragment_type="paraphrase", content="one more", relevance=5, confidence=0.5, embedding=_vec(200)))
    at.run()
    assert not at.exception, at.exception
    assert len(calls) == 2 and "**2** matched pairs · **61** only in A · **62** only in B" in texts(at.markdown)
    assert _page({"pairs_page": "2"}, "linked").number_input(key="cmp_page").value == 2  # the link reopens the page
    assert _page({"pairs_page": "9"}, "linked-2").number_input(key="cmp_page").value == 1  # past the end: the first
