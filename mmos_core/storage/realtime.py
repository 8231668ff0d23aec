"""Redis real-time patterns of seed 003 (issue 5, part 3): embedding cache, live signal, hallucinations,
per-model latency, intervention and flow counters.

Keys and TTLs, exactly as seed 003 names them:

| key | type | TTL |
|---|---|---|
| `embedding:text:{hash}` | float32 bytes of one vector; hash = sha256(model name, NUL, text) | 24 h |
| `signal:current` | float (0-1) | 1 h |
| `signal:history` | list of floats, newest first, capped at 1000 | 24 h |
| `hallucination:detected` | set of inference ids | 7 d (set when the set is created) |
| `hallucination:count:24h` | integer | 24 h (set when the counter is created) |
| `model:{name}:latency` | sorted set, score = unix time, member = `<ts>:<latency_ms>:<inference id>` | 1 h; members older than 1 h trimmed |
| `model:{name}:accuracy` | float | 1 h |
| `sacred:interventions:{3,6,9}` | integer | 7 d (set when created) |
| `sacred:effectiveness` | sorted set, member = position, score = running mean boost | 7 d (set when created) |
| `vortex:flow:forward`, `vortex:flow:backward` | integer | 24 h (set when created) |

The seed stores an embedding as a JSON array; here it is the raw float32 bytes (exact, 1.5 KB instead
of ~8 KB). The model name is part of the hash, so vectors of two models (fp32 and int8 differ, and
int8 even differs by batch) never answer for each other. The sacred positions and vortex flows are
seed 003's conventions, counted as given; they never change a measured value.

Degradation: every function catches Redis connection errors and timeouts (and a failure to start
the embedded server). `cached_embed` then computes every vector without the cache (same vectors);
writers do nothing and return False; readers return None (scalars, percentiles) or an empty
list/dict. The default client is the process's Redis (`mmos_core.core.redis.get_redis()`'s server) with
short socket timeouts and no retries, so an outage costs at most ~0.5 s per call.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import redis
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mmos_core.core.embedded import EmbeddedServiceError
from mmos_core.core.redis import get_redis
from mmos_core.core.vectors import Embed

log = logging.getLogger(__name__)

EMBEDDING_TTL_S = 24 * 3600
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

SOCKET_TIMEOUT_S = 0.5

SIGNAL_CURRENT = "signal:current"
SIGNAL_HISTORY = "signal:history"
HALLUCINATION_SET = "hallucination:detected"
HALLUCINATION_COUNT = "hallucination:count:24h"
SACRED_EFFECTIVENESS = "sacred:effectiveness"
FLOW_FORWARD = "vortex:flow:forward"
FLOW_BACKWARD = "vortex:flow:backward"

#: What counts as "Redis is unavailable" (redis' TimeoutError is not the builtin one; OSError covers sockets).
REDIS_DOWN: tuple[type[BaseException], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    TimeoutError,
    OSError,
)


# INCR (or SADD) and give the key its TTL only when it has none (i.e. when this call created it):
# a fixed window, as the seed's TTLs describe. EXPIRE ... NX needs Redis 7; the embedded one is 6.2.
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

_default: tuple[Redis, Redis] | None = None  # (queue.get_redis() instance, our short-timeout twin)


def client_for_url(url: str) -> Redis:
    """A Redis client for `url` with short connect/read timeouts (what this module wants)."""
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

    Raises whatever getting that server raises (e.g. the embedded Redis cannot start); the public
    functions below treat that as an outage.
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


def _client(client: Redis | None) -> Redis:
    return client if client is not None else default_client()


def _down(what: str, exc: BaseException) -> None:
    log.warning("Redis unavailable (%s): %s: %s", what, type(exc).__name__, exc)


def _is_down(exc: BaseException) -> bool:

    return isinstance(exc, (*REDIS_DOWN, EmbeddedServiceError))


# --- embedding cache ---------------------------------------------------------------------------


def embedding_key(model_name: str, text: str) -> str:
    """`embedding:text:{sha256(model_name NUL text)}` (the NUL keeps ("ab", "c") apart from ("a", "bc"))."""
    digest = hashlib.sha256(model_name.encode("utf-8") + b"\x00" + text.encode("utf-8")).hexdigest()
    return f"embedding:text:{digest}"


def cached_embed(texts: Sequence[str], *, embed: Embed, model_name: str, client: Redis | None = None) -> np.ndarray:
    """Embed `texts`, reading `embedding:text:{hash}` first and computing only the misses.

    Args:
        texts: the texts (a bare str is rejected, as by `Embedder.embed`).
        embed: texts -> (n, d) float32 array, e.g. `get_embedder().embed`; called at most once,
            with the distinct missing texts in first-seen order (not at all when everything hits).
        model_name: the model `embed` runs (part of the key: models never share entries).
        client: a Redis client; default `default_client()`.

    Returns:
        float32 array (len(texts), d), in input order. Computed vectors are written back with a 24 h
        TTL. When Redis is down, everything is computed by `embed` (same vectors, no cache).
    """
    if isinstance(texts, str):
        raise TypeError("cached_embed() takes a sequence of strings, not a single str; wrap it in a list")
    texts = list(texts)
    if not texts:
        return np.asarray(embed([]), dtype=np.float32)
    keys = [embedding_key(model_name, t) for t in texts]
    try:
        r = _client(client)
        raw = r.mget(keys)
    except Exception as exc:
        if not _is_down(exc):
            raise
        _down("embedding cache read", exc)
        return np.asarray(embed(texts), dtype=np.float32)

    found: dict[str, np.ndarray] = {}
    for key, value in zip(keys, raw, strict=True):
        if value and len(value) % 4 == 0:
            found[key] = np.frombuffer(value, dtype=np.float32)
    if len({v.size for v in found.values()}) > 1:  # inconsistent entries: trust none of them
        found = {}
    missing = list(dict.fromkeys(k for k in keys if k not in found))
    if missing:
        first_text = {}
        for key, text in zip(keys, texts, strict=True):
            first_text.setdefault(key, text)
        computed = np.asarray(embed([first_text[k] for k in missing]), dtype=np.float32)
        if computed.ndim != 2 or computed.shape[0] != len(missing):
            raise ValueError(f"embed returned shape {computed.shape} for {len(missing)} texts")
        if found and next(iter(found.values())).size != computed.shape[1]:
            # cached entries of another width (should not happen with the model in the key): recompute all
            return _embed_and_store(texts, embed=embed, model_name=model_name, client=client)
        try:
            pipe = r.pipeline(transaction=False)
            for key, vec in zip(missing, computed, strict=True):
                pipe.set(key, np.ascontiguousarray(vec, dtype=np.float32).tobytes(), ex=EMBEDDING_TTL_S)
            pipe.execute()
        except Exception as exc:
            if not _is_down(exc):
                raise
            _down("embedding cache write", exc)
        found.update(zip(missing, computed, strict=True))
    return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def _embed_and_store(texts: Sequence[str], *, embed: Embed, model_name: str, client: Redis | None = None) -> np.ndarray:
    """Compute every vector with `embed` and overwrite their cache entries (repairs a bad cache)."""
    texts = list(texts)
    vectors = np.asarray(embed(texts), dtype=np.float32)
    try:
        r = _client(client)
        pipe = r.pipeline(transaction=False)
        for text, vec in zip(texts, vectors, strict=True):
            pipe.set(embedding_key(model_name, text), np.ascontiguousarray(vec).tobytes(), ex=EMBEDDING_TTL_S)
        pipe.execute()
    except Exception as exc:
        if not _is_down(exc):
            raise
        _down("embedding cache write", exc)
    return vectors


class CachingEmbedder:
    """An `Embedder` behind the Redis cache: `CachingEmbedder(embedder, model_name).embed(texts)`.

    Pass `.embed` wherever an `embed` callable is taken (`finalize_batch`, `semantic_search`, ...).
    It keeps the wrapped embedder's `model_dir` and `dimension`, so code that keys per-model state
    on `embed.__self__.model_dir` (e.g. `inference_log`'s prototype cache) still tells fp32 from int8.
    """

    def __init__(self, embedder: Any, model_name: str, *, client: Redis | None = None) -> None:
        self.embedder = embedder
        self.model_name = model_name
        self.model_dir = getattr(embedder, "model_dir", None)
        self.dimension = getattr(embedder, "dimension", None)
        self._client = client

    def embed(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return cached_embed(
            texts,
            embed=lambda missing: self.embedder.embed(missing, batch_size=batch_size),
            model_name=self.model_name,
            client=self._client,
        )

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text], batch_size=1)[0]


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
    `accuracy` -> `model:{model_name}:accuracy` (1 h); `sacred_position` (3, 6 or 9, the seed's
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
        r = _client(client)
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
        if not _is_down(exc):
            raise
        _down("record_signal", exc)
        return False
    return True


# --- readers -----------------------------------------------------------------------------------


def _float(raw: Any) -> float | None:
    return None if raw is None else float(raw)


def current_signal(*, client: Redis | None = None) -> float | None:
    """`signal:current`, or None when unset, expired or Redis is down."""
    try:
        return _float(_client(client).get(SIGNAL_CURRENT))
    except Exception as exc:
        if not _is_down(exc):
            raise
        _down("current_signal", exc)
        return None


def signal_history(n: int = 100, *, client: Redis | None = None) -> list[float]:
    """The last `n` signals (at most 1000), newest first; [] when none or Redis is down."""
    if n <= 0:
        return []
    try:
        raw = _client(client).lrange(SIGNAL_HISTORY, 0, min(n, SIGNAL_HISTORY_MAX) - 1)
    except Exception as exc:
        if not _is_down(exc):
            raise
        _down("signal_history", exc)
        return []
    return [float(v) for v in raw]


def latency_percentiles(model_name: str, *, client: Redis | None = None, now: float | None = None) -> dict | None:
    """p50/p95 latency (ms, linear interpolation) of `model_name` over the last hour.

    Returns:
        {"p50_ms", "p95_ms", "n"}; both percentiles None when n == 0. None when Redis is down.
    """
    ts = time.time() if now is None else float(now)
    try:
        members = _client(client).zrangebyscore(latency_key(model_name), ts - LATENCY_WINDOW_S, "+inf")
    except Exception as exc:
        if not _is_down(exc):
            raise
        _down("latency_percentiles", exc)
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
        raw = _client(client).get(HALLUCINATION_COUNT)
    except Exception as exc:
        if not _is_down(exc):
            raise
        _down("hallucination_count_24h", exc)
        return None
    return int(raw) if raw is not None else 0


def model_accuracy(model_name: str, *, client: Redis | None = None) -> float | None:
    """`model:{model_name}:accuracy`, or None when unset or Redis is down."""
    try:
        return _float(_client(client).get(accuracy_key(model_name)))
    except Exception as exc:
        if not _is_down(exc):
            raise
        _down("model_accuracy", exc)
        return None


def counters(*, client: Redis | None = None) -> dict:
    """Every counter for the live page; {} when Redis is down.

    Keys: `hallucination_count_24h`, `hallucinations_detected` (size of the 7-day set),
    `interventions` {3: n, 6: n, 9: n}, `effectiveness` {position: mean boost} (seed convention),
    `flow_forward`, `flow_backward`.
    """
    try:
        pipe = _client(client).pipeline(transaction=False)
        pipe.get(HALLUCINATION_COUNT)
        pipe.scard(HALLUCINATION_SET)
        for p in SACRED_POSITIONS:
            pipe.get(intervention_key(p))
        pipe.zrange(SACRED_EFFECTIVENESS, 0, -1, withscores=True)
        pipe.get(FLOW_FORWARD)
        pipe.get(FLOW_BACKWARD)
        res = pipe.execute()
    except Exception as exc:
        if not _is_down(exc):
            raise
        _down("counters", exc)
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
    "EMBEDDING_TTL_S",
    "CachingEmbedder",
    "REDIS_DOWN",
    "cached_embed",
    "client_for_url",
    "counters",
    "current_signal",
    "default_client",
    "embedding_key",
    "hallucination_count_24h",
    "latency_percentiles",
    "model_accuracy",
    "record_signal",
    "signal_history",
]
