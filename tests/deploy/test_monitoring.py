"""The monitoring files an operator deploys: Prometheus accepts the config and the rules, the
alerts fire on the series they are written for (promtool's rule tests), and every kadr
metric the alerts and the dashboard query is one kadr exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

import core.infra.metrics  # noqa: F401  (registers kadr's metrics)

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "kadr.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=MONITORING, capture_output=True, text=True, timeout=60
    )


@needs_promtool
def test_prometheus_accepts_the_config_and_its_rules() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@needs_promtool
def test_the_alerts_fire_on_the_series_they_are_written_for() -> None:
    tested = promtool("test", "rules", "alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def exported() -> set[str]:
    names = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        names.update(sample.name for sample in metric.samples)
    suffixes = ("_bucket", "_count", "_sum", "_total")
    return names | {metric.name + suffix for metric in REGISTRY.collect() for suffix in suffixes}


def queried() -> set[str]:
    text = (MONITORING / "alerts.yml").read_text()
    panels = json.loads(DASHBOARD.read_text())["panels"]
    text += "\n".join(t["expr"] for panel in panels for t in panel["targets"])
    return set(re.findall(r"\bkadr_[a-z_]+", text))


def test_every_queried_kadr_metric_is_exported() -> None:
    missing = queried() - exported()
    assert queried() and not missing, f"not exported by kadr: {sorted(missing)}"
