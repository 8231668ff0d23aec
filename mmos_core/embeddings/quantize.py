"""Build an int8 copy of the provisioned ONNX embedder with `onnxruntime.quantization.quantize_dynamic`.

Input: the fp32 model of `mmos_core.embeddings.provision` (`<cache_dir>/embeddings/all-MiniLM-L6-v2`).
Output: `<cache_dir>/embeddings/all-MiniLM-L6-v2-int8/` with `model.onnx` (int8), the same
`tokenizer.json`, the weights' LICENSE/NOTICE and a `manifest.json` in the fp32 format, so
`Embedder.load(int8_model_dir())` works unchanged (it checks the SHA-256 of both files).

Settings (measured, see docs/embeddings.md):

- dynamic quantisation, int8 weights (`QInt8`), **per channel** (the default per-tensor setting loses
  too much: cosine vs fp32 down to ~0.90);
- the six feed-forward output MatMuls (`/bert/encoder/layer.N/output/dense/MatMul`, 1536 -> 384, the
  layers with the widest activation range) stay fp32 (`nodes_to_exclude`), which raises the worst
  cosine against sentence-transformers on the reference texts (see `EXCLUDE_FFN_OUTPUT`).

The result is refused unless every reference text (`reference.json`, 24 texts, at batch 1 and 32)
has cosine >= `MIN_COSINE_INT8` (0.98) with the sentence-transformers vector. int8 vectors are
close to, but not equal to, fp32 vectors, and they depend slightly on the batch a text is in: never
mix int8 and fp32 vectors in one index or cache.

`onnxruntime.quantization` needs the `onnx` package. When it is not importable, the quantisation
runs in a small throwaway venv `<cache_dir>/embeddings/.quant-venv` (onnx + the same onnxruntime version),
which is deleted afterwards.

CLI: `python -m mmos_core.embeddings.quantize [--force] [--cache-dir DIR]`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from mmos_core.embeddings.embedder import (
    MANIFEST_FILE,
    MODEL_NAME,
    ONNX_FILE,
    TOKENIZER_FILE,
    EmbedderUnavailable,
    _verify_manifest,
    default_model_dir,
    sha256_file,
)
from mmos_core.embeddings.provision import install_atomically

INT8_MODEL_NAME = f"{MODEL_NAME}-int8"
# Min cosine vs the sentence-transformers reference vectors, every reference text, batch 1 and 32.
# (fp32 must reach 0.999; measured int8 min ~0.99, see docs/embeddings.md.)
MIN_COSINE_INT8 = 0.98
# Keep the feed-forward output projections in fp32 (see module docstring).
EXCLUDE_FFN_OUTPUT = True
NUM_LAYERS = 6
LICENCE_FILES = ("LICENSE", "NOTICE")
QUANT_VENV_REQUIREMENTS = ["onnx==1.23.2"]  # + onnxruntime==<the installed version>

# Runs in-process or in the quant venv: argv = src dst json(nodes_to_exclude).
_QUANTIZE_CODE = """
import json, sys
from onnxruntime.quantization import QuantType, quantize_dynamic
quantize_dynamic(sys.argv[1], sys.argv[2], per_channel=True, weight_type=QuantType.QInt8,
                 nodes_to_exclude=json.loads(sys.argv[3]))
import onnxruntime, onnx
print("VERSIONS=" + json.dumps({"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}))
"""


class QuantizationError(RuntimeError):
    """Building the int8 model failed; nothing was installed (an existing int8 model is left untouched)."""


def int8_model_dir(cache_dir: Path | None = None) -> Path:
    """`<cache_dir>/embeddings/all-MiniLM-L6-v2-int8` (cache_dir from settings by default)."""
    return default_model_dir(cache_dir).with_name(INT8_MODEL_NAME)


def ffn_output_nodes(num_layers: int = NUM_LAYERS) -> list[str]:
    """Names of the feed-forward output MatMuls in the TorchScript export of BERT."""
    return [f"/bert/encoder/layer.{i}/output/dense/MatMul" for i in range(num_layers)]


def is_int8_built(out_dir: Path | None = None, fp32_dir: Path | None = None) -> bool:
    """True when the int8 folder's files match its manifest and it was made from the current fp32 model."""
    out_dir = Path(out_dir) if out_dir is not None else int8_model_dir()
    fp32_dir = Path(fp32_dir) if fp32_dir is not None else default_model_dir()
    try:
        manifest = _verify_manifest(out_dir)
        fp32_manifest = json.loads((fp32_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (EmbedderUnavailable, OSError, ValueError):
        return False
    want = fp32_manifest.get("files", {}).get(ONNX_FILE, {}).get("sha256")
    return bool(want) and manifest.get("quantization", {}).get("fp32_sha256") == want


def build_int8(
    fp32_dir: Path | None = None,
    out_dir: Path | None = None,
    *,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Quantise the fp32 embedder to int8 (dynamic, per channel) and install it; return its directory.

    Args:
        fp32_dir: the provisioned fp32 model (default `<cache_dir>/embeddings/all-MiniLM-L6-v2`);
            its files are verified against its manifest first.
        out_dir: where the int8 model goes (default `<cache_dir>/embeddings/all-MiniLM-L6-v2-int8`).
        force: rebuild even when a valid int8 model made from this fp32 model is present.
        log: progress sink.

    Returns:
        `out_dir`, holding model.onnx, tokenizer.json, LICENSE, NOTICE and manifest.json (loadable with
        `Embedder.load(out_dir)`).

    Raises:
        QuantizationError: the fp32 model is missing/corrupt, quantisation failed, or the result's
            min cosine vs the reference is below `MIN_COSINE_INT8`. Nothing half-built is installed.
    """
    fp32_dir = Path(fp32_dir) if fp32_dir is not None else default_model_dir()
    out_dir = Path(out_dir) if out_dir is not None else int8_model_dir()
    if not force and is_int8_built(out_dir, fp32_dir):
        log(f"int8 embedder already built at {out_dir} (hashes match the manifest)")
        return out_dir
    try:
        fp32_manifest = _verify_manifest(fp32_dir)
    except EmbedderUnavailable as e:
        raise QuantizationError(f"the fp32 model is not usable: {e}") from e
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(out_dir.parent / f".{out_dir.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and is_int8_built(out_dir, fp32_dir):
            log(f"int8 embedder already built at {out_dir}")
            return out_dir
        for stale in [*out_dir.parent.glob(f".staging-{out_dir.name}-*"), *out_dir.parent.glob(f".old-{out_dir.name}-*")]:
            shutil.rmtree(stale, ignore_errors=True)
        return _build_locked(fp32_dir, out_dir, fp32_manifest, log)


def _build_locked(fp32_dir: Path, out_dir: Path, fp32_manifest: dict, log: Callable[[str], None]) -> Path:
    from mmos_core.embeddings.provision import reference_check

    t0 = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=f".staging-{out_dir.name}-", dir=out_dir.parent))
    exclude = ffn_output_nodes() if EXCLUDE_FFN_OUTPUT else []
    try:
        shutil.copy2(fp32_dir / TOKENIZER_FILE, staging / TOKENIZER_FILE)
        for name in LICENCE_FILES:
            if (fp32_dir / name).is_file():
                shutil.copy2(fp32_dir / name, staging / name)
        log(f"quantising {fp32_dir / ONNX_FILE} to int8 (dynamic, per channel, {len(exclude)} MatMuls kept fp32) ...")
        versions = _quantize(fp32_dir / ONNX_FILE, staging / ONNX_FILE, exclude, out_dir.parent, log)
        log(f"  {(staging / ONNX_FILE).stat().st_size:,} bytes in {time.monotonic() - t0:.1f} s")

        log("checking the int8 model against the reference embeddings ...")
        check = reference_check(staging)
        log(f"  cosine vs sentence-transformers over {check['n']} texts: min {check['min_cosine']:.5f}, mean {check['mean_cosine']:.5f}")
        if check["min_cosine"] < MIN_COSINE_INT8:
            raise QuantizationError(
                f"int8 model disagrees with the reference: min cosine {check['min_cosine']:.5f} < {MIN_COSINE_INT8} "
                f"(worst text #{check['worst_index']}); not installed"
            )
        manifest = {
            "model": fp32_manifest.get("model", f"sentence-transformers/{MODEL_NAME}"),
            "dimension": fp32_manifest.get("dimension", 384),
            "max_seq_length": fp32_manifest.get("max_seq_length", 256),
            "files": {
                name: {"sha256": sha256_file(staging / name), "bytes": (staging / name).stat().st_size}
                for name in (ONNX_FILE, TOKENIZER_FILE)
            },
            "source": fp32_manifest.get("source", {}),
            "onnx": {**fp32_manifest.get("onnx", {}), "precision": "int8"},
            "quantization": {
                "method": "onnxruntime.quantization.quantize_dynamic",
                "weight_type": "QInt8",
                "per_channel": True,
                "nodes_to_exclude": exclude,
                "fp32_sha256": fp32_manifest["files"][ONNX_FILE]["sha256"],
                "fp32_dir": str(fp32_dir),
            },
            "build": {**fp32_manifest.get("build", {}), **versions},
            "built_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "reference_check": {**check, "min_required": MIN_COSINE_INT8, "reference": "reference.json"},
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        staging.chmod(0o755)
        install_atomically(staging, out_dir)
        log(f"int8 embedder installed at {out_dir} in {time.monotonic() - t0:.0f} s")
        return out_dir
    except QuantizationError:
        raise
    except EmbedderUnavailable as e:
        raise QuantizationError(f"the int8 model cannot be loaded: {e}") from e
    except OSError as e:
        raise QuantizationError(f"{type(e).__name__}: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _quantize(src: Path, dst: Path, exclude: list[str], work: Path, log: Callable[[str], None]) -> dict:
    """Run quantize_dynamic in-process when `onnx` is importable, else in a throwaway venv."""
    args = [str(src), str(dst), json.dumps(exclude)]
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401

        python, venv = sys.executable, None
    except ImportError:
        import onnxruntime

        venv = work / ".quant-venv"
        log(f"  `onnx` is not installed here: creating throwaway venv {venv} (onnx, onnxruntime=={onnxruntime.__version__}) ...")
        shutil.rmtree(venv, ignore_errors=True)
        base = getattr(sys, "_base_executable", None) or sys.executable
        _run([base, "-m", "venv", str(venv)])
        python = str(venv / "bin" / "python")
        _run([python, "-m", "pip", "install", "--quiet", *QUANT_VENV_REQUIREMENTS, f"onnxruntime=={onnxruntime.__version__}"])
    try:
        # A subprocess either way: quantize_dynamic's peak memory (~3x the model) is returned to the OS.
        out = _run([python, "-c", _QUANTIZE_CODE, *args])
    finally:
        if venv is not None:
            shutil.rmtree(venv, ignore_errors=True)
    line = next((ln for ln in out.splitlines() if ln.startswith("VERSIONS=")), "VERSIONS={}")
    return json.loads(line[len("VERSIONS=") :])


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise QuantizationError(f"command failed ({proc.returncode}): {' '.join(cmd[:4])} ...\n{tail}")
    return proc.stdout


def main(argv: list[str] | None = None) -> int:
    """CLI: build the int8 embedder; exit 1 with the reason on failure."""
    parser = argparse.ArgumentParser(prog="python -m mmos_core.embeddings.quantize", description=__doc__.split("\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: settings.cache_dir (MMOS_CACHE_DIR)")
    parser.add_argument("--fp32-dir", type=Path, default=None, help="default: <cache_dir>/embeddings/all-MiniLM-L6-v2")
    parser.add_argument("--out-dir", type=Path, default=None, help="default: <cache_dir>/embeddings/all-MiniLM-L6-v2-int8")
    parser.add_argument("--force", action="store_true", help="rebuild even if a valid int8 model is present")
    args = parser.parse_args(argv)
    fp32_dir = args.fp32_dir or default_model_dir(args.cache_dir)
    out_dir = args.out_dir or int8_model_dir(args.cache_dir)
    try:
        path = build_int8(fp32_dir, out_dir, force=args.force)
    except QuantizationError as e:
        print(f"int8 build failed: {e}", file=sys.stderr)
        return 1
    rc = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8")).get("reference_check", {})
    print(f"ok: {path} (min cosine vs reference {rc.get('min_cosine', float('nan')):.5f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
