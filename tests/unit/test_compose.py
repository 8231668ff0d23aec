"""docker-compose.yml, Dockerfile and .dockerignore checked as files (no Docker engine needed; docs/deploy.md,
"Docker Compose"): the service graph, one-shot provisioning before workers, healthchecks, non-root user,
volumes, restart policies, and a Dockerfile that installs dependencies before it copies the code."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("provision", "migrate", "llm", "app", "api", "worker")


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_share_one_image_and_run_as_non_root() -> None:
    services = _compose()["services"]
    assert set(services) >= {"db", "redis", *APP_SERVICES}
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1, images
    for name in APP_SERVICES:
        svc = services[name]
        assert svc["user"] and not str(svc["user"]).startswith("0"), name
        assert "models:/models" in svc["volumes"] and "appdata:/data" in svc["volumes"], name
        assert svc["environment"]["REDIS_URL"].startswith("redis://redis:")
        assert svc["environment"]["DATABASE_URL"].startswith("postgresql://")


def test_provision_runs_once_before_workers_and_llm() -> None:
    services = _compose()["services"]
    assert services["provision"]["command"] == ["mmos", "models", "provision"]  # GGUF and the ONNX embedder
    assert services["provision"]["restart"] == "no" and services["migrate"]["restart"] == "no"
    for name in ("worker", "llm", "app", "api"):
        assert services[name]["depends_on"]["provision"] == {"condition": "service_completed_successfully"}, name
    for name in ("worker", "app", "api"):
        deps = services[name]["depends_on"]
        assert deps["migrate"] == {"condition": "service_completed_successfully"}, name
        assert deps["redis"] == {"condition": "service_healthy"}, name
    assert services["worker"]["depends_on"]["llm"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["db"] == {"condition": "service_healthy"}
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_healthchecks_and_restart_policies() -> None:
    services = _compose()["services"]
    probes = {"app": "/_stcore/health", "api": "/health", "llm": "/v1/models"}
    for name, path in probes.items():
        test = " ".join(services[name]["healthcheck"]["test"])
        assert path in test, (name, test)
    assert services["api"]["command"][:2] == ["mmos", "api"] and "0.0.0.0" in services["api"]["command"]
    assert services["llm"]["environment"]["MMOS_LLM_HOST"] == "0.0.0.0"
    assert services["worker"]["environment"]["MMOS_LLM_HOST"] == "llm"
    for name in ("db", "redis", "llm", "app", "api", "worker"):
        assert services[name]["restart"] == "unless-stopped", name
        if name != "worker":
            assert "healthcheck" in services[name], name
    assert set(_compose()["volumes"]) == {"pgdata", "redisdata", "models", "appdata"}


def test_dockerfile_installs_dependencies_before_the_code() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    install = next(i for i, ln in enumerate(lines) if "pip install" in ln)
    copy_all = next(i for i, ln in enumerate(lines) if ln.startswith("COPY") and ln.endswith(" . ."))
    copies_before = [ln for ln in lines[:install] if ln.startswith("COPY")]
    assert install < copy_all
    assert all("pyproject.toml" in ln for ln in copies_before), copies_before  # no code before the install
    user = [ln for ln in lines if ln.startswith("USER")]
    assert user and user[-1] != "USER root"


def test_dockerignore_keeps_local_state_out() -> None:
    entries = {ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    assert {".git", ".venv", ".mmos-data", "test-artifacts", "bench/results"} <= entries
    assert "**/__pycache__" in entries or "__pycache__" in entries
