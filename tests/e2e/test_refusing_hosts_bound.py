"""A VM refused by more hosts than an action names: the first by host id, and the count.

A real coordinator on loopback with its SQLite file, 24 hosts replaying a real AMD
processor (reported in reverse order) and one agent daemon replaying a real Intel one:
a VM booted on the Intel host is refused by every AMD host (another vendor), more than
the 20 an action names. The wire (ListVms; WatchPolicy, through the agent's state
file), the stored row and the CLI (`vm list`, `policy export`, `whatif`) all name the
first 20 hosts by id and count all 24; the action is still decided from every host.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.domain.vm_action import REFUSING_HOSTS_LISTED
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.daemons import run_cli, start_agent, wait_until
from tests.support.inprocess import Running
from tests.support.paths import PROCESSORS

AMD = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
INTEL = PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt"
AMD_HOSTS = [f"amd-{n:02d}" for n in range(24)]


def cli(address: str, *args: str) -> str:
    result = run_cli(*args, "--coordinator", address)
    assert result.returncode in (0, 3), result.stderr
    return result.stdout


def cli_json(address: str, *args: str) -> Any:
    return json.loads(cli(address, *args, "--json"))


def state(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def test_a_vm_refused_by_more_hosts_than_listed_names_the_first_and_counts_all(
    tmp_path: Path,
) -> None:
    running = Running(tmp_path, allow_replayed=True)
    state_file = tmp_path / "policy-prod.json"
    agent = None
    try:
        raw = capture_to_proto(load_dump(AMD))
        for host in reversed(AMD_HOSTS):  # stored and listed by id, not in report order
            running.registry.ReportProfile(
                pb.ReportProfileRequest(host_id=host, cluster="prod", raw=raw), timeout=30
            )
        agent = start_agent(
            tmp_path, running.address, "intel-0", "--replay-dump", str(INTEL),
            "--state-file", str(state_file), cluster="prod",
        )  # fmt: skip
        hosts = pb.ListHostsRequest(cluster="prod")
        wait_until(
            lambda: len(running.query.ListHosts(hosts, timeout=30).hosts) == 25,
            what="the Intel host's report",
        )
        vms = pb_grpc.VmServiceStub(running.channel)
        for vm, boot in (("db-intel", "intel-0"), ("web-amd", "amd-00")):
            vms.RegisterVm(
                pb.RegisterVmRequest(vm_name=vm, cluster="prod", boot_host=boot), timeout=30
            )
        targets = vms.GetVmTargets(pb.GetVmTargetsRequest(vm_name="db-intel"), timeout=30)
        refusing = sorted(t.host_id for t in targets.targets if not t.verdict.compatible)
        assert refusing == AMD_HOSTS and len(refusing) > REFUSING_HOSTS_LISTED == 20
        first = refusing[:REFUSING_HOSTS_LISTED]

        # Over the wire: the first 20 by host id, the count of all, a bounded reason.
        listed = {v.name: v.action for v in vms.ListVms(pb.ListVmsRequest(), timeout=30).vms}
        action = listed["db-intel"]
        assert action.action == pb.OFFLINE_ACTION_SHUTDOWN
        assert list(action.refusing_hosts) == first and action.refusing_hosts_total == 24
        assert action.reason.startswith(f"refused by {', '.join(first)}, \u2026 and 4 more: ")
        assert "amd-20" not in action.reason
        small = listed["web-amd"]  # refused by fewer than 20: all of them, as before
        assert list(small.refusing_hosts) == ["intel-0"] and small.refusing_hosts_total == 1

        # Stored bounded too.
        with sqlite3.connect(running.db) as db:
            row = db.execute(
                "SELECT refusing_hosts, refusing_total FROM vms WHERE name = 'db-intel'"
            ).fetchone()
        assert (json.loads(row[0]), row[1]) == (first, 24)

        # The CLI: the first 20 and the total in --json, "… and 4 more" in tables.
        docs = {d["name"]: d for d in cli_json(running.address, "vm", "list")}
        assert docs["db-intel"]["refusing_hosts"] == first
        assert docs["db-intel"]["refusing_hosts_total"] == 24
        assert docs["web-amd"]["refusing_hosts_total"] == 1
        table = " ".join(cli(running.address, "vm", "list").split())
        assert "amd-19, \u2026 and 4 more" in table and "amd-20" not in table
        export = cli_json(running.address, "policy", "export", "--cluster", "prod")
        resource = {r["vm"]: r for r in export["resources"]}["db-intel"]
        assert (resource["refusing_hosts"], resource["refusing_hosts_total"]) == (first, 24)
        script = cli(running.address, "policy", "export", "--cluster", "prod")
        script = " ".join(" ".join(line.lstrip("# ").split()) for line in script.splitlines())
        assert "(refused by amd-00, amd-01," in script and "amd-19, \u2026 and 4 more)" in script
        whatif = cli_json(running.address, "whatif", "--cluster", "prod", "--remove", "amd-23")
        vm = {v["vm"]: v for v in whatif["vms"]}["db-intel"]
        assert vm["before"]["refusing_hosts"] == vm["after"]["refusing_hosts"] == first
        assert (vm["before"]["refusing_hosts_total"], vm["after"]["refusing_hosts_total"]) == (
            24,
            23,
        )
        text = " ".join(
            cli(running.address, "whatif", "--cluster", "prod", "--remove", "amd-23").split()
        )
        assert "amd-19, \u2026 and 3 more" in text

        # WatchPolicy: the agent's state file names the same 20 and counts all 24.
        def db_intel() -> dict[str, Any] | None:
            return next(
                (v for v in state(state_file).get("vms", []) if v["vm"] == "db-intel"), None
            )

        got = wait_until(db_intel, what="db-intel in the agent's state file")
        assert isinstance(got, dict)
        assert (got["refusing_hosts"], got["refusing_hosts_total"]) == (first, 24)
    finally:
        if agent is not None:
            agent.stop()
        running.close()
