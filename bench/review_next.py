"""Time the review queue's "next fragment" action (`services.review_queue.claim_next`) on a large database.

    MMOS_DATA_DIR=/tmp/bench-data python bench/seed_fragments.py --count 100000 --fast-embeddings
    MMOS_DATA_DIR=/tmp/bench-data python bench/review_next.py --iterations 200

Each iteration is what the Review page's queue mode does on a server when a reviewer presses Verify:
one transaction that verifies the served fragment and ends its claim (`review_queue.judge`), then one
that claims the next one (`claim_next`, with the fragments seen so far excluded, as the page does),
counts, progress figures included. Times are server time in milliseconds (no browser, no Streamlit
rerun). Prints p50 / p95 / max for `next` alone, for `verify + next`, and for agreement mode's `next`,
and writes them to bench/results/review_next.json. Never run it against a database you care about: it
adds a reviewer account and verdicts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(_pct(values, 0.5), 2), "p95_ms": round(_pct(values, 0.95), 2),
            "max_ms": round(max(values), 2), "mean_ms": round(statistics.fmean(values), 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", type=int, default=200, help="verify + next rounds (default 200)")
    p.add_argument("--username", default="bench-reviewer", help="reviewer account to use (created if missing)")
    args = p.parse_args(argv)

    from sqlalchemy import func, select

    from mmos_core.core.db import session_scope
    from mmos_core.models import Fragment, User
    from mmos_core.services import review_queue as rq
    from mmos_core.services.auth import CurrentUser, Role, create_user

    with session_scope() as session:
        total = int(session.scalar(select(func.count(Fragment.id))) or 0)
        row = session.scalar(select(User).where(User.username == args.username))
        if row is None:
            user = create_user(session=session, username=args.username, role="reviewer", password="bench password 123")
        else:
            user = CurrentUser(id=row.id, username=row.username, display_name=row.display_name, role=Role(row.role))
    assert user is not None
    print(f"{total:,} fragments in the database; reviewer {user.username}")

    seen: list[int] = []
    nxt, verify_next, agree = [], [], []
    with session_scope() as session:  # warm-up (plans, connection)
        item = rq.claim_next(session=session, user=user)
    current = item.fragment.id if item.fragment else None
    for _ in range(args.iterations):
        if current is None:
            break
        t0 = time.perf_counter()
        with session_scope() as session:
            rq.judge(session=session, user=user, fragment_id=current, verdict="verified")
        seen.append(current)
        t1 = time.perf_counter()
        with session_scope() as session:
            item = rq.claim_next(session=session, user=user, exclude=seen)
        t2 = time.perf_counter()
        nxt.append((t2 - t1) * 1000)
        verify_next.append((t2 - t0) * 1000)
        current = item.fragment.id if item.fragment else None
    for _ in range(max(20, args.iterations // 4)):
        t0 = time.perf_counter()
        with session_scope() as session:
            rq.claim_next(session=session, user=user, agreement=True, exclude=seen)
        agree.append((time.perf_counter() - t0) * 1000)

    result = {"fragments": total, "next": _summary(nxt), "verify_then_next": _summary(verify_next),
              "agreement_next": _summary(agree)}
    for name in ("next", "verify_then_next", "agreement_next"):
        s = result[name]
        print(f"{name:18s} n={s['n']:4d}  p50 {s['p50_ms']:8.2f} ms  p95 {s['p95_ms']:8.2f} ms  max {s['max_ms']:8.2f} ms")
    out = REPO_ROOT / "bench" / "results" / "review_next.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written {out.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
