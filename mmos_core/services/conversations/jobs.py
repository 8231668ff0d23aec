"""Enqueueing conversation jobs after commit: a conversation's analysis and a debate's run. The job
functions live in `workers/conversations.py` (RQ imports them by name; docs/conversations.md,
"Analysis jobs").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from mmos_core.jobs.catalog import ANALYZE_CONVERSATION, RUN_DEBATE
from mmos_core.jobs.enqueue import enqueue


def enqueue_analysis(conversation_id: int, *, force: bool = False, session: Session | None = None,
                     connection: Any = None) -> str:
    """Enqueue the analysis of a conversation (one job per conversation, however many messages;
    idempotent while one waits or runs): when `session` commits, or at once. Returns the RQ job id."""
    job_id = ANALYZE_CONVERSATION.job_id(conversation_id)
    enqueue(ANALYZE_CONVERSATION, conversation_id, force=force, job_id=job_id, session=session,
            connection=connection, description=f"analyse conversation {conversation_id}")
    return job_id


def enqueue_debate(conversation_id: int, *, session: Session | None = None, connection: Any = None) -> str:
    """Enqueue a debate's run: when `session` commits, or at once. Returns the RQ job id."""
    job_id = RUN_DEBATE.job_id(conversation_id)
    enqueue(RUN_DEBATE, conversation_id, job_id=job_id, session=session, connection=connection,
            description=f"debate {conversation_id}")
    return job_id
