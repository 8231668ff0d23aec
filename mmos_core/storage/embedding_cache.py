"""Embedding cache of the monitoring design's Redis real-time keys (docs/design.md): one vector per
`embedding:text:{hash}` for 24 h, so a text is embedded once a day at most.

| key | type | TTL |
|---|---|---|
| `embedding:text:{hash}` | float32 bytes of one vector; hash = sha256(model name, NUL, text) | 24 h |

The design stores an embedding as a JSON array; here it is the raw float32 bytes (exact, 1.5 KB instead
of ~8 KB). The model name is part of the hash, so vectors of two models (fp32 and int8 differ, and
int8 even differs by batch) never answer for each other.

Degradation: Redis connection errors and timeouts (and a failure to start the embedded server) are
caught (`mmos_core.storage.signals.is_down`); `cached_embed` then computes every vector without the
cache (same vectors). The default client (`mmos_core.storage.signals.default_client`) has short socket
timeouts and no retries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from redis import Redis

from mmos_core.core.vectors import Embed
from mmos_core.storage.signals import is_down, resolve_client, warn_down

__all__ = ["EMBEDDING_TTL_S", "CachingEmbedder", "cached_embed", "embedding_key"]

EMBEDDING_TTL_S = 24 * 3600


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
        client: a Redis client; default `mmos_core.storage.signals.default_client()`.

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
        r = resolve_client(client)
        raw = r.mget(keys)
    except Exception as exc:
        if not is_down(exc):
            raise
        warn_down("embedding cache read", exc)
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
            if not is_down(exc):
                raise
            warn_down("embedding cache write", exc)
        found.update(zip(missing, computed, strict=True))
    return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)


def _embed_and_store(texts: Sequence[str], *, embed: Embed, model_name: str, client: Redis | None = None) -> np.ndarray:
    """Compute every vector with `embed` and overwrite their cache entries (repairs a bad cache)."""
    texts = list(texts)
    vectors = np.asarray(embed(texts), dtype=np.float32)
    try:
        r = resolve_client(client)
        pipe = r.pipeline(transaction=False)
        for text, vec in zip(texts, vectors, strict=True):
            pipe.set(embedding_key(model_name, text), np.ascontiguousarray(vec).tobytes(), ex=EMBEDDING_TTL_S)
        pipe.execute()
    except Exception as exc:
        if not is_down(exc):
            raise
        warn_down("embedding cache write", exc)
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
