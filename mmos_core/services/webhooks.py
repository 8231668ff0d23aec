"""Webhooks (the core design, docs/webhooks.md): signed JSON POSTs of workbench events to configured URLs.

`emit(event, payload)` enqueues one RQ job per URL in `settings.webhook_urls` on the `low` queue;
`workers.webhooks.deliver` POSTs it and raises on a non-2xx answer so RQ retries it
(`jobs.catalog.DELIVER_WEBHOOK`: after 10 s, 30 s, 1 min, 5 min, 15 min; then the job is failed).
With `settings.webhook_secret` empty, webhooks are **off**: nothing is enqueued, even with URLs.

Request a receiver gets::

    POST <url>
    Content-Type: application/json
    X-MMOS-Event: batch.completed
    X-MMOS-Delivery: 6f1c…  (uuid4; the same on every retry of one delivery — dedupe on it)
    X-MMOS-Timestamp: 1767225600  (unix seconds when this attempt was sent)
    X-MMOS-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{raw body}")>

    {"event": "batch.completed", "created_at": "2026-…Z", "data": {…payload…}}

How a receiver verifies: take the raw request body bytes (before any JSON parsing) and the
`X-MMOS-Timestamp` header, compute `hmac.new(secret, f"{timestamp}.".encode() + body, sha256).hexdigest()`,
compare it with the hex after `sha256=` in `X-MMOS-Signature` with a constant-time comparison, and
reject timestamps older than a few minutes (replays). `verify_signature` does exactly that.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import time
import uuid
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job

from mmos_core.core.config import Settings, get_settings
from mmos_core.core.domain import BatchStatus
from mmos_core.jobs.catalog import DELIVER_WEBHOOK
from mmos_core.jobs.enqueue import enqueue
from mmos_core.models import Fragment, ProcessingBatch, ProcessingQueue, SourceProcessing

log = logging.getLogger(__name__)

#: Events of the core design §10.
EVENTS = ("batch.completed", "source.processed", "model.optimized", "queue.empty")
WEBHOOK_QUEUE = DELIVER_WEBHOOK.queue
#: Seconds one HTTP POST may take (below the job timeout).
DELIVERY_HTTP_TIMEOUT_S = 10.0
SIGNATURE_PREFIX = "sha256="


def webhook_urls(settings: Settings | None = None) -> list[str]:
    """Configured receiver URLs; empty when webhooks are off (no URLs, or no secret)."""
    settings = settings or get_settings()
    if not settings.webhook_secret:
        return []
    return list(dict.fromkeys(u.strip() for u in settings.webhook_urls.split(",") if u.strip()))


def sign(secret: str, timestamp: str | int, body: str | bytes) -> str:
    """`X-MMOS-Signature` value: `sha256=` + hex HMAC-SHA256 of `f"{timestamp}.{body}"` keyed with `secret`."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(
    secret: str,
    timestamp: str | int,
    body: str | bytes,
    header: str | None,
    *,
    max_age_s: float | None = 300,
    now: float | None = None,
) -> bool:
    """Whether `header` (the `X-MMOS-Signature` value) signs `timestamp` + raw `body` with `secret`.

    Also False when the timestamp is not an integer or is more than `max_age_s` seconds away from
    `now` (default: the current time); `max_age_s=None` skips the age check.
    """
    if not secret or not header or not header.startswith(SIGNATURE_PREFIX):
        return False
    try:
        ts = int(str(timestamp))
    except ValueError:
        return False
    if max_age_s is not None and abs((time.time() if now is None else now) - ts) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, str(timestamp), body), header)


def encode_body(event: str, payload: dict[str, Any]) -> str:
    """The JSON body: `{"event", "created_at", "data"}` (non-JSON values such as Decimal become strings)."""
    created = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"event": event, "created_at": created, "data": payload}, default=str, sort_keys=True)


def emit(
    event: str,
    payload: dict[str, Any],
    *,
    connection: Redis | None = None,
    settings: Settings | None = None,
    retry_intervals: list[int] | None = None,
) -> list[Job]:
    """Enqueue one delivery job per configured URL on the `low` queue.

    Never raises for Redis trouble (logged instead): a lost webhook must not fail the batch that
    triggered it. Returns the enqueued jobs ([] when webhooks are off).

    Args:
        retry_intervals: seconds between retries (default: the job's; tests pass [0]).
    Raises:
        ValueError: `event` is not one of `EVENTS`.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}; expected one of {', '.join(EVENTS)}")
    urls = webhook_urls(settings)
    if not urls:
        return []
    body = encode_body(event, payload)
    jobs = []
    try:
        for url in urls:
            delivery_id = str(uuid.uuid4())
            job = enqueue(
                DELIVER_WEBHOOK, url, event, body, delivery_id=delivery_id,
                job_id=DELIVER_WEBHOOK.job_id(delivery_id), connection=connection,
                retry_intervals=retry_intervals, description=f"webhook {event} -> {url}",
            )
            jobs.append(job)
    except RedisError:
        log.exception("could not enqueue webhook %s", event)
    return jobs


# --- Hook helper for the extraction worker -----------------------------------------------------

FINISHED_BATCH = ("completed", "failed")


def after_batch_finished(*, session, batch_id: int, connection: Redis | None = None) -> list[str]:
    """Emit what a finished (completed or finally failed) batch triggers; call after its commit.

    * `batch.completed` for a completed batch: batch id/code, model, source ids, fragments,
      tokens, cost (USD string), duration.
    * `source.processed` for each of its sources whose batches are now all completed/failed.
    * `queue.empty` when no `processing_queue` row is waiting or processing any more.

    Concurrent batches finishing at once may each emit `source.processed`/`queue.empty`;
    receivers dedupe on the payload. Returns the events emitted (for logs and tests).
    """
    from sqlalchemy import func, select


    if not webhook_urls():
        return []
    batch = session.get(ProcessingBatch, batch_id)
    if batch is None or batch.batch_status not in FINISHED_BATCH:
        return []
    source_ids = list(
        session.scalars(select(SourceProcessing.source_id).where(SourceProcessing.batch_id == batch_id)).all()
    )
    sent = []
    if batch.batch_status == BatchStatus.completed.value:
        fragments = session.scalar(select(func.count()).select_from(Fragment).where(Fragment.batch_id == batch_id))
        emit(
            "batch.completed",
            {
                "batch_id": batch.id,
                "batch_code": batch.batch_code,
                "model_name": batch.model_name,
                "source_ids": source_ids,
                "fragments": int(fragments or 0),
                "input_tokens": int(batch.total_input_tokens),
                "output_tokens": int(batch.total_output_tokens),
                "cost_usd": str(batch.estimated_cost_usd),
                "duration_s": float(batch.processing_duration_seconds or 0),
            },
            connection=connection,
        )
        sent.append("batch.completed")
    for source_id in source_ids:
        rows = session.execute(
            select(ProcessingBatch.id, ProcessingBatch.model_name, ProcessingBatch.batch_status)
            .join(SourceProcessing, SourceProcessing.batch_id == ProcessingBatch.id)
            .where(SourceProcessing.source_id == source_id)
        ).all()
        if rows and all(status in FINISHED_BATCH for _, _, status in rows):
            emit(
                "source.processed",
                {
                    "source_id": source_id,
                    "batches": [{"batch_id": i, "model_name": m, "status": s} for i, m, s in rows],
                },
                connection=connection,
            )
            sent.append("source.processed")
    busy = session.scalar(
        select(func.count())
        .select_from(ProcessingQueue)
        .where(ProcessingQueue.queue_status.in_(["waiting", "processing"]))
    )
    if not busy:
        emit("queue.empty", {"last_batch_id": batch_id}, connection=connection)
        sent.append("queue.empty")
    return sent
