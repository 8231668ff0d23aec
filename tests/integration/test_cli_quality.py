"""`mmos quality` commands on real stored batches (docs/quality.md)."""

from __future__ import annotations

import pytest
from quality_support import two_models_on_one_source
from typer.testing import CliRunner

from mmos_core.cli.app import app

pytestmark = pytest.mark.usefixtures("clean_db")


def test_report_and_sweet_spot_print_measured_figures():
    two_models_on_one_source()
    runner = CliRunner()
    report = runner.invoke(app, ["quality", "report"])
    assert report.exit_code == 0, report.output
    lines = {line.split()[0]: line for line in report.output.splitlines()[1:]}
    assert "0.500" in lines["inventive"] and "1.000" in lines["honest"]  # grounded shares
    spot = runner.invoke(app, ["quality", "sweet-spot", "-t", "2", "-t", "9.9"])
    assert spot.exit_code == 0, spot.output
    assert "threshold 2: inventive; baseline honest; saving 75% (usd)" in spot.output
    assert "threshold 9.9: no model qualifies" in spot.output


def test_replay_explains_why_it_cannot_run():
    two_models_on_one_source()
    result = CliRunner().invoke(app, ["quality", "replay", "-m", "honest"])
    assert result.exit_code == 1 and "at least two models" in result.output
