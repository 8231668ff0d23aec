"""The Grafana dashboard (deploy/grafana/mmos-dashboard.json) plots only series services/metrics.py exposes,
and its provisioning files point at it (docs/deploy.md, "Metrics")."""

from __future__ import annotations

import json
import re
from pathlib import Path

from mmos_core.services.metrics import DatabaseFigures, RedisFigures, WorkbenchCollector, database_metrics, redis_metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _exposed_names() -> set[str]:
    db = DatabaseFigures(batches={("m", "pending"): 1}, fragments={"m": 2}, calls={("m", "ok"): 3},
                         duration_buckets={"m": [0] * 11 + [3]}, duration_sum_s={"m": 1.0}, tokens={("m", "input"): 5},
                         cost_usd={"m": 0.1}, daily_limit_usd=2.0)
    rq = RedisFigures(queue_depth={"default": 1}, jobs={("default", "failed"): 0}, workers=1)

    def down():
        raise RuntimeError("no database in unit tests")

    families = [*database_metrics(db), *redis_metrics(rq), *WorkbenchCollector(down, down).collect()]
    return {s.name for fam in families for s in fam.samples}


def _exprs(panels: list[dict]) -> list[str]:
    out = []
    for p in panels:
        out += [t["expr"] for t in p.get("targets", [])]
        out += _exprs(p.get("panels", []))
    return out


def test_every_series_on_the_dashboard_is_exposed():
    dash = json.loads((DEPLOY / "grafana" / "mmos-dashboard.json").read_text())
    used = {m for e in _exprs(dash["panels"]) for m in re.findall(r"\bmmos_[a-z0-9_]+", e)}
    exposed = _exposed_names()
    assert used, "the dashboard plots nothing"
    assert used <= exposed, f"not exposed by services/metrics.py: {sorted(used - exposed)}"
    for series in ("mmos_batches", "mmos_fragments", "mmos_llm_calls_total", "mmos_llm_call_errors_total",
                   "mmos_llm_call_duration_seconds_bucket", "mmos_llm_tokens_total", "mmos_llm_cost_usd_total",
                   "mmos_rq_queue_depth", "mmos_rq_workers", "mmos_budget_used_ratio", "mmos_budget_spent_today_usd"):
        assert series in used, f"no panel plots {series}"
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


def test_provisioning_points_at_the_dashboard_folder():
    text = (DEPLOY / "grafana" / "provisioning" / "dashboards" / "mmos.yaml").read_text()
    assert "path: /var/lib/grafana/dashboards/mmos" in text
    assert "type: prometheus" in (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml").read_text()
