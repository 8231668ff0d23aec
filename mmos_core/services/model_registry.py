"""ONNX model registry (the monitoring design `onnx_models`): register, choose the default, load through it.

Every embedding model the workbench can use is a row: its folder's `model.onnx` and
`tokenizer.json`, quantization (fp32, or int8 built with `onnxruntime.quantization`), SHA-256,
status and load metrics. Exactly zero or one row is the default (partial unique index).

`load_default_embedder` loads the default model and records the outcome on its row: `loading`,
then `ready` with `loaded_at` and the measured load time, or `error` with a readable
`error_message` and an `EmbedderUnavailable` for the caller (never a raw onnxruntime traceback).
Like every service it never commits; to keep the `error` status, catch `EmbedderUnavailable`
inside the transaction (`registry_embedder()` does this for pages and workers).

Statuses: `ready` (files present, or loaded), `loading`, `error`, `disabled` (never loaded).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from functools import lru_cache
from pathlib import Path

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from mmos_core.core.db import session_scope
from mmos_core.core.domain import OnnxModelStatus
from mmos_core.embeddings.embedder import (
    DIMENSION,
    MANIFEST_FILE,
    MODEL_NAME,
    ONNX_FILE,
    TOKENIZER_FILE,
    Embedder,
    EmbedderUnavailable,
    default_model_dir,
    sha256_file,
)
from mmos_core.models import OnnxModel
from mmos_core.storage.embedding_cache import CachingEmbedder

STATUSES = ("ready", "loading", "error", "disabled")
QUANTIZATIONS = ("fp32", "int8")
INT8_NAME = f"{MODEL_NAME}-int8"
_HOW_TO_FIX = "Run `mmos models provision` to (re)build it."


class RegistryError(ValueError):
    """A registry request was refused (unknown model, bad status, duplicate name); safe to show."""


def _file_sha256(model_path: Path) -> str | None:
    """SHA-256 of the model file: from the folder's manifest when it lists it, else hashed; None if missing."""
    manifest = model_path.parent / MANIFEST_FILE
    try:
        want = json.loads(manifest.read_text(encoding="utf-8"))["files"][model_path.name]["sha256"]
        if isinstance(want, str) and len(want) == 64:
            return want
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return sha256_file(model_path) if model_path.is_file() else None


def _missing_files(model: OnnxModel) -> list[str]:
    return [p for p in (model.model_path, model.tokenizer_path) if not Path(p).is_file()]


def register_model(
    *, session: Session, name: str, model_dir: Path | str, quantization: str = "fp32", make_default: bool = False
) -> OnnxModel:
    """Add a model folder (`model.onnx` + `tokenizer.json`) to the registry.

    Status is `ready` when both files exist, else `error` with a message naming the missing file
    (the row is still added, so the UI can show it). Raises `RegistryError` for an unknown
    quantization or a name already registered.
    """
    if quantization not in QUANTIZATIONS:
        raise RegistryError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
    if session.scalar(select(OnnxModel.id).where(OnnxModel.name == name)) is not None:
        raise RegistryError(f"a model named {name!r} is already registered")
    folder = Path(model_dir).expanduser()
    model = OnnxModel(
        name=name,
        model_path=str(folder / ONNX_FILE),
        tokenizer_path=str(folder / TOKENIZER_FILE),
        embedding_dim=DIMENSION,
        quantization=quantization,
        status=OnnxModelStatus.ready.value,
        is_default=False,
        performance_metrics={},
    )
    missing = _missing_files(model)
    if missing:
        model.status = OnnxModelStatus.error.value
        model.error_message = f"Model file {missing[0]} not found. {_HOW_TO_FIX}"
    else:
        model.sha256 = _file_sha256(Path(model.model_path))
    session.add(model)
    session.flush()
    if make_default:
        set_default(session=session, model_id=model.id)
    return model


def list_models(*, session: Session) -> list[OnnxModel]:
    """Every registered model, the default first, then by name."""
    return list(session.scalars(select(OnnxModel).order_by(OnnxModel.is_default.desc(), OnnxModel.name)))


def get_model(*, session: Session, model_id: int | None = None, name: str | None = None) -> OnnxModel:
    """One model by id or name; `RegistryError` when there is none."""
    stmt = select(OnnxModel)
    stmt = stmt.where(OnnxModel.id == model_id) if model_id is not None else stmt.where(OnnxModel.name == name)
    model = session.scalar(stmt)
    if model is None:
        raise RegistryError(f"no registered model {model_id if model_id is not None else name!r}")
    return model


def default_model(*, session: Session) -> OnnxModel | None:
    """The default model, or None when no model is the default."""
    return session.scalar(select(OnnxModel).where(OnnxModel.is_default))


def set_default(*, session: Session, model_id: int) -> OnnxModel:
    """Make `model_id` the one default (the previous default loses the flag). A disabled model is refused."""
    model = get_model(session=session, model_id=model_id)
    if model.status == OnnxModelStatus.disabled.value:
        raise RegistryError(f"model {model.name!r} is disabled; enable it before making it the default")
    # Clear first, in its own statement: the partial unique index allows only one TRUE at a time.
    session.execute(
        update(OnnxModel).where(OnnxModel.is_default, OnnxModel.id != model.id).values(is_default=False),
        execution_options={"synchronize_session": "fetch"},
    )
    model.is_default = True
    session.flush()
    return model


def set_status(*, session: Session, model_id: int, status: str, error_message: str | None = None) -> OnnxModel:
    """Set a model's status (ready/loading/error/disabled); `error_message` is kept only for `error`."""
    if status not in STATUSES:
        raise RegistryError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    model = get_model(session=session, model_id=model_id)
    model.status = status
    model.error_message = error_message if status == OnnxModelStatus.error.value else None
    session.flush()
    return model


def load_model(*, session: Session, model: OnnxModel, threads: int | None = None) -> Embedder:
    """Load one registered model, recording `loading` → `ready` (loaded_at, load_time_ms) or `error`.

    Raises:
        EmbedderUnavailable: the model is disabled, a file is missing, its SHA-256 differs from the
            registered one or the manifest, or onnxruntime/tokenizers cannot load it. The row then
            has status `error` and the same message in `error_message` (except for `disabled`).
    """
    if model.status == OnnxModelStatus.disabled.value:
        raise EmbedderUnavailable(f"Embedding model {model.name!r} is disabled in the model registry.")
    model.status, model.error_message = OnnxModelStatus.loading.value, None
    session.flush()
    started = time.perf_counter()
    try:
        embedder = _load_files(model, threads)
    except EmbedderUnavailable as exc:
        model.status, model.error_message = OnnxModelStatus.error.value, str(exc)
        session.flush()
        raise
    except Exception as exc:  # anything else from onnxruntime/tokenizers: a message, not a traceback
        msg = f"Cannot load embedding model {model.name!r}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        model.status, model.error_message = OnnxModelStatus.error.value, msg
        session.flush()
        raise EmbedderUnavailable(msg) from None
    load_ms = (time.perf_counter() - started) * 1000.0
    metrics = dict(model.performance_metrics or {})
    metrics.update(
        load_time_ms=round(load_ms, 1),
        loads=int(metrics.get("loads", 0)) + 1,
        onnxruntime=_ort_version(),
    )
    model.performance_metrics = metrics  # a new dict, so the JSONB change is tracked
    if (Path(model.model_path).parent / MANIFEST_FILE).is_file():
        model.sha256 = _file_sha256(Path(model.model_path))  # verified against the manifest just now
    model.status = OnnxModelStatus.ready.value
    model.loaded_at = dt.datetime.now(dt.UTC)
    session.flush()
    return embedder


def load_default_embedder(*, session: Session, threads: int | None = None) -> Embedder:
    """Load the registry's default model (see `load_model`).

    Raises `EmbedderUnavailable` when there is no default (message says how to register one) or the
    default cannot be loaded (its row then has status `error` and the message).
    """
    model = default_model(session=session)
    if model is None:
        raise EmbedderUnavailable(
            "No default embedding model in the model registry. "
            "Run `mmos models provision`, then register it (model_registry.ensure_registered)."
        )
    return load_model(session=session, model=model, threads=threads)


def ensure_registered(*, session: Session, cache_dir: Path | None = None) -> list[OnnxModel]:
    """Register the provisioned models not yet in the registry and pick a default if there is none.

    fp32: `<cache_dir>/embeddings/all-MiniLM-L6-v2` (registered even when missing, with status
    `error`, so the UI says what to do); int8: `<cache_dir>/embeddings/all-MiniLM-L6-v2-int8`, only
    when that folder exists. With no default, the fp32 model becomes it. Returns `list_models`.
    """
    fp32_dir = default_model_dir(cache_dir)
    int8_dir = fp32_dir.with_name(INT8_NAME)
    # Workers starting together would both find the registry empty and insert twice: serialise the
    # check-then-insert on a transaction-scoped advisory lock (released at commit/rollback).
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext('mmos.onnx_models.ensure_registered'))"))
    names = set(session.scalars(select(OnnxModel.name)))
    if MODEL_NAME not in names:
        register_model(session=session, name=MODEL_NAME, model_dir=fp32_dir, quantization="fp32")
    if INT8_NAME not in names and int8_dir.is_dir():
        register_model(session=session, name=INT8_NAME, model_dir=int8_dir, quantization="int8")
    if default_model(session=session) is None:
        fp32 = get_model(session=session, name=MODEL_NAME)
        if fp32.status != OnnxModelStatus.disabled.value:
            set_default(session=session, model_id=fp32.id)
    return list_models(session=session)


def refresh_performance_summary(*, session: Session) -> int:
    """`REFRESH MATERIALIZED VIEW CONCURRENTLY asi_performance_summary`; returns its row count.

    CONCURRENTLY (readers are never blocked) uses the view's unique index on (hour, onnx_model_id)
    and runs inside the caller's transaction (PostgreSQL 16; unlike CREATE INDEX CONCURRENTLY it is
    allowed in a transaction block). The rows are visible to others once the caller commits.
    """
    session.execute(text("REFRESH MATERIALIZED VIEW CONCURRENTLY asi_performance_summary"))
    return int(session.scalar(text("SELECT count(*) FROM asi_performance_summary")) or 0)


def performance_summary(*, session: Session, since: dt.datetime | None = None) -> list[dict]:
    """Rows of the hourly rollup (as of its last refresh), oldest hour first, optionally from `since`."""
    sql = "SELECT * FROM asi_performance_summary"
    params: dict = {}
    if since is not None:
        sql += " WHERE hour >= :since"
        params["since"] = since
    sql += " ORDER BY hour, model_name NULLS LAST"
    return [dict(r._mapping) for r in session.execute(text(sql), params)]


@lru_cache(maxsize=1)
def registry_embedder() -> Embedder:
    """The process-wide embedder loaded through the registry (pages and workers use this).

    Opens its own transaction: registers the provisioned models if needed, loads the default and
    commits its status (`ready`, or `error` with the message, before re-raising
    `EmbedderUnavailable`, which is not cached: the next call retries). Call
    `registry_embedder.cache_clear()` after changing the default.
    """

    failure: EmbedderUnavailable | None = None
    with session_scope() as session:
        ensure_registered(session=session)
        try:
            embedder = load_default_embedder(session=session)
        except EmbedderUnavailable as exc:
            failure = exc  # leave the block normally so the `error` status is committed
    if failure is not None:
        raise failure
    return embedder


def _load_files(model: OnnxModel, threads: int | None) -> Embedder:
    model_path, tok_path = Path(model.model_path), Path(model.tokenizer_path)
    missing = _missing_files(model)
    if missing:
        raise EmbedderUnavailable(f"Embedding model file {missing[0]} not found. {_HOW_TO_FIX}")
    folder = model_path.parent
    if (model_path.name, tok_path.name, tok_path.parent) != (ONNX_FILE, TOKENIZER_FILE, folder):
        raise EmbedderUnavailable(
            f"Model {model.name!r}: expected {ONNX_FILE} and {TOKENIZER_FILE} in one folder, "
            f"got {model_path} and {tok_path}."
        )
    has_manifest = (folder / MANIFEST_FILE).is_file()
    if not has_manifest and model.sha256:
        got = sha256_file(model_path)
        if got != model.sha256:
            raise EmbedderUnavailable(
                f"{model_path} is corrupt or was modified (sha256 {got[:12]}..., registered "
                f"{model.sha256[:12]}...). {_HOW_TO_FIX}"
            )
    # With a manifest, Embedder.load checks both files' SHA-256 against it.
    return Embedder.load(folder, threads=threads, verify=has_manifest)


def _ort_version() -> str | None:
    try:
        import onnxruntime

        return onnxruntime.__version__
    except Exception:  # pragma: no cover
        return None


__all__ = [
    "INT8_NAME",
    "QUANTIZATIONS",
    "STATUSES",
    "RegistryError",
    "default_model",
    "ensure_registered",
    "get_model",
    "list_models",
    "load_default_embedder",
    "load_model",
    "performance_summary",
    "refresh_performance_summary",
    "register_model",
    "registry_embedder",
    "set_default",
    "set_status",
]


def cached_registry_embedder():
    """The registry's default embedder behind the Redis embedding cache (`embedding:text:{hash}`, 24 h).

    The cache key carries the model's folder name, so fp32 and int8 vectors never mix; a Redis outage
    falls back to computing. Raises EmbedderUnavailable like `registry_embedder`.
    """

    embedder = registry_embedder()
    return CachingEmbedder(embedder, Path(embedder.model_dir).name)
