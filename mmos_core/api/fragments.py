"""`/fragments`, `/queue/next`, `/feedback`: find fragments, judge them, give feedback (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from mmos_core.api.auth import DbSession, require
from mmos_core.api.errors import ApiError
from mmos_core.api.serialize import to_json
from mmos_core.core.domain import RejectReason
from mmos_core.models import Fragment
from mmos_core.services import review as rv
from mmos_core.services.auth import CurrentUser, Permission
from mmos_core.services.feedback import FeedbackType, record_feedback
from mmos_core.services.review_queue import next_for_review

router = APIRouter(tags=["fragments"])

Reviewer = Annotated[CurrentUser, Depends(require(Permission.review_fragments))]


def fragment_json(row: rv.FragmentRow) -> dict[str, Any]:
    """A `FragmentRow` for the API: its fields but the UI's Markdown (`highlighted`), plus `status`."""
    out = to_json(row, extra=("status",))
    out.pop("highlighted", None)
    return out


@router.get("/fragments", summary="Fragments with filters and pagination")
def search(
    user: Reviewer,
    session: DbSession,
    source_id: int | None = None,
    batch_id: int | None = None,
    model_name: str | None = None,
    category: str | None = None,
    fragment_type: str | None = None,
    status: Literal["pending", "verified", "rejected"] | None = None,
    relevance_min: Annotated[int | None, Query(ge=1, le=10)] = None,
    relevance_max: Annotated[int | None, Query(ge=1, le=10)] = None,
    q: Annotated[str | None, Query(description="Full-text query, web-search style: \"a phrase\", or, -word")] = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=rv.search.MAX_PAGE_SIZE)] = 25,
) -> dict[str, Any]:
    """One page of matching fragments, newest first (best full-text match first with `q`), and the total
    (`services.review.search_fragments`, the Review page's list). 422: a value out of range."""
    flt = rv.FragmentFilter(
        source_id=source_id, batch_id=batch_id, model_name=model_name, category=category, fragment_type=fragment_type,
        status=status, relevance_min=relevance_min, relevance_max=relevance_max, query=q, page=page, page_size=page_size,
    )
    found = rv.search_fragments(session=session, flt=flt)
    return {
        "total": found.total, "page": found.page, "page_size": found.page_size, "pages": found.pages,
        "items": [fragment_json(r) for r in found.rows],
    }


def _existing(session, fragment_id: int) -> None:
    if session.get(Fragment, fragment_id) is None:
        raise ApiError(404, f"No fragment {fragment_id}.")


@router.get("/fragments/{fragment_id}", summary="One fragment")
def get_fragment(user: Reviewer, session: DbSession, fragment_id: int) -> dict[str, Any]:
    """The fragment with its source, batch, model and verdict. 404: unknown fragment."""
    _existing(session, fragment_id)
    return fragment_json(rv.get_fragment_row(session=session, fragment_id=fragment_id))


class RejectRequest(BaseModel):
    """Optional body of `POST /fragments/{id}/reject`."""

    reason: RejectReason | None = Field(None, description="Why: each reason tests one automatic check (docs/quality.md).")


def _verdict(session, fragment_id: int) -> dict[str, Any]:
    out = fragment_json(rv.get_fragment_row(session=session, fragment_id=fragment_id))
    out["reject_reason"] = session.get(Fragment, fragment_id).reject_reason
    return out


@router.post("/fragments/{fragment_id}/verify", summary="Verify a fragment")
def verify(user: Reviewer, session: DbSession, fragment_id: int) -> dict[str, Any]:
    """Mark it verified by the token's user (`services.review.verify`). 404: unknown fragment; 409: the
    verdict is another reviewer's and the role may not override it."""
    _existing(session, fragment_id)
    rv.verify(session=session, user=user, fragment_id=fragment_id)
    return _verdict(session, fragment_id)


@router.post("/fragments/{fragment_id}/reject", summary="Reject a fragment (optionally with a reason)")
def reject(user: Reviewer, session: DbSession, fragment_id: int, body: RejectRequest | None = None) -> dict[str, Any]:
    """Mark it rejected by the token's user (`services.review.reject`), with the reason when given.
    404 and 409 as verify; 422: a reason outside misquote, wrong_speaker, unsupported_insight,
    wrong_category, trivial. `reject_reason` in the answer is what was stored."""
    _existing(session, fragment_id)
    reason = body.reason if body is not None and body.reason is not None else None
    rv.reject(session=session, user=user, fragment_id=fragment_id, reason=getattr(reason, "value", reason))
    return _verdict(session, fragment_id)


@router.get("/queue/next", summary="The next fragment waiting for the token's user")
def next_fragment(user: Reviewer, session: DbSession, source_id: int | None = None) -> dict[str, Any]:
    """The oldest fragment neither verified nor rejected, nor judged by this user
    (`services.review_queue.next_for_review`): `{"fragment": {...} | null, "waiting": n}`."""
    found = next_for_review(session=session, user=user, source_id=source_id)
    return {"fragment": fragment_json(found.fragment) if found.fragment else None, "waiting": found.waiting}


class FeedbackRequest(BaseModel):
    """`POST /feedback`: on a fragment, or on a whole batch with only `batch_id`."""

    feedback_type: FeedbackType
    fragment_id: int | None = None
    batch_id: int | None = None
    quality_rating: int | None = Field(None, ge=1, le=5, description="1-5 stars (with feedback_type `rating`).")
    reason: str | None = Field(None, max_length=2000)


@router.post("/feedback", status_code=201, summary="Feedback on a fragment or a batch")
def feedback(
    user: Annotated[CurrentUser, Depends(require(Permission.give_feedback))],
    body: FeedbackRequest,
    session: DbSession,
) -> dict[str, Any]:
    """Store one feedback entry (`services.feedback.record_feedback`). 400: neither fragment nor batch, or an
    unknown one; 422: a bad type or rating."""
    row = record_feedback(
        session=session, user=user, feedback_type=body.feedback_type, fragment_id=body.fragment_id,
        batch_id=body.batch_id, quality_rating=body.quality_rating, reason=body.reason,
    )
    return {
        "id": row.id, "feedback_type": row.feedback_type, "fragment_id": row.fragment_id, "batch_id": row.batch_id,
        "model_name": row.model_name, "quality_rating": row.quality_rating,
    }
