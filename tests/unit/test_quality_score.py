"""The 0-10 quality rule and its intervals (mmos_core/analysis/quality_score.py), table-driven."""

from __future__ import annotations

import pytest

from mmos_core.analysis.quality_score import WEIGHTS_V1, QualityCounts, f1, human_weight, score, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (0, 10, 0.0, 0.2775),  # Wilson 1927; same figures as statsmodels proportion_confint(method="wilson")
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (81, 100, 0.7222, 0.8749),
    ],
)
def test_wilson_interval_matches_published_values(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_no_data_means_no_interval_and_no_score():
    assert wilson_interval(0, 0) is None
    s = score(QualityCounts())
    assert s.score is None and s.low is None and s.grounding is None


def test_interval_narrows_with_more_evidence():
    few = score(QualityCounts(checked=5, grounded=5))
    many = score(QualityCounts(checked=500, grounded=500))
    assert few.score == many.score == 10.0
    assert few.low < many.low < 10.0


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # grounding only: 10 × 8/10
        (QualityCounts(checked=10, grounded=8), 8.0),
        # grounding 1.0 (w .5) + agreement F1 of P=.5, R=1 → .667 (w .3): 10 × (.5 + .3 × .667) / .8
        (QualityCounts(checked=4, grounded=4, batch_fragments=4, batch_matched=2, reference_fragments=2, reference_matched=2), 8.75),
        # + human: 1 of 2 judgements positive (w .2): 10 × (.5 + .2 + .1) / 1
        (QualityCounts(checked=4, grounded=4, batch_fragments=4, batch_matched=2, reference_fragments=2,
                       reference_matched=2, human_n=2, human_k=1), 8.0),
    ],
)
def test_rule_v1_combines_the_components_by_its_documented_weights(counts, expected):
    s = score(counts, WEIGHTS_V1)
    assert s.score == pytest.approx(expected, abs=0.01)
    assert s.low <= s.score <= s.high


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        # grounding only: 10 × 8/10, whatever the weights
        (QualityCounts(checked=10, grounded=8), 8.0),
        # grounding 1.0 (w .4) + support 0.5 (w .25): 10 × (.4 + .125) / .65
        (QualityCounts(checked=4, grounded=4, support_n=4, support_k=2), 8.08),
        # + agreement F1 .667 (w .2) + human .5 (w .15): 10 × (.4 + .125 + .1333 + .075) / 1
        (QualityCounts(checked=4, grounded=4, support_n=4, support_k=2, batch_fragments=4, batch_matched=2,
                       reference_fragments=2, reference_matched=2, human_n=2, human_k=1), 7.33),
    ],
)
def test_rule_v2_adds_support_with_its_documented_weights(counts, expected):
    s = score(counts)
    assert s.score == pytest.approx(expected, abs=0.01)
    assert s.low <= s.score <= s.high


def test_an_unsupported_insight_costs_what_a_wrong_quote_would_not_hide():
    """A batch whose quotes are real but whose insights the quotes do not carry no longer scores 10."""
    real_quotes_bad_insights = score(QualityCounts(checked=15, grounded=15, support_n=15, support_k=3))
    assert real_quotes_bad_insights.score < 7.5
    assert real_quotes_bad_insights.high < score(QualityCounts(checked=15, grounded=15, support_n=15, support_k=15)).low


def test_hallucinations_pull_the_score_down():
    honest = score(QualityCounts(checked=20, grounded=19))
    inventive = score(QualityCounts(checked=20, grounded=8))
    assert inventive.hallucination_rate == pytest.approx(0.6)
    assert inventive.high < honest.low


@pytest.mark.parametrize(
    ("kwargs", "weight"),
    [
        ({"verified": True}, 1.0),
        ({"verified": False}, 0.0),
        ({"feedback_type": "like"}, 1.0),
        ({"feedback_type": "dislike"}, 0.0),
        ({"feedback_type": "regenerate"}, 0.0),
        ({"feedback_type": "skip"}, None),
        ({"stars": 5}, 1.0),
        ({"stars": 3}, 0.5),
        ({"stars": 1}, 0.0),
    ],
)
def test_each_human_judgement_has_a_worth(kwargs, weight):
    assert human_weight(**kwargs) == weight


def test_f1_and_bad_counts():
    assert f1(0, 0) == 0 and f1(1, 1) == 1 and f1(0.5, 1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)
