"""Reject reasons, second opinions, the calibration report and reviewer kappa on the real database
(docs/quality.md, "Calibration of the checks")."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mmos_core.core.db import session_scope
from mmos_core.models import Fragment, ProcessingBatch, ReviewVerdict
from mmos_core.services import review
from mmos_core.services.auth import create_user
from mmos_core.services.calibration import calibration, reviewer_agreement, reviewer_progress
from mmos_core.services.checks import check_fragments
from mmos_core.services.review import ReviewError
from mmos_core.services.sources import create_source
from mmos_core.text.intake import parse_pasted

pytestmark = pytest.mark.usefixtures("clean_db")

TEXT = "\n\n".join(f"Paragraph {i}. I believe sentence number {i} is my own honest view of the matter." for i in range(12))


@pytest.fixture()
def reviewed():
    with session_scope() as s:
        src = create_source(session=s, parsed=parse_pasted(TEXT, max_bytes=100_000), title="Notes",
                            person="A. Writer", source_type="letter", quality="primary", extraction_priority="HIGH")
        batch = ProcessingBatch(batch_code="B1", model_provider="local", model_name="m", prompt_version="t",
                                batch_status="completed", price_snapshot={})
        s.add(batch)
        s.flush()
        ids = []
        for i in range(12):
            # even fragments are verbatim, odd ones misquote their sentence
            quote = f"I believe sentence number {i} is my own honest view of the matter."
            content = quote if i % 2 == 0 else quote.replace("honest", "secret")
            f = Fragment(source_id=src.id, batch_id=batch.id, chunk_id=src.chunks[0].id, category="Cognitive",
                         fragment_type="direct_quote", content=content, insight="They think carefully.",
                         relevance=5, confidence=0.8)
            s.add(f)
            s.flush()
            ids.append(f.id)
        check_fragments(session=s, fragment_ids=ids)
        users = {n: create_user(session=s, username=n, role="reviewer", password="correct horse battery") for n in ("rita", "bob")}
        return ids, users


def test_reviewers_reasons_feed_the_calibration_report_and_kappa(reviewed):
    ids, users = reviewed
    rita, bob = users["rita"], users["bob"]
    with session_scope() as s:
        for i, fid in enumerate(ids):
            if i % 2 == 0:
                review.verify(session=s, user=rita, fragment_id=fid)
            else:
                review.reject(session=s, user=rita, fragment_id=fid, reason="misquote")
        # bob agrees on all but one, as a second opinion (the verdicts stay rita's)
        for i, fid in enumerate(ids):
            verdict = "verified" if (i % 2 == 0) != (i == 4) else "rejected"
            review.second_opinion(session=s, user=bob, fragment_id=fid, verdict=verdict,
                                  reason="misquote" if verdict == "rejected" else None)
    with session_scope() as s:
        assert s.scalar(select(Fragment.reject_reason).where(Fragment.id == ids[1])) == "misquote"
        assert s.scalar(select(Fragment.verified_by).where(Fragment.id == ids[4])) == "rita"
        rep = calibration(session=s, min_verdicts=10)
        progress = {p.reviewer: p for p in reviewer_progress(session=s)}
        kappas = {(k.dimension): k for k in reviewer_agreement(session=s)}
    verbatim = rep.checks["verbatim"]
    assert verbatim.verdict.n == 12 and verbatim.verdict.calibrated
    assert verbatim.verdict.accuracy.value == 1.0 and verbatim.reason.target == "misquote"
    assert verbatim.reason.auroc.value == 1.0
    assert not rep.checks["support"].verdict.calibrated  # nothing judged yet: no false precision
    assert progress["rita"].verdicts == progress["bob"].verdicts == 12 and progress["rita"].rejected == 6
    k = kappas["verdict"]
    assert k.n == 12 and 0.6 < k.kappa.value < 1.0  # 11 of 12 agree


def test_an_unknown_reason_is_refused_and_reset_drops_the_reviewers_row(reviewed):
    ids, users = reviewed
    with pytest.raises(ReviewError, match="Unknown reject reason"):
        with session_scope() as s:
            review.reject(session=s, user=users["rita"], fragment_id=ids[0], reason="boring")
    with session_scope() as s:
        review.reject(session=s, user=users["rita"], fragment_id=ids[0], reason="trivial")
    with session_scope() as s:
        review.reset_verdict(session=s, user=users["rita"], fragment_id=ids[0])
    with session_scope() as s:
        assert s.scalar(select(ReviewVerdict).where(ReviewVerdict.fragment_id == ids[0])) is None
        assert s.scalar(select(Fragment.reject_reason).where(Fragment.id == ids[0])) is None
