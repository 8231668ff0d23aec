"""The monitoring design's Redis real-time patterns on the real embedded Redis, and their behaviour in an outage."""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np
import pytest

from mmos_core.storage import embedding_cache as ec
from mmos_core.storage import signals as rt

pytestmark = pytest.mark.usefixtures("clean_db")

DIM = 384


def _vector(text: str, salt: str = "") -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256((salt + text).encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


class CountingEmbed:
    """A deterministic stand-in for `Embedder.embed` that records what it was asked to compute."""

    def __init__(self, salt: str = "") -> None:
        self.salt = salt
        self.calls: list[list[str]] = []

    def __call__(self, texts):
        texts = list(texts)
        self.calls.append(texts)
        return np.stack([_vector(t, self.salt) for t in texts]) if texts else np.zeros((0, DIM), np.float32)

    @property
    def computed(self) -> int:
        return sum(len(c) for c in self.calls)


@pytest.fixture()
def r():
    return rt.default_client()


@pytest.fixture(params=["unix", "tcp"])
def dead(request, tmp_path):
    """A client whose server does not exist (a unix socket nobody listens on, or a closed TCP port)."""
    if request.param == "unix":
        return rt.client_for_url(f"unix://{tmp_path / 'nobody.sock'}?db=0")
    return rt.client_for_url("redis://127.0.0.1:1/0")


def test_cache_hit_avoids_recomputation_and_returns_identical_vectors(r):
    embed = CountingEmbed()
    texts = ["alpha", "beta", "alpha", "gamma"]
    first = ec.cached_embed(texts, embed=embed, model_name="m-fp32")
    assert first.shape == (4, DIM) and first.dtype == np.float32
    assert embed.calls == [["alpha", "beta", "gamma"]]  # duplicates computed once
    assert np.array_equal(first, np.stack([_vector(t) for t in texts]))

    again = ec.cached_embed(texts, embed=embed, model_name="m-fp32")
    assert len(embed.calls) == 1  # all hits: embed not called
    assert np.array_equal(again, first)

    mixed = ec.cached_embed(["delta", "beta"], embed=embed, model_name="m-fp32")
    assert embed.calls[-1] == ["delta"]  # only the miss
    assert np.array_equal(mixed, np.stack([_vector("delta"), _vector("beta")]))
    assert r.exists(ec.embedding_key("m-fp32", "alpha"))


def test_models_never_share_entries(r):
    fp32, int8 = CountingEmbed("fp32"), CountingEmbed("int8")
    a = ec.cached_embed(["same text"], embed=fp32, model_name="all-MiniLM-L6-v2")
    b = ec.cached_embed(["same text"], embed=int8, model_name="all-MiniLM-L6-v2-int8")
    assert int8.computed == 1  # no cross-model hit
    assert not np.array_equal(a, b)
    assert np.array_equal(ec.cached_embed(["same text"], embed=fp32, model_name="all-MiniLM-L6-v2"), a)
    assert np.array_equal(ec.cached_embed(["same text"], embed=int8, model_name="all-MiniLM-L6-v2-int8"), b)
    assert fp32.computed == 1 and int8.computed == 1
    assert ec.embedding_key("ab", "c") != ec.embedding_key("a", "bc")


def test_corrupt_cache_entry_is_recomputed(r):
    embed = CountingEmbed()
    r.set(ec.embedding_key("m", "x"), b"abc")  # not whole float32s
    out = ec.cached_embed(["x"], embed=embed, model_name="m")
    assert embed.computed == 1 and np.array_equal(out[0], _vector("x"))


def test_ttls_follow_the_seed(r):
    ec.cached_embed(["t"], embed=CountingEmbed(), model_name="m")
    assert rt.record_signal(
        0.7,
        model_name="m",
        latency_ms=12,
        hallucination=True,
        inference_id="inf-1",
        accuracy=0.9,
        sacred_position=9,
        boost=0.15,
        flow_forward=True,
    )
    assert rt.record_signal(0.2, model_name="m", latency_ms=5, hallucination=False, inference_id="inf-2", flow_forward=False)
    day, hour, week = 24 * 3600, 3600, 7 * 24 * 3600
    expected = {
        ec.embedding_key("m", "t"): day,
        "signal:current": hour,
        "signal:history": day,
        "hallucination:detected": week,
        "hallucination:count:24h": day,
        "model:m:latency": hour,
        "model:m:accuracy": hour,
        "sacred:interventions:9": week,
        "sacred:effectiveness": week,
        "vortex:flow:forward": day,
        "vortex:flow:backward": day,
    }
    for key, ttl in expected.items():
        assert ttl - 60 <= r.ttl(key) <= ttl, key


def test_signal_history_capped_at_1000():
    for i in range(1005):
        assert rt.record_signal(i / 1005, model_name="m", latency_ms=1, hallucination=False, inference_id=i)
    assert rt.current_signal() == pytest.approx(1004 / 1005)
    full = rt.signal_history(5000)
    assert len(full) == 1000
    assert full[0] == pytest.approx(1004 / 1005) and full[-1] == pytest.approx(5 / 1005)  # newest first
    assert rt.signal_history(3) == full[:3]
    assert rt.signal_history(0) == []


def test_latency_percentiles_on_known_values(r):
    now = time.time()
    for i, ms in enumerate(range(1, 101)):  # 1..100 ms
        rt.record_signal(0.5, model_name="fp32", latency_ms=ms, hallucination=False, inference_id=i, now=now - 100 + i * 0.5)
    stats = rt.latency_percentiles("fp32", now=now)
    assert stats == {"p50_ms": pytest.approx(50.5), "p95_ms": pytest.approx(95.05), "n": 100}
    assert rt.latency_percentiles("int8", now=now) == {"p50_ms": None, "p95_ms": None, "n": 0}

    # an entry over an hour old is outside the window, and the next write trims it away
    r.zadd("model:fp32:latency", {f"{now - 4000:.6f}:9999:old": now - 4000})
    assert rt.latency_percentiles("fp32", now=now)["n"] == 100
    rt.record_signal(0.5, model_name="fp32", latency_ms=50, hallucination=False, inference_id="new", now=now)
    assert r.zcard("model:fp32:latency") == 101
    assert all(score >= now - 3600 for _, score in r.zrange("model:fp32:latency", 0, -1, withscores=True))


def test_hallucination_set_and_counter():
    assert rt.hallucination_count_24h() == 0
    for i in range(3):
        rt.record_signal(0.1, model_name="m", latency_ms=3, hallucination=True, inference_id=f"h{i}")
    rt.record_signal(0.9, model_name="m", latency_ms=3, hallucination=False, inference_id="ok")
    rt.record_signal(0.1, model_name="m", latency_ms=3, hallucination=True, inference_id="h0")  # same id again
    r = rt.default_client()
    assert r.smembers("hallucination:detected") == {b"h0", b"h1", b"h2"}
    assert rt.hallucination_count_24h() == 4  # events, not distinct ids
    c = rt.counters()
    assert c["hallucination_count_24h"] == 4 and c["hallucinations_detected"] == 3


def test_intervention_and_flow_counters():
    rt.record_signal(0.6, model_name="m", latency_ms=1, hallucination=False, inference_id=1, sacred_position=3, boost=0.1)
    rt.record_signal(0.6, model_name="m", latency_ms=1, hallucination=False, inference_id=2, sacred_position=3, boost=0.2)
    rt.record_signal(0.6, model_name="m", latency_ms=1, hallucination=False, inference_id=3, sacred_position=9, boost=0.15, flow_forward=True)
    rt.record_signal(0.6, model_name="m", latency_ms=1, hallucination=False, inference_id=4, accuracy=0.92, flow_forward=False)
    rt.record_signal(0.6, model_name="m", latency_ms=1, hallucination=False, inference_id=5, flow_forward=False)
    c = rt.counters()
    assert c["interventions"] == {3: 2, 6: 0, 9: 1}
    assert c["effectiveness"] == {3: pytest.approx(0.15), 9: pytest.approx(0.15)}
    assert (c["flow_forward"], c["flow_backward"]) == (1, 2)
    assert rt.model_accuracy("m") == pytest.approx(0.92)
    with pytest.raises(ValueError):
        rt.record_signal(0.6, model_name="m", latency_ms=1, hallucination=False, inference_id=6, sacred_position=4)


def test_outage_degrades_without_crash_or_wrong_numbers(dead):
    embed = CountingEmbed()
    texts = ["one", "two", "one"]
    t0 = time.monotonic()
    out = ec.cached_embed(texts, embed=embed, model_name="m", client=dead)
    assert np.array_equal(out, embed(texts))  # same vectors as a direct embed
    assert rt.record_signal(0.5, model_name="m", latency_ms=1, hallucination=True, inference_id="x", sacred_position=6, boost=0.1, flow_forward=True, client=dead) is False
    assert rt.current_signal(client=dead) is None
    assert rt.signal_history(10, client=dead) == []
    assert rt.latency_percentiles("m", client=dead) is None
    assert rt.hallucination_count_24h(client=dead) is None
    assert rt.model_accuracy("m", client=dead) is None
    assert rt.counters(client=dead) == {}
    assert time.monotonic() - t0 < 5  # one short try per call, no retry backoff


@pytest.fixture()
def dead_default(monkeypatch, tmp_path):
    """The process's configured Redis (`REDIS_URL`) points at a server that does not exist."""
    from mmos_core.core.config import get_settings
    from mmos_core.core.redis import get_redis

    monkeypatch.setenv("REDIS_URL", f"unix://{tmp_path / 'nobody.sock'}?db=0")
    get_settings.cache_clear()
    get_redis.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    get_redis.cache_clear()


def test_default_client_degrades_when_the_configured_redis_is_down(dead_default):
    embed = CountingEmbed()
    assert np.array_equal(ec.cached_embed(["a", "b"], embed=embed, model_name="m"), embed(["a", "b"]))
    assert rt.record_signal(0.5, model_name="m", latency_ms=1, hallucination=False, inference_id=1) is False
    assert rt.current_signal() is None and rt.signal_history() == [] and rt.counters() == {}


def test_default_client_follows_the_process_redis_again(dead_default):
    assert rt.current_signal() is None  # down
    from mmos_core.core.config import get_settings
    from mmos_core.core.redis import get_redis

    os.environ.pop("REDIS_URL", None)  # back to the session's embedded Redis
    get_settings.cache_clear()
    get_redis.cache_clear()
    assert rt.record_signal(0.4, model_name="m", latency_ms=1, hallucination=False, inference_id=1) is True
    assert rt.current_signal() == pytest.approx(0.4)


def test_cached_embed_with_the_real_onnx_model(embedder_or_skip):
    texts = ["Darwin sailed on the Beagle.", "He studied barnacles for eight years."]
    direct = embedder_or_skip.embed(texts)
    first = ec.cached_embed(texts, embed=embedder_or_skip.embed, model_name="all-MiniLM-L6-v2")
    second = ec.cached_embed(texts, embed=embedder_or_skip.embed, model_name="all-MiniLM-L6-v2")
    assert np.array_equal(first, direct) and np.array_equal(second, direct)


def test_hung_server_times_out_quickly_and_degrades():
    """A server that accepts the connection but never answers: the short socket timeout ends the wait."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        hung = rt.client_for_url(f"redis://127.0.0.1:{listener.getsockname()[1]}/0")
        embed = CountingEmbed()
        t0 = time.monotonic()
        assert np.array_equal(ec.cached_embed(["a"], embed=embed, model_name="m", client=hung), embed(["a"]))
        assert rt.record_signal(0.5, model_name="m", latency_ms=1, hallucination=False, inference_id=1, client=hung) is False
        assert rt.current_signal(client=hung) is None
        assert time.monotonic() - t0 < 5


def test_caching_embedder_wraps_the_real_model(embedder_or_skip):
    cached = ec.CachingEmbedder(embedder_or_skip, "all-MiniLM-L6-v2")
    assert cached.embed.__self__.model_dir == embedder_or_skip.model_dir  # per-model caches keyed on it still work
    texts = ["Origin of Species", "pigeons"]
    assert np.array_equal(cached.embed(texts), embedder_or_skip.embed(texts))
    assert np.array_equal(cached.embed_one("pigeons"), embedder_or_skip.embed(["pigeons"])[0])
    assert rt.default_client().exists(ec.embedding_key("all-MiniLM-L6-v2", "pigeons"))
