"""A 150-chunk batch against a slow, rate-limiting cloud provider: concurrency N under a shared rpm limit.

    python bench/cloud_throughput.py [--chunks 150] [--concurrency 8] [--rpm 90] [--scale 1.0]

Starts everything in a throwaway data dir: the embedded PostgreSQL + Redis, migrations, and a fake
OpenAI-compatible provider on localhost (a threaded `http.server`: each request takes a latency drawn
uniformly from 2-8 s × `--scale`; `--p429` of them are answered 429 at once with `Retry-After`, `--p5xx`
answered 503 after a short delay; the rest get a valid extraction with 1,000 prompt + 500 completion
tokens). Franklin's autobiography (../shared/data/person_texts) is ingested, its first `--chunks` chunks
are queued for `gpt-4o-mini`, and one real `mmos worker --burst` process runs the batch with
`MMOS_LLM_CONCURRENCY_OVERRIDES={"openai": N}` and `MMOS_LLM_RPM_LIMITS={"openai": RPM}`.

Prints the timeline (per 10 s: requests started, answered, 429, 5xx, most in flight), the wall time of
the calls against the ideal for that concurrency — max(sum of the provider's service times / N, the
earliest the last request may start under the rpm limit) — and the most requests the provider counted
in any 60 s window (must never exceed `--rpm`). Figures: docs/throughput.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
SHARED = Path(os.environ.get("MMOS_SHARED_DIR", REPO_ROOT.parent / "shared"))


class Provider(BaseHTTPRequestHandler):
    """The fake provider; its class attributes are the script and the log (arrival, end, status, passage)."""

    scale = 1.0
    p429 = 0.05
    p5xx = 0.03
    retry_after = 2
    rng = random.Random(7)
    lock = threading.Lock()
    log: list[dict] = []
    in_flight = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        with cls.lock:
            draw, latency = cls.rng.random(), cls.rng.uniform(2.0, 8.0) * cls.scale
            entry = {"start": time.monotonic(), "status": 200}
            cls.log.append(entry)
            cls.in_flight += 1
            entry["in_flight"] = cls.in_flight
        try:
            if draw < cls.p429:
                entry["status"] = 429
                self._send(429, {"error": {"message": "Rate limit reached for requests", "type": "requests",
                                           "code": "rate_limit_exceeded"}}, {"Retry-After": str(cls.retry_after)})
                return
            if draw < cls.p429 + cls.p5xx:
                time.sleep(0.5 * cls.scale)
                entry["status"] = 503
                self._send(503, {"error": {"message": "overloaded", "type": "server_error"}})
                return
            time.sleep(latency)
            passage = body["messages"][1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]
            quote = " ".join(passage.split())[:140]
            content = json.dumps({"fragments": [{
                "category": "Behavioral", "fragment_type": "direct_quote", "content": quote, "context": "bench",
                "insight": "bench", "relevance": 6, "confidence": 0.8}]})
            self._send(200, {"id": "bench", "object": "chat.completion", "created": 0, "model": body["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}})
        finally:
            with cls.lock:
                cls.in_flight -= 1
                entry["end"] = time.monotonic()

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def max_per_window(starts: list[float], window: float = 60.0) -> int:
    """Most arrivals in any half-open window [t, t + window) (t at an arrival)."""
    starts = sorted(starts)
    best, j = 0, 0
    for i, t in enumerate(starts):
        while j < len(starts) and starts[j] < t + window:
            j += 1
        best = max(best, j - i)
    return best


def print_timeline(log: list[dict], t0: float, step: float = 10.0) -> None:
    end = max(e["end"] for e in log)
    print(f"{'t (s)':>9} {'started':>8} {'200':>5} {'429':>5} {'5xx':>5} {'in flight (max)':>16}")
    for k in range(math.ceil((end - t0) / step)):
        a, b = t0 + k * step, t0 + (k + 1) * step
        started = [e for e in log if a <= e["start"] < b]
        answered = [e for e in log if a <= e["end"] < b]
        busy = max((e["in_flight"] for e in started), default=0)
        print(f"{k * step:4.0f}-{(k + 1) * step:<4.0f} {len(started):8d} {sum(e['status'] == 200 for e in answered):5d} "
              f"{sum(e['status'] == 429 for e in started):5d} {sum(e['status'] >= 500 for e in started):5d} {busy:16d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chunks", type=int, default=150)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rpm", type=int, default=90, help="requests per minute for provider 'openai' (0: unlimited)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the 2-8 s latency (and the 429 Retry-After)")
    ap.add_argument("--p429", type=float, default=0.05)
    ap.add_argument("--p5xx", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    Provider.scale, Provider.p429, Provider.p5xx = args.scale, args.p429, args.p5xx
    Provider.retry_after = max(1, round(2 * args.scale))
    Provider.rng = random.Random(args.seed)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provider)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    data_dir = tempfile.mkdtemp(prefix="mmos-throughput-bench-")
    os.environ.update({
        "MMOS_DATA_DIR": data_dir, "OPENAI_API_BASE": f"http://127.0.0.1:{server.server_port}/v1",
        "OPENAI_API_KEY": "sk-bench-not-a-key", "MMOS_CLOUD_MODELS": "gpt-4o-mini", "MMOS_LLM_MAX_RETRIES": "3",
        "MMOS_JUDGE_ENABLED": "false", "MMOS_LLM_CONCURRENCY_OVERRIDES": json.dumps({"openai": args.concurrency}),
        "MMOS_LLM_RPM_LIMITS": json.dumps({"openai": args.rpm} if args.rpm else {}),
    })
    for k in ("DATABASE_URL", "REDIS_URL"):
        os.environ.pop(k, None)

    from sqlalchemy import func, select

    from mmos_core.core import db, embedded
    from mmos_core.core.migrate import upgrade
    from mmos_core.models import ExtractionCall, Fragment, ProcessingBatch, SourceChunk
    from mmos_core.services.batches import enqueue_batches, queue_extraction
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    embedded.database_url()
    embedded.redis_url()
    upgrade("head")
    text = (SHARED / "data" / "person_texts" / "franklin_autobiography.txt").read_text(encoding="utf-8")
    with db.session_scope() as s:
        src = create_source(session=s, parsed=parse_pasted(text, max_bytes=5_000_000), title="Autobiography",
                            person="Benjamin Franklin", source_type="book", quality="primary", extraction_priority="HIGH")
        chunk_ids = list(s.scalars(select(SourceChunk.id).where(SourceChunk.source_id == src.id)
                                   .order_by(SourceChunk.chunk_index).limit(args.chunks)))
        jobs = queue_extraction(session=s, source_id=src.id, model_names=["gpt-4o-mini"], chunk_ids=chunk_ids)
    enqueue_batches(jobs)
    batch_id = jobs[0].batch_id

    started, started_epoch = time.monotonic(), time.time()
    mmos = str(Path(sys.executable).with_name("mmos"))
    worker = subprocess.Popen([mmos, "worker", "--burst", "--name", "bench-throughput"], env={**os.environ},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = worker.communicate(timeout=900)
    job_wall = time.monotonic() - started

    with db.session_scope() as s:
        batch = s.get(ProcessingBatch, batch_id)
        status, done, total = batch.batch_status, batch.chunks_done, batch.chunks_total
        answered = s.scalar(select(func.count(func.distinct(ExtractionCall.chunk_id))).where(
            ExtractionCall.batch_id == batch_id, ExtractionCall.status == "ok"))
        fragments = s.scalar(select(func.count()).select_from(Fragment).where(Fragment.batch_id == batch_id))
        error = batch.error_message
        published = batch.completed_at.timestamp() - started_epoch if batch.completed_at else float("nan")
    log = [e for e in Provider.log if "end" in e]
    t0 = min(e["start"] for e in log)
    calls_wall = max(e["end"] for e in log) - t0
    service = sum(e["end"] - e["start"] for e in log)
    latency_bound = service / args.concurrency
    rpm_bound = math.floor((len(log) - 1) / args.rpm) * 60.0 if args.rpm else 0.0
    ideal = max(latency_bound, rpm_bound)
    counted = max_per_window([e["start"] for e in log])
    statuses = {code: sum(e["status"] == code for e in log) for code in (200, 429, 503)}

    print(f"batch {batch_id}: {status}, {done}/{total} chunks, {answered} answered once each, {fragments} fragments"
          + (f" — {error}" if error else ""))
    print(f"provider: latency 2-8 s × {args.scale}, {args.p429:.0%} 429 (Retry-After {Provider.retry_after} s), "
          f"{args.p5xx:.0%} 503; concurrency {args.concurrency}, rpm limit {args.rpm or 'none'}")
    print(f"requests {len(log)}: {statuses[200]} × 200, {statuses[429]} × 429, {statuses[503]} × 503; "
          f"most in flight {max(e['in_flight'] for e in log)}")
    print_timeline(log, t0)
    print(f"calls wall {calls_wall:.1f} s; ideal {ideal:.1f} s (service {service:.0f} s / {args.concurrency} = "
          f"{latency_bound:.1f} s; rpm bound {rpm_bound:.0f} s); ratio {calls_wall / ideal:.2f} (goal ≤ 1.30)")
    calls_end = max(e["end"] for e in log)
    print(f"worker: first request {t0 - started:.1f} s after start (catalog, embedder); batch published "
          f"{published - (calls_end - started):.1f} s after the last answer (locate, embed, one transaction); "
          f"worker exited {job_wall:.1f} s after start (grounding audit, checks, quality after publication)")
    print(f"one call at a time: ≥ {service:.0f} s of calls alone")
    print(f"max requests the provider counted in any 60 s: {counted} (limit {args.rpm or 'none'}: "
          f"{'within' if not args.rpm or counted <= args.rpm else 'OVER'})")
    if status != "completed":
        print(err[-3000:])
    embedded.stop_redis()
    embedded.stop_postgres()
    server.shutdown()


if __name__ == "__main__":
    main()
