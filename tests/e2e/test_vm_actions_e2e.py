"""Each VM's own offline action and host maintenance, with real daemons and replayed dumps.

A cluster of two Milan hosts and one Rome host: a VM booted on Milan cannot be
restored on Rome (Rome lacks Milan's features), a VM booted under a baseline Rome
runs can. Maintenance on Rome takes it out of every decision; its agent stopping
then changes nothing; maintenance off counts it again at its next report.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.shared import MILAN, ROME, shared_dump

BASELINE = "model:qemu/EPYC-Rome"
SNAPSHOTS = "/var/lib/libvirt/snapshots"


def cli_json(address: str, *args: str) -> Any:
    result = run_cli(*args, "--json", "--coordinator", address)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def vms(address: str) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in cli_json(address, "vm", "list", "--cluster", "prod")}


def action_of(address: str, vm: str) -> tuple[str, list[str]]:
    doc = vms(address)[vm]
    return doc["offline_action"], doc["refusing_hosts"]


def host(address: str, host_id: str) -> dict[str, Any]:
    return {h["host_id"]: h for h in cli_json(address, "hosts")}[host_id]


def state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def state_action(path: Path, vm: str) -> str | None:
    return next((v["offline_action"] for v in state(path).get("vms", []) if v["vm"] == vm), None)


def crm_resource_options() -> set[str]:
    """The long options the installed crm_resource documents."""
    if shutil.which("crm_resource") is None:
        pytest.skip("crm_resource is not installed (Debian: apt-get install pacemaker-cli-utils)")
    out = subprocess.run(
        ["crm_resource", "--help-all"], capture_output=True, text=True, check=False
    ).stdout
    return set(re.findall(r"(--[a-z][a-z-]+)", out))


def test_each_vm_gets_its_own_action_and_maintenance_takes_a_host_out(tmp_path: Path) -> None:
    milan, rome = str(shared_dump(MILAN)), str(shared_dump(ROME))
    coord = start_coordinator(tmp_path, "--allow-replayed")
    address = coord.address
    state_file = tmp_path / "milan-1.json"
    hook_log = tmp_path / "hook.log"

    def agent(name: str, dump: str, *extra: str) -> Daemon:
        # Heartbeats every 5 s: a loaded machine must not make a host stale mid-test
        # (stale refuses, as it should); every step here follows a report, not a heartbeat.
        return start_agent(
            tmp_path, address, name, "--replay-dump", dump, "--interval", "5", *extra
        )

    agents = {
        "milan-1": agent(
            "milan-1",
            milan,
            "--state-file",
            str(state_file),
            "--on-policy-change",
            f'echo "$CPUCOMPAT_VM_ACTIONS" >> {hook_log}',
        ),
        "milan-2": agent("milan-2", milan),
        "rome-1": agent("rome-1", rome),
    }
    try:
        wait_until(lambda: len(cli_json(address, "hosts")) == 3, what="three hosts")
        # The one decision path says: Milan's guests cannot go to Rome; the baseline's can.
        assert run_cli("check", "milan-1", "rome-1", "--coordinator", address).returncode == 3
        assert run_cli("check", "milan-1", "milan-2", "--coordinator", address).returncode == 0
        for target in ("milan-1", "milan-2", "rome-1"):
            assert run_cli("check", BASELINE, target, "--coordinator", address).returncode == 0
        for vm, how in (("db-1", ("--boot-host", "milan-1")), ("web-1", ("--baseline", BASELINE))):
            r = run_cli("vm", "register", vm, "--cluster", "prod", *how, "--coordinator", address)
            assert r.returncode == 0, r.stderr
        listed = vms(address)
        assert (listed["db-1"]["offline_action"], listed["db-1"]["hyperv_offline_action"]) == (
            "SHUTDOWN",
            2,
        )
        assert listed["db-1"]["refusing_hosts"] == ["rome-1"]
        assert (listed["web-1"]["offline_action"], listed["web-1"]["hyperv_offline_action"]) == (
            "SAVE",
            1,
        )
        assert listed["web-1"]["refusing_hosts"] == []
        # The readable table says the same.
        table = run_cli("vm", "list", "--coordinator", address).stdout
        assert re.search(r"db-1 .*SHUTDOWN +2 +rome-1", table), table
        assert re.search(r"web-1 .*SAVE +1 +-", table), table

        # Each VM exported with its own value.
        ps = run_cli("policy", "export", "--cluster", "prod", "--coordinator", address)
        assert ps.returncode == 0, ps.stderr
        commands = [line for line in ps.stdout.splitlines() if not line.startswith("#")]
        assert commands == [
            "Get-ClusterResource -Name 'Virtual Machine db-1' |",
            "    Set-ClusterParameter -Name OfflineAction -Value 2",
            "Get-ClusterResource -Name 'Virtual Machine web-1' |",
            "    Set-ClusterParameter -Name OfflineAction -Value 1",
        ]

        # The agent of the VM's host gets its VMs' actions (state file and hook).
        wait_until(lambda: state_action(state_file, "db-1") == "SHUTDOWN", what="state SHUTDOWN")
        assert state(state_file)["host_id"] == "milan-1"
        assert state_action(state_file, "web-1") is None  # it names no host it runs on
        wait_until(
            lambda: '"db-1": "SHUTDOWN"' in hook_log.read_text() if hook_log.exists() else False,
            what="hook told of db-1",
        )

        # Maintenance on Rome: it has no say, so db-1 may be saved; Rome is no target.
        on = run_cli(
            "host", "maintenance", "rome-1", "on", "--reason", "firmware", "--coordinator", address
        )
        assert on.returncode == 0, on.stderr
        assert action_of(address, "db-1") == ("SAVE", [])
        assert host(address, "rome-1")["maintenance"] is True
        assert "maintenance" in run_cli("hosts", "--coordinator", address).stdout
        plan = run_cli(
            "failover", "plan", "web-1", "--to", "rome-1", "--json", "--coordinator", address
        )
        assert plan.returncode == 3, plan.stderr  # a "no": web-1 may not be saved for Rome
        doc = json.loads(plan.stdout)
        doc = doc.get("plan", doc)
        assert doc["action"] == "SHUTDOWN" and "maintenance" in doc["reason"]
        targets = run_cli("vm", "targets", "db-1", "--json", "--coordinator", address)
        assert "IN_MAINTENANCE" in targets.stdout
        wait_until(lambda: state_action(state_file, "db-1") == "SAVE", what="state SAVE")

        # Its agent stops: nothing changes (no stale, no SHUTDOWN).
        assert agents["rome-1"].stop(signal.SIGTERM) == 0
        wait_until(lambda: host(address, "rome-1")["status"] == "offline", what="rome-1 offline")
        assert action_of(address, "db-1") == ("SAVE", [])
        assert action_of(address, "web-1") == ("SAVE", [])
        assert cli_json(address, "policy", "show", "--cluster", "prod")["action"] == "SAVE"

        # Off while its agent is away: Rome counts again as a host that is not online
        # (fail-safe: a host that never comes back must not keep VMs at SAVE); its next
        # fresh report ends maintenance and its processor decides again.
        off = run_cli("host", "maintenance", "rome-1", "off", "--coordinator", address)
        assert off.returncode == 0, off.stderr
        assert host(address, "rome-1")["maintenance_ending"] is True
        assert action_of(address, "db-1") == ("SHUTDOWN", ["rome-1"])
        assert action_of(address, "web-1") == ("SHUTDOWN", ["rome-1"])
        agents["rome-1"] = agent("rome-1", rome)
        wait_until(
            lambda: host(address, "rome-1")["maintenance"] is False,
            what="rome-1 out of maintenance",
        )
        wait_until(lambda: action_of(address, "web-1") == ("SAVE", []), what="web-1 SAVE again")
        assert action_of(address, "db-1") == ("SHUTDOWN", ["rome-1"])
        wait_until(lambda: state_action(state_file, "db-1") == "SHUTDOWN", what="state again")

        events = cli_json(address, "events", "--cluster", "prod")["events"]
        kinds = [e["kind"] for e in events]
        assert kinds.count("maintenance_changed") == 3  # on, off asked, ended by the report
        changes = [e["message"] for e in events if e["kind"] == "vm_action_changed"]
        assert any("db-1 offline action SHUTDOWN -> SAVE" in m for m in changes), changes
        assert any("db-1 offline action SAVE -> SHUTDOWN" in m for m in changes), changes
    finally:
        for daemon in agents.values():
            daemon.kill()
        coord.stop()


def test_pacemaker_export_sets_or_deletes_each_vms_snapshot(tmp_path: Path) -> None:
    options = crm_resource_options()
    milan, rome = str(shared_dump(MILAN)), str(shared_dump(ROME))
    coord = start_coordinator(tmp_path, "--allow-replayed")
    address = coord.address
    agents = [
        start_agent(tmp_path, address, "milan-1", "--replay-dump", milan),
        start_agent(tmp_path, address, "rome-1", "--replay-dump", rome),
    ]
    try:
        wait_until(lambda: len(cli_json(address, "hosts")) == 2, what="two hosts")
        for vm, how in (("db-1", ("--boot-host", "milan-1")), ("web-1", ("--baseline", BASELINE))):
            r = run_cli("vm", "register", vm, "--cluster", "prod", *how, "--coordinator", address)
            assert r.returncode == 0, r.stderr
        export = run_cli(
            "policy",
            "export",
            "--cluster",
            "prod",
            "--format",
            "pacemaker",
            "--snapshot-dir",
            SNAPSHOTS,
            "--coordinator",
            address,
        )
        assert export.returncode == 0, export.stderr
        commands = [line for line in export.stdout.splitlines() if not line.startswith("#")]
        assert commands == [
            "crm_resource --resource db-1 --delete-parameter snapshot",
            f"crm_resource --resource web-1 --set-parameter snapshot --parameter-value {SNAPSHOTS}",
        ]
        for line in commands:
            used = {word for word in line.split() if word.startswith("--")}
            assert used <= options, f"crm_resource does not document {used - options}"
        missing = run_cli(
            "policy", "export", "--cluster", "prod", "--format", "pacemaker",
            "--coordinator", address,
        )  # fmt: skip
        assert missing.returncode == 2 and "--snapshot-dir" in missing.stderr
    finally:
        for daemon in agents:
            daemon.kill()
        coord.stop()
