"""One logging setup (mmos_core.core.logging): JSON and text lines, request / job ids, and no secret ever logged."""

from __future__ import annotations

import io
import json
import logging

import pytest

from mmos_core.core import logging as mlog
from mmos_core.core.config import get_settings


@pytest.fixture()
def capture(monkeypatch):
    """setup_logging into a buffer; yields (logger, read_lines); restores the root logger afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))

    def make(json_lines: bool = True, level: str = "DEBUG"):
        buf = io.StringIO()
        settings = get_settings().model_copy(update={"log_json": json_lines, "log_level": level})
        mlog.setup_logging("worker", settings=settings, stream=buf)
        return logging.getLogger("mmos_core.test"), lambda: [line for line in buf.getvalue().splitlines() if line]

    yield make
    for h in list(root.handlers):
        if getattr(h, "_mmos_handler", False):
            root.removeHandler(h)
    root.setLevel(saved[0])
    logging.captureWarnings(False)


def test_json_lines_carry_level_logger_service_and_extras(capture):
    log, lines = capture()
    log.info("batch %s done", 7, extra={"batch_id": 7})
    rec = json.loads(lines()[-1])
    assert rec["message"] == "batch 7 done"
    assert rec["level"] == "INFO" and rec["logger"] == "mmos_core.test" and rec["service"] == "worker"
    assert rec["batch_id"] == 7 and rec["request_id"] is None and rec["job_id"] is None
    assert rec["ts"].endswith("Z") and isinstance(rec["pid"], int)


def test_text_lines_show_ids_only_when_present(capture):
    log, lines = capture(json_lines=False)
    log.warning("plain")
    with mlog.request_context("abc123"):
        log.warning("inside")
    assert "[worker] plain" in lines()[-2]
    assert "[worker req=abc123] inside" in lines()[-1]


def test_request_context_binds_and_restores_an_id(capture):
    log, lines = capture()
    with mlog.request_context() as rid:
        log.info("one")
        with mlog.request_context("inner"):
            log.info("two")
        log.info("three")
    log.info("four")
    got = [json.loads(line)["request_id"] for line in lines()[-4:]]
    assert len(rid) == 16 and got == [rid, "inner", rid, None]


def test_job_id_from_rq_inside_a_job(capture, monkeypatch):
    import rq

    class FakeJob:
        id = "job-42"

    monkeypatch.setattr(rq, "get_current_job", lambda: FakeJob())
    log, lines = capture()
    log.info("in a job")
    assert json.loads(lines()[-1])["job_id"] == "job-42"


SECRETS = {
    "postgresql://mmos:hunter2-Secret@db:5432/mmos": ["hunter2-Secret"],
    "redis://:r3dis-pass-word@cache:6379/0": ["r3dis-pass-word"],
    "connect password=s3cr3t-pw host=db": ["s3cr3t-pw"],
    '{"username": "ann", "password": "pa55-word!"}': ["pa55-word!"],
    "OPENAI_API_KEY=sk-proj-AbCdEf0123456789xyzXYZ": ["sk-proj-AbCdEf0123456789xyzXYZ", "AbCdEf0123456789"],
    "calling with key sk-ant-api03-0123456789abcdefABCDEF": ["0123456789abcdefABCDEF"],
    "gemini key AIzaSyA-0123456789abcdefghijklmnopqrstu": ["0123456789abcdefghijklmnopqrstu"],
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig": ["eyJhbGciOiJIUzI1NiJ9"],
    "hash $argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo stored": ["c2FsdHNhbHQ", "aGFzaGhhc2hoYXNo"],
    "token mmos_Q2xhc3NpY0FQSVRva2VuVmFsdWVGb3JUZXN0aW5nMTIz issued": ["Q2xhc3NpY0FQSVRva2VuVmFsdWVGb3JUZXN0aW5nMTIz"],
    "webhook_secret: whsec-very-long-value": ["whsec-very-long-value"],
    "https://user:pa%40ss@example.org/x?api_key=k3y-value-123&page=2": ["pa%40ss", "k3y-value-123"],
}


@pytest.mark.parametrize("text", list(SECRETS))
def test_redact_removes_every_secret_and_is_idempotent(text):
    out = mlog.redact(text)
    for secret in SECRETS[text]:
        assert secret not in out, out
    assert "***" in out
    assert mlog.redact(out) == out


def test_redact_keeps_ordinary_text():
    text = "batch 12: 3 chunks, input_tokens=5120 output_tokens=230, cost $0.0012, https://example.org/docs?page=2"
    assert mlog.redact(text) == text


def test_environment_secrets_are_masked_whatever_their_shape(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "zz-odd-format-key-9f8e7d")
    monkeypatch.setenv("MMOS_WEBHOOK_SECRET", "shared-webhook-secret")
    out = mlog.redact("sent with zz-odd-format-key-9f8e7d and shared-webhook-secret")
    assert "zz-odd-format-key-9f8e7d" not in out and "shared-webhook-secret" not in out


def test_log_records_are_redacted_in_message_args_extras_and_tracebacks(capture):
    log, lines = capture()
    url = "postgresql+psycopg://mmos:db-pass-123@localhost/mmos"
    log.info("connecting to %s", url, extra={"dsn": url, "params": {"password": "plain-pw-1", "user": "ann"}})
    rec = json.loads(lines()[-1])
    dumped = json.dumps(rec)
    assert "db-pass-123" not in dumped and "plain-pw-1" not in dumped
    assert rec["message"] == "connecting to postgresql+psycopg://mmos:***@localhost/mmos"
    assert rec["params"]["user"] == "ann"
    try:
        raise RuntimeError("auth failed for api_key=sk-live-0123456789abcdefXYZ")
    except RuntimeError:
        log.exception("provider call failed")
    rec = json.loads(lines()[-1])
    assert "0123456789abcdef" not in rec["exc_info"] and "RuntimeError" in rec["exc_info"]


def test_records_from_any_library_pass_the_filters(capture):
    _, lines = capture(json_lines=False)
    logging.getLogger("some.library").error("retrying redis://:lib-pass-99@host:6379/0")
    assert "lib-pass-99" not in lines()[-1] and "[worker]" in lines()[-1]


def test_setup_twice_keeps_one_handler_and_rejects_bad_levels(capture):
    capture()
    capture()
    assert sum(getattr(h, "_mmos_handler", False) for h in logging.getLogger().handlers) == 1
    with pytest.raises(ValueError, match="not a level"):
        mlog.setup_logging("cli", settings=get_settings().model_copy(update={"log_level": "LOUD"}))


def test_a_bad_format_string_does_not_leak_its_arguments(capture):
    _, lines = capture()
    ours = next(h for h in logging.getLogger().handlers if getattr(h, "_mmos_handler", False))
    # straight to our handler: pytest's own capture handler would raise on the bad format first
    ours.handle(logging.LogRecord("mmos_core.test", logging.INFO, __file__, 1, "two %s %s", ("password=oops-secret-1",), None))
    line = lines()[-1]
    assert "oops-secret-1" not in line and "dropped" in line
