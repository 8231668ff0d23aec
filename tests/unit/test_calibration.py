"""Calibration statistics: AUROC with DeLong's interval, accuracy with Wilson's, Cohen's kappa with a seeded
bootstrap, and the per-check report with its min_verdicts gate.

Expected values are worked out by hand, or are published figures (sources named at each table).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from mmos_core.analysis.calibration import (
    CHECK_REASONS,
    CalibrationRow,
    Estimate,
    _kappa_rows,
    accuracy,
    auroc,
    calibration_report,
    cohen_kappa,
    delong_se,
    format_estimate,
)

# ------------------------------------------------------------------------------------------------ AUROC

# scores, labels, AUROC by hand (pairs positive > negative, ties ½, over m·n pairs)
AUROC_CASES = [
    pytest.param([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], 1.0, id="perfect-separation"),
    pytest.param([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1], 0.0, id="perfectly-inverted"),
    pytest.param([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1], 0.5, id="all-tied"),
    # pos {0.9, 0.4} vs neg {0.5, 0.1}: 0.9>0.5, 0.9>0.1, 0.4<0.5, 0.4>0.1 → 3/4
    pytest.param([0.9, 0.4, 0.5, 0.1], [1, 1, 0, 0], 0.75, id="three-of-four-pairs"),
    # pos {0.5} vs neg {0.5, 0.1}: tie ½ + win 1 → 1.5/2
    pytest.param([0.5, 0.5, 0.1], [True, False, False], 0.75, id="tie-counts-half"),
    # booleans as scores (a pass/fail check): pos {1,1,0} vs neg {0,0}: 2·2 wins + 1·2 ties·½ = 5/6
    pytest.param([True, True, False, False, False], [1, 1, 1, 0, 0], 5 / 6, id="binary-check"),
]


@pytest.mark.parametrize(("scores", "labels", "expected"), AUROC_CASES)
def test_auroc_values(scores, labels, expected):
    est = auroc(scores, labels)
    assert est.value == pytest.approx(expected)
    assert est.n == len(scores) and est.method == "DeLong"


def test_auroc_hanley_mcneil_ct_ratings():
    # Hanley & McNeil 1982 (Radiology 143:29-36), Table 1: 58 normal and 51 abnormal CT images rated 1-5;
    # published area 0.893, standard error 0.032 by their approximation (DeLong's is close to it).
    neg = [r for r, c in zip(range(1, 6), [33, 6, 6, 11, 2], strict=True) for _ in range(c)]
    pos = [r for r, c in zip(range(1, 6), [3, 2, 2, 11, 33], strict=True) for _ in range(c)]
    est = auroc(pos + neg, [1] * len(pos) + [0] * len(neg))
    assert est.value == pytest.approx(0.893, abs=5e-4)
    se = delong_se(pos, neg)
    assert 0.025 < se < 0.036
    assert est.low == pytest.approx(est.value - 1.959963984540054 * se)
    assert est.high == pytest.approx(est.value + 1.959963984540054 * se)


def _delong_brute_force(pos: list[float], neg: list[float]) -> float:
    """DeLong 1988 straight from its definition: placement values from the kernel ψ over all m·n pairs."""
    m, n = len(pos), len(neg)
    psi = [[1.0 if x > y else 0.5 if x == y else 0.0 for y in neg] for x in pos]
    auc = sum(map(sum, psi)) / (m * n)
    v10 = [sum(row) / n for row in psi]
    v01 = [sum(psi[i][j] for i in range(m)) / m for j in range(n)]
    s10 = sum((v - auc) ** 2 for v in v10) / (m - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (n - 1)
    return math.sqrt(s10 / m + s01 / n)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_delong_midrank_algorithm_equals_the_definition(seed):
    rng = np.random.default_rng(seed)
    pos = list(rng.integers(0, 6, size=23).astype(float) + 1.0)  # integer scores: many ties
    neg = list(rng.integers(0, 6, size=31).astype(float))
    assert delong_se(pos, neg) == pytest.approx(_delong_brute_force(pos, neg), rel=1e-12)


def test_auroc_of_random_scores_is_near_one_half():
    rng = np.random.default_rng(7)
    scores = rng.random(4000)
    labels = rng.random(4000) < 0.5
    est = auroc(list(scores), list(labels))
    assert abs(est.value - 0.5) < 0.03
    assert est.low < 0.5 < est.high
    assert est.high - est.low < 0.07  # n = 4,000: the interval is narrow


def test_delong_interval_covers_the_true_auroc_about_95_percent_of_the_time():
    # scores N(1, 1) vs N(0, 1): true AUROC = Φ(1/√2) = 0.76025
    true_auc = 0.5 * (1 + math.erf(0.5))
    rng = np.random.default_rng(11)
    covered = 0
    for _ in range(300):
        pos, neg = rng.normal(1.0, 1.0, 60), rng.normal(0.0, 1.0, 60)
        est = auroc(list(pos) + list(neg), [1] * 60 + [0] * 60)
        covered += est.low <= true_auc <= est.high
    assert 0.90 <= covered / 300 <= 0.99


@pytest.mark.parametrize(
    ("scores", "labels", "n"),
    [
        pytest.param([0.1, 0.9, 0.3], [1, 1, 1], 3, id="no-negatives"),
        pytest.param([0.1, 0.9], [0, 0], 2, id="no-positives"),
        pytest.param([], [], 0, id="empty"),
        pytest.param([None, 0.9, 0.2], [0, 1, 1], 2, id="missing-score-dropped-leaves-one-class"),
    ],
)
def test_auroc_is_undefined_when_a_class_is_missing(scores, labels, n):
    assert auroc(scores, labels) == Estimate(None, None, None, n, "DeLong")


def test_auroc_without_two_of_each_class_has_no_interval():
    est = auroc([0.9, 0.2, 0.1], [1, 0, 0])
    assert est.value == 1.0 and est.low is None and est.high is None


def test_auroc_drops_missing_pairs_and_rejects_unequal_lengths():
    assert auroc([0.1, None, 0.9, 0.8, 0.2], [0, 1, 1, None, 0]).n == 3
    with pytest.raises(ValueError):
        auroc([0.1, 0.2], [1])


# --------------------------------------------------------------------------------------------- accuracy

# Newcombe 1998 (Statistics in Medicine 17:857-872), Table I, method 3 (Wilson score, no continuity correction)
WILSON_CASES = [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
]


@pytest.mark.parametrize(("k", "n", "low", "high"), WILSON_CASES)
def test_accuracy_has_wilson_bounds(k, n, low, high):
    pred = [True] * n
    labels = [True] * k + [False] * (n - k)
    est = accuracy(pred, labels)
    assert est.value == pytest.approx(k / n)
    assert (round(est.low, 4), round(est.high, 4)) == (low, high)
    assert est.n == n and est.method == "Wilson"


def test_accuracy_counts_agreement_both_ways_and_drops_missing():
    # agree: (T,T), (F,F), (F,F); disagree: (T,F); dropped: (None, T), (T, None)
    est = accuracy([True, False, 0, 1, None, True], [1, 0, False, False, True, None])
    assert (est.value, est.n) == (0.75, 4)
    assert accuracy([], []) == Estimate(None, None, None, 0, "Wilson")


# ---------------------------------------------------------------------------------------------- kappa

# two raters on 50 items, yes/yes 20, yes/no 5, no/yes 10, no/no 15: p_o = 0.70, p_e = 0.5·0.6 + 0.5·0.4 = 0.50,
# κ = (0.70 − 0.50) / (1 − 0.50) = 0.40 (the worked example of Wikipedia's "Cohen's kappa")
TEXTBOOK_A = ["yes"] * 25 + ["no"] * 25
TEXTBOOK_B = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
# three categories, 10 items, diagonal 3 + 2 + 1 = 6: p_o = 0.6; marginals A (4, 3, 3), B (4, 3, 3):
# p_e = (16 + 9 + 9) / 100 = 0.34, κ = 0.26 / 0.66 = 0.393939…
THREE_A = ["a", "a", "a", "a", "b", "b", "b", "c", "c", "c"]
THREE_B = ["a", "a", "a", "b", "b", "b", "c", "c", "a", "b"]

KAPPA_CASES = [
    pytest.param(["v", "r", "v", "v", "r"], ["v", "r", "v", "v", "r"], 1.0, id="identical-raters"),
    pytest.param(TEXTBOOK_A, TEXTBOOK_B, 0.40, id="textbook-2x2"),
    pytest.param(THREE_A, THREE_B, 0.26 / 0.66, id="three-categories"),
    # complete disagreement with balanced marginals: p_o = 0, p_e = 0.5, κ = −1
    pytest.param(["x", "y", "x", "y"], ["y", "x", "y", "x"], -1.0, id="opposite-raters"),
]


@pytest.mark.parametrize(("a", "b", "expected"), KAPPA_CASES)
def test_cohen_kappa_values(a, b, expected):
    est = cohen_kappa(a, b)
    assert est.value == pytest.approx(expected)
    assert est.low <= est.value <= est.high
    assert est.n == len(a) and est.method == "bootstrap"


def test_identical_raters_have_a_point_interval_at_one():
    est = cohen_kappa(TEXTBOOK_A, TEXTBOOK_A)
    assert (est.value, est.low, est.high) == (1.0, 1.0, 1.0)


def test_kappa_interval_is_seeded_and_plausible():
    first, again = cohen_kappa(TEXTBOOK_A, TEXTBOOK_B, seed=5), cohen_kappa(TEXTBOOK_A, TEXTBOOK_B, seed=5)
    assert first == again
    assert cohen_kappa(TEXTBOOK_A, TEXTBOOK_B, seed=6) != first
    # SE of κ here is about 0.13 (Fleiss, Cohen & Everitt 1969 large-sample formula): a ±0.25 band
    assert 0.05 < first.low < 0.25 and 0.55 < first.high < 0.75


def test_kappa_bootstrap_width_matches_the_large_sample_standard_error():
    # Fleiss, Cohen & Everitt 1969 (Psychological Bulletin 72:323-327) asymptotic SE of κ on the 2×2 example,
    # by hand: 0.1270, so a 95 % interval is about 2 × 1.96 × 0.1270 = 0.498 wide
    est = cohen_kappa(TEXTBOOK_A, TEXTBOOK_B)
    assert est.high - est.low == pytest.approx(0.498, rel=0.10)


def test_kappa_bootstrap_interval_covers_the_true_kappa_about_95_percent_of_the_time():
    # joint label probabilities [[0.4, 0.1], [0.2, 0.3]]: p_o = 0.7, marginals (0.5, 0.5) and (0.6, 0.4),
    # p_e = 0.5, so the population κ = 0.4
    rng = np.random.default_rng(13)
    cells = [("y", "y"), ("y", "n"), ("n", "y"), ("n", "n")]
    covered = 0
    for rep in range(200):
        draws = rng.choice(4, size=100, p=[0.4, 0.1, 0.2, 0.3])
        a, b = [cells[d][0] for d in draws], [cells[d][1] for d in draws]
        est = cohen_kappa(a, b, n_resamples=1000, seed=rep)
        covered += est.low <= 0.4 <= est.high
    assert 0.89 <= covered / 200 <= 0.99


def test_independent_raters_have_kappa_near_zero():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 3, 3000), rng.integers(0, 3, 3000)
    est = cohen_kappa(list(a), list(b))
    assert abs(est.value) < 0.04 and est.low < 0 < est.high


def test_vectorised_bootstrap_kappa_equals_sklearn():
    rng = np.random.default_rng(9)
    a, b = rng.integers(0, 4, size=(20, 40)), rng.integers(0, 4, size=(20, 40))
    b[:5] = a[:5]  # some rows agree a lot
    expected = [cohen_kappa_score(a[i], b[i], labels=[0, 1, 2, 3]) for i in range(20)]
    assert _kappa_rows(a, b, 4) == pytest.approx(expected)


def test_kappa_undefined_and_errors():
    assert cohen_kappa(["v"] * 6, ["v"] * 6).value is None  # one label only: p_e = 1
    assert cohen_kappa([None, "v"], ["r", None]) == Estimate(None, None, None, 0, "bootstrap")
    with pytest.raises(ValueError):
        cohen_kappa(["v", "r"], ["v"])


# -------------------------------------------------------------------------------------------- report


def _rows(n_each: int) -> list[CalibrationRow]:
    """Rows where every check is right: verified fragments pass everything, each rejection fails its check."""
    verified = CalibrationRow("verified", None, True, "person", 1.0, True, 9.0, 0.8)
    rejected = [
        CalibrationRow("rejected", "misquote", False, "person", 1.0, True, 4.0, 0.8),
        CalibrationRow("rejected", "wrong_speaker", True, "other", 1.0, True, 4.0, 0.8),
        CalibrationRow("rejected", "unsupported_insight", True, "person", 0.0, True, 4.0, 0.1),
        CalibrationRow("rejected", "wrong_category", True, "person", 1.0, False, 4.0, 0.8),
    ]
    return [verified] * (4 * n_each) + rejected * n_each


def test_report_pairs_each_check_with_its_reject_reason():
    report = calibration_report(_rows(10), min_verdicts=30)
    assert list(report.checks) == list(CHECK_REASONS)
    assert report.n_rows == 80
    for check, reason in [
        ("verbatim", "misquote"),
        ("attribution", "wrong_speaker"),
        ("support", "unsupported_insight"),
        ("support_baseline", "unsupported_insight"),
        ("category", "wrong_category"),
    ]:
        c = report.checks[check]
        # against its own reason: 40 verified + 10 rejected for that reason, perfectly separated
        assert (c.reason.target, c.reason.n, c.reason.n_positive) == (reason, 50, 40)
        assert c.reason.auroc.value == 1.0 and c.reason.accuracy.value == 1.0
        # against the verdict: the 30 rejected for other reasons pass this check, so it misses them
        assert (c.verdict.n, c.verdict.n_positive) == (80, 40)
        assert c.verdict.accuracy.value == pytest.approx(50 / 80)
        assert c.verdict.auroc.value == pytest.approx(0.625)  # 40·10 wins + 40·30 ties·½ over 40·40 pairs
    composite = report.checks["composite"]
    assert composite.reason is None
    assert composite.verdict.auroc.value == 1.0 and composite.verdict.accuracy.value == 1.0


def test_rejections_for_another_or_no_reason_are_left_out_of_the_reason_target():
    rows = [
        CalibrationRow("verified", verbatim=True),
        CalibrationRow("verified", verbatim=False),
        CalibrationRow("rejected", "misquote", verbatim=False),
        CalibrationRow("rejected", "trivial", verbatim=True),
        CalibrationRow("rejected", None, verbatim=False),
        CalibrationRow("rejected", "misquote"),  # verbatim not checked: not counted anywhere
    ]
    check = calibration_report(rows, min_verdicts=1).checks["verbatim"]
    assert (check.verdict.n, check.reason.n, check.reason.n_positive) == (5, 3, 2)
    assert check.reason.accuracy.value == pytest.approx(2 / 3)
    assert calibration_report(rows, min_verdicts=1).checks["support"].verdict.n == 0


@pytest.mark.parametrize(("n_each", "calibrated"), [(7, False), (8, True)])  # 35 vs 40 rows per reason target
def test_min_verdicts_gates_every_figure(n_each, calibrated):
    # verdict target: 8·n_each rows; reason target: 5·n_each rows (4 verified + 1 rejected per block)
    report = calibration_report(_rows(n_each), min_verdicts=40)
    for c in report.checks.values():
        assert c.verdict.calibrated is (8 * n_each >= 40)
        if c.reason is not None:
            assert c.reason.calibrated is (5 * n_each >= 40) is calibrated


def test_min_verdicts_boundary_is_inclusive():
    rows = [CalibrationRow("verified", support_score=1.0)] * 15 + [CalibrationRow("rejected", support_score=0.0)] * 14
    assert not calibration_report(rows, 30).checks["support"].verdict.calibrated  # 29 rows
    rows.append(CalibrationRow("rejected", support_score=0.5))
    assert calibration_report(rows, 30).checks["support"].verdict.calibrated  # 30 rows


def test_attribution_kinds_map_to_scores_and_unknown_kinds_are_not_counted():
    rows = [
        CalibrationRow("verified", attribution="person"),
        CalibrationRow("rejected", "wrong_speaker", attribution="mixed"),
        CalibrationRow("rejected", "wrong_speaker", attribution="other"),
        CalibrationRow("rejected", "wrong_speaker", attribution="unknown"),
    ]
    check = calibration_report(rows, min_verdicts=1).checks["attribution"]
    assert check.reason.n == 3 and check.reason.auroc.value == 1.0
    custom = calibration_report(rows, min_verdicts=1, attribution_scores={"unknown": 2.0}).checks["attribution"]
    assert custom.reason.n == 1  # only "unknown" is scored now


def test_bad_rows_and_gate_are_refused():
    with pytest.raises(ValueError):
        CalibrationRow("maybe")
    with pytest.raises(ValueError):
        CalibrationRow("rejected", "boring")
    with pytest.raises(ValueError):
        calibration_report([], min_verdicts=0)


@pytest.mark.parametrize(
    ("est", "calibrated", "text"),
    [
        (Estimate(0.8123, 0.7, 0.9, 40, "DeLong"), True, "0.81 [0.70, 0.90] (n=40)"),
        (Estimate(0.8123, 0.7, 0.9, 12, "DeLong"), False, "uncalibrated (n=12)"),
        (Estimate(None, None, None, 35, "DeLong"), True, "— (n=35)"),
        (Estimate(1.0, None, None, 3, "DeLong"), True, "1.00 (n=3)"),
    ],
)
def test_format_estimate(est, calibrated, text):
    assert format_estimate(est, calibrated=calibrated) == text
