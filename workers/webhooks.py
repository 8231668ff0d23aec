"""RQ job: POST one signed webhook (see `mmos_core.services.webhooks` for the request format and verification)."""

from __future__ import annotations

import time
import uuid

import httpx

from mmos_core.core.config import get_settings
from mmos_core.services.webhooks import DELIVERY_HTTP_TIMEOUT_S, sign


class WebhookDeliveryError(RuntimeError):
    """The receiver answered with a non-2xx status; RQ retries the job."""


def deliver(url: str, event: str, body_json: str, delivery_id: str | None = None) -> int:
    """POST `body_json` to `url` with the X-MMOS-* headers, signed with `settings.webhook_secret`.

    The timestamp (and so the signature) is fresh on every attempt; `delivery_id` stays the same.

    Returns:
        The receiver's 2xx status code.
    Raises:
        WebhookDeliveryError: non-2xx answer. httpx.HTTPError: timeout or connection error.
        RuntimeError: the secret was cleared after the job was enqueued (never sent unsigned).
    """
    secret = get_settings().webhook_secret
    if not secret:
        raise RuntimeError("MMOS_WEBHOOK_SECRET is empty: webhooks are off, refusing to send unsigned")
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "mmos-workbench-webhooks/1",
        "X-MMOS-Event": event,
        "X-MMOS-Delivery": delivery_id or str(uuid.uuid4()),
        "X-MMOS-Timestamp": timestamp,
        "X-MMOS-Signature": sign(secret, timestamp, body_json),
    }
    response = httpx.post(
        url, content=body_json.encode("utf-8"), headers=headers, timeout=DELIVERY_HTTP_TIMEOUT_S, follow_redirects=False
    )
    if not 200 <= response.status_code < 300:
        raise WebhookDeliveryError(f"{url} answered {response.status_code} to {event}: {response.text[:200]}")
    return response.status_code
