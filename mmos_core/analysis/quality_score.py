"""Measured extraction quality: the 0-10 score and its interval from counts (docs/quality.md).

Everything here is a pure function of counts, so a batch, a model over many batches, a source type or
a fragment category are scored the same way: pool the counts, then score. The counts come from
`mmos_core.services.quality`; docs/quality.md states the rule with an example.

Components, each a proportion with a 95 % Wilson score interval (Wilson 1927, "Probable inference,
the law of succession, and statistical inference", JASA 22:209-212):

* **grounding** G = grounded / checked. Rule q-v2: a direct quote is grounded only when its verbatim
  check is `exact` and its attribution check says the person said it (`mmos_core.analysis.fragment_checks`):
  a misquote (`near`), a quote not in the source, or another speaker's / the editor's words is not
  grounded. A fragment without stored checks falls back to q-v1's rule (located by `mmos_core.text.locate`:
  exact, normalised, or rapidfuzz partial ratio ≥ 85). A paraphrase or inference is grounded when its
  best-matching source window (1-3 sentences around its location) has cosine ≥ `GROUNDING_THRESHOLD` with it
  (the same rule as the `fragment_grounding` audit of the monitoring design). An ungrounded fragment is
  counted as a hallucination.
* **support** S = Σ support / judged: does the quote (with its context) support the insight? Each
  fragment counts the LLM judge's verdict (yes 1, partly 0.5, no 0) when it has one, else the embedding
  baseline (insight vs quote + context cosine ≥ `mmos_core.services.checks.SUPPORT_BASELINE_THRESHOLD` → 1, else 0).
* **agreement** with a reference set (human-verified fragments of the source when there are any,
  otherwise the baseline model's batch on it): fragments matched one-to-one by cosine ≥
  `AGREEMENT_THRESHOLD` (greedy, best pair first). Precision P = matched / batch fragments, recall
  R = matched / reference fragments, F1 = 2PR / (P + R); F1's interval is F1 at both ends of P's and
  R's intervals (F1 is increasing in both).
* **human** H = (verified + likes + Σ (stars − 1) / 4) / (verified + rejected + likes + dislikes +
  regenerates + ratings): every verdict, thumb and star rating is one judgement worth 0-1.

Score = 10 × Σ w_c·c / (sum of the weights of the components c that have data), with `WEIGHTS`
below (q-v1 had no support component: `WEIGHTS_V1`). The interval is the same formula with every
component at its own lower (upper) bound: conservative (wider than a joint interval), never narrower
than the evidence allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Weights of the components (sum 1). Grounding weighs most because it needs no reference and catches
#: the failures that matter most (words not in the source, or not the person's); support next, because an
#: insight the quote does not carry misleads even when the quote is real. docs/quality.md reports how well
#: each check agrees with reviewers, the evidence these weights are revisited on.
WEIGHTS = {"grounding": 0.4, "support": 0.25, "agreement": 0.2, "human": 0.15}
#: The weights of rule q-v1 (no support component), for scores stored under it.
WEIGHTS_V1 = {"grounding": 0.5, "support": 0.0, "agreement": 0.3, "human": 0.2}
#: Cosine a paraphrase needs against its best source window to count as grounded (= the monitoring design's audit rule).
GROUNDING_THRESHOLD = 0.5
#: Cosine two fragments need to be matched when computing agreement (= the Comparison page's default).
AGREEMENT_THRESHOLD = 0.70
#: z for a two-sided 95 % interval.
Z95 = 1.959963984540054
#: Version of this rule, stored with every score (`model_performance.quality_rule`).
QUALITY_RULE = "q-v2"


@dataclass(frozen=True)
class Proportion:
    """k successes out of n, with its 95 % Wilson interval; `value` is None when n == 0."""

    k: float
    n: int

    @property
    def value(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.k, self.n)


def wilson_interval(k: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95 % Wilson score interval of k/n (k may be fractional, e.g. star ratings); None for n == 0.

    Raises:
        ValueError: k < 0 or k > n.
    """
    if n <= 0:
        return None
    if k < 0 or k > n + 1e-9:
        raise ValueError(f"k={k} out of range for n={n}")
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def f1(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall; 0 when both are 0."""
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class QualityCounts:
    """Pooled counts behind a quality score (see the module docstring for what each one counts).

    Attributes:
        checked, grounded: fragments whose grounding could be decided, and those grounded.
        batch_fragments, batch_matched: fragments compared with a reference, and those matched in it.
        reference_fragments, reference_matched: reference fragments, and those matched by the batch.
        human_n, human_k: human judgements and their positive weight (0-1 each).
        support_n, support_k: fragments whose support was judged (LLM) or measured (baseline), and their sum 0-1.
        direct_quotes, quotes_exact, quotes_by_person, judged: evidence shown beside the score (direct quotes,
            those verbatim, those the person said, fragments with an LLM verdict).
    """

    checked: int = 0
    grounded: int = 0
    batch_fragments: int = 0
    batch_matched: int = 0
    reference_fragments: int = 0
    reference_matched: int = 0
    human_n: int = 0
    human_k: float = 0.0
    support_n: int = 0
    support_k: float = 0.0
    direct_quotes: int = 0
    quotes_exact: int = 0
    quotes_by_person: int = 0
    judged: int = 0

    def __add__(self, other: QualityCounts) -> QualityCounts:
        return QualityCounts(
            checked=self.checked + other.checked,
            grounded=self.grounded + other.grounded,
            batch_fragments=self.batch_fragments + other.batch_fragments,
            batch_matched=self.batch_matched + other.batch_matched,
            reference_fragments=self.reference_fragments + other.reference_fragments,
            reference_matched=self.reference_matched + other.reference_matched,
            human_n=self.human_n + other.human_n,
            human_k=self.human_k + other.human_k,
            support_n=self.support_n + other.support_n,
            support_k=self.support_k + other.support_k,
            direct_quotes=self.direct_quotes + other.direct_quotes,
            quotes_exact=self.quotes_exact + other.quotes_exact,
            quotes_by_person=self.quotes_by_person + other.quotes_by_person,
            judged=self.judged + other.judged,
        )


@dataclass(frozen=True)
class QualityScore:
    """A 0-10 quality score with its conservative 95 % interval and the components behind it.

    `score`, `low`, `high` are None when no component has data (nothing to judge).
    """

    score: float | None
    low: float | None
    high: float | None
    grounding: float | None
    grounding_interval: tuple[float, float] | None
    precision: float | None
    recall: float | None
    agreement_f1: float | None
    agreement_interval: tuple[float, float] | None
    human: float | None
    human_interval: tuple[float, float] | None
    counts: QualityCounts
    support: float | None = None
    support_interval: tuple[float, float] | None = None

    @property
    def hallucination_rate(self) -> float | None:
        """Share of checked fragments that were not grounded (1 − grounding)."""
        return None if self.grounding is None else 1 - self.grounding


def score(counts: QualityCounts, weights: dict[str, float] | None = None) -> QualityScore:
    """Score pooled counts by the documented rule (module docstring). Pure; no I/O."""
    weights = weights or WEIGHTS
    g = Proportion(counts.grounded, counts.checked)
    p = Proportion(counts.batch_matched, counts.batch_fragments)
    r = Proportion(counts.reference_matched, counts.reference_fragments)
    h = Proportion(counts.human_k, counts.human_n)
    sp = Proportion(counts.support_k, counts.support_n)

    parts: list[tuple[float, float, float, float]] = []  # (weight, value, low, high)
    if g.value is not None:
        lo, hi = g.interval  # type: ignore[misc]
        parts.append((weights["grounding"], g.value, lo, hi))
    if sp.value is not None and weights.get("support"):
        lo, hi = sp.interval  # type: ignore[misc]
        parts.append((weights["support"], sp.value, lo, hi))
    agreement = agreement_iv = None
    if p.value is not None and r.value is not None:
        agreement = f1(p.value, r.value)
        (plo, phi), (rlo, rhi) = p.interval, r.interval  # type: ignore[misc]
        agreement_iv = (f1(plo, rlo), f1(phi, rhi))
        parts.append((weights["agreement"], agreement, *agreement_iv))
    if h.value is not None:
        lo, hi = h.interval  # type: ignore[misc]
        parts.append((weights["human"], h.value, lo, hi))

    total = sum(w for w, *_ in parts)
    if not parts or total == 0:
        value = low = high = None
    else:
        value = round(10 * sum(w * v for w, v, _, _ in parts) / total, 2)
        low = round(10 * sum(w * lo for w, _, lo, _ in parts) / total, 2)
        high = round(10 * sum(w * hi for w, _, _, hi in parts) / total, 2)
    return QualityScore(
        score=value,
        low=low,
        high=high,
        grounding=g.value,
        grounding_interval=g.interval,
        precision=p.value,
        recall=r.value,
        agreement_f1=agreement,
        agreement_interval=agreement_iv,
        human=h.value,
        human_interval=h.interval,
        counts=counts,
        support=sp.value,
        support_interval=sp.interval,
    )


def human_weight(*, verified: bool | None = None, feedback_type: str | None = None, stars: int | None = None) -> float | None:
    """Worth (0-1) of one human judgement; None when it is not a judgement (e.g. 'skip').

    verified → 1, rejected → 0; like → 1, dislike/regenerate → 0; a 1-5 star rating → (stars − 1) / 4.
    """
    if verified is not None:
        return 1.0 if verified else 0.0
    if stars is not None:
        return (min(5, max(1, stars)) - 1) / 4
    return {"like": 1.0, "dislike": 0.0, "regenerate": 0.0}.get(feedback_type or "")
