"""Live signals of the monitoring design's Redis real-time keys (docs/design.md): signal, hallucinations, per-model latency,
intervention and flow counters.

Keys and TTLs, exactly as the design names them:

| key | type | TTL |
|---|---|---|
| `signal:current` | float (0-1) | 1 h |
| `signal:history` | list of floats, newest first, capped at 1000 | 24 h |
| `hallucination:detected` | set of inference ids | 7 d (set when the set is created) |
| `hallucination:count:24h` | integer | 24 h (set when the counter is created) |
| `model:{name}:latency` | sorted set, score = unix time, member = `<ts>:<latency_ms>:<inference id>` | 1 h; members older than 1 h trimmed |
| `model:{name}:accuracy` | float | 1 h |
| `sacred:interventions:{3,6,9}` | integer | 7 d (set when created) |
| `sacred:effectiveness` | sorted set, member = position, score = running mean boost | 7 d (set when created) |
| `vortex:flow:forward`, `vortex:flow:backward` | integer | 24 h (set when created) |

The sacred positions and vortex flows are the design's conventions, counted as given; they never change
a measured value. The embedding cache of the same design is `mmos_core.storage.embedding_cache`.

Degradation: every function catches Redis connection errors and timeouts (and a failure to start the
embedded server; `is_down`): writers do nothing and return False; readers return None (scalars,
percentiles) or an empty list/dict. The default client (`default_client`, also used by
`mmos_core.storage.embedding_cache`) is the process's Redis with short socket timeouts and no retries:
the live path never slows down or fails the work it observes, and an outage costs at most ~0.5 s per
call.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import redis
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mmos_core.core.embedded import EmbeddedServiceError
from mmos_core.core.redis import get_redis

log = logging.getLogger(__name__)

SIGNAL_CURRENT_TTL_S = 3600
SIGNAL_HISTORY_TTL_S = 24 * 3600
SIGNAL_HISTORY_MAX = 1000
HALLUCINATION_SET_TTL_S = 7 * 24 * 3600
HALLUCINATION_COUNT_TTL_S = 24 * 3600
LATENCY_WINDOW_S = 3600
ACCURACY_TTL_S = 3600
INTERVENTION_TTL_S = 7 * 24 * 3600
FLOW_TTL_S = 24 * 3600
SACRED_POSITIONS = (3, 6, 9)

SIGNAL_CURRENT = "signal:current"
SIGNAL_HISTORY = "signal:history"
HALLUCINATION_SET = "hallucination:detected"
HALLUCINATION_COUNT = "hallucination:count:24h"
SACRED_EFFECTIVENESS = "sacred:effectiveness"
FLOW_FORWARD = "vortex:flow:forward"
FLOW_BACKWARD = "vortex:flow:backward"

# --- the live path's Redis client -------------------------------------------------------------

SOCKET_TIMEOUT_S = 0.5

#: What counts as "Redis is unavailable" (redis' TimeoutError is not the builtin one; OSError covers sockets).
REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    TimeoutError,
    OSError,
)

_default: tuple[Redis, Redis] | None = None  # (get_redis() instance, our short-timeout twin)


def client_for_url(url: str) -> Redis:
    """A Redis client for `url` with short connect/read timeouts and no retries (what the live path wants)."""
    return Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=SOCKET_TIMEOUT_S,
        retry=_no_retry(),
        health_check_interval=0,
    )


def _no_retry() -> Retry:
    # redis-py 6+ retries a failed connection 3 times with up to 10 s backoff by default: an outage
    # would then cost seconds per call. The live path wants one short try and then degrade.
    return Retry(NoBackoff(), 0)


def default_client() -> Redis:
    """The process's Redis (`mmos_core.core.redis.get_redis()`'s server), with short socket timeouts.

    Raises whatever getting that server raises (e.g. the embedded Redis cannot start); callers treat
    that as an outage (`is_down`).
    """
    global _default

    base = get_redis()
    if _default is None or _default[0] is not base:
        pool = base.connection_pool
        kwargs = dict(pool.connection_kwargs)
        kwargs["socket_timeout"] = SOCKET_TIMEOUT_S
        kwargs["socket_connect_timeout"] = SOCKET_TIMEOUT_S
        kwargs["retry"] = _no_retry()
        kwargs.pop("retry_on_timeout", None)
        kwargs.pop("retry_on_error", None)
        twin = Redis(
            connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **kwargs), retry=_no_retry()
        )
        _default = (base, twin)
    return _default[1]


def resolve_client(client: Redis | None) -> Redis:
    """``client``, or `default_client()` when None (which may raise what `is_down` accepts)."""
    return client if client is not None else default_client()


def warn_down(what: str, exc: BaseException) -> None:
    """Log one warning that Redis was unavailable for ``what`` (the caller then degrades)."""
    log.warning("Redis unavailable (%s): %s: %s", what, type(exc).__name__, exc)


def is_down(exc: BaseException) -> bool:
    """True when ``exc`` means Redis is unavailable: `REDIS_DOWN`, or the embedded server could not start."""
    return isinstance(exc, (*REDIS_DOWN, EmbeddedServiceError))


# INCR (or SADD) and give the key its TTL only when it has none (i.e. when this call created it):
# a fixed window, as the design's TTLs describe. EXPIRE ... NX needs Redis 7; the embedded one is 6.2.
_LUA_EXPIRE_IF_NEW = "if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end"
_LUA_INCR = "local n = redis.call('INCR', KEYS[1]) " + _LUA_EXPIRE_IF_NEW + " return n"
_LUA_SADD = "local n = redis.call('SADD', KEYS[1], ARGV[2]) " + _LUA_EXPIRE_IF_NEW + " return n"
# KEYS: counter, effectiveness zset; ARGV: ttl, position, boost. Running mean of the boost per position.
_LUA_INTERVENTION = """
local n = redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local old = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[2]) or '0')
local new = old + (tonumber(ARGV[3]) - old) / n
redis.call('ZADD', KEYS[2], new, ARGV[2])
if redis.call('TTL', KEYS[2]) == -1 then redis.call('EXPIRE', KEYS[2], ARGV[1]) end
return n
"""


# --- writers -----------------------------------------------------------------------------------


def latency_key(model_name: str) -> str:
    return f"model:{model_name}:latency"


def accuracy_key(model_name: str) -> str:
    return f"model:{model_name}:accuracy"


def intervention_key(position: int) -> str:
    return f"sacred:interventions:{position}"


def record_signal(
    value: float,
    *,
    model_name: str,
    latency_ms: float,
    hallucination: bool,
    inference_id: str | int,
    accuracy: float | None = None,
    sacred_position: int | None = None,
    boost: float | None = None,
    flow_forward: bool | None = None,
    client: Redis | None = None,
    now: float | None = None,
) -> bool:
    """Publish one inference to the live keys.

    Sets `signal:current` (1 h); pushes onto `signal:history` (capped at 1000, 24 h); on a hallucination
    adds the id to `hallucination:detected` (7 d) and counts `hallucination:count:24h` (24 h); adds
    the latency to `model:{model_name}:latency` (members older than 1 h trimmed, key 1 h). Optional:
    `accuracy` -> `model:{model_name}:accuracy` (1 h); `sacred_position` (3, 6 or 9, the design's
    convention) -> `sacred:interventions:{p}` and, with `boost`, the running mean in
    `sacred:effectiveness` (7 d); `flow_forward` True/False -> `vortex:flow:forward|backward` (24 h).

    Args:
        now: unix time of the inference (default: now); tests pass it.

    Returns:
        True when written, False when Redis is unavailable (nothing raised).

    Raises:
        ValueError: `value`/`latency_ms` not finite, or `sacred_position` not 3, 6 or 9.
    """
    value, latency_ms = float(value), float(latency_ms)
    if not (math.isfinite(value) and math.isfinite(latency_ms)):
        raise ValueError(f"value and latency_ms must be finite, got {value!r}, {latency_ms!r}")
    if sacred_position is not None and sacred_position not in SACRED_POSITIONS:
        raise ValueError(f"sacred_position must be one of {SACRED_POSITIONS}, got {sacred_position!r}")
    ts = time.time() if now is None else float(now)
    lkey = latency_key(model_name)
    try:
        r = resolve_client(client)
        pipe = r.pipeline(transaction=True)
        pipe.set(SIGNAL_CURRENT, repr(value), ex=SIGNAL_CURRENT_TTL_S)
        pipe.lpush(SIGNAL_HISTORY, repr(value))
        pipe.ltrim(SIGNAL_HISTORY, 0, SIGNAL_HISTORY_MAX - 1)
        pipe.expire(SIGNAL_HISTORY, SIGNAL_HISTORY_TTL_S)
        if hallucination:
            pipe.eval(_LUA_SADD, 1, HALLUCINATION_SET, HALLUCINATION_SET_TTL_S, str(inference_id))
            pipe.eval(_LUA_INCR, 1, HALLUCINATION_COUNT, HALLUCINATION_COUNT_TTL_S)
        pipe.zadd(lkey, {f"{ts:.6f}:{latency_ms:g}:{inference_id}": ts})
        pipe.zremrangebyscore(lkey, "-inf", f"({ts - LATENCY_WINDOW_S}")
        pipe.expire(lkey, LATENCY_WINDOW_S)
        if accuracy is not None:
            pipe.set(accuracy_key(model_name), repr(float(accuracy)), ex=ACCURACY_TTL_S)
        if sacred_position is not None:
            pipe.eval(
                _LUA_INTERVENTION,
                2,
                intervention_key(sacred_position),
                SACRED_EFFECTIVENESS,
                INTERVENTION_TTL_S,
                str(sacred_position),
                repr(float(boost or 0.0)),
            )
        if flow_forward is not None:
            pipe.eval(_LUA_INCR, 1, FLOW_FORWARD if flow_forward else FLOW_BACKWARD, FLOW_TTL_S)
        pipe.execute()
    except Exception as exc:
        if not is_down(exc):
            raise
        warn_down("record_signal", exc)
        return False
    return True


# --- readers -----------------------------------------------------------------------------------


def _float(raw: Any) -> float | None:
    return None if raw is None else float(raw)


def current_signal(*, client: Redis | None = None) -> float | None:
    """`signal:current`, or None when unset, expired or Redis is down."""
    try:
        return _float(resolve_client(client).get(SIGNAL_CURRENT))
    except Exception as exc:
        if not is_down(exc):
            raise
        warn_down("current_signal", exc)
        return None


def signal_history(n: int = 100, *, client: Redis | None = None) -> list[float]:
    """The last `n` signals (at most 1000), newest first; [] when none or Redis is down."""
    if n <= 0:
        return []
    try:
        raw = resolve_client(client).lrange(SIGNAL_HISTORY, 0, min(n, SIGNAL_HISTORY_MAX) - 1)
    except Exception as exc:
        if not is_down(exc):
            raise
        warn_down("signal_history", exc)
        return []
    return [float(v) for v in raw]


def latency_percentiles(model_name: str, *, client: Redis | None = None, now: float | None = None) -> dict | None:
    """p50/p95 latency (ms, linear interpolation) of `model_name` over the last hour.

    Returns:
        {"p50_ms", "p95_ms", "n"}; both percentiles None when n == 0. None when Redis is down.
    """
    ts = time.time() if now is None else float(now)
    try:
        members = resolve_client(client).zrangebyscore(latency_key(model_name), ts - LATENCY_WINDOW_S, "+inf")
    except Exception as exc:
        if not is_down(exc):
            raise
        warn_down("latency_percentiles", exc)
        return None
    values = []
    for m in members:
        text = m.decode() if isinstance(m, bytes) else str(m)
        values.append(float(text.split(":", 2)[1]))
    if not values:
        return {"p50_ms": None, "p95_ms": None, "n": 0}
    p50, p95 = np.percentile(np.asarray(values, dtype=np.float64), [50, 95])
    return {"p50_ms": float(p50), "p95_ms": float(p95), "n": len(values)}


def hallucination_count_24h(*, client: Redis | None = None) -> int | None:
    """`hallucination:count:24h` (0 when unset); None when Redis is down."""
    try:
        raw = resolve_client(client).get(HALLUCINATION_COUNT)
    except Exception as exc:
        if not is_down(exc):
            raise
        warn_down("hallucination_count_24h", exc)
        return None
    return int(raw) if raw is not None else 0


def model_accuracy(model_name: str, *, client: Redis | None = None) -> float | None:
    """`model:{model_name}:accuracy`, or None when unset or Redis is down."""
    try:
        return _float(resolve_client(client).get(accuracy_key(model_name)))
    except Exception as exc:
        if not is_down(exc):
            raise
        warn_down("model_accuracy", exc)
        return None


def counters(*, client: Redis | None = None) -> dict:
    """Every counter for the live page; {} when Redis is down.

    Keys: `hallucination_count_24h`, `hallucinations_detected` (size of the 7-day set),
    `interventions` {3: n, 6: n, 9: n}, `effectiveness` {position: mean boost} (the design's convention),
    `flow_forward`, `flow_backward`.
    """
    try:
        pipe = resolve_client(client).pipeline(transaction=False)
        pipe.get(HALLUCINATION_COUNT)
        pipe.scard(HALLUCINATION_SET)
        for p in SACRED_POSITIONS:
            pipe.get(intervention_key(p))
        pipe.zrange(SACRED_EFFECTIVENESS, 0, -1, withscores=True)
        pipe.get(FLOW_FORWARD)
        pipe.get(FLOW_BACKWARD)
        res = pipe.execute()
    except Exception as exc:
        if not is_down(exc):
            raise
        warn_down("counters", exc)
        return {}
    count, detected, *rest = res
    interventions = {p: int(v or 0) for p, v in zip(SACRED_POSITIONS, rest[:3], strict=True)}
    effectiveness = {int(m): float(s) for m, s in rest[3]}
    return {
        "hallucination_count_24h": int(count or 0),
        "hallucinations_detected": int(detected),
        "interventions": interventions,
        "effectiveness": effectiveness,
        "flow_forward": int(rest[4] or 0),
        "flow_backward": int(rest[5] or 0),
    }


__all__ = [
    "REDIS_DOWN",
    "SOCKET_TIMEOUT_S",
    "accuracy_key",
    "client_for_url",
    "counters",
    "current_signal",
    "default_client",
    "hallucination_count_24h",
    "intervention_key",
    "is_down",
    "latency_key",
    "latency_percentiles",
    "model_accuracy",
    "record_signal",
    "resolve_client",
    "signal_history",
    "warn_down",
]
