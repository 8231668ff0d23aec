"""Finding fragments to review: filters and paging (`FragmentFilter`), Postgres full-text search with
highlighted matches, semantic search and "more like this" on the fragments' embeddings (pgvector),
and the values the filters can take.

Every function takes `session=` and never commits. A semantic search is audited in `asi_inferences`
(`mmos_core.services.inference_log.log_search_query`); a failure to log never fails the search.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from mmos_core.core.vectors import Embed
from mmos_core.models import Fragment, ProcessingBatch, Source
from mmos_core.services.inference_log import log_search_query
from mmos_core.services.model_registry import cached_registry_embedder, default_model
from mmos_core.services.review.fragments import (
    HEADLINE_OPTIONS,
    STATUSES,
    FragmentRow,
    ReviewError,
    Status,
    row_select,
    to_row,
)

log = logging.getLogger(__name__)

#: Page sizes the review list offers; `search_fragments` refuses pages larger than MAX_PAGE_SIZE.
PAGE_SIZES: tuple[int, ...] = (10, 25, 50, 100)
MAX_PAGE_SIZE = 200


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


# --- filters and full-text search -----------------------------------------------------------------


def _tsquery(query: str) -> ColumnElement[Any]:
    return func.websearch_to_tsquery("english", query)


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
        headline = func.ts_headline("english", Fragment.content, tsq, HEADLINE_OPTIONS)
        order: list[Any] = [func.ts_rank(Fragment.search_vector, tsq).desc(), Fragment.id.desc()]
        stmt = row_select(headline)
    else:
        order = [Fragment.id.desc()]
        stmt = row_select()
    stmt = stmt.where(*cond).order_by(*order).limit(flt.page_size).offset((flt.page - 1) * flt.page_size)
    rows = [to_row(f, sc, bc, mn, hl) for f, sc, bc, mn, hl in session.execute(stmt)]
    return FragmentPage(rows=rows, total=total, page=flt.page, page_size=flt.page_size)


# --- semantic search ------------------------------------------------------------------------------


def _nearest(session: Session, vector: Sequence[float], limit: int, cond: list[ColumnElement[bool]]) -> list[SimilarFragment]:
    distance = Fragment.embedding.cosine_distance(list(map(float, vector)))
    stmt = (
        row_select()
        .add_columns(distance.label("distance"))
        .where(Fragment.embedding.is_not(None), *cond)
        .order_by(distance, Fragment.id)
        .limit(limit)
    )
    return [
        SimilarFragment(row=to_row(f, sc, bc, mn, hl), similarity=1.0 - float(d))
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
    embed = embed or cached_registry_embedder().embed
    started = time.perf_counter()
    vector = np.asarray(embed([query.strip()]), dtype=np.float32)[0]
    _log_search(session, query.strip(), vector, (time.perf_counter() - started) * 1000, embed)
    cond: list[ColumnElement[bool]] = []
    if flt is not None:
        plain = FragmentFilter(**{**flt.__dict__, "query": None})
        cond = _where(plain)
    return _nearest(session, vector.tolist(), limit, cond)


def _log_search(session: Session, query: str, vector: np.ndarray, elapsed_ms: float, embed: Embed) -> None:
    """Audit the search query in asi_inferences; a logging failure never fails the search."""
    try:
        with session.begin_nested():
            model = default_model(session=session)
            log_search_query(
                session=session, query=query, embedding=vector, processing_time_ms=elapsed_ms, embed=embed,
                model_id=model.id if model else None,
            )
    except Exception:
        log.exception("search query not logged")


# --- filter choices -------------------------------------------------------------------------------


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
