"""`mmos` command line: every step of the workbench, scriptable.

    mmos up                      provision, start services + LLM server + worker, serve the UI
    mmos status                  services, LLM server, queues, workers
    mmos services start|stop     embedded PostgreSQL + Redis
    mmos migrate                 alembic upgrade head
    mmos models provision        GGUF weights + ONNX embedder into the cache dir
    mmos llm start|stop          the local llama.cpp server
    mmos worker                  an RQ worker on the high, default, low queues
    mmos ingest FILE ...         add a source
    mmos extract SOURCE -m M ... queue a source for models (optionally wait)
    mmos compare SOURCE          per-model comparison of a source's completed batches
    mmos users create|list|set-role|deactivate|reset-password   accounts and roles
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from mmos_core.cli import catalog as catalog_cli
from mmos_core.cli import conversations as conversations_cli
from mmos_core.cli import quality as quality_cli
from mmos_core.core.config import get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="MMOS workbench command line.")
services_app = typer.Typer(no_args_is_help=True, help="Embedded PostgreSQL + Redis.")
models_app = typer.Typer(no_args_is_help=True, help="Local model files (GGUF, ONNX).")
llm_app = typer.Typer(no_args_is_help=True, help="The local llama.cpp server.")
app.add_typer(services_app, name="services")
app.add_typer(models_app, name="models")
app.add_typer(llm_app, name="llm")
app.add_typer(conversations_cli.app, name="conversations")
app.add_typer(catalog_cli.app, name="catalog")
app.add_typer(quality_cli.app, name="quality")

REPO_ROOT = Path(__file__).resolve().parents[2]


def _fail(message: str, code: int = 1) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


# --- services -----------------------------------------------------------------------------------


@services_app.command("start")
def services_start() -> None:
    """Start the embedded PostgreSQL and Redis (no-op for servers given by DATABASE_URL/REDIS_URL)."""
    from mmos_core.core import embedded

    s = get_settings()
    db = embedded.database_url(s)
    rd = embedded.redis_url(s)
    typer.echo(f"postgres: {'external' if s.database_url else 'embedded'} {_redact(db)}")
    typer.echo(f"redis:    {'external' if s.redis_url else 'embedded'} {_redact(rd)}")


@services_app.command("stop")
def services_stop() -> None:
    """Stop the embedded PostgreSQL and Redis of this data directory."""
    from mmos_core.core import embedded

    typer.echo(f"redis stopped: {embedded.stop_redis()}")
    typer.echo(f"postgres stopped: {embedded.stop_postgres()}")


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply Alembic migrations to the configured (or embedded) database."""
    from mmos_core.core.migrate import upgrade

    upgrade(revision)
    typer.echo(f"database at {revision}")


# --- models / llm ---------------------------------------------------------------------------------


@models_app.command("provision")
def models_provision(
    skip_llm: Annotated[bool, typer.Option(help="Do not fetch the GGUF weights.")] = False,
    skip_embeddings: Annotated[bool, typer.Option(help="Do not build the ONNX embedder.")] = False,
) -> None:
    """Fetch + verify the two Qwen GGUF files and build + check the ONNX embedder (idempotent)."""
    if not skip_llm:
        from mmos_core.llm.local_models import ensure_all_models

        for path in ensure_all_models(log=typer.echo):
            typer.echo(f"ok  {path}")
    if not skip_embeddings:
        from mmos_core.embeddings.provision import provision_embedder
        from mmos_core.embeddings.quantize import QuantizationError, build_int8

        typer.echo(f"ok  {provision_embedder(log=typer.echo)}")
        try:
            typer.echo(f"ok  {build_int8(log=typer.echo)}")
        except QuantizationError as exc:  # the fp32 model is enough to run; int8 is an option
            typer.secho(f"warning: int8 embedder not built: {exc}", fg=typer.colors.YELLOW, err=True)


@llm_app.command("start")
def llm_start() -> None:
    """Start the llama.cpp server with both local models (waits until it answers)."""
    from mmos_core.llm.server import server_url, start_server

    pid = start_server(wait=True)
    typer.echo(f"llama.cpp server running (pid {pid}) at {server_url()}")


@llm_app.command("serve")
def llm_serve() -> None:
    """Run the llama.cpp server in the foreground (containers); `llm start` daemonises it instead."""
    import json

    from mmos_core.llm.server import build_server_config, config_path

    cfg = config_path()
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(json.dumps(build_server_config(), indent=2))
    os.execv(sys.executable, [sys.executable, "-m", "llama_cpp.server", "--config_file", str(cfg)])


@llm_app.command("stop")
def llm_stop() -> None:
    """Stop the llama.cpp server."""
    from mmos_core.llm.server import stop_server

    typer.echo(f"stopped: {stop_server()}")


# --- worker -------------------------------------------------------------------------------------


@app.command()
def worker(
    burst: Annotated[bool, typer.Option(help="Exit when the queues are empty.")] = False,
    name: Annotated[str | None, typer.Option(help="Worker name (default: host.pid).")] = None,
) -> None:
    """Run an RQ worker on the high, default and low queues (with the retry scheduler)."""
    from rq import Worker

    from mmos_core.core import db
    from mmos_core.core.domain import RQ_QUEUES
    from mmos_core.core.redis import get_redis
    from mmos_core.jobs.schedule import RECONCILE_EVERY_S, tick
    from mmos_core.services.catalog.sync import ensure_catalog
    from workers.maintenance import run_maintenance

    with db.session_scope() as session:
        synced = ensure_catalog(session=session)  # fills ai_models on first start only
    if synced:
        typer.echo(f"model catalog: {synced.summary()}")
    # A worker killed outright leaves its job "started": resume such batches now, not in a minute.
    reenqueued = run_maintenance(stale_after_s=0)["reenqueued"]
    if reenqueued:
        typer.echo(f"re-enqueued {len(reenqueued)} orphaned job(s): {', '.join(reenqueued)}")
    if not burst:
        def loop() -> None:
            while True:
                time.sleep(RECONCILE_EVERY_S)
                try:
                    tick()  # one worker of the deployment enqueues the period's maintenance job
                except Exception as exc:  # a Redis blip must not kill the worker
                    typer.echo(f"maintenance not scheduled: {exc}", err=True)

        threading.Thread(target=loop, name="mmos-maintenance", daemon=True).start()
    w = Worker(list(RQ_QUEUES), connection=get_redis(), name=name)
    w.work(with_scheduler=True, burst=burst)


# --- intake / extraction / comparison -------------------------------------------------------------


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="A .txt, .md, .srt or .vtt file; '-' reads pasted text from stdin.")],
    title: Annotated[str, typer.Option(help="Title of the source.")],
    source_type: Annotated[str, typer.Option("--type", help="interview, podcast, speech, letter, book, article, social_media")] = "book",
    quality: Annotated[str, typer.Option(help="primary, secondary or tertiary")] = "primary",
    priority: Annotated[str, typer.Option(help="CRITICAL, VERY_HIGH, HIGH, MEDIUM or LOW")] = "HIGH",
    person: Annotated[str | None, typer.Option(help="Who the source is about.")] = None,
    url: Annotated[str | None, typer.Option()] = None,
    date: Annotated[str | None, typer.Option(help="Source date, YYYY-MM-DD.")] = None,
    max_words: Annotated[int | None, typer.Option(help="Keep only the first N words (whole paragraphs).")] = None,
) -> None:
    """Add a source. Refuses empty, binary, wrongly encoded and over-limit input with the reason."""
    from mmos_core.core import db
    from mmos_core.services.sources import DuplicateSourceError, create_source
    from mmos_core.text.intake import IntakeError, first_words, parse_pasted, parse_upload

    s = get_settings()
    try:
        if str(path) == "-":
            parsed = parse_pasted(sys.stdin.read(), max_bytes=s.max_source_bytes)
            filename = None
        else:
            if not path.is_file():
                _fail(f"No such file: {path}")
            size = path.stat().st_size
            if size > s.max_source_bytes:
                # Refused before reading a huge file into memory.
                _fail(
                    f"Refused: the file is {size / 1e6:.1f} MB, over the limit of {s.max_source_bytes / 1e6:.1f} MB "
                    "(MMOS_MAX_SOURCE_BYTES)."
                )
            parsed = parse_upload(path.name, path.read_bytes(), max_bytes=s.max_source_bytes)
            filename = path.name
        if max_words:
            parsed = first_words(parsed, max_words)
        with db.session_scope() as session:
            source = create_source(
                session=session,
                parsed=parsed,
                title=title,
                source_type=source_type,
                quality=quality,
                extraction_priority=priority,
                person=person,
                url=url,
                source_date=dt.date.fromisoformat(date) if date else None,
                original_filename=filename,
                created_by=os.environ.get("USER"),
            )
            chunks = len(source.chunks)
            typer.echo(
                f"source {source.id} {source.source_code}: {source.word_count:,} words, {chunks} chunks"
            )
    except IntakeError as exc:
        _fail(f"Refused: {exc}")
    except (DuplicateSourceError, ValueError) as exc:
        _fail(str(exc))


@app.command()
def extract(
    source_id: int,
    model: Annotated[list[str], typer.Option("--model", "-m", help="Model name; repeat for several.")],
    wait: Annotated[bool, typer.Option(help="Print progress until every batch finishes.")] = False,
    estimate: Annotated[bool, typer.Option("--estimate", help="Print the cost estimate and queue nothing.")] = False,
) -> None:
    """Queue a source for one or more models (one batch and one RQ job each)."""
    from mmos_core.core import db
    from mmos_core.llm.catalog import UnknownModelError
    from mmos_core.services.batches import enqueue_batches, queue_extraction

    if estimate:
        from mmos_core.services.estimate import estimate_for_source

        try:
            with db.session_scope() as session:
                rows = estimate_for_source(session=session, source_id=source_id, model_names=model)
        except (LookupError, UnknownModelError) as exc:
            _fail(str(exc))
        for name, e in rows:
            typer.echo(
                f"{name}: {e.input_tokens} input tokens, <= {e.max_output_tokens_total} output tokens, "
                f"${e.expected_usd_low} to ${e.worst_case_usd}"
            )
        return

    try:
        with db.session_scope() as session:
            jobs = queue_extraction(
                session=session, source_id=source_id, model_names=model, processor_name=os.environ.get("USER")
            )
            enqueue_batches(jobs, session=session)
    except (LookupError, UnknownModelError, ValueError) as exc:
        _fail(str(exc))
    for j in jobs:
        typer.echo(f"batch {j.batch_id} queued on '{j.rq_queue}' as {j.rq_job_id}")
    if wait:
        _wait_for([j.batch_id for j in jobs])


def _wait_for(batch_ids: list[int]) -> None:
    from mmos_core.core import db
    from mmos_core.services.batches import batch_progress

    last = ""
    while True:
        with db.session_scope() as session:
            progress = batch_progress(session=session, batch_ids=batch_ids)
        line = " | ".join(
            f"{p.model_name}: {p.status} {p.chunks_done}/{p.chunks_total} ${p.cost_usd:.4f}" for p in progress
        )
        if line != last:
            typer.echo(f"{dt.datetime.now():%H:%M:%S} {line}")
            last = line
        if all(p.status in ("completed", "failed") for p in progress):
            return
        time.sleep(3)


@app.command()
def compare(
    source_id: int,
    batches: Annotated[str | None, typer.Option(help="Comma-separated batch ids (default: all completed).")] = None,
    show_pairs: Annotated[int, typer.Option(help="Also print this many aligned fragment pairs of the first two batches.")] = 0,
) -> None:
    """Print the per-model comparison of a source's batches."""
    from mmos_core.core import db
    from mmos_core.services.comparison import align_batches, batch_stats, completed_batches

    with db.session_scope() as session:
        ids = [int(b) for b in batches.split(",")] if batches else [b.id for b in completed_batches(session=session, source_id=source_id)]
        if not ids:
            _fail(f"Source {source_id} has no completed batches yet.")
        stats = batch_stats(session=session, batch_ids=ids)
        typer.echo(format_comparison(stats))
        if show_pairs and len(ids) >= 2:
            pairs = align_batches(session=session, batch_a=ids[0], batch_b=ids[1])
            matched = sum(1 for p in pairs if p.left and p.right)
            typer.echo(f"\naligned: {matched} matched pairs, "
                       f"{sum(1 for p in pairs if p.left and not p.right)} only in batch {ids[0]}, "
                       f"{sum(1 for p in pairs if p.right and not p.left)} only in batch {ids[1]}")
            for p in pairs[:show_pairs]:
                sim = f"{p.similarity:.2f}" if p.similarity is not None else "  - "
                a = (p.left.content[:70] if p.left else "(none)").replace("\n", " ")
                b = (p.right.content[:70] if p.right else "(none)").replace("\n", " ")
                typer.echo(f"{sim}  A: {a}\n      B: {b}")


def format_comparison(stats) -> str:
    """Fixed-width table of `BatchStats` rows (what `mmos compare` prints)."""
    header = (
        f"{'batch':>5} {'model':<30} {'status':<10} {'frags':>5} {'in_tok':>8} {'out_tok':>8} "
        f"{'cost_usd':>10} {'usd/frag':>10} {'s/frag':>7} {'avg_rel':>7} {'avg_conf':>8} {'quotes':>6} {'located':>7} {'malformed':>9}"
    )
    lines = [header, "-" * len(header)]
    for s in stats:
        lines.append(
            f"{s.batch_id:>5} {s.model_name[:30]:<30} {s.status:<10} {s.fragments:>5} {s.input_tokens:>8} "
            f"{s.output_tokens:>8} {s.cost_usd:>10.6f} "
            f"{(f'{s.cost_per_fragment:.6f}' if s.cost_per_fragment is not None else '-'):>10} "
            f"{(f'{s.seconds_per_fragment:.2f}' if s.seconds_per_fragment is not None else '-'):>7} "
            f"{(f'{s.avg_relevance:.2f}' if s.avg_relevance is not None else '-'):>7} "
            f"{(f'{s.avg_confidence:.3f}' if s.avg_confidence is not None else '-'):>8} "
            f"{(f'{s.direct_quote_share:.0%}' if s.direct_quote_share is not None else '-'):>6} "
            f"{(f'{s.located_share:.0%}' if s.located_share is not None else '-'):>7} "
            f"{s.malformed_responses:>4}/{s.chunks_total:<4}"
        )
    return "\n".join(lines)


# --- health / metrics -----------------------------------------------------------------------------


@app.command()
def health() -> None:
    """Check PostgreSQL, Redis, the embedder (through the model registry), the LLM server and workers.

    Exit code 1 when PostgreSQL, Redis or the embedder is unavailable (the LLM server and workers are
    reported but optional: cloud models need no local server).
    """
    from sqlalchemy import text

    from mmos_core.core import db

    failures = 0

    def line(ok: bool, name: str, detail: str, required: bool = True) -> None:
        nonlocal failures
        failures += int(required and not ok)
        mark = typer.style("ok  ", fg=typer.colors.GREEN) if ok else typer.style("FAIL" if required else "warn", fg=typer.colors.RED if required else typer.colors.YELLOW)
        typer.echo(f"{mark} {name:<10} {detail}")

    try:
        with db.session_scope() as session:
            version = session.execute(text("SELECT current_setting('server_version')")).scalar()
            revision = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
        line(True, "postgres", f"{version}, schema {revision}")
    except Exception as exc:
        line(False, "postgres", str(exc).splitlines()[0])
    try:
        from mmos_core.core.redis import get_redis

        info = get_redis().info("server")
        line(True, "redis", f"{info.get('redis_version')}")
    except Exception as exc:
        line(False, "redis", str(exc).splitlines()[0])
    try:
        from mmos_core.services.model_registry import registry_embedder

        embedder = registry_embedder()
        line(True, "embedder", f"{embedder.model_dir.name}" if hasattr(embedder, "model_dir") else "ready")
    except Exception as exc:
        line(False, "embedder", str(exc).splitlines()[0])
    try:
        from mmos_core.llm.server import is_healthy, server_url

        line(is_healthy(timeout_s=2), "llm", server_url(), required=False)
    except Exception as exc:
        line(False, "llm", str(exc).splitlines()[0], required=False)
    try:
        from rq import Worker

        from mmos_core.core.redis import get_redis

        n = len(Worker.all(connection=get_redis()))
        line(n > 0, "workers", f"{n} running", required=False)
    except Exception as exc:
        line(False, "workers", str(exc).splitlines()[0], required=False)
    raise typer.Exit(1 if failures else 0)


@app.command()
def metrics(hours: Annotated[int, typer.Option(help="How many hours of the hourly rollup to print.")] = 24) -> None:
    """Inference metrics: the hourly rollup (asi_performance_summary) and the confidence lake."""
    from mmos_core.core import db
    from mmos_core.services.model_registry import performance_summary, refresh_performance_summary
    from mmos_core.storage.lake import get_lake

    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)
    with db.session_scope() as session:
        refresh_performance_summary(session=session)
        rows = performance_summary(session=session, since=since)
    typer.echo(f"{'hour (UTC)':<17} {'model':<28} {'n':>6} {'p50_ms':>8} {'p95_ms':>8} {'conf':>6} {'halluc':>7} {'lake':>5}")
    for r in rows:
        typer.echo(
            f"{r['hour']:%Y-%m-%d %H:%M} {str(r.get('model_name') or '-')[:28]:<28} {r['total_inferences']:>6} "
            f"{(r['p50_processing_time_ms'] or 0):>8.1f} {(r['p95_processing_time_ms'] or 0):>8.1f} "
            f"{(r['avg_confidence'] or 0):>6.3f} {(r['hallucination_rate'] or 0):>7.1%} {r['lake_worthy_count']:>5}"
        )
    if not rows:
        typer.echo("(no inferences in that window)")
    stats = get_lake().stats()
    typer.echo(f"lake: {stats.entries} entries, {stats.segments} segments, {stats.bytes:,} bytes, {stats.torn_records} torn records skipped")


# --- backup / restore ---------------------------------------------------------------------------


@app.command("backup")
def backup_cmd(dest: Annotated[Path, typer.Argument(help="Folder to write the backup under.")]) -> None:
    """Back up PostgreSQL (pg_dump), Redis (every key with its TTL) and the confidence lake."""
    from mmos_core.storage.backup import BackupError, backup

    try:
        out = backup(dest)
    except BackupError as exc:
        _fail(str(exc))
    typer.echo(f"backup written to {out}")


@app.command("restore")
def restore_cmd(
    src: Annotated[Path, typer.Argument(help="A backup folder (mmos-backup-...).")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="A fresh data dir to restore into.")],
) -> None:
    """Restore a backup into a fresh data dir (starts embedded PostgreSQL + Redis there) and verify counts."""
    from mmos_core.storage.backup import BackupError, RestoreError, restore

    try:
        result = restore(src, data_dir=data_dir)
    except (RestoreError, BackupError) as exc:
        _fail(str(exc))
    typer.echo(
        f"restored {sum(result.row_counts.values())} rows in {len(result.row_counts)} tables, "
        f"{result.redis_keys} Redis keys, {result.lake_entries} lake entries into {data_dir}; "
        f"use it with MMOS_DATA_DIR={data_dir}"
    )


# --- status / up --------------------------------------------------------------------------------


@app.command()
def status() -> None:
    """Services, LLM server, queue lengths and workers."""
    from mmos_core.core import embedded

    s = get_settings()
    typer.echo(f"data dir:  {s.data_dir.resolve()}")
    typer.echo(f"postgres:  {'external ' + _redact(s.database_url) if s.database_url else ('running' if embedded.postgres_running(s) else 'stopped')}")
    typer.echo(f"redis:     {'external ' + _redact(s.redis_url) if s.redis_url else ('running' if embedded.redis_running(s) else 'stopped')}")
    try:
        from mmos_core.llm.server import server_status

        st = server_status()
        typer.echo(f"llm:       {'running' if st.get('running') else 'stopped'} {st.get('url', '')} {st.get('models', '')}")
    except Exception as exc:  # the server module reports missing llama_cpp etc.
        typer.echo(f"llm:       unavailable ({exc})")
    if s.redis_url or embedded.redis_running(s):
        from rq import Worker

        from mmos_core.core.domain import RQ_QUEUES
        from mmos_core.core.redis import get_redis
        from mmos_core.jobs.enqueue import get_queue

        for q in RQ_QUEUES:
            queue = get_queue(q)
            typer.echo(f"queue {q:<8} waiting {queue.count:>3}  started {queue.started_job_registry.count:>3}  failed {queue.failed_job_registry.count:>3}")
        for w in Worker.all(connection=get_redis()):
            job = w.get_current_job_id()
            typer.echo(f"worker {w.name}: {w.get_state()} {('job ' + job) if job else ''} heartbeat {w.last_heartbeat:%H:%M:%S}")


@app.command()
def up(
    workers: Annotated[int, typer.Option(help="Number of RQ workers (local generation is CPU-bound: 1 per 2 cores).")] = 1,
    no_llm: Annotated[bool, typer.Option(help="Do not start the local llama.cpp server.")] = False,
    headless: Annotated[bool, typer.Option(help="Do not open a browser.")] = True,
) -> None:
    """Start everything: services, migrations, LLM server, worker(s) and the UI on settings.streamlit_port.

    Runs in the foreground; Ctrl-C stops the workers and the UI (services and the LLM server stay
    up for the next run; `mmos services stop` / `mmos llm stop` stop them).
    """
    s = get_settings()
    services_start()
    migrate()
    if not no_llm:
        llm_start()
    logs = s.data_dir.resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    for i in range(workers):
        out = open(logs / f"worker-{i}.log", "ab")
        procs.append(subprocess.Popen([sys.executable, "-m", "mmos_core.cli.app", "worker"], stdout=out, stderr=out))
    typer.echo(f"{workers} worker(s) started, logs in {logs}")
    ui = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
            "--server.port", str(s.streamlit_port), "--server.headless", str(headless).lower(),
            "--browser.gatherUsageStats", "false",
            # the uploader refuses what intake would refuse anyway, before it is sent
            "--server.maxUploadSize", str(max(1, -(-s.max_source_bytes // 1_000_000))),
        ]
    )
    procs.append(ui)
    typer.echo(f"workbench at http://localhost:{s.streamlit_port}")

    def stop(*_):
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        raise typer.Exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        ui.wait()
    except KeyboardInterrupt:
        stop()
    stop()



# --- users --------------------------------------------------------------------------------------

users_app = typer.Typer(no_args_is_help=True, help="Accounts and roles (no password hash is ever printed).")
app.add_typer(users_app, name="users")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Login name (stored lower-case).")],
    role: Annotated[str, typer.Option(help="analyst, reviewer, manager or admin.")],
    display_name: Annotated[str | None, typer.Option(help="Name shown in the UI.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail (links a later single sign-on).")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")] = False,
) -> None:
    """Create a local account; the password is prompted for (hidden, twice) or read from stdin."""
    from mmos_core.core import db
    from mmos_core.services.auth import AuthError
    from mmos_core.services.users import add_user, system_actor

    password = _read_password(password_stdin)
    try:
        with db.session_scope() as session:
            row = add_user(
                session=session, actor=system_actor(), username=username, role=role, password=password,
                password_again=password, display_name=display_name, email=email,
            )
    except AuthError as exc:
        _fail(str(exc))
    typer.echo(f"created {row.username} ({row.role.value}), id {row.id}")


@users_app.command("list")
def users_list() -> None:
    """Accounts with role, state and last login."""
    from mmos_core.core import db
    from mmos_core.services.users import list_users, system_actor

    with db.session_scope() as session:
        rows = list_users(session=session, actor=system_actor())
    typer.echo(f"{'id':>4} {'username':<24} {'role':<9} {'active':<6} {'sign-in':<14} {'last login':<16} email")
    for r in rows:
        how = "+".join(k for k, on in (("password", r.local_password), ("sso", r.single_sign_on)) if on)
        last = f"{r.last_login_at:%Y-%m-%d %H:%M}" if r.last_login_at else "-"
        typer.echo(f"{r.id:>4} {r.username:<24} {r.role.value:<9} {'yes' if r.is_active else 'no':<6} {how:<14} {last:<16} {r.email or ''}")


def _user_change(username: str, change) -> None:
    from mmos_core.core import db
    from mmos_core.services.auth import AuthError
    from mmos_core.services.users import find_user, system_actor

    try:
        with db.session_scope() as session:
            row = find_user(session=session, actor=system_actor(), username=username)
            row = change(session, system_actor(), row.id)
    except AuthError as exc:
        _fail(str(exc))
    typer.echo(f"{row.username}: role {row.role.value}, {'active' if row.is_active else 'inactive'}")


@users_app.command("set-role")
def users_set_role(username: str, role: str) -> None:
    """Give USERNAME another ROLE (the last active admin cannot be demoted)."""
    from mmos_core.services.users import set_role

    _user_change(username, lambda s, a, uid: set_role(session=s, actor=a, user_id=uid, role=role))


@users_app.command("deactivate")
def users_deactivate(
    username: str,
    reactivate: Annotated[bool, typer.Option("--reactivate", help="Allow sign-in again instead.")] = False,
) -> None:
    """Stop USERNAME from signing in (or allow it again with --reactivate)."""
    from mmos_core.services.users import set_active

    _user_change(username, lambda s, a, uid: set_active(session=s, actor=a, user_id=uid, active=reactivate))


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin's first line.")] = False,
) -> None:
    """Set a new password for USERNAME (prompted, hidden, twice; or from stdin)."""
    from mmos_core.services.users import reset_password

    password = _read_password(password_stdin)
    _user_change(username, lambda s, a, uid: reset_password(session=s, actor=a, user_id=uid, password=password))


if __name__ == "__main__":
    app()
