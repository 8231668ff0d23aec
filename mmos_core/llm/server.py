"""Manage the local OpenAI-compatible LLM server: upstream llama.cpp's ``llama-server`` in router mode.

One process (``llama-server --models-preset <data_dir>/run/llm-models.ini``) serves every model of
``LOCAL_MODELS`` on ``settings.llm_host:settings.llm_port`` under its alias; the router starts one
instance per model (both stay loaded: about 1.7 GB of RAM for the two) and forwards each request by its
``model`` field. Each instance has ``llm_slots`` parallel slots (continuous batching: several chunks,
from one batch or several, are generated together) and n-gram speculative decoding drafted from the
prompt (``llm_spec_type``). The binary is built at provisioning (``llm.llama_server``); the measurement
behind these choices is in docs/local-models.md, "Choosing the server by measurement".

Reaching it through litellm (see ``litellm_params``)::

    litellm.completion(model="openai/qwen2.5-coder-1.5b-instruct",
                       api_base="http://127.0.0.1:8765/v1", api_key="local", ...)

Structured output: ``response_format={"type": "json_schema", ...}`` is compiled to a grammar by the
server; grammars do not enforce numeric min/max, so the parsed JSON is still validated (pydantic).
Chat template: ``--jinja`` with the template stored in the GGUF (Qwen2.5's ChatML).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mmos_core.core.config import Settings, get_settings
from mmos_core.llm.llama_server import binary_path, is_built, preset_ini
from mmos_core.llm.local_models import LOCAL_MODELS, is_model_present, model_path

__all__ = [
    "LocalModelsMissing",
    "LlamaServerMissing",
    "LocalServerError",
    "build_server_config",
    "start_server",
    "stop_server",
    "server_status",
    "is_healthy",
    "server_url",
    "litellm_params",
    "register_litellm_prices",
    "log_path",
    "pid_path",
    "config_path",
]

class LocalModelsMissing(RuntimeError):
    """A GGUF file of ``LOCAL_MODELS`` is not provisioned (missing, wrong size, or unverified)."""


class LlamaServerMissing(RuntimeError):
    """The ``llama-server`` binary is not built for this version and these flags (``mmos models provision``)."""


class LocalServerError(RuntimeError):
    """The server could not be started (port taken, process exited, not healthy before the timeout)."""


# ---------------------------------------------------------------------------------------------- paths


def _settings(settings: Settings | None) -> Settings:
    return settings if settings is not None else get_settings()


def log_path(settings: Settings | None = None) -> Path:
    """Server log (stdout + stderr, appended): ``<data_dir>/logs/llm-server.log``."""
    return Path(_settings(settings).data_dir) / "logs" / "llm-server.log"


def pid_path(settings: Settings | None = None) -> Path:
    """Pid file of the server started by ``start_server``: ``<data_dir>/run/llm-server.pid``."""
    return Path(_settings(settings).data_dir) / "run" / "llm-server.pid"


def config_path(settings: Settings | None = None) -> Path:
    """Model presets passed to ``llama-server --models-preset``: ``<data_dir>/run/llm-models.ini``."""
    return Path(_settings(settings).data_dir) / "run" / "llm-models.ini"


def server_url(settings: Settings | None = None) -> str:
    """OpenAI-compatible base URL clients use, e.g. ``http://127.0.0.1:8765/v1``.

    A wildcard bind address (``0.0.0.0``/``::``) is reached through ``127.0.0.1``."""
    s = _settings(settings)
    host = "127.0.0.1" if s.llm_host in ("0.0.0.0", "::", "") else s.llm_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{s.llm_port}/v1"


# --------------------------------------------------------------------------------------------- config


def build_server_config(settings: Settings | None = None) -> str:
    """The router's presets INI (``llama_server.preset_ini``): one section per model of ``LOCAL_MODELS``
    with its GGUF path, and the serving settings (threads, slots, context per slot, speculative decoding,
    GPU layers) shared by all."""
    s = _settings(settings)
    return preset_ini({alias: model_path(m, s.cache_dir) for alias, m in LOCAL_MODELS.items()}, s)


def server_command(settings: Settings | None = None) -> list[str]:
    """argv of the router: ``llama-server --models-preset <ini> --host H --port P --models-max N``
    (every model loaded at once, so batches of different models never wait for a swap)."""
    s = _settings(settings)
    return [str(binary_path(s)), "--models-preset", str(config_path(s).resolve()), "--host", s.llm_host,
            "--port", str(s.llm_port), "--models-max", str(len(LOCAL_MODELS))]


def write_config(settings: Settings | None = None) -> Path:
    """Write ``build_server_config`` to ``config_path`` and return the path."""
    s = _settings(settings)
    cfg = config_path(s)
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(build_server_config(s))
    return cfg


def _check_prerequisites(settings: Settings) -> None:
    missing = [a for a, m in LOCAL_MODELS.items() if not is_model_present(m, settings.cache_dir)]
    if missing:
        raise LocalModelsMissing(
            f"local model weights missing or unverified: {', '.join(missing)} "
            f"(looked in {Path(settings.cache_dir) / 'models'}). Run `mmos models provision`."
        )
    if not is_built(settings):
        raise LlamaServerMissing(
            f"llama-server is not built at {binary_path(settings)}: run `mmos models provision` "
            "(compiles llama.cpp's server once, about 10 min on 2 cores)."
        )


# -------------------------------------------------------------------------------------------- process


def _read_pid(settings: Settings) -> int | None:
    try:
        pid = int(pid_path(settings).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is_our_process(pid) else None


def is_running(settings: Settings | None = None) -> bool:
    """Whether the server process recorded in the pid file is alive (no HTTP call: a busy server
    answers nothing until its current generation ends)."""
    return _read_pid(_settings(settings)) is not None


def _is_our_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # guard against pid reuse (Linux)
        try:
            return b"llama-server" in cmdline.read_bytes()
        except OSError:
            return False
    return True


def _port_open(host: str, port: int) -> bool:
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _served_models(settings: Settings, timeout_s: float = 2.0) -> list[str] | None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(f"{server_url(settings)}/models", timeout=timeout_s) as resp:
            data = json.load(resp)
        # the router lists every preset at once and says per model whether its instance is loaded yet
        return [m["id"] for m in data.get("data", []) if (m.get("status") or {}).get("value", "loaded") == "loaded"]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        return None


def is_healthy(settings: Settings | None = None, timeout_s: float = 2.0) -> bool:
    """True when ``GET <url>/models`` answers and lists every alias of ``LOCAL_MODELS`` as loaded."""
    served = _served_models(_settings(settings), timeout_s)
    return served is not None and set(LOCAL_MODELS) <= set(served)


def _log_tail(settings: Settings, n: int = 3000) -> str:
    try:
        return log_path(settings).read_text(errors="replace")[-n:]
    except OSError:
        return ""


def start_server(wait: bool = True, timeout_s: float = 120, settings: Settings | None = None) -> int:
    """Start the local LLM server detached (own session) and return its pid.

    Writes the JSON config, appends stdout/stderr to ``log_path()``, records the pid in ``pid_path()``.
    If a server started here is already running and healthy, returns its pid without starting another.
    With ``wait`` it polls ``is_healthy`` until ready (first start ~2-5 s; ``timeout_s`` in seconds).

    Raises:
        LocalModelsMissing: a GGUF is not provisioned ("run `mmos models provision`").
        LlamaServerMissing: ``llama-server`` is not built (``mmos models provision``).
        LocalServerError: the port is taken by another process, the server exited during start-up, or
            it was not healthy within ``timeout_s`` (it is then stopped; the log tail is in the message).
    """
    s = _settings(settings)
    existing = _read_pid(s)
    if existing is not None:
        if not wait or is_healthy(s):
            return existing
        return _wait_healthy(s, existing, timeout_s)

    _check_prerequisites(s)
    if _port_open(s.llm_host, s.llm_port):
        who = "a healthy llama server not started here" if is_healthy(s) else "another process"
        raise LocalServerError(
            f"port {s.llm_host}:{s.llm_port} is already in use by {who}; stop it or set MMOS_LLM_PORT."
        )

    write_config(s)
    log = log_path(s)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as logf:
        logf.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting llama-server ===\n".encode())
        logf.flush()
        proc = subprocess.Popen(
            server_command(s), stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
        )
    pid_path(s).write_text(f"{proc.pid}\n")
    if not wait:
        return proc.pid
    return _wait_healthy(s, proc.pid, timeout_s, proc)


def _wait_healthy(s: Settings, pid: int, timeout_s: float, proc: subprocess.Popen | None = None) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_healthy(s, timeout_s=1.0):
            return pid
        exited = proc.poll() is not None if proc is not None else not _is_our_process(pid)
        if exited:
            pid_path(s).unlink(missing_ok=True)
            raise LocalServerError(f"the local LLM server exited during start-up; log tail:\n{_log_tail(s)}")
        time.sleep(0.25)
    stop_server(settings=s)
    raise LocalServerError(
        f"the local LLM server was not healthy within {timeout_s:.0f} s (stopped); log tail:\n{_log_tail(s)}"
    )


def stop_server(timeout_s: float = 15, settings: Settings | None = None) -> bool:
    """Stop the server started by ``start_server``: SIGTERM to its process group, SIGKILL after
    ``timeout_s`` seconds. Removes the pid file. Returns True if a running server was stopped."""
    s = _settings(settings)
    pid = _read_pid(s)
    pid_path(s).unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)  # start_new_session: pgid == pid
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True


def _alive(pid: int) -> bool:
    try:  # reap if it is our child, so it does not linger as a zombie
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def server_status(settings: Settings | None = None) -> dict[str, Any]:
    """Snapshot of the server: ``{"running": bool, "healthy": bool, "pid": int | None, "url": str,
    "models": [served ids], "expected_models": [aliases], "log": str, "models_present": {alias: bool}}``.
    ``running`` means the process recorded in the pid file is alive."""
    s = _settings(settings)
    pid = _read_pid(s)
    served = _served_models(s) or []
    return {
        "running": pid is not None,
        "healthy": set(LOCAL_MODELS) <= set(served),
        "pid": pid,
        "url": server_url(s),
        "models": served,
        "expected_models": list(LOCAL_MODELS),
        "models_present": {a: is_model_present(m, s.cache_dir) for a, m in LOCAL_MODELS.items()},
        "log": str(log_path(s)),
    }


# -------------------------------------------------------------------------------------------- clients


def litellm_params(alias: str, settings: Settings | None = None) -> dict[str, str]:
    """Keyword arguments for ``litellm.completion`` to reach a local model:
    ``{"model": "openai/<alias>", "api_base": <url>, "api_key": "local"}`` (any key is accepted).
    Raises KeyError for an alias not in ``LOCAL_MODELS``."""
    if alias not in LOCAL_MODELS:
        raise KeyError(f"unknown local model {alias!r}; known: {', '.join(LOCAL_MODELS)}")
    return {"model": f"openai/{alias}", "api_base": server_url(settings), "api_key": "local"}


def register_litellm_prices(settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Register every local model with litellm at zero cost, so ``litellm.completion_cost`` returns 0.0
    instead of raising for ``openai/<alias>``. Imports litellm (set ``LITELLM_LOCAL_MODEL_COST_MAP=True``
    before, to avoid a price-map download). Returns the dict passed to ``litellm.register_model``."""
    import litellm

    n_ctx = _settings(settings).llm_context_tokens
    info = {
        f"openai/{alias}": {
            "litellm_provider": "openai",
            "mode": "chat",
            "max_input_tokens": n_ctx,
            "max_tokens": n_ctx,
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "cache_creation_input_token_cost": 0.0,
            "cache_read_input_token_cost": 0.0,
        }
        for alias in LOCAL_MODELS
    }
    litellm.register_model(info)
    return info
