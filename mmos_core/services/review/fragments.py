"""A fragment as the review list shows it (`FragmentRow`, Markdown-safe and highlighted), the query
that reads such rows, fragment look-ups by id and code, and the permission check and row lock every
review action starts with (`fragment_for_review`).

Every function takes `session=` and never commits; the page action owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, literal, select
from sqlalchemy.orm import Session

from mmos_core.models import Fragment, ProcessingBatch, Source
from mmos_core.services.auth import CurrentUser, Permission

Status = Literal["pending", "verified", "rejected"]
STATUSES: tuple[str, ...] = ("pending", "verified", "rejected")

# Markers handed to ts_headline; private-use code points never typed by people or models.
_START, _STOP = "\ue000", "\ue001"
#: `ts_headline` options that mark matches with the private markers (`highlight_to_markdown` reads them).
HEADLINE_OPTIONS = f"StartSel={_START}, StopSel={_STOP}, HighlightAll=true"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


class ReviewError(ValueError):
    """A review action refused (permission, verdict owner, bad value, unknown fragment); safe to show."""


@dataclass(frozen=True)
class FragmentRow:
    """One fragment as the review list shows it.

    `highlighted` is the content as safe Markdown: special characters escaped and, when the list
    was searched, the matched words in `**bold**`.
    """

    id: int
    fragment_code: str
    source_id: int
    source_code: str
    batch_id: int
    batch_code: str
    model_name: str
    chunk_id: int | None
    category: str
    fragment_type: str
    content: str
    highlighted: str
    insight: str | None
    location_in_source: str | None
    relevance: int
    confidence: float
    verified: bool
    verified_by: str | None
    verified_at: dt.datetime | None
    rejected: bool
    rejected_by: str | None
    rejected_at: dt.datetime | None

    @property
    def status(self) -> Status:
        """'verified', 'rejected' or 'pending'."""
        return "verified" if self.verified else "rejected" if self.rejected else "pending"

    @property
    def verdict_by(self) -> str | None:
        """Username of whoever gave the current verdict (None while pending)."""
        return self.verified_by if self.verified else self.rejected_by if self.rejected else None

    @property
    def verdict_at(self) -> dt.datetime | None:
        """When the current verdict was given (None while pending)."""
        return self.verified_at if self.verified else self.rejected_at if self.rejected else None


def markdown_escape(text: str) -> str:
    """`text` with Markdown (and Streamlit's `:color[...]`, `$math$`) special characters backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def highlight_to_markdown(headline: str) -> str:
    """A `ts_headline` result (with the private markers) as escaped Markdown with matches in bold."""
    out = []
    for i, part in enumerate(re.split(f"[{_START}{_STOP}]", headline)):
        escaped = markdown_escape(part)
        out.append(f"**{escaped}**" if i % 2 == 1 and escaped.strip() else escaped)
    return "".join(out)


def row_select(headline: ColumnElement[Any] | None = None) -> Select[Any]:
    """SELECT fragment, source code, batch code, model name, headline (NULL without one): what `to_row` takes."""
    cols: list[Any] = [Fragment, Source.source_code, ProcessingBatch.batch_code, ProcessingBatch.model_name]
    cols.append(headline.label("headline") if headline is not None else literal(None).label("headline"))
    return (
        select(*cols)
        .join(Source, Source.id == Fragment.source_id)
        .join(ProcessingBatch, ProcessingBatch.id == Fragment.batch_id)
    )


def to_row(fragment: Fragment, source_code: str, batch_code: str, model_name: str, headline: str | None) -> FragmentRow:
    """One `row_select` result as a `FragmentRow` (content highlighted when a headline came with it)."""
    return FragmentRow(
        id=fragment.id,
        fragment_code=fragment.fragment_code,
        source_id=fragment.source_id,
        source_code=source_code,
        batch_id=fragment.batch_id,
        batch_code=batch_code,
        model_name=model_name,
        chunk_id=fragment.chunk_id,
        category=fragment.category,
        fragment_type=fragment.fragment_type,
        content=fragment.content,
        highlighted=highlight_to_markdown(headline) if headline is not None else markdown_escape(fragment.content),
        insight=fragment.insight,
        location_in_source=fragment.location_in_source,
        relevance=int(fragment.relevance),
        confidence=float(fragment.confidence),
        verified=fragment.verified,
        verified_by=fragment.verified_by,
        verified_at=fragment.verified_at,
        rejected=fragment.rejected,
        rejected_by=fragment.rejected_by,
        rejected_at=fragment.rejected_at,
    )


def get_fragment_row(*, session: Session, fragment_id: int) -> FragmentRow:
    """One fragment as a `FragmentRow`.

    Raises:
        ReviewError: no such fragment.
    """
    found = session.execute(row_select().where(Fragment.id == fragment_id)).first()
    if found is None:
        raise ReviewError(f"No fragment {fragment_id}.")
    f, sc, bc, mn, hl = found
    return to_row(f, sc, bc, mn, hl)


def fragment_id_by_code(*, session: Session, code: str) -> int:
    """Id of the fragment with this code (case-insensitive, e.g. 'cog-000012').

    Raises:
        ReviewError: no fragment has this code.
    """
    clean = code.strip().upper()
    found = session.scalar(select(Fragment.id).where(Fragment.fragment_code == clean))
    if found is None:
        raise ReviewError(f"No fragment with code {clean or '(empty)'}.")
    return found


def fragment_for_review(session: Session, user: CurrentUser, fragment_id: int) -> Fragment:
    """The fragment, locked FOR UPDATE, once `user` may review fragments.

    Raises:
        ReviewError: the role cannot review, or no such fragment.
    """
    if not user.can(Permission.review_fragments):
        raise ReviewError(f"Your role ({user.role.value}) cannot review fragments.")
    fragment = session.get(Fragment, fragment_id, with_for_update=True)
    if fragment is None:
        raise ReviewError(f"No fragment {fragment_id}.")
    return fragment
