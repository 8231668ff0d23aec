"""Build upstream llama.cpp's ``llama-server`` at provisioning, and the command lines that run it.

Source: the llama.cpp tree that llama-cpp-python's own sdist vendors (``vendor/llama.cpp``, MIT, the
ggml authors), fetched with ``pip download --no-binary :all: llama-cpp-python==<version>`` from the
package index, so the build needs nothing beyond what the machine already reaches (PyPI) plus ``cmake``
and a C++ compiler. Only the ``llama-server`` target is compiled (static, no curl/OpenSSL, no web UI
download), tuned to the build machine's CPU unless ``MMOS_LLAMA_CMAKE_ARGS`` says otherwise (e.g.
``-DGGML_NATIVE=OFF`` for a binary copied to other machines, ``-DGGML_CUDA=ON`` with a GPU).

The binary goes to ``<cache_dir>/bin/llama-server`` with a sidecar ``llama-server.json`` (version, flags,
sdist SHA-256); a second ``provision`` with the same version and flags does nothing.
Why this server and these settings: docs/local-models.md, "Choosing the server by measurement".
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from mmos_core.core.config import Settings, get_settings

__all__ = [
    "LLAMA_CPP_SDIST",
    "LlamaServerBuildError",
    "binary_path",
    "build_flags",
    "ensure_llama_server",
    "is_built",
    "server_command",
    "preset_ini",
]

#: The sdist whose vendored llama.cpp is built (the same version the project served through before).
LLAMA_CPP_SDIST = "llama-cpp-python==0.3.36"

_BASE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF", "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",  # no download at build time
    "-DLLAMA_OPENSSL=OFF",
)


class LlamaServerBuildError(RuntimeError):
    """``llama-server`` could not be built: no cmake / C++ compiler, the sdist could not be fetched, or the
    compiler failed (the message carries the log's tail and where the full log is)."""


def binary_path(settings: Settings | None = None) -> Path:
    """Where the built server lives: ``<cache_dir>/bin/llama-server``."""
    return Path((settings or get_settings()).cache_dir) / "bin" / "llama-server"


def _sidecar(settings: Settings) -> Path:
    return binary_path(settings).with_name("llama-server.json")


def build_flags(settings: Settings | None = None) -> list[str]:
    """CMake flags of the build: the fixed ones (static, server only, nothing downloaded) then
    ``MMOS_LLAMA_CMAKE_ARGS`` (split like a shell would), which win when they repeat a flag."""
    s = settings or get_settings()
    return [*_BASE_FLAGS, *shlex.split(s.llama_cmake_args or "")]


def is_built(settings: Settings | None = None) -> bool:
    """True when the binary exists and its sidecar records this version and these flags."""
    s = settings or get_settings()
    try:
        meta = json.loads(_sidecar(s).read_text())
    except (OSError, ValueError):
        return False
    return (binary_path(s).is_file() and meta.get("sdist") == LLAMA_CPP_SDIST
            and meta.get("flags") == build_flags(s))


def _need_tools() -> None:
    missing = [t for t in ("cmake", "c++") if shutil.which(t) is None]
    if missing:
        raise LlamaServerBuildError(
            f"building llama-server needs {' and '.join(missing)} (Debian: apt install cmake build-essential)."
        )


def _run(cmd: Sequence[str], log: Path, cwd: Path | None = None) -> None:
    with open(log, "ab") as f:
        f.write(("\n$ " + shlex.join(cmd) + "\n").encode())
        f.flush()
        rc = subprocess.call(list(cmd), cwd=cwd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if rc != 0:
        tail = log.read_text(errors="replace")[-2500:]
        raise LlamaServerBuildError(f"{cmd[0]} failed with exit code {rc} (full log: {log}):\n{tail}")


def ensure_llama_server(settings: Settings | None = None, echo: Callable[[str], None] = print) -> Path:
    """Build ``llama-server`` unless it is already built with this version and flags; return its path.

    Steps: ``pip download`` the sdist (pip's cache makes a second fetch fast), extract only
    ``vendor/llama.cpp`` (tarfile's ``data`` filter: no links out of the folder), ``cmake`` + build the
    ``llama-server`` target with every CPU, copy the binary into place atomically, write the sidecar.
    About 10 minutes on 2 cores; the log is ``<cache_dir>/bin/llama-server-build.log``.

    Raises:
        LlamaServerBuildError: tools missing, download or compile failed.
    """
    s = settings or get_settings()
    target = binary_path(s)
    if is_built(s):
        return target
    _need_tools()
    target.parent.mkdir(parents=True, exist_ok=True)
    log = target.with_name("llama-server-build.log")
    log.write_text("")
    with tempfile.TemporaryDirectory(prefix="mmos-llama-build-", dir=target.parent) as tmp:
        work = Path(tmp)
        echo(f"building llama-server from {LLAMA_CPP_SDIST}'s vendored llama.cpp (about 10 min on 2 cores; log {log})")
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--dest", str(work),
              LLAMA_CPP_SDIST], log)
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"), None)
        if sdist is None:
            raise LlamaServerBuildError(f"pip download of {LLAMA_CPP_SDIST} gave no sdist (log: {log})")
        digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if "/vendor/llama.cpp/" in m.name]
            tar.extractall(work / "src", members=members, filter="data")
        src = next((work / "src").glob("*/vendor/llama.cpp"))
        build = work / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run(["cmake", "-S", str(src), "-B", str(build), *generator, *build_flags(s)], log)
        _run(["cmake", "--build", str(build), "--target", "llama-server", "-j", str(os.cpu_count() or 2)], log)
        built = next(build.rglob("bin/llama-server"), None)
        if built is None:
            raise LlamaServerBuildError(f"the build finished without a llama-server binary (log: {log})")
        tmp_target = target.with_name(".llama-server.tmp")
        shutil.copy2(built, tmp_target)
        os.replace(tmp_target, target)
    _sidecar(s).write_text(json.dumps({"sdist": LLAMA_CPP_SDIST, "sdist_sha256": digest, "flags": build_flags(s)}, indent=2))
    echo(f"llama-server built: {target}")
    return target


def _model_args(*, threads: int, ctx_per_slot: int, slots: int, spec_type: str | None, spec_n: int, spec_m: int,
                gpu_layers: str) -> dict[str, str | None]:
    """Per-model server arguments as ``{flag: value}`` (``None`` = a bare flag)."""
    args: dict[str, str | None] = {
        "--threads": str(threads), "--threads-batch": str(threads),
        # explicit slots and one KV cache per slot: each slot gets exactly ctx_per_slot tokens
        "--parallel": str(slots), "--ctx-size": str(ctx_per_slot * slots), "--no-kv-unified": None,
        "--jinja": None,  # the GGUF's own chat template (Qwen2.5's ChatML)
    }
    if gpu_layers != "auto":  # auto is llama.cpp's default; naming it on a CPU build only prints warnings
        args["--n-gpu-layers"] = gpu_layers
    if spec_type:
        args |= {"--spec-type": spec_type, "--spec-ngram-simple-size-n": str(spec_n),
                 "--spec-ngram-simple-size-m": str(spec_m)}
    return args


def server_command(*, binary: str | Path, model_file: Path, alias: str, host: str, port: int, threads: int,
                   ctx_per_slot: int, slots: int, spec_type: str | None = None, spec_n: int = 4, spec_m: int = 16,
                   gpu_layers: str = "auto") -> list[str]:
    """argv serving one GGUF under ``alias`` (the benches' single-model form).

    ``ctx_per_slot`` tokens of context for each of ``slots`` parallel slots (continuous batching);
    ``spec_type`` ``"ngram-simple"`` drafts tokens from n-grams already in the prompt (lookup length
    ``spec_n``, draft length ``spec_m``), ``None`` for no speculative decoding."""
    argv = [str(binary), "--model", str(model_file), "--alias", alias, "--host", host, "--port", str(port)]
    for flag, value in _model_args(threads=threads, ctx_per_slot=ctx_per_slot, slots=slots, spec_type=spec_type,
                                   spec_n=spec_n, spec_m=spec_m, gpu_layers=gpu_layers).items():
        argv += [flag] if value is None else [flag, value]
    return argv


def preset_ini(models: dict[str, Path], settings: Settings | None = None) -> str:
    """The ``--models-preset`` INI of the router: one section per alias (``model = <gguf>``), every model
    loaded at start, with the serving settings (``llm_slots``, ``llm_spec_type``, ...) in ``[*]``.

    Raises ValueError for a setting llama-server would refuse (caught earlier by ``Settings``)."""
    s = settings or get_settings()
    spec = None if s.llm_spec_type == "none" else s.llm_spec_type
    common = _model_args(threads=s.llm_threads, ctx_per_slot=s.llm_context_tokens, slots=s.llm_slots, spec_type=spec,
                         spec_n=s.llm_spec_ngram_n, spec_m=s.llm_spec_ngram_m, gpu_layers=s.llm_gpu_layers)
    lines = ["version = 1", "", "[*]"]
    for flag, value in common.items():
        key = flag.lstrip("-")
        if value is None:
            key, value = (key[3:], "false") if key.startswith("no-") else (key, "true")
        lines.append(f"{key} = {value}")
    for alias, path in models.items():
        lines += ["", f"[{alias}]", f"model = {path}", "load-on-startup = true"]
    return "\n".join(lines) + "\n"
