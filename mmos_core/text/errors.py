"""`IntakeError`: the one refusal type of intake (docs/intake.md, "Refusals").

A module of its own so that :mod:`mmos_core.text.intake` (which dispatches documents to
:mod:`mmos_core.text.documents`) and the document converters can all raise it without
importing each other in a circle. :mod:`mmos_core.text.intake` re-exports it; callers keep
``from mmos_core.text.intake import IntakeError``.
"""

from __future__ import annotations

__all__ = ["IntakeError"]


class IntakeError(ValueError):
    """Refused input.

    ``str(e)`` is a user-facing sentence saying why and what to do. ``reason`` is one of
    ``"empty"``, ``"binary"``, ``"encoding"``, ``"too_large"``, ``"format"`` and, for documents,
    ``"encrypted"``, ``"scanned"``, ``"corrupt"`` (docs/intake.md lists each message).
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
