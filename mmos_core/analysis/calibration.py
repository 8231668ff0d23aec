"""How well each automatic check agrees with human reviewers: AUROC, accuracy and Cohen's kappa with 95 % intervals.

Pure functions of lists; the statistics come from libraries where one exists (scikit-learn's `roc_auc_score`
and `cohen_kappa_score`, scipy's `rankdata`), and every interval method is named with its source:

* **AUROC** — `sklearn.metrics.roc_auc_score`; 95 % interval from DeLong's variance (DeLong, DeLong &
  Clarke-Pearson 1988, "Comparing the areas under two or more correlated receiver operating characteristic
  curves: a nonparametric approach", Biometrics 44:837-845), computed with Sun & Xu's midrank algorithm
  (2014, "Fast implementation of DeLong's algorithm…", IEEE Signal Processing Letters 21:1389-1393), as
  AUC ± z·SE clipped to [0, 1]. Deterministic (no resampling). At AUROC 0 or 1 the variance is 0 and the
  interval is a point: that is why small samples are reported as *uncalibrated* (`min_verdicts`).
* **accuracy** — k / n with the 95 % Wilson score interval (Wilson 1927; `quality_score.wilson_interval`).
* **Cohen's kappa** — `sklearn.metrics.cohen_kappa_score` (Cohen 1960, "A coefficient of agreement for
  nominal scales", Educational and Psychological Measurement 20:37-46); 95 % interval by a seeded
  percentile bootstrap over items (Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13).

`calibration_report` applies them to per-fragment check outcomes against human verdicts; the rule (which
rows count, which reject reason pairs with which check) is in docs/quality.md, "Calibration of the checks".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, Literal

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from mmos_core.analysis.quality_score import Z95, wilson_interval

Verdict = Literal["verified", "rejected"]
RejectReason = Literal["misquote", "wrong_speaker", "unsupported_insight", "wrong_category", "trivial"]
REJECT_REASONS: tuple[str, ...] = ("misquote", "wrong_speaker", "unsupported_insight", "wrong_category", "trivial")

#: The checks, in display order, and the reject reason each one is meant to catch ("composite" has none).
CHECK_REASONS: dict[str, str | None] = {
    "verbatim": "misquote",
    "attribution": "wrong_speaker",
    "support": "unsupported_insight",
    "support_baseline": "unsupported_insight",
    "category": "wrong_category",
    "composite": None,
}
#: Score of each attribution kind (higher = more likely the person's own words). Kinds not listed
#: (e.g. "unknown") count as "check not run" for that fragment. Adjust to the attribution check's vocabulary.
ATTRIBUTION_SCORES: dict[str, float] = {"person": 1.0, "mixed": 0.5, "other": 0.0, "editorial": 0.0}
#: A check "passes" (predicts *verified*) when its score is ≥ this. Support passes only at "yes" (1.0):
#: "partly" means part of the insight is unsupported. Composite is the 0-10 quality scale; 7.0 is
#: `quality_threshold_default`.
PASS_THRESHOLDS: dict[str, float] = {
    "verbatim": 1.0,
    "attribution": 1.0,
    "support": 1.0,
    "support_baseline": 0.40,
    "category": 1.0,
    "composite": 7.0,
}
#: Verdicts a check needs before its figures are shown as numbers rather than "uncalibrated".
MIN_VERDICTS = 30
#: Bootstrap resamples and seed of `cohen_kappa` (fixed, so a report is reproducible).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240601


@dataclass(frozen=True)
class Estimate:
    """A statistic with its 95 % interval.

    Attributes:
        value: the statistic, or None when it is undefined (e.g. AUROC with one class missing, n == 0).
        low, high: the 95 % interval, or None when it cannot be computed (value None, or too few items:
            AUROC needs ≥ 2 items of each class for DeLong's variance).
        n: items the statistic was computed on (after dropping items with a missing score or label).
        method: how the interval was obtained ("DeLong", "Wilson", "bootstrap").
    """

    value: float | None
    low: float | None
    high: float | None
    n: int
    method: str = ""


def auroc(scores: Sequence[float | None], labels: Sequence[bool | int | None]) -> Estimate:
    """Area under the ROC curve of `scores` for `labels`, with DeLong's 95 % interval.

    Args:
        scores: higher = more likely positive; any real scale (ties count ½, as in the Mann-Whitney U).
        labels: truthy = positive. Pairs with a None score or label are dropped.
    Returns:
        `Estimate(value, low, high, n, "DeLong")`; value None when one class is missing; low/high None when
        either class has fewer than 2 items.
    Raises:
        ValueError: `scores` and `labels` differ in length.
    """
    s, y = _pairs(scores, labels)
    n = len(s)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return Estimate(None, None, None, n, "DeLong")
    value = float(roc_auc_score(y, s))
    se = delong_se(pos, neg)
    if se is None:
        return Estimate(value, None, None, n, "DeLong")
    return Estimate(value, max(0.0, value - Z95 * se), min(1.0, value + Z95 * se), n, "DeLong")


def delong_se(positives: Sequence[float] | np.ndarray, negatives: Sequence[float] | np.ndarray) -> float | None:
    """DeLong's standard error of the AUROC of positive vs negative scores (Sun & Xu 2014, midranks).

    With m positives X and n negatives Y, T_X, T_Y and T_Z the midranks of X in X, of Y in Y and of both in
    the pooled sample: V10_i = (T_Z(X_i) − T_X(X_i)) / n, V01_j = 1 − (T_Z(Y_j) − T_Y(Y_j)) / m, and
    Var(AUC) = s²(V10) / m + s²(V01) / n (sample variances, ddof 1).

    Returns:
        The standard error, or None when m < 2 or n < 2 (a sample variance needs two values).
    """
    x = np.asarray(positives, dtype=float)
    yv = np.asarray(negatives, dtype=float)
    m, k = len(x), len(yv)
    if m < 2 or k < 2:
        return None
    tz = rankdata(np.concatenate([x, yv]))
    v10 = (tz[:m] - rankdata(x)) / k
    v01 = 1.0 - (tz[m:] - rankdata(yv)) / m
    var = float(np.var(v10, ddof=1)) / m + float(np.var(v01, ddof=1)) / k
    return math.sqrt(max(var, 0.0))


def accuracy(pred: Sequence[bool | int | None], labels: Sequence[bool | int | None]) -> Estimate:
    """Share of items where `bool(pred) == bool(label)`, with the 95 % Wilson interval.

    Pairs with a None prediction or label are dropped. Returns `Estimate(None, None, None, 0, "Wilson")`
    when nothing is left. Raises ValueError when the lengths differ.
    """
    p, y = _pairs(pred, labels)
    n = len(p)
    if n == 0:
        return Estimate(None, None, None, 0, "Wilson")
    k = int(np.sum((p != 0) == (y == 1)))
    low, high = wilson_interval(k, n)  # type: ignore[misc]  # n > 0, so never None
    return Estimate(k / n, low, high, n, "Wilson")


def cohen_kappa(
    a: Sequence[Any], b: Sequence[Any], *, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
) -> Estimate:
    """Cohen's kappa between two raters' labels on the same items, with a seeded bootstrap 95 % interval.

    κ = (p_o − p_e) / (1 − p_e), p_o the observed agreement, p_e the agreement expected from the two
    raters' marginals (Cohen 1960); the point value is `sklearn.metrics.cohen_kappa_score`. The interval is
    the 2.5th-97.5th percentile of κ over `n_resamples` resamples of items with replacement (numpy
    `default_rng(seed)`); resamples where κ is undefined (p_e = 1: both raters use one label) are dropped.

    Args:
        a, b: labels of rater A and rater B, item by item (any hashable values); pairs with a None dropped.
    Returns:
        `Estimate(κ, low, high, n, "bootstrap")`; value None when n == 0 or κ is undefined on the data;
        low/high None when fewer than half the resamples give a defined κ.
    Raises:
        ValueError: the lengths differ.
    """
    if len(a) != len(b):
        raise ValueError(f"raters labelled different numbers of items ({len(a)} vs {len(b)})")
    kept = [(x, y) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
    n = len(kept)
    if n == 0:
        return Estimate(None, None, None, 0, "bootstrap")
    index: dict[Any, int] = {}
    for pair in kept:
        for v in pair:
            index.setdefault(v, len(index))
    labels = list(index)
    ca = np.array([index[x] for x, _ in kept])
    cb = np.array([index[y] for _, y in kept])
    if len(labels) < 2:
        return Estimate(None, None, None, n, "bootstrap")  # one label only: p_e = 1, κ undefined
    value = float(cohen_kappa_score(ca, cb, labels=list(range(len(labels)))))
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    boot = _kappa_rows(ca[draws], cb[draws], len(labels))
    boot = boot[np.isfinite(boot)]
    if len(boot) < n_resamples / 2:
        return Estimate(value, None, None, n, "bootstrap")
    low, high = np.percentile(boot, [2.5, 97.5])
    return Estimate(value, float(low), float(high), n, "bootstrap")


def _kappa_rows(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Unweighted Cohen's kappa of each row of two (R, n) integer label arrays (0..k-1); NaN where p_e = 1.

    The same formula as `cohen_kappa_score` (checked against it in tests/unit/test_calibration.py), vectorised
    because calling it once per resample costs ~0.7 ms each.
    """
    rows, n = a.shape
    cells = np.bincount((np.arange(rows)[:, None] * k * k + a * k + b).ravel(), minlength=rows * k * k)
    confusion = cells.reshape(rows, k, k).astype(float)
    p_o = np.trace(confusion, axis1=1, axis2=2) / n
    p_e = np.sum(confusion.sum(axis=2) * confusion.sum(axis=1), axis=1) / (n * n)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p_e < 1.0, (p_o - p_e) / (1.0 - p_e), np.nan)


def _pairs(values: Sequence[Any], labels: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(values, 0/1 labels) as float / int arrays, without the pairs where either is None."""
    if len(values) != len(labels):
        raise ValueError(f"{len(values)} values but {len(labels)} labels")
    kept = [
        (float(v), 1 if lab else 0) for v, lab in zip(values, labels, strict=True) if v is not None and lab is not None
    ]
    if not kept:
        return np.zeros(0), np.zeros(0, dtype=int)
    v, y = zip(*kept, strict=True)
    return np.asarray(v, dtype=float), np.asarray(y, dtype=int)


# --------------------------------------------------------------------------------------------- report


@dataclass(frozen=True)
class CalibrationRow:
    """One reviewed fragment: its automatic check outcomes and the human verdict.

    Attributes:
        verdict: "verified" or "rejected" (the reviewer's verdict).
        reject_reason: one of `REJECT_REASONS` for a rejection when the reviewer gave one, else None.
        verbatim: the quote was found verbatim in its source (None: not checked, e.g. a paraphrase).
        attribution: the attribution kind (a key of `ATTRIBUTION_SCORES`; None or another kind: not checked).
        support_score: the judge's support score 1 / 0.5 / 0 (None: not judged or malformed).
        category_agrees: the judge's category equals the fragment's (None: not judged).
        composite: the fragment's composite 0-10 score (None: not computed).
        support_baseline: cosine 0-1 of insight vs quote + context, the embedding baseline (None: not computed).
    """

    verdict: Verdict
    reject_reason: str | None = None
    verbatim: bool | None = None
    attribution: str | None = None
    support_score: float | None = None
    category_agrees: bool | None = None
    composite: float | None = None
    support_baseline: float | None = None

    def __post_init__(self) -> None:
        if self.verdict not in ("verified", "rejected"):
            raise ValueError(f"verdict must be 'verified' or 'rejected', not {self.verdict!r}")
        if self.reject_reason is not None and self.reject_reason not in REJECT_REASONS:
            raise ValueError(f"unknown reject reason {self.reject_reason!r}; known: {', '.join(REJECT_REASONS)}")


@dataclass(frozen=True)
class Agreement:
    """A check against one target: the human verdict, or one reject reason.

    Attributes:
        target: "verdict", or the reject reason (e.g. "misquote").
        n: fragments counted (the check ran and the target is defined); n_positive: of them, verified.
        auroc: how well the check's score separates verified fragments from the others (0.5 = chance).
        accuracy: share where "check passes" (score ≥ its `PASS_THRESHOLDS` entry) equals "verified".
        calibrated: n ≥ min_verdicts; when False, show "uncalibrated" instead of the numbers.
    """

    target: str
    n: int
    n_positive: int
    auroc: Estimate
    accuracy: Estimate
    calibrated: bool


@dataclass(frozen=True)
class CheckCalibration:
    """One check's agreement with the verdict and, when it has one, with its matching reject reason."""

    check: str
    verdict: Agreement
    reason: Agreement | None


@dataclass(frozen=True)
class CalibrationReport:
    """`calibration_report`'s result: per check (in `CHECK_REASONS` order), the rows seen and the gate used."""

    checks: dict[str, CheckCalibration] = field(default_factory=dict)
    n_rows: int = 0
    min_verdicts: int = MIN_VERDICTS


def check_score(
    row: CalibrationRow, check: str, attribution_scores: Mapping[str, float] = ATTRIBUTION_SCORES
) -> float | None:
    """The numeric outcome of `check` on `row` (higher = more likely fine), or None when it did not run.

    verbatim and category: 1.0 / 0.0; attribution: `attribution_scores[kind]`; support: the support score;
    composite: the 0-10 score. Raises KeyError for an unknown check name.
    """
    return _scorer(check, attribution_scores)(row)


def _scorer(check: str, attribution_scores: Mapping[str, float]) -> Callable[[CalibrationRow], float | None]:
    """`check_score` of one check as a function of the row (the report applies it to every reviewed fragment)."""
    if check == "verbatim":
        return lambda row: None if row.verbatim is None else float(row.verbatim)
    if check == "attribution":
        return lambda row: attribution_scores.get(row.attribution) if row.attribution is not None else None
    if check == "support":
        return attrgetter("support_score")
    if check == "support_baseline":
        return attrgetter("support_baseline")
    if check == "category":
        return lambda row: None if row.category_agrees is None else float(row.category_agrees)
    if check == "composite":
        return attrgetter("composite")
    raise KeyError(f"unknown check {check!r}; known: {', '.join(CHECK_REASONS)}")


def calibration_report(
    rows: Sequence[CalibrationRow],
    min_verdicts: int = MIN_VERDICTS,
    *,
    attribution_scores: Mapping[str, float] = ATTRIBUTION_SCORES,
    thresholds: Mapping[str, float] = PASS_THRESHOLDS,
) -> CalibrationReport:
    """Agreement of every check with the human verdicts on `rows`.

    For each check in `CHECK_REASONS`, only rows where the check ran (`check_score` not None) count:
      * against the **verdict**: label 1 = verified, 0 = rejected (for any reason or none);
      * against its **reject reason** R (verbatim ↔ misquote, attribution ↔ wrong_speaker,
        support ↔ unsupported_insight, category ↔ wrong_category): label 1 = verified, 0 = rejected with
        reason R; rejections for another reason or with no reason are left out, since they say nothing
        about whether R's check should have fired.
    AUROC (DeLong interval) ranks the check's score against the label; accuracy (Wilson interval) compares
    "score ≥ `thresholds[check]`" with it. `calibrated` is n ≥ `min_verdicts`, per check and target.

    Returns:
        A `CalibrationReport`. Raises ValueError when `min_verdicts` < 1.
    """
    if min_verdicts < 1:
        raise ValueError("min_verdicts must be at least 1")
    checks: dict[str, CheckCalibration] = {}
    for check, reason in CHECK_REASONS.items():
        score_of = _scorer(check, attribution_scores)
        scored = [(s, r) for r in rows if (s := score_of(r)) is not None]
        on_verdict = [(s, r.verdict == "verified") for s, r in scored]
        on_reason = [
            (s, r.verdict == "verified") for s, r in scored if r.verdict == "verified" or r.reject_reason == reason
        ]
        checks[check] = CheckCalibration(
            check=check,
            verdict=_agreement("verdict", on_verdict, thresholds[check], min_verdicts),
            reason=_agreement(reason, on_reason, thresholds[check], min_verdicts) if reason is not None else None,
        )
    return CalibrationReport(checks=checks, n_rows=len(rows), min_verdicts=min_verdicts)


def _agreement(target: str, pairs: list[tuple[float, bool]], threshold: float, min_verdicts: int) -> Agreement:
    scores = [s for s, _ in pairs]
    labels = [lab for _, lab in pairs]
    return Agreement(
        target=target,
        n=len(pairs),
        n_positive=sum(labels),
        auroc=auroc(scores, labels),
        accuracy=accuracy([s >= threshold for s in scores], labels),
        calibrated=len(pairs) >= min_verdicts,
    )


def format_estimate(est: Estimate, *, calibrated: bool = True, digits: int = 2) -> str:
    """How a page shows an estimate: "0.81 [0.72, 0.89] (n=40)", "uncalibrated (n=12)" or "— (n=0)"."""
    if not calibrated:
        return f"uncalibrated (n={est.n})"
    if est.value is None:
        return f"— (n={est.n})"
    interval = f" [{est.low:.{digits}f}, {est.high:.{digits}f}]" if est.low is not None and est.high is not None else ""
    return f"{est.value:.{digits}f}{interval} (n={est.n})"
