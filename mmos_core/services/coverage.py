"""Category coverage of a person or a set of sources, and contradicting fragments (the core design sections 5B and 6A).

Counts are aggregated in SQL (one GROUP BY over the fragments of the chosen sources), so the page
stays fast with tens of thousands of fragments. Rejected fragments never count.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from mmos_core.core.domain import CATEGORIES, RelationshipType
from mmos_core.models import Fragment, FragmentRelationship, Source

#: The core design's gap rule (view `v_fragment_coverage`): fewer than 10 is a critical gap, fewer than 25 needs attention.
CRITICAL_BELOW = 10
ATTENTION_BELOW = 25

CRITICAL_GAP = "CRITICAL GAP"
NEEDS_ATTENTION = "Needs attention"
ADEQUATE = "Adequate"


def gap_status(fragment_count: int) -> str:
    """The core design's status of a category with this many (non-rejected) fragments."""
    if fragment_count < CRITICAL_BELOW:
        return CRITICAL_GAP
    if fragment_count < ATTENTION_BELOW:
        return NEEDS_ATTENTION
    return ADEQUATE


@dataclass(frozen=True)
class CategoryCoverage:
    """One of the 8 categories: fragments, verified share (%), distinct sources, mean relevance, gap status."""

    category: str
    fragment_count: int
    verified_count: int
    verification_rate: float | None
    source_diversity: int
    avg_relevance: float | None
    status: str


def _scope(q: Select, person: str | None, source_ids: list[int] | None) -> Select:
    if source_ids is not None:
        q = q.where(Fragment.source_id.in_(source_ids))
    if person is not None:
        q = q.where(Fragment.source_id.in_(select(Source.id).where(Source.person == person)))
    return q


def category_coverage(
    *, session: Session, person: str | None = None, source_ids: list[int] | None = None
) -> list[CategoryCoverage]:
    """Coverage of the 8 categories over the non-rejected fragments of a person's sources and/or the given sources.

    Args:
        person: only sources whose `person` is this; None for no person filter.
        source_ids: only these sources; None for no source filter (an empty list means no fragments).
    Returns:
        The 8 categories in taxonomy order, empty ones included (count 0, CRITICAL GAP).
    """
    q = select(
        Fragment.category,
        func.count().label("n"),
        func.count().filter(Fragment.verified).label("verified"),
        func.count(func.distinct(Fragment.source_id)).label("sources"),
        func.avg(Fragment.relevance).label("relevance"),
    ).where(Fragment.rejected.is_(False))
    q = _scope(q, person, source_ids).group_by(Fragment.category)
    rows = {r.category: r for r in session.execute(q)}
    out = []
    for category in CATEGORIES:
        r = rows.get(category)
        n = int(r.n) if r else 0
        verified = int(r.verified) if r else 0
        out.append(
            CategoryCoverage(
                category=category,
                fragment_count=n,
                verified_count=verified,
                verification_rate=round(verified / n * 100, 2) if n else None,
                source_diversity=int(r.sources) if r else 0,
                avg_relevance=round(float(r.relevance), 2) if r and r.relevance is not None else None,
                status=gap_status(n),
            )
        )
    return out


@dataclass(frozen=True)
class Contradiction:
    """Two fragments marked as contradicting each other, side by side."""

    fragment_id: int
    fragment_code: str
    content: str
    relevance: int
    source_code: str
    related_fragment_id: int
    related_fragment_code: str
    related_content: str
    related_relevance: int
    related_source_code: str
    category: str
    note: str | None


def contradictions(
    *, session: Session, person: str | None = None, source_ids: list[int] | None = None, limit: int = 200
) -> list[Contradiction]:
    """The core design QA query 6A: pairs related as 'contradicts' where either side is in scope, most relevant first.

    Rejected fragments are left out, as in the coverage counts.
    """
    f1 = aliased(Fragment)
    f2 = aliased(Fragment)
    s1 = aliased(Source)
    s2 = aliased(Source)
    q = (
        select(FragmentRelationship.note, f1, f2, s1.source_code, s2.source_code)
        .join(f1, f1.id == FragmentRelationship.fragment_id)
        .join(f2, f2.id == FragmentRelationship.related_fragment_id)
        .join(s1, s1.id == f1.source_id)
        .join(s2, s2.id == f2.source_id)
        .where(
            FragmentRelationship.relationship_type == RelationshipType.contradicts.value,
            f1.rejected.is_(False),
            f2.rejected.is_(False),
        )
        .order_by(f1.relevance.desc(), f2.relevance.desc(), FragmentRelationship.id)
        .limit(limit)
    )
    if source_ids is not None:
        q = q.where((f1.source_id.in_(source_ids)) | (f2.source_id.in_(source_ids)))
    if person is not None:
        q = q.where((s1.person == person) | (s2.person == person))
    return [
        Contradiction(
            fragment_id=a.id,
            fragment_code=a.fragment_code,
            content=a.content,
            relevance=a.relevance,
            source_code=code_a,
            related_fragment_id=b.id,
            related_fragment_code=b.fragment_code,
            related_content=b.content,
            related_relevance=b.relevance,
            related_source_code=code_b,
            category=a.category,
            note=note,
        )
        for note, a, b, code_a, code_b in session.execute(q).all()
    ]


def people(*, session: Session) -> list[str]:
    """Distinct non-empty `sources.person` values, alphabetically."""
    return list(
        session.scalars(
            select(Source.person).where(Source.person.is_not(None), Source.person != "").distinct().order_by(Source.person)
        )
    )


@dataclass(frozen=True)
class SourceChoice:
    """A source offered in the coverage page's multiselect."""

    source_id: int
    source_code: str
    title: str
    person: str | None


def source_choices(*, session: Session) -> list[SourceChoice]:
    """Every source (id, code, title, person), by code."""
    rows = session.execute(select(Source.id, Source.source_code, Source.title, Source.person).order_by(Source.source_code))
    return [SourceChoice(source_id=i, source_code=c, title=t, person=p) for i, c, t, p in rows]
