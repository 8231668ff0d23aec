"""Local serving setups side by side: the same chunk prompts through each, one setup after another in one
run (docs/local-models.md, "Choosing the server by measurement").

The prompts are the extraction prompts the workers send (``llm.extraction.build_messages``, speaker line
included) for the first ``--chunks`` chunks of a real press conference from ``../shared/data``. Every
setup gets the same prompts at temperature 0 with the same ``max_tokens``; each starts cold on a free port,
answers one warm-up call (not timed), then all prompts (``concurrency`` in flight at once). Setups:

* ``llama-cpp-python`` — the previous server (``python -m llama_cpp.server``), one request at a time,
  ``{"type": "json_object", "schema": ...}`` (it answers 500 to ``json_schema``): the baseline;
* ``llama-server`` variants — upstream llama.cpp's server built from the sources vendored in
  llama-cpp-python's sdist (``mmos models provision``, docs/local-models.md), ``json_schema`` output,
  with ``--parallel`` slots, continuous batching, and optionally n-gram speculative decoding drafted
  from the prompt (``--spec-type ngram-simple``): extraction copies quotes from the passage, so drafts
  taken from the prompt are often right.

Prints per setup: wall seconds, chunks/min, output tok/s and prompt tok/s (tokens from the server's
``usage``, over wall time), the speed-up against the baseline, the share of answers that parse, and the
fragments' agreement with the baseline's: the share of the baseline's quotes that the setup also returned
(rapidfuzz ratio >= 90) and the reverse, and the share of each setup's direct quotes that are verbatim in the
source (``analysis.fragment_checks.check_verbatim``: exact; near is a misquote), so a change of answers can be told
from a change of quality. A matrix of the same agreement between every two setups follows the table.
Writes ``bench/results/llm_throughput.json``.

    .venv/bin/python bench/llm_throughput.py                   # 1.5B, 8 chunks, every setup
    .venv/bin/python bench/llm_throughput.py --model qwen2.5-coder-0.5b-instruct --chunks 4 \
        --setups baseline,server-np4-spec
    .venv/bin/python bench/llm_throughput.py --fragments 3 --setups baseline,server-np4-spec \
        --out bench/results/llm_throughput_3_per_chunk-1993.json   # the same work per chunk
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "press_conferences" / "1993-01-29-press-conference-gays-military.txt"


@dataclass(frozen=True)
class Setup:
    """One way of serving the model: which server, its slots, speculative decoding, requests in flight."""

    name: str
    server: str  # "llama-cpp-python" | "llama-server"
    slots: int = 1
    spec: bool = False
    concurrency: int = 1


SETUPS = {
    s.name: s
    for s in (
        Setup("baseline", "llama-cpp-python"),
        Setup("server-np1", "llama-server"),
        Setup("server-np1-spec", "llama-server", spec=True),
        Setup("server-np4", "llama-server", slots=4, concurrency=4),
        Setup("server-np4-spec", "llama-server", slots=4, spec=True, concurrency=4),
        Setup("server-np2-spec", "llama-server", slots=2, spec=True, concurrency=2),
    )
}


@dataclass
class Answer:
    content: str | None
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    draft_n: int = 0
    draft_accepted: int = 0
    error: str | None = None


@dataclass
class Result:
    setup: Setup
    wall_s: float
    answers: list[Answer] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chunk_prompts(source: Path, n: int) -> list[list[dict[str, str]]]:
    """The extraction messages of the first ``n`` chunks of ``source``, as the workers build them."""
    from mmos_core.llm.extraction import build_messages
    from mmos_core.text.chunking import chunk_text
    from mmos_core.text.speakers import default_person_labels, parse_turns, speakers_of_span

    text = source.read_text(encoding="utf-8")
    turns = parse_turns(text)
    person = "the President"
    labels = default_person_labels(turns.speakers, person) if turns.labelled else []
    out = []
    for chunk in chunk_text(text)[:n]:
        speakers = tuple(s for s in speakers_of_span(turns.turns, chunk.char_start, chunk.char_end).speech if s)
        out.append(build_messages(chunk_text=text[chunk.char_start:chunk.char_end], title=source.stem, person=person,
                                  source_type="press_conference", speakers=speakers if turns.labelled else (),
                                  person_labels=labels))
    return out


def _start(setup: Setup, model_file: Path, alias: str, port: int, args: argparse.Namespace, log: Path) -> subprocess.Popen:
    if setup.server == "llama-cpp-python":
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_file), "--model_alias", alias,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(args.ctx), "--n_threads", str(args.threads),
               "--n_threads_batch", str(args.threads), "--logits_all", "False"]
    else:
        from mmos_core.llm.llama_server import server_command

        cmd = server_command(binary=args.llama_server, model_file=model_file, alias=alias, host="127.0.0.1", port=port,
                             threads=args.threads, ctx_per_slot=args.ctx, slots=setup.slots,
                             spec_type="ngram-simple" if setup.spec else None)
    with open(log, "ab") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError("server not ready")


def fixed_count_schema(n: int) -> dict:
    """The workers' response schema with exactly ``n`` fragments per chunk (minItems = maxItems = n).

    Used by ``--fragments``: every setup then writes the same number of fragments per chunk, so a setup
    that writes more of them (llama-server returns 3-4 where the old server often stopped after one) is
    compared on the same amount of work."""
    import copy

    from mmos_core.llm.extraction import RESPONSE_SCHEMA

    schema = copy.deepcopy(RESPONSE_SCHEMA)
    schema["properties"]["fragments"].update(minItems=n, maxItems=n)
    return schema


def _call(url: str, alias: str, messages: list[dict[str, str]], setup: Setup, max_tokens: int,
          schema: dict | None = None) -> Answer:
    import httpx

    from mmos_core.llm.catalog import get_model
    from mmos_core.llm.extraction import RESPONSE_SCHEMA, response_format

    if setup.server == "llama-cpp-python":  # the old server's own form (it answered 500 to json_schema)
        fmt = {"type": "json_object", "schema": schema or RESPONSE_SCHEMA}
    else:  # exactly what the workers send
        fmt = response_format(get_model(alias))
        if schema is not None:
            fmt["json_schema"] = {**fmt["json_schema"], "schema": schema}
    body = {"model": alias, "messages": messages, "temperature": 0, "max_tokens": max_tokens, "response_format": fmt}
    t0 = time.perf_counter()
    try:
        r = httpx.post(f"{url}/chat/completions", json=body, timeout=900)
        r.raise_for_status()
        data = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        return Answer(None, 0, 0, time.perf_counter() - t0, error=str(exc)[:200])
    usage = data.get("usage") or {}
    timings = data.get("timings") or {}
    return Answer(data["choices"][0]["message"].get("content"), int(usage.get("prompt_tokens", 0)),
                  int(usage.get("completion_tokens", 0)), time.perf_counter() - t0,
                  int(timings.get("draft_n", 0) or 0), int(timings.get("draft_n_accepted", 0) or 0))


def run_setup(setup: Setup, prompts: list[list[dict[str, str]]], model_file: Path, alias: str,
              args: argparse.Namespace, log_dir: Path) -> Result:
    """Start the setup's server, warm it with one call, send every prompt (``concurrency`` at once), stop it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    proc = _start(setup, model_file, alias, port, args, log_dir / f"{setup.name}.log")
    try:
        _wait_ready(url, proc)
        _call(url, alias, prompts[-1], setup, 16)  # load + warm caches; not timed
        t0 = time.perf_counter()
        with ThreadPoolExecutor(setup.concurrency) as pool:
            schema = fixed_count_schema(args.fragments) if args.fragments else None
            answers = list(pool.map(lambda m: _call(url, alias, m, setup, args.max_tokens, schema), prompts))
        return Result(setup, time.perf_counter() - t0, answers)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def verbatim_share(answers: list[Answer], source_text: str) -> tuple[float, int]:
    """(share of direct quotes found word for word in the source (`exact`; `near` is a misquote); number of them)."""
    from mmos_core.analysis.fragment_checks import check_verbatim
    from mmos_core.llm.extraction import parse_answer

    quotes = [f.content for a in answers for f in parse_answer(a.content)[1] if f.fragment_type == "direct_quote"]
    ok = sum(check_verbatim(q, source_text).status == "exact" for q in quotes)
    return (ok / len(quotes) if quotes else 0.0, len(quotes))


def _quotes(answer: Answer) -> list[str] | None:
    from mmos_core.llm.extraction import parse_answer

    status, fragments, _, _ = parse_answer(answer.content)
    if status.value != "ok":
        return None
    return [f.content for f in fragments]


def agreement(base: list[Answer], other: list[Answer]) -> tuple[float, float]:
    """(share of the baseline's quotes the setup also returned, share of the setup's the baseline returned),
    rapidfuzz ratio >= 90 after lower-casing; over all chunks whose two answers parse."""
    from rapidfuzz import fuzz

    def covered(a: list[str], b: list[str]) -> tuple[int, int]:
        return sum(any(fuzz.ratio(x.lower(), y.lower()) >= 90 for y in b) for x in a), len(a)

    hits = [0, 0, 0, 0]
    for a, b in zip(base, other, strict=True):
        qa, qb = _quotes(a), _quotes(b)
        if qa is None or qb is None:
            continue
        h, n = covered(qa, qb)
        h2, n2 = covered(qb, qa)
        hits = [hits[0] + h, hits[1] + n, hits[2] + h2, hits[3] + n2]
    return (hits[0] / hits[1] if hits[1] else 0.0, hits[2] / hits[3] if hits[3] else 0.0)


def main() -> None:
    from mmos_core.core.config import get_settings
    from mmos_core.llm.local_models import LOCAL_MODELS, model_path

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct", choices=sorted(LOCAL_MODELS))
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--chunks", type=int, default=8)
    ap.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated, from {', '.join(SETUPS)}")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--ctx", type=int, default=4096, help="context tokens per slot")
    ap.add_argument("--max-tokens", type=int, default=get_settings().llm_max_output_tokens)
    ap.add_argument("--llama-server", default=None, help="llama-server binary (default: the provisioned one)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "llm_throughput.json")
    ap.add_argument("--fragments", type=int, default=None,
                    help="ask every setup for exactly this many fragments per chunk (same work per chunk); "
                         "default: the workers' schema (1 to 6)")
    ap.add_argument("--analyse", action="store_true", help="print the table again from <out>.answers.json (no server run)")
    args = ap.parse_args()
    if not args.source.exists():
        sys.exit(f"{args.source} not found: this bench reads ../shared/data")
    if args.llama_server is None:
        from mmos_core.llm.llama_server import binary_path

        args.llama_server = str(binary_path(get_settings()))
    model_file = model_path(LOCAL_MODELS[args.model], get_settings().cache_dir)
    prompts = chunk_prompts(args.source, args.chunks)
    setups = [SETUPS[name.strip()] for name in args.setups.split(",") if name.strip()]
    log_dir = Path(tempfile.mkdtemp(prefix="mmos-llm-bench-"))
    print(f"{args.model} · {len(prompts)} chunks of {args.source.name} · {args.threads} threads · "
          f"{os.cpu_count()} CPUs · max_tokens {args.max_tokens} · logs {log_dir}", flush=True)
    answers_file = args.out.with_suffix(".answers.json")
    results: list[Result] = []
    if args.analyse:
        for item in json.loads(answers_file.read_text()):
            results.append(Result(SETUPS[item["setup"]], item["wall_s"], [Answer(**a) for a in item["answers"]]))
    for setup in [] if args.analyse else setups:
        res = run_setup(setup, prompts, model_file, args.model, args, log_dir)
        results.append(res)
        print(f"  {setup.name}: {res.wall_s:.1f} s", flush=True)
        answers_file.parent.mkdir(parents=True, exist_ok=True)  # kept as they come: the analysis can be rerun
        answers_file.write_text(json.dumps([{"setup": r.setup.name, "wall_s": r.wall_s,
                                             "answers": [vars(a) for a in r.answers]} for r in results]))

    base = results[0]
    rows = []
    print("\n| setup | slots | spec | in flight | wall s | chunks/min | output tok/s | prompt tok/s | speed-up | parsed | "
          "fragments | draft accepted | agreement (base→setup / setup→base) | verbatim quotes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    source_text = args.source.read_text(encoding="utf-8")
    for res in results:
        a = res.answers
        out_tok, in_tok = sum(x.completion_tokens for x in a), sum(x.prompt_tokens for x in a)
        parsed = sum(_quotes(x) is not None for x in a)
        fragments = sum(len(_quotes(x) or []) for x in a)
        drafts, accepted = sum(x.draft_n for x in a), sum(x.draft_accepted for x in a)
        agree = agreement(base.answers, a)
        verbatim, n_quotes = verbatim_share(a, source_text)
        row = {
            "setup": res.setup.name, "server": res.setup.server, "slots": res.setup.slots, "spec": res.setup.spec,
            "concurrency": res.setup.concurrency, "wall_s": round(res.wall_s, 1),
            "chunks_per_min": round(60 * len(a) / res.wall_s, 2), "output_tok_s": round(out_tok / res.wall_s, 1),
            "prompt_tok_s": round(in_tok / res.wall_s, 1), "speedup": round(base.wall_s / res.wall_s, 2),
            "parsed": f"{parsed}/{len(a)}", "fragments": fragments, "errors": [x.error for x in a if x.error],
            "draft_acceptance": round(accepted / drafts, 2) if drafts else None,
            "agreement_base_in_setup": round(agree[0], 2), "agreement_setup_in_base": round(agree[1], 2),
            "output_tokens": out_tok, "prompt_tokens": in_tok, "direct_quotes": n_quotes,
            "verbatim_share": round(verbatim, 2),
        }
        rows.append(row)
        print(f"| {row['setup']} | {row['slots']} | {'ngram-simple' if row['spec'] else '—'} | {row['concurrency']} | "
              f"{row['wall_s']} | {row['chunks_per_min']} | {row['output_tok_s']} | {row['prompt_tok_s']} | "
              f"{row['speedup']}× | {row['parsed']} | {fragments} | {row['draft_acceptance'] if drafts else '—'} | "
              f"{row['agreement_base_in_setup']:.2f} / {row['agreement_setup_in_base']:.2f} | "
              f"{row['verbatim_share']:.2f} of {n_quotes} |")
    names = [r.setup.name for r in results]
    matrix = {a.setup.name: {b.setup.name: round(agreement(a.answers, b.answers)[0], 2) for b in results} for a in results}
    print("\nagreement: share of the row setup's quotes also returned by the column setup")
    print("| | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for n in names:
        print(f"| {n} | " + " | ".join(f"{matrix[n][m]:.2f}" for m in names) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "model": args.model, "source": args.source.name, "chunks": len(prompts), "threads": args.threads,
        "ctx_per_slot": args.ctx, "max_tokens": args.max_tokens, "cpus": os.cpu_count(), "machine": platform.platform(),
        "processor": platform.processor(), "llama_server": args.llama_server, "fragments_per_chunk": args.fragments,
        "rows": rows, "agreement": matrix,
    }, indent=2))
    shutil.rmtree(log_dir, ignore_errors=True) if all(not r["errors"] for r in rows) else None
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
