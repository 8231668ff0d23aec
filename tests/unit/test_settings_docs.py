"""Every setting is described, and docs/configuration.md names its environment variable (datasette-style)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import AliasChoices

from mmos_core.core.config import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def env_var(name: str) -> str:
    """The documented variable of a field: its first alias (DATABASE_URL, REDIS_URL) or MMOS_<FIELD>."""
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


FIELDS = sorted(Settings.model_fields)


def test_aliased_fields_use_the_conventional_names():
    assert env_var("database_url") == "DATABASE_URL"
    assert env_var("redis_url") == "REDIS_URL"
    assert env_var("llm_port") == "MMOS_LLM_PORT"


@pytest.mark.parametrize("name", FIELDS)
def test_field_has_description(name):
    description = Settings.model_fields[name].description
    assert description and description.strip(), f"Settings.{name} has no description"


@pytest.mark.parametrize("name", FIELDS)
def test_field_is_documented(name):
    doc = DOC.read_text(encoding="utf-8")
    assert f"`{env_var(name)}`" in doc, f"{env_var(name)} (Settings.{name}) is missing from {DOC.name}"
