"""Conversation detectors (docs/conversations.md): pure functions, no database.

Contradictions, loops, citations, coherence and the health score. See docs/conversations.md for every
formula, threshold and weight, and the figures measured on ProSeCCo (`bench/prosecco.py`).
"""

from mmos_core.analysis.detectors.citations import Citation, CitationCheck, extract_citations, verify_citation
from mmos_core.analysis.detectors.coherence import coherence_score
from mmos_core.analysis.detectors.contradictions import (
    ContradictionFinding,
    contradiction_probability,
    detect_contradictions,
)
from mmos_core.analysis.detectors.health import HealthPoint, health_point
from mmos_core.analysis.detectors.loops import LoopFinding, detect_loop
from mmos_core.analysis.detectors.types import Embed, MessageView

__all__ = [
    "Citation",
    "CitationCheck",
    "ContradictionFinding",
    "Embed",
    "HealthPoint",
    "LoopFinding",
    "MessageView",
    "coherence_score",
    "contradiction_probability",
    "detect_contradictions",
    "detect_loop",
    "extract_citations",
    "health_point",
    "verify_citation",
]
