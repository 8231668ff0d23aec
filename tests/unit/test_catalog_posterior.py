"""The feedback → suitability rule: a Beta posterior on likes / dislikes (regenerate = dislike, stars fractional)."""

from __future__ import annotations

import math

import pytest

from mmos_core.analysis.posterior import (
    FeedbackTally,
    beta_cdf,
    beta_ppf,
    posterior,
    rating_success,
    tally,
)


@pytest.mark.parametrize(
    ("fewer", "more"),
    [
        (FeedbackTally(likes=1), FeedbackTally(likes=2)),
        (FeedbackTally(likes=5, dislikes=5), FeedbackTally(likes=6, dislikes=5)),
        (FeedbackTally(likes=10, dislikes=1), FeedbackTally(likes=30, dislikes=1)),
        (FeedbackTally(dislikes=3), FeedbackTally(likes=1, dislikes=3)),
    ],
)
def test_more_likes_rank_higher(fewer, more):
    a, b = posterior(fewer), posterior(more)
    assert b.mean > a.mean
    assert b.low > a.low


@pytest.mark.parametrize(
    "rows",
    [
        [("like", None), ("regenerate", None)],
        [("like", None)] * 4 + [("regenerate", None)] * 3,
    ],
)
def test_a_regenerate_counts_exactly_as_a_dislike(rows):
    as_regen = posterior(tally(rows))
    as_dislike = posterior(tally([("dislike" if k == "regenerate" else k, s) for k, s in rows]))
    assert as_regen.mean == pytest.approx(as_dislike.mean)
    assert as_regen.low == pytest.approx(as_dislike.low)
    assert as_regen.mean < posterior(tally([r for r in rows if r[0] != "regenerate"])).mean


@pytest.mark.parametrize(("likes", "dislikes"), [(3, 1), (30, 10), (300, 100)])
def test_interval_narrows_as_feedback_grows(likes, dislikes):
    small = posterior(FeedbackTally(likes=likes, dislikes=dislikes))
    big = posterior(FeedbackTally(likes=likes * 4, dislikes=dislikes * 4))
    assert big.width < small.width
    assert small.low < small.mean < small.high
    # with much data the mean approaches the like share
    assert posterior(FeedbackTally(likes=3000, dislikes=1000)).mean == pytest.approx(0.75, abs=0.002)


@pytest.mark.parametrize(("stars", "success"), [(1, 0.0), (2, 0.25), (3, 0.5), (4, 0.75), (5, 1.0)])
def test_star_ratings_are_fractional_successes(stars, success):
    assert rating_success(stars) == success
    t = tally([("rating", stars)])
    assert t.successes == success and t.failures == 1 - success and t.n == 1


def test_skips_and_ratings_on_other_types_carry_no_weight():
    t = tally([("skip", None), ("like", 1), ("dislike", 5)])
    assert (t.likes, t.dislikes, t.skips, t.ratings) == (1, 1, 1, 0)
    assert t.n == 2
    with pytest.raises(ValueError):
        rating_success(6)


def test_lower_bound_prefers_evidence_over_a_lucky_newcomer():
    newcomer = posterior(FeedbackTally(likes=6))
    veteran = posterior(FeedbackTally(likes=75, dislikes=25))
    assert newcomer.mean > veteran.mean  # by the mean the newcomer would win …
    assert veteran.low > newcomer.low  # … by the documented rule (lower bound) the evidence wins


def test_prior_is_the_base_suitability_worth_four_votes():
    empty = posterior(FeedbackTally(), 0.9)
    assert empty.mean == pytest.approx(0.9)
    assert (empty.alpha, empty.beta) == pytest.approx((3.6, 0.4))
    # four dislikes pull a 0.9 prior to the middle
    assert posterior(FeedbackTally(dislikes=4), 0.9).mean == pytest.approx(0.45)
    assert posterior(FeedbackTally(), None).mean == 0.5
    assert posterior(FeedbackTally(), 1.0).mean == pytest.approx(0.99)  # clamped, still a proper Beta


@pytest.mark.parametrize("q", [0.05, 0.3, 0.5, 0.95])
@pytest.mark.parametrize("a", [0.5, 1.0, 2.0, 7.5])
def test_beta_quantile_matches_closed_forms(q, a):
    # Beta(a, 1): F(x) = x^a → quantile q^(1/a); Beta(1, b): quantile 1 − (1 − q)^(1/b)
    assert beta_ppf(q, a, 1.0) == pytest.approx(q ** (1 / a), abs=1e-9)
    assert beta_ppf(q, 1.0, a) == pytest.approx(1 - (1 - q) ** (1 / a), abs=1e-9)


def test_beta_cdf_symmetry_and_known_value():
    assert beta_cdf(0.5, 40.0, 40.0) == pytest.approx(0.5, abs=1e-12)
    assert beta_cdf(0.3, 2.5, 4.0) + beta_cdf(0.7, 4.0, 2.5) == pytest.approx(1.0, abs=1e-12)
    # Beta(2, 2): F(x) = 3x² − 2x³
    x = 0.2
    assert beta_cdf(x, 2, 2) == pytest.approx(3 * x**2 - 2 * x**3, abs=1e-12)
    # median of Beta(a, b) for large a, b ≈ (a − 1/3) / (a + b − 2/3) (Kerman 2011)
    assert math.isclose(beta_ppf(0.5, 300.5, 100.5), (300.5 - 1 / 3) / (401 - 2 / 3), abs_tol=1e-5)
