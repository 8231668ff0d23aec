"""`/export/fragments`: fragments as CSV, JSON Lines or Parquet (docs/api.md), as the Data page exports them."""

from __future__ import annotations

from typing import Annotated, Literal

import pandas as pd
from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mmos_core.api.auth import DbSession, require
from mmos_core.services.auth import CurrentUser, Permission
from mmos_core.services.transfer import export_fragments, to_csv_bytes, to_parquet_bytes

router = APIRouter(tags=["export"])

_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


def to_jsonl_bytes(df: pd.DataFrame) -> bytes:
    """One JSON object per line (UTF-8, no index); times as ISO 8601 UTC strings, missing values as null."""
    if df.empty:
        return b""
    return df.to_json(orient="records", lines=True, date_format="iso", date_unit="us", force_ascii=False).encode("utf-8")


@router.get("/export/fragments", summary="Export fragments (csv, jsonl or parquet)")
def export(
    user: Annotated[CurrentUser, Depends(require(Permission.import_export))],
    session: DbSession,
    format: Literal["csv", "jsonl", "parquet"] = "csv",
    source_id: int | None = None,
    batch_id: int | None = None,
) -> Response:
    """Fragments of a source and/or a batch, all without either (`services.transfer.export_fragments`):
    one row per fragment ordered by id, the columns of `transfer.FRAGMENT_COLUMNS`."""
    df = export_fragments(session=session, source_id=source_id, batch_id=batch_id)
    body = {"csv": to_csv_bytes, "parquet": to_parquet_bytes, "jsonl": to_jsonl_bytes}[format](df)
    scope = f"_source{source_id}" if source_id is not None else ""
    scope += f"_batch{batch_id}" if batch_id is not None else ""
    headers = {"Content-Disposition": f'attachment; filename="fragments{scope}.{format}"'}
    return Response(content=body, media_type=_MEDIA[format], headers=headers)
