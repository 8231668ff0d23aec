"""The source text around a fragment (its located span, or its chunk's), read slice by slice."""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mmos_core.models import Fragment, Source, SourceChunk
from mmos_core.services.review.fragments import ReviewError


class SourceContext(NamedTuple):
    """Source text around a fragment: `before + match + after` is a contiguous slice of the source."""

    before: str
    match: str
    after: str
    location_label: str


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
