"""A cheap fingerprint of the data the quality figures are computed from (docs/quality.md).

Pages cache expensive read-only reports (pooled quality per model, the sweet spot, cascade replay,
cross-batch QA, calibration) keyed on `data_version`: one query of small aggregates that changes
whenever a row those reports read is added, reviewed, judged, checked or deleted, so a rerun with
unchanged data reuses the cached figures and any change recomputes them (bench/README.md, page timings).

When the data did change, most of it is usually unchanged: a verdict, a check or a new batch touches one
source. `source_versions` fingerprints every source (computed once per `data_version`), and the services
keep each source's share of a report in `per_source` under that source's fingerprint, so the first render
after a change recomputes only the sources that moved and adds up the rest (docs/quality.md, "Reports at scale").
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from sqlalchemy import func, literal_column, select, union_all
from sqlalchemy.orm import Session

from mmos_core.models import (
    AsiInference,
    ExtractionCall,
    Fragment,
    FragmentCheck,
    FragmentEdit,
    FragmentRelationship,
    JudgeVerdict,
    ModelPerformance,
    ProcessingBatch,
    ReviewVerdict,
    Source,
    SourceProcessing,
    UserFeedback,
)

T = TypeVar("T")


def data_version(*, session: Session) -> tuple:
    """Aggregates that move with every change quality, replay, QA and calibration can see, in one query.

    Fragments: count, max id and how many are verified / rejected (index-only scans of the primary key
    and `ix_fragments_review`; a max over `verified_at` would read the whole table, ~75 ms at 100,000);
    a reviewer's verdict also upserts or deletes their `review_verdicts` row (services/review/verdicts.py),
    so its count and latest `updated_at` catch a verify and an un-verify between two reruns. Then edits,
    relationships, checks, judge verdicts, feedback, grounding audit rows, calls, batches (count,
    completed ones, latest completion, total cost), their source links, sources and model_performance rows.
    Last, creation times (of the newest source, batch and fragment): ids restart when tables are emptied
    (tests), and two databases with the same counts must not share a fingerprint.
    """
    def scalar(col, *where):
        return select(col).where(*where).scalar_subquery()

    row = session.execute(select(
        scalar(func.count(Fragment.id)), scalar(func.max(Fragment.id)),
        scalar(func.count(), Fragment.verified.is_(True)), scalar(func.count(), Fragment.rejected.is_(True)),
        scalar(func.max(FragmentEdit.id)), scalar(func.count(FragmentRelationship.id)),
        scalar(func.max(FragmentRelationship.id)), scalar(func.count(FragmentCheck.fragment_id)),
        scalar(func.max(JudgeVerdict.id)), scalar(func.count(ReviewVerdict.id)), scalar(func.max(ReviewVerdict.updated_at)),
        scalar(func.count(UserFeedback.id)), scalar(func.max(UserFeedback.id)), scalar(func.max(AsiInference.id)),
        scalar(func.max(ExtractionCall.id)), scalar(func.count(ProcessingBatch.id)),
        scalar(func.count(), ProcessingBatch.batch_status == "completed"),
        scalar(func.max(ProcessingBatch.completed_at)), scalar(func.sum(ProcessingBatch.estimated_cost_usd)),
        scalar(func.count(SourceProcessing.id)), scalar(func.count(Source.id)), scalar(func.max(Source.id)),
        scalar(func.max(ModelPerformance.id)),
        scalar(func.max(Source.created_at)), scalar(func.max(ProcessingBatch.created_at)),
        select(Fragment.created_at).order_by(Fragment.id.desc()).limit(1).scalar_subquery(),
    )).one()
    return tuple(str(v) for v in row)


def _stamp(table: str) -> tuple:
    """Aggregates of a table's rows that move with every insert, update and delete, even one earlier in the same
    transaction: how many, and sums over each row version's inserting transaction (`xmin`) and its place
    (`ctid`, new for every version). Reading them costs a scan of the rows, no index."""
    return (func.count(), func.sum(_xmin(table)), func.sum(_place(table)))


def _xmin(table: str):
    return literal_column(f"{table}.xmin::text::bigint")


def _place(table: str):
    return func.hashtext(literal_column(f"'{table}:' || {table}.ctid::text"))


def _source_rows(session: Session) -> dict[int, list]:
    """Per source: `_stamp` of its own row, of its fragments, of the rows about them (verdicts, edits, checks,
    judge verdicts, grounding rows, feedback; one join, so the fragments are read twice, not once per kind),
    of feedback on its batches as a whole, of its batches and their links, and of the batches' calls."""
    out: dict[int, list] = {}

    def add(query) -> None:
        rows = {sid: tuple(str(v) for v in values) for sid, *values in session.execute(query)}
        for sid, parts in out.items():
            parts.append(rows.get(sid, ()))

    for sid, *values in session.execute(select(Source.id, *_stamp("sources")).group_by(Source.id)):
        out[sid] = [tuple(str(v) for v in values)]
    frag = Fragment.source_id
    add(select(frag, func.max(Fragment.id), *_stamp("fragments")).group_by(frag))

    def about(table, *where):
        name = table.__tablename__
        return select(table.fragment_id.label("fid"), _xmin(name).label("x"), _place(name).label("h")).where(*where)

    rows_about = union_all(
        about(ReviewVerdict), about(FragmentEdit), about(FragmentCheck), about(JudgeVerdict),
        about(AsiInference, AsiInference.kind == "fragment_grounding", AsiInference.fragment_id.is_not(None)),
        about(UserFeedback, UserFeedback.fragment_id.is_not(None)),
    ).subquery()
    add(select(frag, func.count(), func.sum(rows_about.c.x), func.sum(rows_about.c.h))
        .join(rows_about, rows_about.c.fid == Fragment.id).group_by(frag))
    link = SourceProcessing.source_id
    add(select(link, *_stamp("ai_user_feedback")).join(UserFeedback, UserFeedback.batch_id == SourceProcessing.batch_id)
        .where(UserFeedback.fragment_id.is_(None)).group_by(link))
    add(select(link, *_stamp("source_processing"), *_stamp("processing_batches"))
        .join(ProcessingBatch, ProcessingBatch.id == SourceProcessing.batch_id).group_by(link))
    add(select(link, *_stamp("extraction_calls"))
        .join(ExtractionCall, ExtractionCall.batch_id == SourceProcessing.batch_id).group_by(link))
    return out


_versions_lock = threading.Lock()
_versions: tuple[tuple, dict[int, tuple]] | None = None


def source_versions(*, session: Session) -> dict[int, tuple]:
    """A fingerprint per source id of everything its quality, replay, QA and calibration figures read: the source
    row, its fragments, their review verdicts, edits, checks, judge verdicts and grounding rows, feedback on
    them or on the source's batches, the batches, their links and their calls (`_stamp` of each: any insert,
    update or delete moves it).

    Computed at most once per `data_version` in a process (~10 grouped queries, ~0.1 s at 100,000 fragments,
    most of it one scan of the fragments; the global fingerprint, 6 ms, says whether anything moved)."""
    global _versions
    key = data_version(session=session)
    with _versions_lock:
        if _versions is not None and _versions[0] == key:
            return _versions[1]
    versions = {sid: tuple(parts) for sid, parts in _source_rows(session).items()}
    with _versions_lock:
        _versions = (key, versions)
    return versions


_memo_lock = threading.Lock()
_memo: OrderedDict[tuple, tuple[tuple, object]] = OrderedDict()
#: slots (report, source, parameters) kept; one version each, least recently used dropped first
MEMO_SLOTS = 4096


def per_source(report: str, source_id: int, version: tuple, params: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` for one source, remembered in this process under (report, source, params) for the source's
    fingerprint `version` (`source_versions`): a later call with the same fingerprint returns the same
    object, so callers must treat it as read-only. A newer fingerprint replaces the slot's value."""
    slot = (report, source_id, params)
    with _memo_lock:
        hit = _memo.get(slot)
        if hit is not None and hit[0] == version:
            _memo.move_to_end(slot)
            return hit[1]  # type: ignore[return-value]
    value = compute()
    with _memo_lock:
        _memo[slot] = (version, value)
        _memo.move_to_end(slot)
        while len(_memo) > MEMO_SLOTS:
            _memo.popitem(last=False)
    return value


def clear_memo() -> None:
    """Forget every remembered per-source result and fingerprint (tests comparing old and new code)."""
    global _versions
    with _memo_lock:
        _memo.clear()
    with _versions_lock:
        _versions = None
