"""Every RQ job of the workbench, declared once (docs/ARCHITECTURE.md, "Jobs").

Extraction retries after 30 s, 2 min, 5 min: each chunk call already retries transient provider
errors with its own backoff, so a job-level retry means a longer outage (docs/quality.md, budgets).
"""

from __future__ import annotations

from mmos_core.jobs.spec import JobSpec

#: One extraction batch: every chunk of its source through its model, then publication.
EXTRACT_BATCH = JobSpec(
    name="extract-batch",
    func="workers.extraction.run_extraction",
    queue=None,  # high / default / low from the source's effective priority
    timeout_s="job_timeout_s",
    retry_intervals=(30, 120, 300),
    max_retries="job_max_attempts",
    on_failure="workers.extraction.on_extraction_failure",
)

#: The LLM support judge over a completed batch's fragments (docs/quality.md); never blocks publication.
JUDGE_BATCH = JobSpec(
    name="judge-batch",
    func="workers.judging.run_judging",
    queue="low",
    timeout_s=3600,
    retry_intervals=(60, 300),
    max_retries=2,
)

#: Analyse a conversation's messages (contradictions, loops, citations, health).
ANALYZE_CONVERSATION = JobSpec(
    name="conv-analyze",
    func="workers.conversations.analyze_conversation",
    queue="default",
    timeout_s="conversation_job_timeout_s",
    retry_intervals=(30, 120),
    max_retries=2,
    on_failure="workers.conversations.on_conversation_job_failure",
)

#: A local multi-agent debate, each turn analysed as it is spoken.
RUN_DEBATE = JobSpec(
    name="conv-debate",
    func="workers.conversations.run_debate",
    queue="default",
    timeout_s="conversation_debate_timeout_s",
    retry_intervals=(30, 120),
    max_retries=2,
    on_failure="workers.conversations.on_conversation_job_failure",
)

#: One signed webhook POST (docs/webhooks.md).
DELIVER_WEBHOOK = JobSpec(
    name="webhook",
    func="workers.webhooks.deliver",
    queue="low",
    timeout_s=30,
    retry_intervals=(10, 30, 60, 300, 900),
    max_retries=5,
    result_ttl_s=24 * 3600,
    failure_ttl_s=7 * 24 * 3600,
)

#: Recurring maintenance: re-enqueue orphaned batches, refresh rollups and aggregates, re-score
#: sources with new reviews. Enqueued once per period for the whole deployment (`jobs.schedule`).
MAINTENANCE = JobSpec(
    name="maintenance",
    func="workers.maintenance.run_maintenance",
    queue="low",
    timeout_s=600,
    result_ttl_s=3600,
    failure_ttl_s=24 * 3600,
)

ALL_JOBS: tuple[JobSpec, ...] = (EXTRACT_BATCH, JUDGE_BATCH, ANALYZE_CONVERSATION, RUN_DEBATE, DELIVER_WEBHOOK, MAINTENANCE)
