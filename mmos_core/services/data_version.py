"""A cheap fingerprint of the data the quality figures are computed from (docs/quality.md).

Pages cache expensive read-only reports (pooled quality per model, the sweet spot, cascade replay,
cross-batch QA, calibration) keyed on `data_version`: one query of small aggregates that changes
whenever a row those reports read is added, reviewed, judged, checked or deleted, so a rerun with
unchanged data reuses the cached figures and any change recomputes them (bench/README.md, page timings).

When the data did change, most of it is usually unchanged: a verdict, a check or a new batch touches one
source. `source_versions` fingerprints every source (computed once per `data_version`), and the services
keep each source's share of a report in `per_source` under that source's fingerprint, so the first render
after a change recomputes only the sources that moved and adds up the rest (docs/quality.md, "Reports at scale").
Each share is also kept in Redis under a hash of (report, source, parameters, fingerprint), so a restarted
or second UI process starts from the shares already computed instead of reading every source again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

from redis.exceptions import RedisError
from sqlalchemy import func, literal_column, select, union_all
from sqlalchemy.orm import Session

from mmos_core.core.redis import get_redis
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
log = logging.getLogger(__name__)

#: Part of every Redis key of `per_source`: raise it when a report's per-source value changes shape or meaning,
#: so values pickled by older code are never read back (they also expire after `SHARED_TTL_S`).
SHARED_FORMAT = 1
SHARED_TTL_S = 24 * 3600
_SHARED_PREFIX = "mmos:report-share"


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


@functools.cache
def _code_version() -> str:
    """A hash of the code that computes the shares (services/ and analysis/ sources): values pickled by other
    code are never read back, even when `SHARED_FORMAT` was not raised."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted([*root.joinpath("services").rglob("*.py"), *root.joinpath("analysis").rglob("*.py")]):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _shared_key(slot: tuple, version: tuple) -> str:
    digest = hashlib.sha256(repr((SHARED_FORMAT, _code_version(), slot, version)).encode()).hexdigest()
    return f"{_SHARED_PREFIX}:{slot[0]}:{digest}"


def _shared_get(key: str) -> tuple[bool, object]:
    try:
        raw = get_redis().get(key)
        return (True, pickle.loads(raw)) if raw is not None else (False, None)  # noqa: S301 - our own Redis, our own values
    except (RedisError, pickle.UnpicklingError, AttributeError, ImportError, EOFError, TypeError) as exc:
        log.debug("report share %s not read from Redis: %s", key, exc)
        return False, None


def _shared_put(key: str, value: object) -> None:
    try:
        get_redis().set(key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), ex=SHARED_TTL_S)
    except (RedisError, pickle.PicklingError, TypeError, AttributeError) as exc:
        log.debug("report share %s not written to Redis: %s", key, exc)


def per_source(report: str, source_id: int, version: tuple, params: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` for one source, remembered under (report, source, params) for the source's fingerprint
    `version` (`source_versions`): first in this process (a later call with the same fingerprint returns the
    same object, so callers must treat it as read-only; a newer fingerprint replaces the slot's value), then
    in Redis for `SHARED_TTL_S` (pickled; keyed by a hash that includes the fingerprint, `SHARED_FORMAT` and a
    hash of the code that computes it), so another process or a restarted one reads it instead of computing it. Redis being
    unreachable only costs the computation."""
    slot = (report, source_id, params)
    with _memo_lock:
        hit = _memo.get(slot)
        if hit is not None and hit[0] == version:
            _memo.move_to_end(slot)
            return hit[1]  # type: ignore[return-value]
    key = _shared_key(slot, version)
    found, value = _shared_get(key)
    if not found:
        value = compute()
        _shared_put(key, value)
    with _memo_lock:
        _memo[slot] = (version, value)
        _memo.move_to_end(slot)
        while len(_memo) > MEMO_SLOTS:
            _memo.popitem(last=False)
    return value  # type: ignore[return-value]


_WARM_SLOT = ("warm",)  # a marker, kept like a share under the data version and the code hash


def shares_warmed(version: tuple) -> bool:
    """Whether `mark_shares_warmed` was called for this `data_version` by this code (False when Redis is
    unreachable: warming again is only work)."""
    return _shared_get(_shared_key(_WARM_SLOT, version))[0]


def mark_shares_warmed(version: tuple) -> None:
    """Remember, for `SHARED_TTL_S`, that every default report's shares are in Redis for this `data_version`
    and this code (`services.report_warmup`); `clear_memo(shared=True)` forgets it with the shares."""
    _shared_put(_shared_key(_WARM_SLOT, version), True)


def clear_memo(*, shared: bool = True) -> None:
    """Forget every remembered per-source result and fingerprint in this process and, with `shared`, the
    shares kept in Redis (tests comparing old and new code; `shared=False` stands for a restarted process)."""
    global _versions
    with _memo_lock:
        _memo.clear()
    with _versions_lock:
        _versions = None
    if shared:
        try:
            redis = get_redis()
            keys = list(redis.scan_iter(f"{_SHARED_PREFIX}:*", count=1000))
            if keys:
                redis.delete(*keys)
        except RedisError as exc:
            log.debug("report shares not cleared from Redis: %s", exc)
