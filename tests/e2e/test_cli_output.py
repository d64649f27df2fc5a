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
                "refusing_hosts_total": 0,
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


def test_tables_name_a_qemu_model_in_full_and_a_dump_by_its_file() -> None:
    """`model:qemu/EPYC` is a name, not a path: the table must not cut it to `EPYC` (which
    reads as a host id); a dump's folder is left out of tables, as before."""
    dump = f"dump:{DEV_DUMP}"
    audit = run_cli("audit", dump, "model:qemu/EPYC")
    assert audit.returncode in (0, 3), audit.stderr
    rows = [
        line.split()[0]
        for line in audit.stdout.splitlines()
        if line.startswith(("dump:", "model:"))
    ]
    assert rows == [f"dump:{DEV_DUMP.name}", "model:qemu/EPYC"]
    assert str(DEV_DUMP.parent) not in audit.stdout
    mentions = [line for line in audit.stdout.splitlines() if "EPYC" in line and "->" in line]
    assert all("model:qemu/EPYC" in line for line in mentions)
    check = run_cli("check", "model:qemu/EPYC", dump)
    assert check.returncode in (0, 3), check.stderr
    assert check.stdout.startswith(f"model:qemu/EPYC -> dump:{DEV_DUMP.name}: ")
