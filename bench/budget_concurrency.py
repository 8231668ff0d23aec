"""Eight RQ workers against a tiny daily budget: does spend stay under the cap? (docs/quality.md)

    python bench/budget_concurrency.py [--workers 8] [--cap 0.004] [--latency 0.5]

Starts everything in a throwaway data dir: the embedded PostgreSQL + Redis, migrations, a fake
OpenAI-compatible provider on localhost (the network edge: it answers every call with a valid
extraction and a usage of 1,000 prompt + 500 completion tokens after `--latency` seconds, so calls
overlap), eight sources cut from Franklin's autobiography (../shared/data/person_texts), one
`gpt-4o-mini` batch each (priced by litellm's map: $0.00045 a call), a daily cap of `--cap` USD, and
`--workers` real `mmos worker --burst` processes. Prints the calls the provider saw, the most calls
in flight at once, spend against the cap, and how each batch ended.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
SHARED = Path(os.environ.get("MMOS_SHARED_DIR", REPO_ROOT.parent / "shared"))


class Provider(BaseHTTPRequestHandler):
    latency = 0.5
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    calls = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.calls += 1
            cls.peak = max(cls.peak, cls.in_flight)
        try:
            time.sleep(cls.latency)
            passage = body["messages"][1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]
            quote = " ".join(passage.split())[:140]
            content = json.dumps({"fragments": [{
                "category": "Behavioral", "fragment_type": "direct_quote", "content": quote, "context": "bench",
                "insight": "bench", "relevance": 6, "confidence": 0.8}]})
            answer = {"id": "bench", "object": "chat.completion", "created": 0, "model": body["model"],
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def log_message(self, *args):
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--cap", type=Decimal, default=Decimal("0.004"))
    ap.add_argument("--latency", type=float, default=0.5)
    ap.add_argument("--chunks", type=int, default=4, help="chunks per source")
    args = ap.parse_args()

    Provider.latency = args.latency
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data_dir = tempfile.mkdtemp(prefix="mmos-budget-bench-")
    env = {
        "MMOS_DATA_DIR": data_dir, "OPENAI_API_BASE": f"http://127.0.0.1:{server.server_port}/v1",
        "OPENAI_API_KEY": "sk-bench-not-a-key", "MMOS_CLOUD_MODELS": "gpt-4o-mini", "MMOS_LLM_MAX_RETRIES": "1",
    }
    os.environ.update(env)
    for k in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(k, None)

    from sqlalchemy import func, select

    from mmos_core.core import db, embedded
    from mmos_core.core.migrate import upgrade
    from mmos_core.models import BudgetReservation, ExtractionCall, ProcessingBatch
    from mmos_core.services.auth import CurrentUser, Role
    from mmos_core.services.batches import enqueue_batches, queue_extraction
    from mmos_core.services.dashboard import set_budget
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    embedded.database_url()
    embedded.redis_url()
    upgrade("head")
    text = (SHARED / "data" / "person_texts" / "franklin_autobiography.txt").read_text(encoding="utf-8")
    paragraphs = [p for p in text.split("\n\n") if len(p.split()) > 40]
    manager = CurrentUser(id=None, username="bench", display_name=None, role=Role.manager)  # type: ignore[arg-type]
    batch_ids = []
    with db.session_scope() as s:
        set_budget(session=s, user=manager, daily_limit_usd=args.cap, per_fragment_limit_usd=None)
    for i in range(8):
        part = "\n\n".join(paragraphs[i * args.chunks * 2 : (i + 1) * args.chunks * 2])
        with db.session_scope() as s:
            src = create_source(session=s, parsed=parse_pasted(part, max_bytes=5_000_000), title=f"Franklin part {i + 1}",
                                person="Benjamin Franklin", source_type="book", quality="primary", extraction_priority="HIGH")
            jobs = queue_extraction(session=s, source_id=src.id, model_names=["gpt-4o-mini"])
        enqueue_batches(jobs)
        batch_ids.append(jobs[0].batch_id)

    started = time.perf_counter()
    mmos = str(Path(sys.executable).with_name("mmos"))
    procs = [subprocess.Popen([mmos, "worker", "--burst", "--name", f"bench-{i}"], env={**os.environ},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(args.workers)]
    for p in procs:
        p.wait(timeout=600)
    elapsed = time.perf_counter() - started

    with db.session_scope() as s:
        spent = Decimal(s.scalar(select(func.coalesce(func.sum(ExtractionCall.cost_usd), 0))))
        calls = s.scalar(select(func.count()).select_from(ExtractionCall))
        held = s.scalar(select(func.count()).select_from(BudgetReservation).where(BudgetReservation.status == "held"))
        reservations = s.scalar(select(func.count()).select_from(BudgetReservation))
        batches = s.scalars(select(ProcessingBatch).where(ProcessingBatch.id.in_(batch_ids)).order_by(ProcessingBatch.id)).all()
        outcome = [(b.id, b.batch_status, b.chunks_done, b.chunks_total, (b.error_message or "")[:110]) for b in batches]
    print(f"workers {args.workers}, batches 8 × {batches[0].chunks_total} chunks, provider latency {args.latency}s, {elapsed:.1f}s wall")
    print(f"calls seen by the provider: {Provider.calls}; recorded: {calls}; most in flight at once: {Provider.peak}")
    print(f"spent ${spent:.6f} of a ${args.cap:.6f} daily cap ({'within' if spent <= args.cap else 'OVER'}); "
          f"reservations {reservations}, still held {held}")
    for row in outcome:
        print(f"  batch {row[0]}: {row[1]:9} {row[2]}/{row[3]} chunks  {row[4]}")
    embedded.stop_redis()
    embedded.stop_postgres()
    server.shutdown()


if __name__ == "__main__":
    main()
