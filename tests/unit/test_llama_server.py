"""llama-server's build bookkeeping and command lines (no compiler run here: CI builds it for real through
`mmos models provision`, and tests/integration/test_local_llm.py calls the built server)."""

from __future__ import annotations

import json

import pytest

from mmos_core.core.config import Settings
from mmos_core.llm import llama_server as ls


def _settings(tmp_path, **kw) -> Settings:
    return Settings(cache_dir=tmp_path / "cache", data_dir=tmp_path / "data", **kw)


def test_built_only_with_the_same_version_and_flags(tmp_path):
    s = _settings(tmp_path)
    assert not ls.is_built(s)
    binary = ls.binary_path(s)
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF")
    sidecar = binary.with_name("llama-server.json")
    sidecar.write_text(json.dumps({"sdist": ls.LLAMA_CPP_SDIST, "flags": ls.build_flags(s)}))
    assert ls.is_built(s)
    # a GPU build asked for: the CPU binary no longer counts, provisioning rebuilds
    assert not ls.is_built(s.model_copy(update={"llama_cmake_args": "-DGGML_CUDA=ON"}))
    sidecar.write_text(json.dumps({"sdist": "llama-cpp-python==0.3.1", "flags": ls.build_flags(s)}))
    assert not ls.is_built(s)
    sidecar.write_text("not json")
    assert not ls.is_built(s)


def test_build_flags_never_download_and_user_flags_come_last(tmp_path):
    flags = ls.build_flags(_settings(tmp_path, llama_cmake_args="-DGGML_NATIVE=OFF -DGGML_CUDA=ON"))
    assert "-DLLAMA_USE_PREBUILT_UI=OFF" in flags and "-DLLAMA_OPENSSL=OFF" in flags
    assert flags[-2:] == ["-DGGML_NATIVE=OFF", "-DGGML_CUDA=ON"]


def test_missing_tools_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(ls.shutil, "which", lambda tool: None if tool == "cmake" else "/usr/bin/" + tool)
    with pytest.raises(ls.LlamaServerBuildError, match="needs cmake"):
        ls.ensure_llama_server(_settings(tmp_path), echo=lambda _m: None)


def test_single_model_command(tmp_path):
    argv = ls.server_command(binary="/b/llama-server", model_file=tmp_path / "m.gguf", alias="m", host="127.0.0.1",
                             port=9, threads=2, ctx_per_slot=4096, slots=4, spec_type="ngram-simple")
    flag = dict(zip(argv, argv[1:], strict=False))
    assert flag["--parallel"] == "4" and flag["--ctx-size"] == "16384" and "--no-kv-unified" in argv
    assert flag["--spec-type"] == "ngram-simple" and flag["--spec-ngram-simple-size-n"] == "4"
    assert "--n-gpu-layers" not in argv  # auto: llama.cpp's own default
    plain = ls.server_command(binary="b", model_file=tmp_path / "m.gguf", alias="m", host="h", port=9, threads=2,
                              ctx_per_slot=2048, slots=1, gpu_layers="all")
    assert "--spec-type" not in plain and plain[plain.index("--n-gpu-layers") + 1] == "all"


@pytest.mark.parametrize("value", ["-1", "lots", ""])
def test_gpu_layers_refuses_what_llama_server_would(value):
    with pytest.raises(ValueError, match="llm_gpu_layers"):
        Settings(llm_gpu_layers=value)


@pytest.mark.parametrize("slots", [0, -2, 65])
def test_slots_out_of_range_are_refused_at_start(slots):
    with pytest.raises(ValueError, match="llm_slots"):
        Settings(llm_slots=slots)
