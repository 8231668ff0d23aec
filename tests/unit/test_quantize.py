"""Tests of the int8 build of the embedder (`mmos_core.embeddings.quantize`).

They need the provisioned fp32 model and skip with instructions when it is absent. Each module run
builds one int8 model into a temp dir (~10-20 s on 2 cores); no timing is asserted.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmos_core.embeddings.embedder import Embedder, EmbedderUnavailable
from mmos_core.embeddings.provision import REFERENCE_FILE, is_provisioned, model_dir
from mmos_core.embeddings.quantize import (
    MIN_COSINE_INT8,
    QuantizationError,
    build_int8,
    ffn_output_nodes,
    int8_model_dir,
    is_int8_built,
)

pytestmark = pytest.mark.embeddings

SKIP_MSG = (
    "fp32 embedding model not provisioned at {dir}: run `mmos models provision` "
    "(or `python -m mmos_core.embeddings.provision`), about 3 minutes, offline; the int8 tests build from it"
)

SENTENCES = [
    "I was born at Shrewsbury on February 12th, 1809.",
    "The voyage of the Beagle has been by far the most important event in my life.",
    "Four score and seven years ago our fathers brought forth on this continent a new nation.",
    "I have been much occupied with my music, and the quartets are nearly finished.",
    "Early to bed and early to rise makes a man healthy, wealthy and wise.",
    "My mind seems to have become a kind of machine for grinding general laws out of large collections of facts.",
]


@pytest.fixture(scope="module")
def fp32_dir() -> Path:
    if not is_provisioned():
        pytest.skip(SKIP_MSG.format(dir=model_dir()))
    return model_dir()


@pytest.fixture(scope="module")
def int8_dir(fp32_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("int8") / "all-MiniLM-L6-v2-int8"
    return build_int8(fp32_dir, out, log=lambda _msg: None)


def test_default_dir_is_next_to_fp32(tmp_path: Path) -> None:
    assert int8_model_dir(tmp_path) == tmp_path / "embeddings" / "all-MiniLM-L6-v2-int8"
    assert ffn_output_nodes()[0] == "/bert/encoder/layer.0/output/dense/MatMul"


def test_missing_fp32_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(QuantizationError, match="provision"):
        build_int8(tmp_path / "nope", tmp_path / "out", log=lambda _msg: None)
    assert not (tmp_path / "out").exists()


def test_int8_layout_and_manifest(int8_dir: Path, fp32_dir: Path) -> None:
    names = {p.name for p in int8_dir.iterdir()}
    assert {"model.onnx", "tokenizer.json", "manifest.json"} <= names
    for lic in ("LICENSE", "NOTICE"):
        assert (lic in names) == (fp32_dir / lic).is_file()
    assert (int8_dir / "tokenizer.json").read_bytes() == (fp32_dir / "tokenizer.json").read_bytes()
    assert (int8_dir / "model.onnx").stat().st_size < 0.5 * (fp32_dir / "model.onnx").stat().st_size
    manifest = json.loads((int8_dir / "manifest.json").read_text())
    assert manifest["onnx"]["precision"] == "int8"
    assert manifest["quantization"]["per_channel"] is True
    assert manifest["reference_check"]["min_cosine"] >= MIN_COSINE_INT8
    assert is_int8_built(int8_dir, fp32_dir)
    assert not list(int8_dir.parent.glob(".staging-*"))  # staging renamed away


def test_int8_agrees_with_fp32_and_reference(int8_dir: Path, fp32_dir: Path) -> None:
    e32 = Embedder.load(fp32_dir, threads=2)
    e8 = Embedder.load(int8_dir, threads=2)  # verifies the int8 manifest's hashes
    ref = json.loads(REFERENCE_FILE.read_text())["items"]
    texts = SENTENCES + [it["text"] for it in ref]
    a, b = e32.embed(texts), e8.embed(texts)
    assert b.shape == a.shape and b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cos = np.sum(a.astype(np.float64) * b, axis=1)
    assert cos.min() >= MIN_COSINE_INT8, cos
    want = np.array([it["embedding"] for it in ref], dtype=np.float64)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    assert np.sum(b[len(SENTENCES) :] * want, axis=1).min() >= MIN_COSINE_INT8


def test_rebuild_is_a_noop(int8_dir: Path, fp32_dir: Path) -> None:
    before = (int8_dir / "manifest.json").read_text()
    lines: list[str] = []
    assert build_int8(fp32_dir, int8_dir, log=lines.append) == int8_dir
    assert "already built" in " ".join(lines)
    assert (int8_dir / "manifest.json").read_text() == before


def test_corrupt_int8_model_is_unavailable(int8_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(int8_dir, bad)
    data = bytearray((bad / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(EmbedderUnavailable, match="corrupt"):
        Embedder.load(bad, threads=1)
    assert not is_int8_built(bad)
    # truncated beyond repair and unverified: still EmbedderUnavailable, never a raw onnxruntime error
    (bad / "model.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(EmbedderUnavailable):
        Embedder.load(bad, threads=1, verify=False)
