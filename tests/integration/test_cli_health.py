"""`mmos health` and `mmos metrics` on the real embedded services."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mmos_core.cli.app import app

pytestmark = pytest.mark.usefixtures("clean_db")


def test_health_reports_each_component(embedder_or_skip):
    result = CliRunner().invoke(app, ["health"])
    out = result.output
    from alembic.script import ScriptDirectory

    from mmos_core.core.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert "postgres" in out and f"schema {head}" in out
    assert "redis" in out and "embedder" in out
    # the LLM server and workers are optional: reported, not failing
    assert result.exit_code == 0, out


def test_metrics_prints_the_hourly_rollup_and_the_lake(embedder_or_skip):
    from sqlalchemy import text

    from mmos_core.core.db import session_scope

    with session_scope() as session:
        session.execute(
            text(
                "INSERT INTO asi_inferences (kind, input_text, flux_position, confidence, hallucination_detected, lake_worthy, processing_time_ms) "
                "VALUES ('search_query', 'a', 1, 0.9, false, true, 10), ('search_query', 'b', 2, 0.3, true, false, 30)"
            )
        )
    result = CliRunner().invoke(app, ["metrics", "--hours", "2"])
    assert result.exit_code == 0, result.output
    row = [line for line in result.output.splitlines() if line.strip().endswith("1") and " 2 " in line]
    assert row, result.output  # one hour, 2 inferences, 1 lake-worthy
    assert "50.0%" in result.output  # hallucination rate
    assert "lake:" in result.output
