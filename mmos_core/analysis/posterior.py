"""How feedback moves a model's suitability for a task: a Beta posterior on likes and dislikes.

The rule (also in docs/model-catalog.md)
-----------------------------------------
Each `ai_user_feedback` row on (model, task category) is a Bernoulli observation "the answer was good":

==============  ==============================  =========================================
feedback_type   successes                       failures
==============  ==============================  =========================================
like            1                               0
dislike         0                               1
regenerate      0                               1  (asking for another answer = not good)
rating r★       (r − 1) / 4   (1★ → 0, 5★ → 1)   1 − (r − 1) / 4
skip            0                               0  (no information)
==============  ==============================  =========================================

Prior: Beta(k·b, k·(1 − b)) where b is the mapping's `base_suitability` (0.5 when the model has no
mapping for the category; clamped to [0.01, 0.99]) and k = `PRIOR_STRENGTH` = 4 pseudo-votes, so the
prior says "b, worth about four votes": a handful of real votes already outweighs it.

Posterior: Beta(α, β) with α = k·b + S, β = k·(1 − b) + F. We report its mean α / (α + β) and the
equal-tailed 90 % credible interval [q05, q95].

Ranking uses the lower bound q05, not the mean: with b = 0.5, a model with 6 likes out of 6 has
mean 0.80 but q05 0.57, one with 75 likes out of 100 has mean 0.74 and q05 0.67. By the mean the
lucky newcomer would be recommended first; by the lower bound the model with evidence is, and the
newcomer overtakes it once its own evidence holds up. Ties fall back to the mean. With hundreds of
votes per model (the vicuna80 import) the two orders agree.

The Beta quantile is computed here (regularised incomplete beta by Lentz's continued fraction,
Numerical Recipes 3rd ed. §6.4, inverted by bisection) because the workbench does not depend on
SciPy; `tests/unit/test_catalog_posterior.py` checks it against closed forms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

#: Weight of the prior, in pseudo-votes.
PRIOR_STRENGTH = 4.0
#: Credible level of the reported interval (equal-tailed).
CREDIBLE_LEVEL = 0.90
#: Prior mean for a model without a mapping to the category.
DEFAULT_BASE_SUITABILITY = 0.5
_BASE_CLAMP = (0.01, 0.99)


@dataclass(frozen=True)
class FeedbackTally:
    """Counts of one model's feedback on one task category.

    `rating_success` is Σ (r − 1)/4 over the star ratings, `ratings` how many there were.
    """

    likes: int = 0
    dislikes: int = 0
    regenerates: int = 0
    skips: int = 0
    ratings: int = 0
    rating_success: float = 0.0
    rating_stars_sum: int = 0

    @property
    def successes(self) -> float:
        """S: likes plus the fractional successes of star ratings."""
        return self.likes + self.rating_success

    @property
    def failures(self) -> float:
        """F: dislikes, regenerates and the fractional failures of star ratings."""
        return self.dislikes + self.regenerates + (self.ratings - self.rating_success)

    @property
    def n(self) -> int:
        """Feedback rows that carry information (skips excluded)."""
        return self.likes + self.dislikes + self.regenerates + self.ratings

    @property
    def mean_stars(self) -> float | None:
        """Mean star rating (1-5), None without ratings."""
        return self.rating_stars_sum / self.ratings if self.ratings else None

    def __add__(self, other: FeedbackTally) -> FeedbackTally:
        return FeedbackTally(
            self.likes + other.likes,
            self.dislikes + other.dislikes,
            self.regenerates + other.regenerates,
            self.skips + other.skips,
            self.ratings + other.ratings,
            self.rating_success + other.rating_success,
            self.rating_stars_sum + other.rating_stars_sum,
        )


def rating_success(stars: int) -> float:
    """Fractional success of a 1-5 star rating: (stars − 1) / 4.

    Raises:
        ValueError: stars outside 1-5.
    """
    if not 1 <= stars <= 5:
        raise ValueError(f"a rating is 1-5 stars, not {stars}")
    return (stars - 1) / 4


def tally(rows: Iterable[tuple[str, int | None]]) -> FeedbackTally:
    """Tally `(feedback_type, quality_rating)` rows by the rule above (a rating counts only on `rating` rows)."""
    likes = dislikes = regenerates = skips = ratings = stars_sum = 0
    success = 0.0
    for kind, stars in rows:
        if kind == "like":
            likes += 1
        elif kind == "dislike":
            dislikes += 1
        elif kind == "regenerate":
            regenerates += 1
        elif kind == "skip":
            skips += 1
        elif kind == "rating" and stars is not None:
            ratings += 1
            stars_sum += stars
            success += rating_success(stars)
    return FeedbackTally(likes, dislikes, regenerates, skips, ratings, success, stars_sum)


@dataclass(frozen=True)
class Posterior:
    """Beta(alpha, beta) posterior of "this model's answers are good for this task"; mean and interval in 0-1."""

    alpha: float
    beta: float
    mean: float
    low: float
    high: float
    level: float

    @property
    def width(self) -> float:
        """high − low."""
        return self.high - self.low


def posterior(
    t: FeedbackTally,
    base_suitability: float | None = None,
    *,
    prior_strength: float = PRIOR_STRENGTH,
    level: float = CREDIBLE_LEVEL,
) -> Posterior:
    """The Beta posterior of a tally under the prior Beta(k·b, k·(1 − b)).

    Args:
        t: the model's feedback on the category.
        base_suitability: b, the prior mean (None → 0.5); clamped to [0.01, 0.99].
        prior_strength: k, pseudo-votes (> 0).
        level: credible level of the equal-tailed interval, in (0, 1).
    Raises:
        ValueError: k ≤ 0 or level outside (0, 1).
    """
    if prior_strength <= 0:
        raise ValueError("prior strength must be positive")
    if not 0 < level < 1:
        raise ValueError("credible level must be in (0, 1)")
    b = DEFAULT_BASE_SUITABILITY if base_suitability is None else float(base_suitability)
    b = min(max(b, _BASE_CLAMP[0]), _BASE_CLAMP[1])
    a = prior_strength * b + t.successes
    bb = prior_strength * (1 - b) + t.failures
    tail = (1 - level) / 2
    return Posterior(a, bb, a / (a + bb), beta_ppf(tail, a, bb), beta_ppf(1 - tail, a, bb), level)


def user_preference_score(user: FeedbackTally, overall_mean: float, *, prior_strength: float = PRIOR_STRENGTH) -> float:
    """A user's preference for a model (0-1): the posterior mean of their own feedback, the model's
    overall posterior mean as prior (k pseudo-votes), so one like does not make a model a favourite."""
    return posterior(user, overall_mean, prior_strength=prior_strength).mean


# --- Beta distribution -------------------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; NR 3rd ed. §6.4)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """P(X ≤ x) for X ~ Beta(a, b): the regularised incomplete beta I_x(a, b). a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(log_front)
    # The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def beta_ppf(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b) (bisection on `beta_cdf`, absolute error < 1e-12).

    Raises:
        ValueError: q outside [0, 1] or a, b ≤ 0.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError("q must be in [0, 1]")
    if a <= 0 or b <= 0:
        raise ValueError("Beta parameters must be positive")
    if q == 0.0:
        return 0.0
    if q == 1.0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if beta_cdf(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2
