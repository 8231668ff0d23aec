"""Export fragments and comparison tables (CSV, Parquet, JSONL); import legacy fragments (the core design section 8).

Export takes an `ExportFilter`: any number of sources, batches, models, categories and types, a review
status, a relevance range and a full-text query, the same fields as the Review page's `FragmentFilter`
(`ExportFilter.from_review` turns one into the other). Reviewers' preference pairs are exported by
`services.preferences` (docs/export.md).

Import follows the core design's migration path: the legacy rows of one file become the fragments of one
new completed batch `LEGACY_IMPORT_<NNN>` (model_provider 'unknown', model_name 'legacy') linked
to an existing source. A file is checked whole before anything is written: one bad row refuses
the file, and the message lists the first bad rows.

Traceability: every imported fragment's `location_in_source` starts with `legacy row N` (N = the
1-based position of the record in the file: the N-th data line of a CSV, the N-th object of a
JSON list), followed by ` id X` when the row had an `id`, then ` · ` and the row's own location.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from mmos_core.core.domain import CATEGORIES, BatchStatus, FragmentType, SourceProcessingStatus
from mmos_core.models import Fragment, ProcessingBatch, Source, SourceProcessing
from mmos_core.services.checks import checks_for
from mmos_core.services.comparison import BatchStats, batch_stats
from mmos_core.services.review.search import FragmentFilter
from mmos_core.text.intake import IntakeError, _decode

#: Columns of the fragment export, in order.
FRAGMENT_COLUMNS = [
    "fragment_code",
    "source_code",
    "batch_code",
    "model_provider",
    "model_name",
    "category",
    "fragment_type",
    "content",
    "location_in_source",
    "char_start",
    "char_end",
    "context",
    "insight",
    "relevance",
    "confidence",
    "verified",
    "verified_by",
    "verified_at",
    "rejected",
    "rejected_by",
    "rejected_at",
    "reject_reason",
    "created_at",
    # per-fragment checks (docs/quality.md): verbatim, attribution, support by the judge and the baseline
    "check_verbatim",
    "check_verbatim_similarity",
    "check_attribution",
    "check_support_judge",
    "check_judge_model",
    "check_judge_category",
    "check_support_baseline",
]

LEGACY_PREFIX = "LEGACY_IMPORT_"
#: How many bad rows a refusal message lists.
MAX_LISTED_ERRORS = 10
_LOCATION_MAX = 200  # fragments.location_in_source is VARCHAR(200)


# --- export --------------------------------------------------------------------------------------

#: File formats of an export: `table_bytes` writes each.
EXPORT_FORMATS = ("csv", "jsonl", "parquet")
_STATUSES = ("verified", "rejected", "pending")


@dataclass(frozen=True)
class ExportFilter:
    """Which fragments an export holds. An empty tuple or `None` means no restriction on that field.

    `source_ids`, `batch_ids`, `model_names`, `categories`, `fragment_types` match any of their values;
    `status` is verified | rejected | pending; `relevance_min`/`relevance_max` are inclusive (1-10);
    `query` is a web-search style full-text query on content, insight and context (as on the Review page).
    """

    source_ids: tuple[int, ...] = ()
    batch_ids: tuple[int, ...] = ()
    model_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    fragment_types: tuple[str, ...] = ()
    status: str | None = None
    relevance_min: int | None = None
    relevance_max: int | None = None
    query: str | None = None

    @classmethod
    def from_review(cls, flt: FragmentFilter) -> ExportFilter:
        """The Review page's current filter (`services.review.FragmentFilter`) without its paging."""
        return cls(
            source_ids=(flt.source_id,) if flt.source_id is not None else (),
            batch_ids=(flt.batch_id,) if flt.batch_id is not None else (),
            model_names=(flt.model_name,) if flt.model_name else (),
            categories=(flt.category,) if flt.category else (),
            fragment_types=(flt.fragment_type,) if flt.fragment_type else (),
            status=flt.status,
            relevance_min=flt.relevance_min,
            relevance_max=flt.relevance_max,
            query=flt.query,
        )

    def conditions(self) -> list[ColumnElement[bool]]:
        """SQL conditions on `Fragment` (and `ProcessingBatch.model_name`, so the query joins the batch).

        Raises:
            ValueError: an unknown status.
        """
        cond: list[ColumnElement[bool]] = []
        if self.source_ids:
            cond.append(Fragment.source_id.in_(self.source_ids))
        if self.batch_ids:
            cond.append(Fragment.batch_id.in_(self.batch_ids))
        if self.model_names:
            cond.append(ProcessingBatch.model_name.in_(self.model_names))
        if self.categories:
            cond.append(Fragment.category.in_(self.categories))
        if self.fragment_types:
            cond.append(Fragment.fragment_type.in_(self.fragment_types))
        if self.status == "verified":
            cond.append(Fragment.verified.is_(True))
        elif self.status == "rejected":
            cond.append(Fragment.rejected.is_(True))
        elif self.status == "pending":
            cond.extend([Fragment.verified.is_(False), Fragment.rejected.is_(False)])
        elif self.status:
            raise ValueError(f"Unknown status {self.status!r}; use one of {', '.join(_STATUSES)}.")
        if self.relevance_min is not None:
            cond.append(Fragment.relevance >= self.relevance_min)
        if self.relevance_max is not None:
            cond.append(Fragment.relevance <= self.relevance_max)
        if self.query and self.query.strip():
            cond.append(Fragment.search_vector.bool_op("@@")(func.websearch_to_tsquery("english", self.query.strip())))
        return cond


def export_fragments(
    *, session: Session, source_id: int | None = None, batch_id: int | None = None, flt: ExportFilter | None = None
) -> pd.DataFrame:
    """Fragments matching `flt` and/or of a source and a batch (all fragments when none is given) as a table.

    Returns:
        A DataFrame with `FRAGMENT_COLUMNS`, one row per fragment ordered by fragment id;
        confidence as float (0-1), relevance as int (1-10), times timezone-aware UTC.
    Raises:
        ValueError: an unknown status in `flt`.
    """
    q = (
        select(
            Fragment,
            Source.source_code,
            ProcessingBatch.batch_code,
            ProcessingBatch.model_provider,
            ProcessingBatch.model_name,
        )
        .join(Source, Source.id == Fragment.source_id)
        .join(ProcessingBatch, ProcessingBatch.id == Fragment.batch_id)
        .order_by(Fragment.id)
    )
    if source_id is not None:
        q = q.where(Fragment.source_id == source_id)
    if batch_id is not None:
        q = q.where(Fragment.batch_id == batch_id)
    if flt is not None:
        q = q.where(*flt.conditions())
    rows = session.execute(q).all()
    checks = checks_for(session=session, fragment_ids=[r[0].id for r in rows])
    records = []
    for f, source_code, batch_code, provider, model in rows:
        c = checks.get(f.id)
        records.append(
            {
                "fragment_code": f.fragment_code,
                "source_code": source_code,
                "batch_code": batch_code,
                "model_provider": provider,
                "model_name": model,
                "category": f.category,
                "fragment_type": f.fragment_type,
                "content": f.content,
                "location_in_source": f.location_in_source,
                "char_start": f.char_start,
                "char_end": f.char_end,
                "context": f.context,
                "insight": f.insight,
                "relevance": f.relevance,
                "confidence": float(f.confidence),
                "verified": bool(f.verified),
                "verified_by": f.verified_by,
                "verified_at": f.verified_at,
                "rejected": bool(f.rejected),
                "rejected_by": f.rejected_by,
                "rejected_at": f.rejected_at,
                "reject_reason": f.reject_reason,
                "created_at": f.created_at,
                "check_verbatim": c.verbatim if c else None,
                "check_verbatim_similarity": c.verbatim_similarity if c else None,
                "check_attribution": c.attribution if c else None,
                "check_support_judge": c.judge_support if c else None,
                "check_judge_model": c.judge_model if c else None,
                "check_judge_category": c.judge_category if c else None,
                "check_support_baseline": c.support_baseline if c else None,
            }
        )
    df = pd.DataFrame.from_records(records, columns=FRAGMENT_COLUMNS)
    for col in ("char_start", "char_end"):
        df[col] = df[col].astype("Int64")
    for col in ("verified_at", "rejected_at", "created_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df


def comparison_table(*, session: Session, batch_ids: list[int]) -> pd.DataFrame:
    """`mmos_core.services.comparison.batch_stats` of the batches as a table (USD as float, seconds)."""
    rows = []
    for s in batch_stats(session=session, batch_ids=batch_ids):
        row = dataclasses.asdict(s)
        for key, value in row.items():
            if isinstance(value, Decimal):
                row[key] = float(value)
        rows.append(row)
    columns = [f.name for f in dataclasses.fields(BatchStats)]
    return pd.DataFrame.from_records(rows, columns=columns)


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a header line and no index column."""
    return df.to_csv(index=False).encode("utf-8")


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    """Parquet (pyarrow engine) of the table, without the index."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, engine="pyarrow")
    return buf.getvalue()


def to_jsonl_bytes(df: pd.DataFrame) -> bytes:
    """UTF-8 JSON Lines: one object per row, ISO 8601 times, missing values as null."""
    if df.empty:
        return b""
    return df.to_json(orient="records", lines=True, date_format="iso", force_ascii=False).encode("utf-8")


def records_to_jsonl(records: Sequence[dict[str, Any]]) -> bytes:
    """UTF-8 JSON Lines of plain dicts (one object per line, a trailing newline; b"" for none)."""
    return "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records).encode("utf-8")


def table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """`df` as `fmt`, one of `EXPORT_FORMATS` (csv, jsonl, parquet).

    Raises:
        ValueError: another format.
    """
    if fmt == "csv":
        return to_csv_bytes(df)
    if fmt == "jsonl":
        return to_jsonl_bytes(df)
    if fmt == "parquet":
        return to_parquet_bytes(df)
    raise ValueError(f"Unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}.")


# --- import --------------------------------------------------------------------------------------


class ImportRefused(ValueError):
    """A legacy file was refused whole; `str(e)` says why (first bad rows listed) and is safe to show."""


@dataclass(frozen=True)
class LegacyRow:
    """One validated legacy fragment; `row` is its 1-based position in the file, `legacy_id` its old id."""

    row: int
    legacy_id: str | None
    category: str
    fragment_type: str
    content: str
    location: str | None
    context: str | None
    insight: str | None
    relevance: int
    confidence: float


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: the new batch and the codes of its fragments (in file order)."""

    batch_id: int
    batch_code: str
    source_id: int
    fragment_codes: list[str]


_CATEGORY_BY_KEY = {c.lower(): c for c in CATEGORIES}
_TYPES = {t.value for t in FragmentType}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (isinstance(value, str) and not value.strip())


def _text(value: Any) -> str | None:
    return None if _blank(value) else str(value).strip()


def _validate(n: int, raw: dict[str, Any], errors: list[str]) -> LegacyRow | None:
    problems: list[str] = []
    record = {str(k).strip().lower(): v for k, v in raw.items()}

    category_raw = _text(record.get("category"))
    category = _CATEGORY_BY_KEY.get((category_raw or "").lower())
    if category is None:
        problems.append(f"category {category_raw!r} is not one of the 8 categories" if category_raw else "no category")

    type_raw = _text(record.get("fragment_type")) or _text(record.get("type"))
    fragment_type = (type_raw or "").lower().replace(" ", "_").replace("-", "_")
    if fragment_type not in _TYPES:
        problems.append(
            f"type {type_raw!r} is not direct_quote, paraphrase or inference" if type_raw else "no type / fragment_type"
        )

    content = _text(record.get("content"))
    if content is None:
        problems.append("no content")

    relevance: int | None = None
    rel_raw = record.get("relevance")
    try:
        rel = float(str(rel_raw).strip())
        if rel != int(rel) or not 1 <= rel <= 10:
            raise ValueError
        relevance = int(rel)
    except (TypeError, ValueError):
        problems.append(f"relevance {rel_raw!r} is not a whole number from 1 to 10" if not _blank(rel_raw) else "no relevance")

    conf_raw = record.get("confidence")
    if _blank(conf_raw):
        meta = record.get("metadata")
        if isinstance(meta, str) and meta.strip():
            try:
                meta = json.loads(meta)
            except json.JSONDecodeError:
                meta = None
        if isinstance(meta, dict):
            conf_raw = meta.get("confidence")
    confidence: float | None = None
    try:
        conf = float(str(conf_raw).strip())
        if math.isnan(conf) or not 0 <= conf <= 1:
            raise ValueError
        confidence = conf
    except (TypeError, ValueError):
        problems.append(f"confidence {conf_raw!r} is not a number from 0 to 1" if not _blank(conf_raw) else "no confidence")

    if problems:
        errors.append(f"row {n}: " + "; ".join(problems))
        return None
    return LegacyRow(
        row=n,
        legacy_id=_text(record.get("id")),
        category=category,  # type: ignore[arg-type]
        fragment_type=fragment_type,
        content=content,  # type: ignore[arg-type]
        location=_text(record.get("location")) or _text(record.get("location_in_source")),
        context=_text(record.get("context")),
        insight=_text(record.get("insight")),
        relevance=relevance,  # type: ignore[arg-type]
        confidence=round(confidence, 3),  # type: ignore[arg-type]
    )


def parse_legacy_file(filename: str, data: bytes, *, max_bytes: int) -> list[LegacyRow]:
    """Read and validate a CSV (header line) or JSON (a list of objects, or {"fragments": [...]}) file.

    Columns / keys (case-insensitive): category (one of the 8, case-insensitive), type or
    fragment_type (direct_quote, paraphrase, inference), content, relevance (whole number 1-10),
    confidence (0-1; in JSON also `metadata.confidence` as the core design reads it, in CSV also a
    `metadata` column holding JSON), and optional id, location, context, insight.

    Returns:
        The rows in file order, all valid.
    Raises:
        ImportRefused: unknown extension, too large, empty, binary or wrongly encoded file (only
            UTF-8 and BOM-marked UTF-16 are read), malformed CSV / JSON, no rows, or any invalid
            row — the message lists the first `MAX_LISTED_ERRORS` bad rows and their count.
    """
    suffix = PurePath(filename or "").suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ImportRefused(f"The file “{filename}” is not a .csv or .json file.")
    if len(data) > max_bytes:
        raise ImportRefused(f"The file is {len(data):,} bytes, over the limit of {max_bytes:,} bytes.")
    if not data.strip():
        raise ImportRefused(f"The file “{filename}” is empty.")
    try:
        text = _decode(data)
    except IntakeError as e:
        raise ImportRefused(str(e).replace("only plain text, Markdown, SRT and VTT are accepted", "only CSV and JSON are accepted")) from None
    if not text.strip():
        raise ImportRefused(f"The file “{filename}” contains only whitespace.")

    if suffix == ".json":
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as e:
            raise ImportRefused(f"The file is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}).") from None
        if isinstance(doc, dict) and isinstance(doc.get("fragments"), list):
            doc = doc["fragments"]
        if not isinstance(doc, list):
            raise ImportRefused('The JSON file must hold a list of fragments (or {"fragments": [...]}).')
        records: list[Any] = doc
    else:
        try:
            reader = csv.DictReader(io.StringIO(text, newline=""))
            records = list(reader)
        except csv.Error as e:
            raise ImportRefused(f"The file is not valid CSV ({e}).") from None
        header = {str(h).strip().lower() for h in (reader.fieldnames or [])}
        missing = [c for c in ("category", "content", "relevance") if c not in header]
        if not header & {"type", "fragment_type"}:
            missing.append("type (or fragment_type)")
        if not header & {"confidence", "metadata"}:
            missing.append("confidence")
        if missing:
            raise ImportRefused(f"The CSV header lacks the column(s): {', '.join(missing)}.")

    if not records:
        raise ImportRefused(f"The file “{filename}” has no fragments.")
    errors: list[str] = []
    rows: list[LegacyRow] = []
    for n, raw in enumerate(records, start=1):
        if not isinstance(raw, dict):
            errors.append(f"row {n}: not an object")
            continue
        if None in raw:  # csv.DictReader puts surplus fields under the key None
            errors.append(f"row {n}: more fields than the header has columns")
            continue
        row = _validate(n, raw, errors)
        if row is not None:
            rows.append(row)
    if errors:
        listed = "\n".join(f"- {e}" for e in errors[:MAX_LISTED_ERRORS])
        more = f"\n… and {len(errors) - MAX_LISTED_ERRORS} more." if len(errors) > MAX_LISTED_ERRORS else ""
        raise ImportRefused(
            f"Nothing was imported: {len(errors)} of {len(records)} rows are invalid.\n{listed}{more}"
        )
    return rows


def _trace(row: LegacyRow) -> str:
    head = f"legacy row {row.row}" + (f" id {row.legacy_id}" if row.legacy_id else "")
    if len(head) > _LOCATION_MAX:
        head = head[: _LOCATION_MAX - 1] + "…"
    if not row.location:
        return head
    full = f"{head} · {row.location}"
    return full if len(full) <= _LOCATION_MAX else full[: _LOCATION_MAX - 1] + "…"


def _next_legacy_code(session: Session) -> str:
    count = session.scalar(
        select(func.count()).select_from(ProcessingBatch).where(ProcessingBatch.batch_code.like(f"{LEGACY_PREFIX}%"))
    )
    n = int(count or 0) + 1
    while session.scalar(select(ProcessingBatch.id).where(ProcessingBatch.batch_code == f"{LEGACY_PREFIX}{n:03d}")):
        n += 1
    return f"{LEGACY_PREFIX}{n:03d}"


def import_legacy_fragments(
    *,
    session: Session,
    source_id: int,
    rows: Sequence[LegacyRow],
    imported_by: str | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> ImportResult:
    """Write validated legacy rows as one completed `LEGACY_IMPORT_<NNN>` batch of `source_id`. Does not commit.

    The batch has model_provider 'unknown', model_name 'legacy', prompt_version 'legacy', cost 0
    and `processor_name` = `imported_by`; a `source_processing` link records the fragment count.
    Fragment codes come from the database trigger; embeddings from the ONNX embedder (computed
    before anything is written). No `model_performance` row is written: a legacy batch has no
    known model or cost to compare.

    Args:
        embed: texts → (n, 384) array; default: the registry's default model behind the Redis cache.
    Raises:
        LookupError: unknown source.
        ImportRefused: no rows.
        mmos_core.embeddings.embedder.EmbedderUnavailable: the embedding model is not provisioned.
    """
    source = session.get(Source, source_id)
    if source is None:
        raise LookupError(f"No source with id {source_id}.")
    if not rows:
        raise ImportRefused("There are no fragments to import.")
    if embed is None:
        from mmos_core.services.model_registry import cached_registry_embedder

        embed = cached_registry_embedder().embed
    vectors = embed([r.content for r in rows])

    now = dt.datetime.now(dt.UTC)
    batch = ProcessingBatch(
        batch_code=_next_legacy_code(session),
        model_provider="unknown",
        model_name="legacy",
        temperature=0,
        processor_name=imported_by,
        prompt_version="legacy",
        batch_status=BatchStatus.completed.value,
        total_sources=1,
        chunks_total=0,
        chunks_done=0,
        estimated_cost_usd=Decimal(0),
        price_snapshot={},
        started_at=now,
        completed_at=now,
        processing_duration_seconds=0,
    )
    session.add(batch)
    session.flush()
    session.add(
        SourceProcessing(
            source_id=source_id,
            batch_id=batch.id,
            processing_status=SourceProcessingStatus.completed.value,
            fragments_extracted=len(rows),
            started_at=now,
            completed_at=now,
        )
    )
    records = [
        {
            "source_id": source_id,
            "batch_id": batch.id,
            "chunk_id": None,
            "category": r.category,
            "fragment_type": r.fragment_type,
            "content": r.content,
            "location_in_source": _trace(r),
            "context": r.context,
            "insight": r.insight,
            "relevance": r.relevance,
            "confidence": r.confidence,
            "embedding": np.asarray(v, dtype=np.float32).tolist(),
        }
        for r, v in zip(rows, vectors, strict=True)
    ]
    session.execute(Fragment.__table__.insert(), records)
    session.flush()
    codes = list(session.scalars(select(Fragment.fragment_code).where(Fragment.batch_id == batch.id).order_by(Fragment.id)))
    return ImportResult(batch_id=batch.id, batch_code=batch.batch_code, source_id=source_id, fragment_codes=codes)
