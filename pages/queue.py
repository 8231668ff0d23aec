"""Queue: extraction jobs by status, retry / cancel / re-prioritise them, and the RQ workers."""

import datetime as dt

import pandas as pd
import streamlit as st

from mmos_core.jobs.rq_admin import cancel_job, job_statuses, list_workers
from mmos_core.services.auth import Permission
from mmos_core.services.batches import enqueue_batches
from mmos_core.services.queue_admin import (
    STATUS_GROUPS,
    QueueActionError,
    cancel_queue_job,
    list_queue_jobs,
    move_batch_job,
    reprioritise_job,
    retry_job,
)
from mmos_core.ui import require, sidebar_status, transaction

user = require(Permission.manage_queue)
sidebar_status()
st.title("Queue")

RETRYABLE = ("failed", "cancelled")
CANCELLABLE = ("waiting", "processing")


def _label(j) -> str:
    return f"#{j.queue_id} · {j.batch_code or '-'} · {j.model_name or '-'} · {j.source_code} · {j.queue_status}"


def _ago(when: dt.datetime | None) -> str:
    if when is None:
        return "-"
    seconds = (dt.datetime.now(dt.UTC) - when).total_seconds()
    return f"{seconds:,.0f} s ago" if seconds < 120 else f"{seconds / 60:,.0f} min ago"


# --- Actions (run as button callbacks, so the page below already shows their outcome) ------------
_FLASH = "queue_flash"  # the last action's outcome message, shown once


def _act(action: str) -> None:
    """Retry, cancel or re-prioritise the job picked in the selectbox; commit, then tell RQ."""
    queue_id = st.session_state["queue_job_pick"]
    try:
        if action == "retry":
            with transaction() as session:
                job = retry_job(session=session, queue_id=queue_id, by=user.username)
                enqueue_batches([job], session=session)
            msg = f"Job #{queue_id} is waiting again on the '{job.rq_queue}' queue; it resumes after its last staged chunk."
        elif action == "cancel":
            with transaction() as session:
                job = cancel_queue_job(session=session, queue_id=queue_id, by=user.username)
            outcome = cancel_job(job.rq_job_id)
            msg = f"Job #{queue_id} cancelled ({'worker told to stop' if outcome == 'stopped' else 'removed from RQ'})."
        else:
            priority = int(st.session_state[f"queue_priority_{queue_id}"])
            with transaction() as session:
                result = reprioritise_job(session=session, queue_id=queue_id, priority=priority, by=user.username)
            moved = move_batch_job(result.move) if result.move is not None else False
            msg = (
                f"Job #{queue_id}: priority {result.priority}, effective {result.effective_priority:g}, "
                f"queue '{result.rq_queue}'" + (" (moved)" if moved else "")
            )
        st.session_state[_FLASH] = ("success", msg)
    except (LookupError, QueueActionError) as exc:
        st.session_state[_FLASH] = ("error", str(exc))


with transaction() as session:
    open_jobs = list_queue_jobs(session=session, statuses=["waiting", "processing", "failed", "cancelled"])

with st.container(border=True):
    st.subheader("Actions")
    flash = st.session_state.pop(_FLASH, None)
    if flash is not None:
        (st.success if flash[0] == "success" else st.error)(flash[1])
    if not open_jobs:
        st.caption("No waiting, running, failed or cancelled jobs.")
    else:
        by_id = {j.queue_id: j for j in open_jobs}
        picked_id = st.selectbox("Job", list(by_id), format_func=lambda i: _label(by_id[i]), key="queue_job_pick")
        picked = by_id[picked_id]
        left, middle, right = st.columns([1, 1, 2], vertical_alignment="bottom")
        left.button(
            "Retry", key="queue_retry", disabled=picked.queue_status not in RETRYABLE, icon=":material/replay:",
            on_click=_act, args=("retry",),
        )
        middle.button(
            "Cancel job", key="queue_cancel", disabled=picked.queue_status not in CANCELLABLE, icon=":material/block:",
            on_click=_act, args=("cancel",),
        )
        right.number_input(
            "Priority (0-10)", min_value=0, max_value=10, value=picked.priority, step=1, key=f"queue_priority_{picked_id}"
        )
        right.button("Set priority", key="queue_set_priority", icon=":material/low_priority:", on_click=_act, args=("reprioritise",))


# --- Lists (refreshed every 5 s) -----------------------------------------------------------------
@st.fragment(run_every=5)
def job_lists() -> None:
    """Jobs by status with their live RQ status, and the workers (re-runs itself every 5 s)."""
    with transaction() as session:
        jobs = list_queue_jobs(session=session, limit=500)
    live = job_statuses([j.rq_job_id for j in jobs if j.rq_job_id])
    groups = {label: [j for j in jobs if j.queue_status == status] for label, status in STATUS_GROUPS.items()}
    tabs = st.tabs([f"{label} ({len(rows)})" for label, rows in groups.items()])
    for tab, (label, rows) in zip(tabs, groups.items(), strict=True):
        with tab:
            if not rows:
                st.caption(f"No {label.lower()} jobs.")
                continue
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "id": j.queue_id,
                            "batch": j.batch_code,
                            "model": j.model_name,
                            "source": f"{j.source_code} — {j.source_title}",
                            "priority": j.priority,
                            "effective": j.effective_priority,
                            "attempts": f"{j.attempts}/{j.max_attempts}",
                            "chunks": f"{j.chunks_done}/{j.chunks_total}",
                            "retry at": j.scheduled_for.strftime("%H:%M:%S UTC") if j.scheduled_for else "",
                            "rq queue": j.rq_queue,
                            "rq status": live.get(j.rq_job_id or "") or "absent",
                            "worker": j.assigned_to or "",
                            "last error": j.last_error or "",
                        }
                        for j in rows
                    ]
                ),
                hide_index=True,
                width="stretch",
                key=f"queue_table_{label}",
            )

    st.subheader("Workers")
    workers = list_workers()
    if not workers:
        st.warning("No worker is running: queued jobs wait until `mmos worker` (or `mmos up`) runs.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "name": w.name,
                    "state": w.state,
                    "queues": ", ".join(w.queues),
                    "current job": w.current_job_id or "",
                    "last heartbeat": w.last_heartbeat.strftime("%H:%M:%S UTC") if w.last_heartbeat else "",
                    "ago": _ago(w.last_heartbeat),
                }
                for w in workers
            ]
        ),
        hide_index=True,
        width="stretch",
        key="queue_workers",
    )


job_lists()
