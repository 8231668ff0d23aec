"""The six press conferences through both local models: who the "direct quotes" really are from, whether
they are verbatim, whether the judge finds the insights supported, and how the q-v2 score separates the
models where q-v1 did not (docs/quality.md, "Measured: speakers, checks and the q-v2 score").

Runs the real pipeline (embedded PostgreSQL + Redis in its own data dir, the local llama.cpp server, an
in-process RQ worker, the judge job with the local 1.5B as judge) on the first N words of each file,
then prints per model:
  * the share of direct quotes by the president, by other speakers, in editorial/stage text, mixed;
  * verbatim exact / near / not_found;
  * the judge's support rate (yes 1, partly .5, no 0) over the judged sample, and its time per verdict;
  * the score under q-v1 (as stored before) and q-v2, with 95 % intervals;
and the attribution check's precision and recall for "the president said it" against the hand-written
speaker table of bench/attribution.py (independent of the parser under test).

    .venv/bin/python bench/speaker_quality.py --words 600 --judge-sample 6
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from bisect import bisect_right
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

SMALL, LARGE = "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"


def _first_words_by_line(text: str, n: int) -> str:
    """The first whole lines holding at least `n` words: two of the files end their paragraphs with a line
    break and no blank line, so cutting by paragraph (`first_words`) would keep the whole file."""
    out, count = [], 0
    for line in text.splitlines(keepends=True):
        out.append(line)
        count += len(line.split())
        if count >= n:
            break
    return "".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--words", type=int, default=600, help="first N words of each press conference")
    ap.add_argument("--judge-sample", type=int, default=6, help="fragments per batch the judge checks")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "press_conferences")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "speaker_quality.json")
    args = ap.parse_args()

    data_dir = tempfile.mkdtemp(prefix="mmos-bench-speakers-")
    os.environ.update({
        "MMOS_DATA_DIR": data_dir, "MMOS_JUDGE_ENABLED": "true", "MMOS_JUDGE_MODEL": LARGE,
        "MMOS_JUDGE_MAX_FRAGMENTS": str(args.judge_sample),
    })
    for k in ("DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        os.environ.pop(k, None)

    from attribution import GROUND_TRUTH, gt_turns  # the hand-written speaker table
    from rq import SimpleWorker
    from sqlalchemy import select

    from mmos_core.analysis.fragment_checks import check_verbatim
    from mmos_core.analysis.quality_score import WEIGHTS_V1, QualityCounts, score
    from mmos_core.core import embedded
    from mmos_core.core.db import session_scope
    from mmos_core.core.domain import RQ_QUEUES
    from mmos_core.core.migrate import upgrade
    from mmos_core.core.redis import get_redis
    from mmos_core.jobs.enqueue import get_queue
    from mmos_core.llm.server import is_healthy, start_server, stop_server
    from mmos_core.models import Fragment, JudgeVerdict
    from mmos_core.services.batches import enqueue_batches, queue_extraction
    from mmos_core.services.checks import checks_for
    from mmos_core.services.quality import batch_quality
    from mmos_core.services.sources import create_source
    from mmos_core.text.intake import parse_pasted

    upgrade("head")
    started = False
    if not is_healthy():
        start_server(wait=True, timeout_s=300)
        started = True
    t0 = time.time()
    per_model: dict[str, dict] = {m: {"attr": Counter(), "verbatim": Counter(), "support": [], "judge_ms": [],
                                      "v1": QualityCounts(), "v2": QualityCounts(), "wall_s": 0.0} for m in (SMALL, LARGE)}
    tp = fp = fn = 0
    files = sorted(p for p in args.data.glob("*.txt"))
    for path in files:
        raw = path.read_text(encoding="utf-8")
        header, _, body = raw.partition("\n")
        person = header.removeprefix("President:").strip()
        parsed = parse_pasted(_first_words_by_line(body.lstrip("\n"), args.words), max_bytes=5_000_000)
        with session_scope() as s:
            src = create_source(session=s, parsed=parsed, title=path.stem, person=person, source_type="interview",
                                quality="primary", extraction_priority="HIGH")
            sid, text = src.id, src.content
            jobs = queue_extraction(session=s, source_id=sid, model_names=[SMALL, LARGE])
        enqueue_batches(jobs)
        t = time.time()
        SimpleWorker([get_queue(q) for q in RQ_QUEUES], connection=get_redis()).work(burst=True)
        print(f"{path.name}: {parsed.word_count} words, both models and the judge in {time.time() - t:.0f} s", flush=True)
        head = "President: header\n"  # gt_turns skips a file's first line (the repository's header), dropped here
        turns = gt_turns(head + text, GROUND_TRUTH[path.name])
        starts = [g.label_line - len(head) for g in turns]
        for job in jobs:
            with session_scope() as s:
                q = batch_quality(session=s, batch_id=job.batch_id)
                frags = s.scalars(select(Fragment).where(Fragment.batch_id == job.batch_id)).all()
                checks = checks_for(session=s, fragment_ids=[f.id for f in frags])
                verdicts = s.scalars(select(JudgeVerdict).where(JudgeVerdict.fragment_id.in_([f.id for f in frags]))).all()
            m = per_model[q.model_name]
            m["v2"] = m["v2"] + q.score.counts
            c = q.score.counts
            located = sum(1 for f in frags if f.fragment_type == "direct_quote" and f.location_score is not None)
            misgrounded = located - sum(1 for f in frags if f.fragment_type == "direct_quote"
                                        and (ck := checks.get(f.id)) and ck.verbatim == "exact" and ck.attribution == "person")
            m["v1"] = m["v1"] + QualityCounts(checked=c.checked, grounded=c.grounded + max(0, misgrounded),
                                              batch_fragments=c.batch_fragments, batch_matched=c.batch_matched,
                                              reference_fragments=c.reference_fragments, reference_matched=c.reference_matched,
                                              human_n=c.human_n, human_k=c.human_k)
            for v in verdicts:
                if v.status == "ok":
                    m["support"].append(float(v.support_score))
                    m["judge_ms"].append(v.latency_ms or 0)
            for f in frags:
                ck = checks.get(f.id)
                if f.fragment_type != "direct_quote" or ck is None:
                    continue
                m["verbatim"][ck.verbatim] += 1
                kind = ck.attribution.split(":", 1)[0]
                m["attr"][kind] += 1
                span = check_verbatim(f.content, text)
                if span.char_start is None:
                    continue
                i = bisect_right(starts, span.char_start) - 1
                truth_person = i >= 0 and turns[i].speaker == "PERSON"
                said_person = kind == "person"
                tp += truth_person and said_person
                fp += said_person and not truth_person
                fn += truth_person and not said_person
    report = {"words_per_file": args.words, "files": len(files), "judge_sample": args.judge_sample,
              "wall_s": round(time.time() - t0), "models": {}}
    print(f"\n{'model':30} {'quotes':>6} {'person':>7} {'other':>6} {'editor.':>7} {'mixed':>6} {'exact':>6} {'near':>5} "
          f"{'n.found':>7} {'support':>8} {'judged':>6} {'s/verdict':>9} {'q-v1 [95%]':>20} {'q-v2 [95%]':>20}")
    for name, m in per_model.items():
        n = sum(m["attr"].values()) or 1
        v1, v2 = score(m["v1"], WEIGHTS_V1), score(m["v2"])
        sup = sum(m["support"]) / len(m["support"]) if m["support"] else None
        spv = (sum(m["judge_ms"]) / len(m["judge_ms"]) / 1000) if m["judge_ms"] else None
        row = {"direct_quotes": sum(m["attr"].values()), "attribution": dict(m["attr"]), "verbatim": dict(m["verbatim"]),
               "support_rate": sup, "judged": len(m["support"]), "seconds_per_verdict": spv,
               "q_v1": [v1.score, v1.low, v1.high], "q_v2": [v2.score, v2.low, v2.high],
               "grounding_v2": v2.grounding, "support_v2": v2.support}
        report["models"][name] = row
        print(f"{name:30} {row['direct_quotes']:>6} {m['attr']['person'] / n:>7.0%} {m['attr']['other'] / n:>6.0%} "
              f"{m['attr']['editorial'] / n:>7.0%} {m['attr']['mixed'] / n:>6.0%} {m['verbatim']['exact']:>6} "
              f"{m['verbatim']['near']:>5} {m['verbatim']['not_found']:>7} {sup if sup is not None else float('nan'):>8.2f} "
              f"{len(m['support']):>6} {spv or float('nan'):>9.1f} "
              f"{v1.score:>6} [{v1.low}, {v1.high}]".rjust(20) + f" {v2.score:>6} [{v2.low}, {v2.high}]")
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    report["attribution_vs_labels"] = {"precision": precision, "recall": recall, "tp": tp, "fp": fp, "fn": fn}
    print(f"\nattribution check vs the hand-written speaker table: precision {precision}, recall {recall} "
          f"(tp {tp}, fp {fp}, fn {fn})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"written to {args.out}; total {report['wall_s']} s")
    if started:
        stop_server()
    embedded.stop_redis()
    embedded.stop_postgres()


if __name__ == "__main__":
    main()
