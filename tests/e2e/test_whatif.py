"""`cpucompat whatif` with real daemons and the project's own replayed dumps.

A cluster of a Zen 3 host and a Zen 5 host (edited real dumps under tests/fixtures):
a VM booted on Zen 3 may be saved for Zen 5, one booted on Zen 5 may not be saved
for Zen 3. What-ifs add dumps, remove hosts and take maintenance into account, the
answers agree with `check`, and nothing of them is stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import DEV_DUMP, DUMPS, PROCESSORS
from tests.support.shared import MILAN, ROME, shared_dump
from tests.support.stored_rows import stored_rows as stored

pytestmark = pytest.mark.e2e

ZEN3 = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
ZEN5 = PROCESSORS / "amd-zen5-zen5c-edited.cpuid-r.txt"
INTEL = PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt"


def cli_json(address: str, *args: str) -> Any:
    result = run_cli(*args, "--json", "--coordinator", address)
    assert result.returncode in (0, 3), result.stderr  # policy show says SHUTDOWN with 3
    return json.loads(result.stdout)


def whatif(address: str, *args: str) -> tuple[int, dict[str, Any]]:
    cluster = () if "--cluster" in args else ("--cluster", "lab")
    result = run_cli("whatif", *cluster, *args, "--json", "--coordinator", address)
    assert result.returncode in (0, 3), result.stderr
    return result.returncode, json.loads(result.stdout)


def check_code(address: str, source: str, target: str) -> int:
    result = run_cli("check", source, target, "--coordinator", address)
    assert result.returncode in (0, 3), result.stderr
    return result.returncode


def test_whatif_agrees_with_check_and_stores_nothing(tmp_path: Path) -> None:
    coord = start_coordinator(tmp_path, "--allow-replayed")
    address = coord.address
    db = tmp_path / "coordinator.db"

    def agent(name: str, dump: Path) -> Daemon:
        return start_agent(
            tmp_path, address, name, "--replay-dump", str(dump), "--interval", "5", cluster="lab"
        )

    agents = [
        agent("zen3", ZEN3),
        agent("zen5", ZEN5),
        start_agent(tmp_path, address, "intel-1", "--replay-dump", str(INTEL), cluster="other"),
    ]
    try:
        wait_until(lambda: len(cli_json(address, "hosts")) == 3, what="three hosts")
        for vm, boot in (("vm-zen3", "zen3"), ("vm-zen5", "zen5")):
            r = run_cli(
                "vm", "register", vm, "--cluster", "lab", "--boot-host", boot,
                "--coordinator", address,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
        listed = {v["name"]: v for v in cli_json(address, "vm", "list", "--cluster", "lab")}
        assert listed["vm-zen3"]["offline_action"] == "SAVE"
        assert listed["vm-zen5"]["offline_action"] == "SHUTDOWN"
        sources = {"vm-zen3": "zen3", "vm-zen5": "zen5"}
        snapshot = stored(db)
        policy = cli_json(address, "policy", "show", "--cluster", "lab")

        # A host that accepts every VM (check says so): no VM loses SAVE, exit 0.
        same = f"dump:{ZEN5}"
        assert all(check_code(address, s, same) == 0 for s in sources.values())
        code, doc = whatif(address, "--add", same)
        assert code == 0 and doc["lose_save"] == [], doc
        before = {v["vm"]: v["before"]["offline_action"] for v in doc["vms"]}
        assert before == {n: v["offline_action"] for n, v in listed.items()}  # as stored
        assert doc["before"]["action"] == policy["action"]
        assert doc["after"]["hosts"] == sorted(["zen3", "zen5", same])
        assert doc["stored"] is False

        # An older host: exactly the SAVE VMs that check says it refuses lose SAVE, exit 3.
        older = f"dump:{DEV_DUMP}"
        refused = {vm for vm, s in sources.items() if check_code(address, s, older) == 3}
        assert refused, "the older dump must refuse a VM for this test to mean anything"
        code, doc = whatif(address, "--add", older)
        expected = sorted(vm for vm in refused if listed[vm]["offline_action"] == "SAVE")
        assert code == 3 and doc["lose_save"] == expected, doc
        for v in doc["vms"]:
            assert (older in v["after"]["refusing_hosts"]) == (v["vm"] in refused), v
        table = run_cli("whatif", "--cluster", "lab", "--add", older, "--coordinator", address)
        assert table.returncode == 3
        assert f"Would lose SAVE: {', '.join(expected)}" in table.stdout, table.stdout
        assert "nothing is stored" in table.stdout
        assert DEV_DUMP.parent.name not in table.stdout  # a dump shows by its file name

        # A model is a host too; a model that refuses every VM of the cluster.
        code, doc = whatif(address, "--add", "model:qemu/EPYC")
        assert code == 3 and "model:qemu/EPYC" in doc["after"]["hosts"]

        # Removing the oldest host: the VMs it refused regain SAVE after a power cycle
        # (here even without one: the host that refused them is gone).
        code, doc = whatif(address, "--remove", "zen3")
        assert code == 0, doc
        shut = sorted(n for n, v in listed.items() if v["offline_action"] == "SHUTDOWN")
        assert doc["regain_save_after_power_cycle"] == shut == ["vm-zen5"]
        zen3_vm = next(v for v in doc["vms"] if v["vm"] == "vm-zen3")
        assert zen3_vm["power_cycle_into"] == "the new cluster baseline"  # its host is gone
        assert doc["after"]["hosts"] == ["zen5"]

        assert stored(db) == snapshot  # no host, VM, policy version or event changed
        assert cli_json(address, "policy", "show", "--cluster", "lab") == policy

        # Maintenance: a host in maintenance has no say, before or after.
        on = run_cli("host", "maintenance", "zen3", "on", "--coordinator", address)
        assert on.returncode == 0, on.stderr
        snapshot = stored(db)
        code, doc = whatif(address, "--add", same)
        assert doc["before"]["hosts"] == ["zen5"] and code == 0
        assert {v["vm"]: v["before"]["offline_action"] for v in doc["vms"]} == {
            "vm-zen3": "SAVE",
            "vm-zen5": "SAVE",
        }
        # ...and a dump of the same processor outside maintenance counts again.
        code, doc = whatif(address, "--add", f"dump:{ZEN3}")
        assert code == 3 and doc["lose_save"] == ["vm-zen5"], doc

        # Under the KVM rules too (decided by the KVM table).
        code, doc = whatif(address, "--add", same, "--hypervisor", "kvm")
        assert doc["view"].startswith("kvm"), doc["view"]

        # Bad input: one line, exit 2, nothing stored.
        for args, words in (
            (("--cluster", "nope", "--add", same), "nope"),
            (("--cluster", "lab", "--remove", "ghost"), "ghost"),
            (("--cluster", "lab", "--remove", "intel-1"), "cluster other"),
            (("--cluster", "lab", "--add", f"dump:{DUMPS / 'bad-aida-garbage.txt'}"), "bad-aida"),
            (("--cluster", "lab", "--add", "model:no-such-cpu"), "no-such-cpu"),
            (("--cluster", "lab", "--add", "zen5"), "dump:PATH"),
            (("--cluster", "lab", "--add", same, "--add", same), "twice"),
            (("--cluster", "lab"), "nothing to change"),
        ):
            result = run_cli("whatif", *args, "--coordinator", address)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            assert words in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert stored(db) == snapshot
    finally:
        for daemon in agents:
            daemon.kill()
        coord.stop()


def test_whatif_on_the_milan_and_rome_cluster(tmp_path: Path) -> None:
    """Two Milan hosts and a Rome host (shared real dumps), VMs of every kind, a pin."""
    milan, rome = shared_dump(MILAN), shared_dump(ROME)
    coord = start_coordinator(tmp_path, "--allow-replayed")
    address = coord.address
    db = tmp_path / "coordinator.db"

    def agent(name: str, dump: Path) -> Daemon:
        return start_agent(tmp_path, address, name, "--replay-dump", str(dump), "--interval", "5")

    agents = [agent("milan-1", milan), agent("milan-2", milan), agent("rome-1", rome)]
    try:
        wait_until(lambda: len(cli_json(address, "hosts")) == 3, what="three hosts")
        pinned = run_cli(
            "cluster", "baseline", "pin", "prod", "--from", "model:qemu/EPYC-Rome",
            "--coordinator", address,
        )  # fmt: skip
        assert pinned.returncode == 0, pinned.stderr
        # Each VM with what `check` takes as its source.
        sources = {
            "db-1": ("--boot-host", "milan-1", "milan-1"),
            "app-1": ("--boot-host", "rome-1", "rome-1"),
            "web-1": ("--baseline", "model:qemu/EPYC-Rome", "model:qemu/EPYC-Rome"),
            "big-1": ("--baseline", "model:qemu/EPYC-Milan", "model:qemu/EPYC-Milan"),
            "evc-1": ("--baseline", "cluster", "model:qemu/EPYC-Rome"),  # the pin
        }
        for vm, (flag, value, _) in sources.items():
            r = run_cli(
                "vm", "register", vm, "--cluster", "prod", flag, value, "--coordinator", address
            )
            assert r.returncode == 0, r.stderr
        listed = {v["name"]: v for v in cli_json(address, "vm", "list", "--cluster", "prod")}
        save = {vm for vm, v in listed.items() if v["offline_action"] == "SAVE"}
        assert listed["db-1"]["refusing_hosts"] == ["rome-1"] and "db-1" not in save
        assert {"app-1", "web-1", "evc-1"} <= save
        snapshot = stored(db)
        policy = cli_json(address, "policy", "show", "--cluster", "prod")

        # Another Milan accepts every VM: no VM loses SAVE.
        another = f"dump:{milan}"
        assert all(check_code(address, s, another) == 0 for *_, s in sources.values())
        code, doc = whatif(address, "--cluster", "prod", "--add", another)
        assert code == 0 and doc["lose_save"] == [], doc
        assert doc["after"]["below_pinned_baseline"] == []

        # An older processor (QEMU's first EPYC, Naples): exactly the SAVE VMs check says
        # it refuses lose SAVE, and it is below the pin.
        older = "model:qemu/EPYC"
        refused = {vm for vm, (*_, s) in sources.items() if check_code(address, s, older) == 3}
        code, doc = whatif(address, "--cluster", "prod", "--add", older)
        assert code == 3
        assert doc["lose_save"] == sorted(refused & save) != [], doc
        assert doc["after"]["below_pinned_baseline"] == [older]
        assert doc["pinned_baseline"] == "model:qemu/EPYC-Rome"
        by_vm = {v["vm"]: v for v in doc["vms"]}
        assert by_vm["evc-1"]["power_cycle_into"] == "the pinned baseline"
        # Under the new (Naples-level) baseline a baseline VM would be SAVE again.
        assert by_vm["web-1"]["power_cycle_into"] == "the new cluster baseline"
        assert by_vm["web-1"]["after_power_cycle"]["offline_action"] == "SAVE"

        # Removing the oldest host: the VMs only it refused regain SAVE after a power cycle.
        code, doc = whatif(address, "--cluster", "prod", "--remove", "rome-1")
        assert code == 0, doc
        only_rome = sorted(vm for vm, v in listed.items() if v["refusing_hosts"] == ["rome-1"])
        assert doc["regain_save_after_power_cycle"] == only_rome, doc
        assert {"db-1", "big-1"} <= set(only_rome)
        assert doc["before"]["action"] == policy["action"] == "SHUTDOWN"
        assert doc["after"]["action"] == "SAVE"
        assert len(doc["baseline_gains"]) > 0 and doc["baseline_loses"] == []
        assert stored(db) == snapshot
        assert cli_json(address, "policy", "show", "--cluster", "prod") == policy

        # Rome in maintenance: it has no say before or after, and its removal changes no VM.
        on = run_cli("host", "maintenance", "rome-1", "on", "--coordinator", address)
        assert on.returncode == 0, on.stderr
        code, doc = whatif(address, "--cluster", "prod", "--remove", "rome-1")
        assert doc["before"]["hosts"] == ["milan-1", "milan-2"] and code == 0
        assert all(v["before"] == v["after"] for v in doc["vms"]), doc["vms"]
    finally:
        for daemon in agents:
            daemon.kill()
        coord.stop()
