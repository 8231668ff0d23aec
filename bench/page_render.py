"""Server-side render time of every workbench page on the configured database.

Runs app.py in-process with Streamlit's AppTest and switches to each page (the same code path a
browser's rerun takes on the server, without the websocket and the browser's painting), signed in as an admin,
and prints, per page: the first run in this process ("first": imports, caches); min / p50 / p95 over reruns
with unchanged data; and p50 / max of the first run after a data change ("changed": `--changes` times, a
reviewer verifies one more fragment, of another source each time, just before the run; the verdicts are taken
back at the end). Seed a scratch database first with `bench/seed_fragments.py` (see bench/README.md,
"page_render.py").

    MMOS_DATA_DIR=/tmp/bench-data python bench/page_render.py --runs 10
    MMOS_DATA_DIR=/tmp/bench-data python bench/page_render.py --runs 5 --pages quality,dashboard --markdown
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

def _search(at) -> None:
    at.text_input[0].set_value("habit")


#: (key, label, page script, widget setter or None): every page of app.py's navigation but Users.
PAGES: list[tuple[str, str, str, object]] = [
    ("sources", "Sources", "pages/sources.py", None),
    ("comparison", "Comparison", "pages/comparison.py", None),
    ("quality", "Quality & cost", "pages/quality.py", None),
    ("review", "Review, first page of 25", "pages/review.py", None),
    ("review-search", "Review, full-text search 'habit'", "pages/review.py", _search),
    ("queue", "Queue", "pages/queue.py", None),
    ("coverage", "Coverage", "pages/coverage.py", None),
    ("dashboard", "Dashboard, all charts (30 days)", "pages/dashboard.py", None),
    ("llm-catalog", "LLM catalog", "pages/llm_catalog.py", None),
    ("data-transfer", "Import / export", "pages/data_transfer.py", None),
    ("monitoring", "Inference monitor", "pages/monitoring.py", None),
    ("conversations", "Conversations", "pages/conversations.py", None),
]


def _admin():
    from sqlalchemy import select

    from mmos_core.core.db import session_scope
    from mmos_core.models import User
    from mmos_core.services.auth import CurrentUser, Role, create_user

    with session_scope() as session:
        user = session.scalar(select(User).where(User.username == "bench-admin"))
        if user is None:
            return create_user(session=session, username="bench-admin", role=Role.admin, password="bench-password-1")
        return CurrentUser(id=user.id, username=user.username, display_name=None, role=Role.admin)


class Verdicts:
    """Data changes for the "changed" timings: each `change()` verifies one more unreviewed fragment (sources
    taken in turn, fragments drawn with a fixed seed) as a reviewer would; `undo()` resets them all."""

    def __init__(self, user) -> None:
        from sqlalchemy import select

        from mmos_core.core.db import session_scope
        from mmos_core.models import Fragment

        self.user, self.done = user, []
        with session_scope() as session:
            rows = session.execute(select(Fragment.source_id, Fragment.id).where(
                Fragment.verified.is_(False), Fragment.rejected.is_(False)).order_by(Fragment.id)).all()
        by_source: dict[int, list[int]] = {}
        for sid, fid in rows:
            by_source.setdefault(sid, []).append(fid)
        rng = random.Random(20241201)
        self.todo = [rng.choice(ids) for _, ids in sorted(by_source.items())]
        rng.shuffle(self.todo)

    def change(self) -> None:
        from mmos_core.core.db import session_scope
        from mmos_core.services.review import verify

        fid = self.todo[len(self.done) % len(self.todo)]
        with session_scope() as session:
            verify(session=session, user=self.user, fragment_id=fid)
        self.done.append(fid)

    def undo(self) -> None:
        from mmos_core.core.db import session_scope
        from mmos_core.services.review import reset_verdict

        with session_scope() as session:
            for fid in dict.fromkeys(self.done):
                reset_verdict(session=session, user=self.user, fragment_id=fid)
        self.done = []


def _time_page(page: str, user, runs: int, widgets=None, changes: int = 0,
               verdicts: Verdicts | None = None) -> tuple[float, list[float], list[float]]:
    """(first run's seconds, seconds of each of `runs` reruns with unchanged data, seconds of each of
    `changes` runs right after a data change)."""
    from streamlit.testing.v1 import AppTest

    # through app.py's navigation, as a browser opens the page (st.page_link needs the registered pages)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=300)
    at.session_state["current_user"] = user
    at.run()
    at.switch_page(page)
    t0 = time.perf_counter()
    at.run()  # first run of the page: imports, caches, first connection
    first = time.perf_counter() - t0
    if at.exception:
        raise SystemExit(f"{page} raised: {at.exception[0].message}")
    if not at.title:  # the switch landed somewhere unexpected (sign-in page, st.stop before the title)
        raise SystemExit(f"{page} rendered no title")
    if widgets:
        widgets(at)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    changed = []
    for _ in range(changes if verdicts is not None else 0):
        verdicts.change()
        t0 = time.perf_counter()
        at.run()
        changed.append(time.perf_counter() - t0)
    if at.exception:
        raise SystemExit(f"{page} raised: {at.exception[0].message}")
    return first, times, changed


def _p95(times: list[float]) -> float:
    return statistics.quantiles(times, n=20)[-1] if len(times) >= 2 else times[0]


def _report(name: str, first: float, times: list[float], changed: list[float]) -> str:
    line = (f"{name:<34} runs {len(times):>3}  first {first*1000:7.0f} ms  min {min(times)*1000:7.0f} ms  "
            f"p50 {statistics.median(times)*1000:7.0f} ms  p95 {_p95(times)*1000:7.0f} ms")
    if changed:
        line += f"  changed ({len(changed)}) p50 {statistics.median(changed)*1000:7.0f} ms  max {max(changed)*1000:7.0f} ms"
    return line


def main() -> None:
    """Time the chosen pages (all by default) and print one line each (and a Markdown table)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="reruns per page after the first (default 10)")
    parser.add_argument("--pages", default="", help="comma-separated keys: " + ",".join(k for k, *_ in PAGES))
    parser.add_argument("--changes", type=int, default=3,
                        help="runs right after a data change (a verdict) per page (default 3; 0: none)")
    parser.add_argument("--markdown", action="store_true", help="also print a Markdown table for bench/README.md")
    args = parser.parse_args()
    chosen = [p for p in PAGES if not args.pages or p[0] in args.pages.split(",")]

    from sqlalchemy import func, select

    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment

    with session_scope() as session:
        n = session.scalar(select(func.count()).select_from(Fragment))
    print(f"fragments in the database: {n:,}", flush=True)
    user = _admin()

    rows = []
    verdicts = Verdicts(user) if args.changes else None
    try:
        for _key, label, page, widgets in chosen:
            first, times, changed = _time_page(page, user, args.runs, widgets, args.changes, verdicts)
            rows.append((label, first, times, changed))
            print(_report(label, first, times, changed), flush=True)
    finally:
        if verdicts is not None:
            verdicts.undo()
    if args.markdown:
        print("\n| page | first | rerun min / p50 / p95 | after a change p50 / max |\n|---|---|---|---|")
        for label, first, times, changed in rows:
            after = f"{statistics.median(changed)*1000:,.0f} / {max(changed)*1000:,.0f} ms" if changed else "—"
            print(f"| {label} | {first*1000:,.0f} ms | {min(times)*1000:,.0f} / {statistics.median(times)*1000:,.0f} / "
                  f"{_p95(times)*1000:,.0f} ms | {after} |")


if __name__ == "__main__":
    main()
