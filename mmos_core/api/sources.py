"""`/sources`: add a source (JSON text or a multipart file upload) and list sources (docs/api.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from mmos_core.api.auth import DbSession, require
from mmos_core.api.errors import ApiError
from mmos_core.api.serialize import to_json
from mmos_core.core.config import get_settings
from mmos_core.core.domain import ExtractionPriority, QualityTier, SourceType
from mmos_core.services.auth import CurrentUser, Permission
from mmos_core.services.sources import create_source, list_sources
from mmos_core.text.intake import ParsedSource, first_words, parse_pasted, parse_upload

router = APIRouter(tags=["sources"])


class SourceMeta(BaseModel):
    """What describes a source, in a JSON body or as multipart form fields."""

    title: str | None = Field(None, description="Required with `text`; defaults to the file name for an upload.")
    person: str | None = Field(None, description="Whose words or life the source is about.")
    source_type: SourceType = SourceType.book
    quality: QualityTier = QualityTier.primary
    extraction_priority: ExtractionPriority = ExtractionPriority.HIGH
    url: str | None = None
    source_date: dt.date | None = None
    max_words: int | None = Field(None, ge=1, description="Keep only the paragraphs up to this many words (as `mmos ingest --max-words`).")


class SourceText(SourceMeta):
    """`POST /sources` with `Content-Type: application/json`."""

    text: str = Field(description="The source text (UTF-8); at most Settings.max_source_bytes bytes.")


@dataclass(frozen=True)
class SourceUpload:
    """A parsed request: the text (or the uploaded file's name and bytes) and its metadata."""

    meta: SourceMeta
    text: str | None = None
    filename: str | None = None
    data: bytes | None = None


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with its `$defs` substituted in place (it is embedded in the OpenAPI document
    by hand, where `#/$defs/...` would not resolve)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


_FORM_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": ".txt, .md, .markdown, .srt or .vtt"},
        **{name: {"type": "string"} for name in SourceMeta.model_fields},
    },
}
_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline(SourceText.model_json_schema())},
            "multipart/form-data": {"schema": _FORM_SCHEMA},
        },
    }
}


def _invalid(exc: ValidationError, where: str) -> RequestValidationError:
    return RequestValidationError([{**e, "loc": (where, *e["loc"])} for e in exc.errors()])


async def source_input(request: Request) -> SourceUpload:
    """Read the body as JSON (`SourceText`) or as a multipart form with a `file` part.

    Raises:
        RequestValidationError: malformed JSON, a missing or invalid field (422).
        ApiError: 415 for another content type; 422 for a form without a file.
    """
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = SourceText.model_validate_json(await request.body())
        except ValidationError as exc:
            raise _invalid(exc, "body") from None
        return SourceUpload(SourceMeta(**body.model_dump(exclude={"text"})), text=body.text)
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=20)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "form.file: a multipart upload needs a `file` part (the source file).")
        fields: dict[str, Any] = {k: v for k, v in form.items() if k != "file" and isinstance(v, str) and v != ""}
        try:
            meta = SourceMeta.model_validate(fields)
        except ValidationError as exc:
            raise _invalid(exc, "form") from None
        return SourceUpload(meta, filename=upload.filename or "", data=await upload.read())
    raise ApiError(415, "Send the source as application/json ({\"text\": ...}) or multipart/form-data (a `file` part).")


def _parse(body: SourceUpload) -> ParsedSource:
    limit = get_settings().max_source_bytes
    if body.data is not None:
        s = get_settings()
        parsed = parse_upload(body.filename or "", body.data, max_bytes=limit,
                              max_document_bytes=s.max_document_bytes, max_pages=s.max_document_pages)
    else:
        parsed = parse_pasted(body.text or "", max_bytes=limit)
    return first_words(parsed, body.meta.max_words) if body.meta.max_words else parsed


@router.post("/sources", status_code=201, openapi_extra=_OPENAPI, summary="Add a source (JSON text or file upload)")
def add_source(
    user: Annotated[CurrentUser, Depends(require(Permission.add_sources))],
    body: Annotated[SourceUpload, Depends(source_input)],
    session: DbSession,
) -> dict[str, Any]:
    """Store the text and its chunks (`services.sources.create_source`), as the Sources page does.

    413: over `max_source_bytes`; 422: refused by intake (empty, binary, wrong encoding or format) or a bad
    field; 409: the same text is already stored. Returns the new source's id, code, words and chunks.
    """
    meta = body.meta
    title = (meta.title or body.filename or "").strip()
    if not title:
        raise ApiError(422, "body.title: a source needs a title.")
    parsed = _parse(body)
    source = create_source(
        session=session, parsed=parsed, title=title, source_type=meta.source_type, quality=meta.quality,
        extraction_priority=meta.extraction_priority, person=meta.person, url=meta.url,
        source_date=meta.source_date, original_filename=body.filename, created_by=user.username,
    )
    return {
        "id": source.id, "source_code": source.source_code, "title": source.title,
        "content_format": source.content_format, "word_count": source.word_count, "chunks": len(source.chunks),
    }


@router.get("/sources", summary="List sources with their processing summary")
def get_sources(
    user: Annotated[CurrentUser, Depends(require(Permission.view_comparison))],
    session: DbSession,
) -> list[dict[str, Any]]:
    """Every source, newest first, with batch and fragment counts and spend in USD (`services.sources.list_sources`)."""
    return [to_json(row) for row in list_sources(session=session)]
