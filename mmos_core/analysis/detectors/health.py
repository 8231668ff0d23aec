"""Conversation health score (0..100) from the detector outputs (docs/conversations.md).

Four component scores, each 0..100 (higher = healthier):

* coherence     = mean of the `coherence_scores` given (the caller passes the recent window); 100 if none.
* contradiction = max(0, 100 - sum of `CONTRADICTION_PENALTY[severity]` over open contradictions), each newer
  statement charged once (at its most severe finding) however many earlier statements it conflicts with.
* loop          = max(0, 100 - sum over open loops of min(`LOOP_PENALTY_CAP`, `LOOP_PENALTY_PER_REPEAT` x
                  (repetition_count - 1) x sqrt(pattern_size))).
* citation      = 100 x mean credit of the citation checks (`CITATION_CREDIT`: verified 1.0, unverifiable
                  0.7, not found 0.0); 100 if there are no citations (nothing is wrong).

health = sum(`WEIGHTS`[c] x component c). `requires_intervention` is True when health < `INTERVENTION_HEALTH`,
any component < `INTERVENTION_COMPONENT`, an open CRITICAL contradiction exists, or a loop has repeated
`INTERVENTION_LOOP_REPEATS` times or more. Penalties are absolute (not per message): an unresolved
contradiction or an ongoing loop matters as much in a long conversation as in a short one; once resolved
the caller stops passing it and the score recovers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmos_core.analysis.detectors.citations import CitationCheck
from mmos_core.analysis.detectors.contradictions import ContradictionFinding
from mmos_core.analysis.detectors.loops import LoopFinding

__all__ = [
    "CITATION_CREDIT",
    "CONTRADICTION_PENALTY",
    "INTERVENTION_COMPONENT",
    "INTERVENTION_HEALTH",
    "INTERVENTION_LOOP_REPEATS",
    "LOOP_PENALTY_CAP",
    "LOOP_PENALTY_PER_REPEAT",
    "WEIGHTS",
    "HealthPoint",
    "health_point",
]

WEIGHTS: dict[str, float] = {"coherence": 0.30, "contradiction": 0.30, "loop": 0.25, "citation": 0.15}
CONTRADICTION_PENALTY: dict[str, float] = {"LOW": 5.0, "MEDIUM": 12.0, "HIGH": 25.0, "CRITICAL": 45.0}
LOOP_PENALTY_PER_REPEAT = 20.0
LOOP_PENALTY_CAP = 60.0
CITATION_CREDIT: dict[bool | None, float] = {True: 1.0, None: 0.7, False: 0.0}
INTERVENTION_HEALTH = 60.0
INTERVENTION_COMPONENT = 40.0
INTERVENTION_LOOP_REPEATS = 4
_WARN_COMPONENT = 70.0


@dataclass(frozen=True)
class HealthPoint:
    """One point of the health time series; all scores 0..100, higher = healthier.

    Attributes:
        health_score: weighted sum of the four components (`WEIGHTS`).
        coherence_score, contradiction_score, loop_score, citation_score: the components.
        requires_intervention: see the module docstring for the thresholds.
        reasons: human-readable reasons, one per triggered threshold or weak component (empty when healthy).
    """

    health_score: float
    coherence_score: float
    contradiction_score: float
    loop_score: float
    citation_score: float
    requires_intervention: bool
    reasons: list[str] = field(default_factory=list)


def health_point(
    *,
    coherence_scores: Sequence[float],
    open_contradictions: Sequence[ContradictionFinding],
    loops: Sequence[LoopFinding],
    citation_checks: Sequence[CitationCheck],
    message_count: int,
) -> HealthPoint:
    """Compute one health point (see the module docstring for every formula and threshold).

    Args:
        coherence_scores: recent per-message coherence scores, 0..100 (out-of-range values are clipped).
        open_contradictions: contradictions not yet resolved.
        loops: loops not yet resolved.
        citation_checks: checks of the citations in the conversation (or its recent window).
        message_count: messages in the conversation so far (>= 0); only used in the reasons.

    Raises:
        ValueError: `message_count` is negative or a severity is unknown.
    """
    if message_count < 0:
        raise ValueError(f"message_count must be >= 0, got {message_count}")
    reasons: list[str] = []

    clipped = [min(100.0, max(0.0, float(s))) for s in coherence_scores]
    coherence = sum(clipped) / len(clipped) if clipped else 100.0

    # A statement that conflicts with several earlier ones is one problem, not several: each newer
    # statement is charged once, at its most severe finding.
    charged: dict[tuple[int, str], float] = {}
    for c in open_contradictions:
        if c.severity not in CONTRADICTION_PENALTY:
            raise ValueError(f"unknown contradiction severity {c.severity!r}; expected one of {list(CONTRADICTION_PENALTY)}")
        key = (c.message_b_id, c.statement_b.strip().lower())
        charged[key] = max(charged.get(key, 0.0), CONTRADICTION_PENALTY[c.severity])
    contradiction = max(0.0, 100.0 - sum(charged.values()))

    loop_penalty = sum(
        min(LOOP_PENALTY_CAP, LOOP_PENALTY_PER_REPEAT * max(0, lp.repetition_count - 1) * math.sqrt(max(1, lp.pattern_size)))
        for lp in loops
    )
    loop = max(0.0, 100.0 - loop_penalty)

    citation = 100.0 * sum(CITATION_CREDIT[c.verified] for c in citation_checks) / len(citation_checks) if citation_checks else 100.0

    components = {"coherence": coherence, "contradiction": contradiction, "loop": loop, "citation": citation}
    health = sum(WEIGHTS[k] * v for k, v in components.items())

    intervene = False
    if health < INTERVENTION_HEALTH:
        intervene = True
        reasons.append(f"health {health:.1f} is below {INTERVENTION_HEALTH:.0f}")
    for name, value in components.items():
        if value < INTERVENTION_COMPONENT:
            intervene = True
            reasons.append(f"{name} score {value:.0f} is below {INTERVENTION_COMPONENT:.0f}")
        elif value < _WARN_COMPONENT:
            reasons.append(f"{name} score {value:.0f} is low")
    critical = [c for c in open_contradictions if c.severity == "CRITICAL"]
    if critical:
        intervene = True
        reasons.append(f"{len(critical)} open CRITICAL contradiction(s)")
    long_loops = [lp for lp in loops if lp.repetition_count >= INTERVENTION_LOOP_REPEATS]
    if long_loops:
        intervene = True
        worst = max(lp.repetition_count for lp in long_loops)
        reasons.append(f"a loop has repeated {worst} times (threshold {INTERVENTION_LOOP_REPEATS})")
    if open_contradictions and not critical:
        reasons.append(f"{len(open_contradictions)} open contradiction(s) in {message_count} messages")
    if loops and not long_loops:
        reasons.append(f"{len(loops)} open loop(s) in {message_count} messages")

    return HealthPoint(
        health_score=round(health, 2),
        coherence_score=round(coherence, 2),
        contradiction_score=round(contradiction, 2),
        loop_score=round(loop, 2),
        citation_score=round(citation, 2),
        requires_intervention=intervene,
        reasons=reasons,
    )
