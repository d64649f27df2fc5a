"""The metrics as documented and alerted on: names match what the daemons export, and
the example alerting rules pass `promtool check rules` and their own `promtool test rules`.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from cpucompat.agent.daemon.metrics import AgentMetrics
from tests.support.inprocess import Running
from tests.support.paths import PROJECT_ROOT

PROMETHEUS_DOCS = PROJECT_ROOT / "docs" / "prometheus"
OPERATIONS = PROJECT_ROOT / "docs" / "operations.md"
SUFFIXES = ("_bucket", "_count", "_sum")


def exported(registry: object) -> set[str]:
    """The names a scrape shows, as an operator writes them (counters with `_total`)."""
    names = set()
    for family in registry.collect():  # type: ignore[attr-defined]
        names.add(family.name + "_total" if family.type == "counter" else family.name)
    return names


def documented(section: str) -> set[str]:
    """The metric names in the first column of the tables under ``section``."""
    text = OPERATIONS.read_text()
    start = text.index(f"### {section}")
    end = text.find("\n#", start + 4)
    rows = text[start : end if end > 0 else None].splitlines()
    return {m[1] for row in rows if (m := re.match(r"\| `(cpucompat_\w+)` \|", row))}


def test_every_coordinator_metric_is_documented(live_coordinator: Running) -> None:
    names = exported(live_coordinator.coordinator.metrics.registry)
    assert "cpucompat_hosts" in names and "cpucompat_rpc_handled_total" in names
    assert names == documented("The coordinator's metrics")


def test_every_agent_metric_is_documented() -> None:
    names = exported(AgentMetrics(interval=30).registry)
    assert "cpucompat_agent_seconds_since_last_ack" in names
    assert names == documented("The agent's metrics")


def test_alerts_name_only_exported_metrics(live_coordinator: Running) -> None:
    known = exported(live_coordinator.coordinator.metrics.registry) | exported(
        AgentMetrics(interval=30).registry
    )
    used = set(re.findall(r"\bcpucompat_\w+", (PROMETHEUS_DOCS / "alerts.yml").read_text()))
    base = {next((n[: -len(s)] for s in SUFFIXES if n.endswith(s)), n) for n in used}
    assert base - known == set(), f"alerts.yml names metrics nobody exports: {base - known}"


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    return tool


def test_alerting_rules_are_valid() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", "alerts.yml"],
        cwd=PROMETHEUS_DOCS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alerts_fire_when_they_should() -> None:
    """alerts.test.yml: stale hosts after 5 minutes, SHUTDOWN, a silent agent, errors, the
    database unreachable for a minute."""
    result = subprocess.run(
        [_promtool(), "test", "rules", "alerts.test.yml"],
        cwd=PROMETHEUS_DOCS,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # the test file covers the alerts an operator is promised
    tests = (PROMETHEUS_DOCS / "alerts.test.yml").read_text()
    for alert in (
        "CpucompatHostStale",
        "CpucompatClusterShutdown",
        "CpucompatAgentNotReporting",
        "CpucompatCoordinatorDown",
        "CpucompatRpcErrors",
        "CpucompatDatabaseDown",
    ):
        assert f"alertname: {alert}" in tests
