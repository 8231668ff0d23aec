"""Server-side render time of the Review and Dashboard pages on the configured database.

Runs each page script in-process with Streamlit's AppTest (the same code path a browser's rerun
takes on the server, without the websocket and the browser's painting), signed in as an admin,
and prints min / p50 / p95 over repeated reruns. Seed a scratch database first with
`bench/seed_fragments.py` (see bench/README.md).

    MMOS_DATA_DIR=/tmp/bench-data python bench/page_render.py --runs 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


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


def _time_page(page: str, user, runs: int, widgets=None) -> list[float]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / page), default_timeout=300)
    at.session_state["current_user"] = user
    at.run()  # warm-up: imports, caches, first connection
    if at.exception:
        raise SystemExit(f"{page} raised: {at.exception[0].message}")
    if widgets:
        widgets(at)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
    return times


def _report(name: str, times: list[float]) -> str:
    q = statistics.quantiles(times, n=20) if len(times) >= 2 else times
    p95 = q[-1] if len(times) >= 2 else times[0]
    return f"{name:<34} runs {len(times):>3}  min {min(times)*1000:7.0f} ms  p50 {statistics.median(times)*1000:7.0f} ms  p95 {p95*1000:7.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    from sqlalchemy import func, select

    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment

    with session_scope() as session:
        n = session.scalar(select(func.count()).select_from(Fragment))
    print(f"fragments in the database: {n:,}")
    user = _admin()

    def search(at):
        at.text_input[0].set_value("habit")

    rows = [
        ("review (first page, 25 rows)", _time_page("pages/review.py", user, args.runs)),
        ("review (full-text search 'habit')", _time_page("pages/review.py", user, args.runs, search)),
        ("dashboard (all charts)", _time_page("pages/dashboard.py", user, args.runs)),
    ]
    for name, times in rows:
        print(_report(name, times))


if __name__ == "__main__":
    main()
