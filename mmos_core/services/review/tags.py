"""Tags and relationships between fragments: tag / untag, tag names, and typed relationships
(supports, contradicts, elaborates, duplicates) seen from either end.

Every function takes `session=` and never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from mmos_core.core.domain import RelationshipType
from mmos_core.models import Fragment, FragmentRelationship, FragmentTag, Tag
from mmos_core.services.auth import CurrentUser
from mmos_core.services.review.fragments import ReviewError, fragment_for_review

# --- tags -----------------------------------------------------------------------------------------


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
    fragment = fragment_for_review(session, user, fragment_id)
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
    fragment = fragment_for_review(session, user, fragment_id)
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


# --- relationships --------------------------------------------------------------------------------


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
    fragment = fragment_for_review(session, user, fragment_id)
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
