"""Fragment review: filtered, paginated search (Postgres full text and pgvector), verdicts, edits,
tags, relationships and the source text around a fragment.

Every function takes `session=` and never commits; the page action owns the transaction. Verdicts
belong to their author (see `mmos_core.auth.can_change_verdict`): a reviewer cannot change another
reviewer's verdict, an admin can.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from mmos_core.auth import CurrentUser, Permission, can_change_verdict
from mmos_core.domain import CATEGORIES, RelationshipType
from mmos_core.models import (
    Fragment,
    FragmentEdit,
    FragmentRelationship,
    FragmentTag,
    ProcessingBatch,
    Source,
    SourceChunk,
    Tag,
    User,
)

log = logging.getLogger(__name__)

#: Text of a list of strings → (n, 384) float32 L2-normalised embeddings.
Embed = Callable[[Sequence[str]], np.ndarray]

Status = Literal["pending", "verified", "rejected"]
STATUSES: tuple[str, ...] = ("pending", "verified", "rejected")
PAGE_SIZES: tuple[int, ...] = (10, 25, 50, 100)
MAX_PAGE_SIZE = 200
EDITABLE_FIELDS: tuple[str, ...] = ("content", "category", "insight")

# Markers handed to ts_headline; private-use code points never typed by people or models.
_START, _STOP = "\ue000", "\ue001"
_HEADLINE_OPTIONS = f"StartSel={_START}, StopSel={_STOP}, HighlightAll=true"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:=])")


class ReviewError(ValueError):
    """A review action refused (permission, verdict owner, bad value, unknown fragment); safe to show."""


@dataclass
class FragmentFilter:
    """What the review list shows. `None` (or empty) means no restriction on that field.

    `relevance_min`/`relevance_max` are inclusive (1-10); `query` is a web-search style full-text
    query (`"quoted phrase"`, `or`, `-word`); `page` starts at 1.
    """

    source_id: int | None = None
    batch_id: int | None = None
    model_name: str | None = None
    category: str | None = None
    fragment_type: str | None = None
    status: Status | None = None
    relevance_min: int | None = None
    relevance_max: int | None = None
    query: str | None = None
    page: int = 1
    page_size: int = 25


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


@dataclass(frozen=True)
class FragmentPage:
    """One page of results: rows in order, `total` matches over all pages, the page and its size."""

    rows: list[FragmentRow]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class SimilarFragment:
    """A fragment close to a query or another fragment; `similarity` is cosine, 1 = same direction."""

    row: FragmentRow
    similarity: float


@dataclass(frozen=True)
class EditEntry:
    """One changed field in a fragment's history (newest first in `edit_history`)."""

    field: str
    old_value: str | None
    new_value: str | None
    username: str | None
    edited_at: dt.datetime


@dataclass(frozen=True)
class RelationView:
    """A relationship seen from one fragment: `direction` 'outgoing' (this → other) or 'incoming'."""

    id: int
    direction: Literal["outgoing", "incoming"]
    relationship_type: str
    other_id: int
    other_code: str
    other_content: str
    note: str | None
    created_by: str | None


class SourceContext(NamedTuple):
    """Source text around a fragment: `before + match + after` is a contiguous slice of the source."""

    before: str
    match: str
    after: str
    location_label: str


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


def _tsquery(query: str) -> ColumnElement[Any]:
    return func.websearch_to_tsquery("english", query)


def _row_select(headline: ColumnElement[Any] | None = None) -> Select[Any]:
    cols: list[Any] = [Fragment, Source.source_code, ProcessingBatch.batch_code, ProcessingBatch.model_name]
    cols.append(headline.label("headline") if headline is not None else literal(None).label("headline"))
    return (
        select(*cols)
        .join(Source, Source.id == Fragment.source_id)
        .join(ProcessingBatch, ProcessingBatch.id == Fragment.batch_id)
    )


def _where(flt: FragmentFilter) -> list[ColumnElement[bool]]:
    cond: list[ColumnElement[bool]] = []
    if flt.source_id is not None:
        cond.append(Fragment.source_id == flt.source_id)
    if flt.batch_id is not None:
        cond.append(Fragment.batch_id == flt.batch_id)
    if flt.model_name:
        cond.append(ProcessingBatch.model_name == flt.model_name)
    if flt.category:
        cond.append(Fragment.category == flt.category)
    if flt.fragment_type:
        cond.append(Fragment.fragment_type == flt.fragment_type)
    if flt.status == "verified":
        cond.append(Fragment.verified.is_(True))
    elif flt.status == "rejected":
        cond.append(Fragment.rejected.is_(True))
    elif flt.status == "pending":
        cond.extend([Fragment.verified.is_(False), Fragment.rejected.is_(False)])
    elif flt.status is not None:
        raise ReviewError(f"Unknown status {flt.status!r}; use one of {', '.join(STATUSES)}.")
    if flt.relevance_min is not None:
        cond.append(Fragment.relevance >= flt.relevance_min)
    if flt.relevance_max is not None:
        cond.append(Fragment.relevance <= flt.relevance_max)
    if flt.query and flt.query.strip():
        cond.append(Fragment.search_vector.bool_op("@@")(_tsquery(flt.query.strip())))
    return cond


def _to_row(fragment: Fragment, source_code: str, batch_code: str, model_name: str, headline: str | None) -> FragmentRow:
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


def search_fragments(*, session: Session, flt: FragmentFilter) -> FragmentPage:
    """One page of fragments matching `flt`, and how many match in all (two queries).

    Without a query the order is newest first (by id); with one, best `ts_rank` first, then id.
    Full text runs on the generated `fragments.search_vector` (content, insight and context; GIN
    index `idx_fragment_search`) with `websearch_to_tsquery('english', query)`; matched words of
    the content come back in bold in `FragmentRow.highlighted`. A page past the end is empty.

    Raises:
        ReviewError: unknown status, page < 1, or page size outside 1-MAX_PAGE_SIZE.
    """
    if flt.page < 1:
        raise ReviewError("Pages start at 1.")
    if not 1 <= flt.page_size <= MAX_PAGE_SIZE:
        raise ReviewError(f"Page size must be between 1 and {MAX_PAGE_SIZE}.")
    cond = _where(flt)
    total_q = select(func.count()).select_from(Fragment)
    if flt.model_name:
        total_q = total_q.join(ProcessingBatch, ProcessingBatch.id == Fragment.batch_id)
    total = int(session.scalar(total_q.where(*cond)) or 0)

    query = (flt.query or "").strip()
    if query:
        tsq = _tsquery(query)
        headline = func.ts_headline("english", Fragment.content, tsq, _HEADLINE_OPTIONS)
        order: list[Any] = [func.ts_rank(Fragment.search_vector, tsq).desc(), Fragment.id.desc()]
        stmt = _row_select(headline)
    else:
        order = [Fragment.id.desc()]
        stmt = _row_select()
    stmt = stmt.where(*cond).order_by(*order).limit(flt.page_size).offset((flt.page - 1) * flt.page_size)
    rows = [_to_row(f, sc, bc, mn, hl) for f, sc, bc, mn, hl in session.execute(stmt)]
    return FragmentPage(rows=rows, total=total, page=flt.page, page_size=flt.page_size)


def get_fragment_row(*, session: Session, fragment_id: int) -> FragmentRow:
    """One fragment as a `FragmentRow`.

    Raises:
        ReviewError: no such fragment.
    """
    found = session.execute(_row_select().where(Fragment.id == fragment_id)).first()
    if found is None:
        raise ReviewError(f"No fragment {fragment_id}.")
    f, sc, bc, mn, hl = found
    return _to_row(f, sc, bc, mn, hl)


def _nearest(session: Session, vector: Sequence[float], limit: int, cond: list[ColumnElement[bool]]) -> list[SimilarFragment]:
    distance = Fragment.embedding.cosine_distance(list(map(float, vector)))
    stmt = (
        _row_select()
        .add_columns(distance.label("distance"))
        .where(Fragment.embedding.is_not(None), *cond)
        .order_by(distance, Fragment.id)
        .limit(limit)
    )
    return [
        SimilarFragment(row=_to_row(f, sc, bc, mn, hl), similarity=1.0 - float(d))
        for f, sc, bc, mn, hl, d in session.execute(stmt)
    ]


def more_like_this(*, session: Session, fragment_id: int, limit: int = 10) -> list[SimilarFragment]:
    """The `limit` fragments nearest to this one by cosine distance of their embeddings (HNSW index
    `idx_fragment_embedding`), most similar first, the fragment itself excluded.

    Returns [] when the fragment has no embedding.

    Raises:
        ReviewError: no such fragment.
    """
    fragment = session.get(Fragment, fragment_id)
    if fragment is None:
        raise ReviewError(f"No fragment {fragment_id}.")
    if fragment.embedding is None:
        return []
    return _nearest(session, fragment.embedding, limit, [Fragment.id != fragment_id])


def _default_embed() -> Embed:
    from mmos_core.services.model_registry import cached_registry_embedder

    return cached_registry_embedder().embed


def semantic_search(
    *,
    session: Session,
    query: str,
    limit: int = 20,
    embed: Embed | None = None,
    flt: FragmentFilter | None = None,
) -> list[SimilarFragment]:
    """Fragments whose embedding is nearest to the embedding of `query`, most similar first.

    `embed` defaults to the ONNX all-MiniLM-L6-v2 embedder through the model registry and the Redis embedding cache. When `flt`
    is given its filters (not its text query or paging) also apply.

    Raises:
        ReviewError: empty query.
        mmos_core.embeddings.embedder.EmbedderUnavailable: the default embedder is not provisioned.
    """
    if not query or not query.strip():
        raise ReviewError("Type something to search for.")
    embed = embed or _default_embed()
    started = time.perf_counter()
    vector = np.asarray(embed([query.strip()]), dtype=np.float32)[0]
    _log_search(session, query.strip(), vector, (time.perf_counter() - started) * 1000, embed)
    cond: list[ColumnElement[bool]] = []
    if flt is not None:
        plain = FragmentFilter(**{**flt.__dict__, "query": None})
        cond = _where(plain)
    return _nearest(session, vector.tolist(), limit, cond)


# --- verdicts ----------------------------------------------------------------------------------


def _fragment_for_review(session: Session, user: CurrentUser, fragment_id: int) -> Fragment:
    if not user.can(Permission.review_fragments):
        raise ReviewError(f"Your role ({user.role.value}) cannot review fragments.")
    fragment = session.get(Fragment, fragment_id, with_for_update=True)
    if fragment is None:
        raise ReviewError(f"No fragment {fragment_id}.")
    return fragment


def _verdict_by(fragment: Fragment) -> str | None:
    return fragment.verified_by if fragment.verified else fragment.rejected_by if fragment.rejected else None


def _check_owner(user: CurrentUser, fragment: Fragment) -> None:
    author = _verdict_by(fragment)
    if not can_change_verdict(user, author):
        raise ReviewError(
            f"{fragment.fragment_code} was judged by {author}; only they or an admin can change that verdict."
        )


def _set_verdict(fragment: Fragment, *, verified: bool, rejected: bool, username: str | None) -> None:
    now = dt.datetime.now(dt.UTC)
    fragment.verified = verified
    fragment.verified_by = username if verified else None
    fragment.verified_at = now if verified else None
    fragment.rejected = rejected
    fragment.rejected_by = username if rejected else None
    fragment.rejected_at = now if rejected else None


def verify(*, session: Session, user: CurrentUser, fragment_id: int) -> Fragment:
    """Mark the fragment verified by `user` (now), clearing any rejection. Does not commit.

    Raises:
        ReviewError: the role cannot review, unknown fragment, or the current verdict is someone
            else's and the user may not override it.
    """
    fragment = _fragment_for_review(session, user, fragment_id)
    _check_owner(user, fragment)
    _set_verdict(fragment, verified=True, rejected=False, username=user.username)
    session.flush()
    return fragment


def reject(*, session: Session, user: CurrentUser, fragment_id: int) -> Fragment:
    """Mark the fragment rejected by `user` (now), clearing any verification. Does not commit.

    Raises:
        ReviewError: as `verify`.
    """
    fragment = _fragment_for_review(session, user, fragment_id)
    _check_owner(user, fragment)
    _set_verdict(fragment, verified=False, rejected=True, username=user.username)
    session.flush()
    return fragment


def reset_verdict(*, session: Session, user: CurrentUser, fragment_id: int) -> Fragment:
    """Put the fragment back to pending (no verdict). Does not commit.

    Raises:
        ReviewError: as `verify`.
    """
    fragment = _fragment_for_review(session, user, fragment_id)
    _check_owner(user, fragment)
    _set_verdict(fragment, verified=False, rejected=False, username=None)
    session.flush()
    return fragment


# --- edits -------------------------------------------------------------------------------------


def edit_fragment(
    *,
    session: Session,
    user: CurrentUser,
    fragment_id: int,
    content: str | None = None,
    category: str | None = None,
    insight: str | None = None,
    embed: Embed | None = None,
) -> list[FragmentEdit]:
    """Change some of content, category and insight; one `FragmentEdit` row per field that changed.

    `None` leaves a field as it is; an empty insight clears it. A new content gets a new embedding
    from `embed` (default: the ONNX embedder); the full-text column is generated by Postgres.
    Does not commit.

    Returns:
        The edit rows written (empty when nothing changed).
    Raises:
        ReviewError: the role cannot review, unknown fragment, empty content, unknown category.
    """
    fragment = _fragment_for_review(session, user, fragment_id)
    changes: dict[str, str | None] = {}
    if content is not None:
        content = content.strip()
        if not content:
            raise ReviewError("A fragment's content cannot be empty.")
        if content != fragment.content:
            changes["content"] = content
    if category is not None:
        if category not in CATEGORIES:
            raise ReviewError(f"Unknown category {category!r}; use one of {', '.join(CATEGORIES)}.")
        if category != fragment.category:
            changes["category"] = category
    if insight is not None:
        new_insight = insight.strip() or None
        if new_insight != fragment.insight:
            changes["insight"] = new_insight
    edits = []
    for field, new in changes.items():
        old = getattr(fragment, field)
        edits.append(FragmentEdit(fragment_id=fragment.id, user_id=user.id, field=field, old_value=old, new_value=new))
        setattr(fragment, field, new)
    if "content" in changes:
        embed = embed or _default_embed()
        fragment.embedding = np.asarray(embed([fragment.content]), dtype=np.float32)[0].tolist()
    if "category" in changes:
        _record_correction(session, fragment.id, str(changes["category"]), user.id, embed)
    session.add_all(edits)
    session.flush()
    return edits


def edit_history(*, session: Session, fragment_id: int) -> list[EditEntry]:
    """Every recorded field change of a fragment, newest first, with the editor's username."""
    rows = session.execute(
        select(FragmentEdit, User.username)
        .outerjoin(User, User.id == FragmentEdit.user_id)
        .where(FragmentEdit.fragment_id == fragment_id)
        .order_by(FragmentEdit.edited_at.desc(), FragmentEdit.id.desc())
    )
    return [EditEntry(e.field, e.old_value, e.new_value, name, e.edited_at) for e, name in rows]


# --- tags --------------------------------------------------------------------------------------


def _tag_name(name: str) -> str:
    clean = " ".join(name.split()).lower()
    if not clean:
        raise ReviewError("A tag needs a name.")
    if len(clean) > 100:
        raise ReviewError("Tag names have at most 100 characters.")
    return clean


def add_tag(*, session: Session, user: CurrentUser, fragment_id: int, name: str) -> Tag:
    """Tag the fragment with `name` (trimmed, lower-cased; the tag is created when new). Tagging
    twice is harmless. Does not commit.

    Raises:
        ReviewError: the role cannot review, unknown fragment, empty or over-long name.
    """
    fragment = _fragment_for_review(session, user, fragment_id)
    clean = _tag_name(name)
    tag = session.scalar(select(Tag).where(Tag.name == clean))
    if tag is None:
        tag = Tag(name=clean)
        session.add(tag)
        session.flush()
    if session.get(FragmentTag, (fragment.id, tag.id)) is None:
        session.add(FragmentTag(fragment_id=fragment.id, tag_id=tag.id, tagged_by=user.username))
        session.flush()
    return tag


def remove_tag(*, session: Session, user: CurrentUser, fragment_id: int, name: str) -> bool:
    """Untag the fragment (the tag itself stays). Returns whether it was tagged. Does not commit.

    Raises:
        ReviewError: the role cannot review, unknown fragment.
    """
    fragment = _fragment_for_review(session, user, fragment_id)
    tag_id = session.scalar(select(Tag.id).where(Tag.name == _tag_name(name)))
    link = session.get(FragmentTag, (fragment.id, tag_id)) if tag_id is not None else None
    if link is None:
        return False
    session.delete(link)
    session.flush()
    return True


def tags_of(*, session: Session, fragment_id: int) -> list[str]:
    """Names of the fragment's tags, alphabetical."""
    return list(
        session.scalars(
            select(Tag.name).join(FragmentTag, FragmentTag.tag_id == Tag.id).where(FragmentTag.fragment_id == fragment_id).order_by(Tag.name)
        )
    )


def all_tags(*, session: Session) -> list[str]:
    """Every tag name, alphabetical (for suggestions)."""
    return list(session.scalars(select(Tag.name).order_by(Tag.name)))


# --- relationships -----------------------------------------------------------------------------


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


def relate(
    *,
    session: Session,
    user: CurrentUser,
    fragment_id: int,
    related_fragment_id: int,
    relationship_type: RelationshipType | str,
    note: str | None = None,
) -> FragmentRelationship:
    """Record `fragment → related` of a type (supports, contradicts, elaborates, duplicates). Does not commit.

    Raises:
        ReviewError: the role cannot review, unknown fragment(s), unknown type, a fragment related
            to itself, or the same relationship already recorded.
    """
    fragment = _fragment_for_review(session, user, fragment_id)
    try:
        kind = RelationshipType(relationship_type)
    except ValueError:
        raise ReviewError(
            f"Unknown relationship {relationship_type!r}; use one of {', '.join(t.value for t in RelationshipType)}."
        ) from None
    if related_fragment_id == fragment_id:
        raise ReviewError("A fragment cannot be related to itself.")
    other = session.get(Fragment, related_fragment_id)
    if other is None:
        raise ReviewError(f"No fragment {related_fragment_id}.")
    exists = session.scalar(
        select(FragmentRelationship.id).where(
            FragmentRelationship.fragment_id == fragment_id,
            FragmentRelationship.related_fragment_id == related_fragment_id,
            FragmentRelationship.relationship_type == kind.value,
        )
    )
    if exists is not None:
        raise ReviewError(f"{fragment.fragment_code} already {kind.value} {other.fragment_code}.")
    rel = FragmentRelationship(
        fragment_id=fragment_id,
        related_fragment_id=related_fragment_id,
        relationship_type=kind.value,
        note=(note or "").strip() or None,
        created_by=user.username,
    )
    session.add(rel)
    session.flush()
    return rel


def relationships_of(*, session: Session, fragment_id: int) -> list[RelationView]:
    """Relationships from and to this fragment (outgoing first, then incoming; oldest first in each)."""
    other = aliased(Fragment)
    rows = session.execute(
        select(FragmentRelationship, other.id, other.fragment_code, other.content)
        .join(
            other,
            or_(
                and_(FragmentRelationship.fragment_id == fragment_id, other.id == FragmentRelationship.related_fragment_id),
                and_(FragmentRelationship.related_fragment_id == fragment_id, other.id == FragmentRelationship.fragment_id),
            ),
        )
        .where(or_(FragmentRelationship.fragment_id == fragment_id, FragmentRelationship.related_fragment_id == fragment_id))
        .order_by(FragmentRelationship.id)
    )
    views = [
        RelationView(
            id=r.id,
            direction="outgoing" if r.fragment_id == fragment_id else "incoming",
            relationship_type=r.relationship_type,
            other_id=oid,
            other_code=code,
            other_content=content,
            note=r.note,
            created_by=r.created_by,
        )
        for r, oid, code, content in rows
    ]
    return sorted(views, key=lambda v: v.direction != "outgoing")


# --- source context ----------------------------------------------------------------------------


def source_context(*, session: Session, fragment_id: int, chars: int = 400) -> SourceContext:
    """The source text of the fragment (`match`) with up to `chars` characters either side.

    Uses the fragment's located span (`char_start:char_end`); when it was not located, its chunk's
    span. Only the needed slices are read from the database, never the whole source.

    Raises:
        ReviewError: unknown fragment, or a fragment with neither a located span nor a chunk.
    """
    found = session.execute(
        select(Fragment.char_start, Fragment.char_end, Fragment.location_in_source, Fragment.source_id, SourceChunk)
        .outerjoin(SourceChunk, SourceChunk.id == Fragment.chunk_id)
        .where(Fragment.id == fragment_id)
    ).first()
    if found is None:
        raise ReviewError(f"No fragment {fragment_id}.")
    start, end, label, source_id, chunk = found
    if start is None or end is None:
        if chunk is None:
            raise ReviewError("This fragment was not located in its source and has no chunk.")
        start, end = chunk.char_start, chunk.char_end
    if chunk is not None and not label:
        label = chunk.location_label
    lo = max(0, start - chars)
    # substr is 1-based; lengths past the end are fine
    before, match, after = session.execute(
        select(
            func.substr(Source.content, lo + 1, start - lo),
            func.substr(Source.content, start + 1, end - start),
            func.substr(Source.content, end + 1, chars),
        ).where(Source.id == source_id)
    ).one()
    return SourceContext(before or "", match or "", after or "", label or "")


# --- filter choices ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterChoices:
    """Values the filters can take: sources and batches as (id, label), model names."""

    sources: list[tuple[int, str]]
    batches: list[tuple[int, str]]
    models: list[str]


def filter_choices(*, session: Session, source_id: int | None = None) -> FilterChoices:
    """Sources and batches that have fragments (batches of `source_id` only, when given) and their models."""
    sources = [
        (sid, f"{code} — {title}")
        for sid, code, title in session.execute(
            select(Source.id, Source.source_code, Source.title)
            .where(select(Fragment.id).where(Fragment.source_id == Source.id).exists())
            .order_by(Source.source_code)
        )
    ]
    bq = select(ProcessingBatch.id, ProcessingBatch.batch_code, ProcessingBatch.model_name).where(
        select(Fragment.id).where(Fragment.batch_id == ProcessingBatch.id).exists()
    )
    if source_id is not None:
        bq = bq.where(select(Fragment.id).where(Fragment.batch_id == ProcessingBatch.id, Fragment.source_id == source_id).exists())
    batch_rows = session.execute(bq.order_by(ProcessingBatch.id)).all()
    models = sorted({m for _, _, m in batch_rows})
    return FilterChoices(sources=sources, batches=[(b, f"{code} · {m}") for b, code, m in batch_rows], models=models)


__all__ = [
    "EDITABLE_FIELDS",
    "PAGE_SIZES",
    "STATUSES",
    "EditEntry",
    "FilterChoices",
    "FragmentFilter",
    "FragmentPage",
    "FragmentRow",
    "RelationView",
    "ReviewError",
    "SimilarFragment",
    "SourceContext",
    "add_tag",
    "all_tags",
    "edit_fragment",
    "edit_history",
    "filter_choices",
    "fragment_id_by_code",
    "get_fragment_row",
    "highlight_to_markdown",
    "markdown_escape",
    "more_like_this",
    "reject",
    "relate",
    "relationships_of",
    "remove_tag",
    "reset_verdict",
    "search_fragments",
    "semantic_search",
    "source_context",
    "tags_of",
    "verify",
]


def _record_correction(session: Session, fragment_id: int, expected: str, user_id: int, embed: Embed | None) -> None:
    """A reviewer's category change becomes a training sample (expected vs zero-shot predicted, seed 003)."""
    from mmos_core.embeddings.embedder import EmbedderUnavailable
    from mmos_core.services.inference_log import record_category_correction

    try:
        with session.begin_nested():
            record_category_correction(
                session=session, fragment_id=fragment_id, expected_category=expected, user_id=user_id,
                embed=embed or _default_embed(),
            )
    except EmbedderUnavailable:
        log.warning("category correction of fragment %s not kept as a training sample: no embedder", fragment_id)


def _log_search(session: Session, query: str, vector: np.ndarray, elapsed_ms: float, embed: Embed) -> None:
    """Audit the search query in asi_inferences; a logging failure never fails the search."""
    from mmos_core.services.inference_log import log_search_query

    try:
        with session.begin_nested():
            from mmos_core.services.model_registry import default_model

            model = default_model(session=session)
            log_search_query(
                session=session, query=query, embedding=vector, processing_time_ms=elapsed_ms, embed=embed,
                model_id=model.id if model else None,
            )
    except Exception:
        log.exception("search query not logged")
