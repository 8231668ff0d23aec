"""The process-wide Redis connection (the configured `REDIS_URL` or the embedded server)."""

from __future__ import annotations

from functools import lru_cache

from redis import Redis

from mmos_core.core.embedded import redis_url

__all__ = ["get_redis"]


@lru_cache(maxsize=1)
def get_redis() -> Redis:
    """Process-wide Redis connection; starts the embedded server on first use when no URL is set."""
    return Redis.from_url(redis_url())
