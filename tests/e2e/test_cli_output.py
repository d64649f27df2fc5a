"""Human and script output: --version, policy export --json, tables that fit 100 columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.daemons import run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import DEV_DUMP


def test_version_names_the_installed_release() -> None:
    from importlib.metadata import version

    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"cpucompat {version('cpucompat')}"


@pytest.mark.e2e
def test_policy_export_json_and_tables_within_100_columns(tmp_path: Path) -> None:
    coord = start_coordinator(tmp_path, "--allow-replayed")
    agent = start_agent(tmp_path, coord.address, "h1", "--replay-dump", str(DEV_DUMP))
    c = ("--coordinator", coord.address)
    try:
        wait_until(lambda: run_cli("host", "show", "h1", *c).returncode == 0, what="h1 reported")
        assert run_cli("vm", "register", "web", "--cluster", "prod", "--boot-host", "h1", *c)
        exported = run_cli("policy", "export", "--cluster", "prod", "--json", *c)
        assert exported.returncode == 0, exported.stderr
        doc = json.loads(exported.stdout)
        assert doc["cluster"] == "prod" and doc["action"] in ("SAVE", "SHUTDOWN")
        assert doc["resources"] == [
            {
                "vm": "web",
                "resource": "Virtual Machine web",
                # A single host: nothing refuses web, so its own action is the cluster's.
                "offline_action": doc["hyperv_offline_action"],
                "action": doc["action"],
                "refusing_hosts": [],
            }
        ]
        for cmd in (
            ("hosts",),
            ("host", "show", "h1"),
            ("events",),
            ("policy", "show"),
            ("vm", "list"),
            ("targets", "h1"),
            ("audit", "--cluster", "prod", "model:icelake", "model:zen3"),
        ):
            result = run_cli(*cmd, *c)
            assert result.returncode in (0, 3), (cmd, result.stderr)
            wide = [line for line in result.stdout.splitlines() if len(line) > 100]
            assert not wide, (cmd, wide)
        shown = run_cli("hosts", *c).stdout
        assert "Z" in shown.splitlines()[-1]  # last-seen times carry their zone (UTC)
        show = run_cli("host", "show", "h1", *c).stdout
        assert DEV_DUMP.name in show and str(DEV_DUMP.parent) not in show
        as_json = json.loads(run_cli("host", "show", "h1", "--json", *c).stdout)
        assert str(DEV_DUMP) in json.dumps(as_json)
    finally:
        agent.stop()
        coord.stop()
