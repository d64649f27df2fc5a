"""A pinned cluster baseline, end to end: real coordinator, agents replaying real dumps.

Pinned on two Milan hosts, a joining Rome host is flagged BELOW_BASELINE with an event
and refuses the VMs registered under the pin; unpinning lifts the flag; the pin
survives a coordinator restart.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.shared import shared_dump

MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"


def _hosts(address: str) -> int:
    listed = run_cli("hosts", "--json", "--coordinator", address)
    return len(json.loads(listed.stdout)) if listed.returncode == 0 else -1


def _show(address: str) -> tuple[int, dict]:
    shown = run_cli("cluster", "baseline", "show", "c", "--json", "--coordinator", address)
    assert shown.returncode in (0, 3), shown.stderr
    return shown.returncode, json.loads(shown.stdout)


def test_pinned_on_milan_flags_a_joining_rome_host(tmp_path: Path) -> None:
    milan, rome = shared_dump(MILAN), shared_dump(ROME)
    db = tmp_path / "coordinator.db"
    coordinator = start_coordinator(tmp_path, "--allow-replayed", db=db)
    agents: list[Daemon] = []
    try:
        address = coordinator.address
        for host in ("milan-1", "milan-2"):
            agents.append(
                start_agent(tmp_path, address, host, "--replay-dump", str(milan), cluster="c")
            )
        wait_until(lambda: _hosts(address) == 2, what="both Milan hosts registered")
        assert _show(address) == (0, {"cluster": "c", "pinned": False})

        pinned = run_cli("cluster", "baseline", "pin", "c", "--json", "--coordinator", address)
        assert pinned.returncode == 0, pinned.stderr
        pin = json.loads(pinned.stdout)
        offline = json.loads(run_cli("baseline", f"dump:{milan}").stdout)
        assert pin["features"] == offline["features"]  # the cluster's common baseline now
        assert [h["status"] for h in pin["hosts"]] == ["OK", "OK"]

        registered = run_cli(
            "vm", "register", "web-1", "--cluster", "c", "--baseline", "cluster",
            "--coordinator", address,
        )  # fmt: skip
        assert registered.returncode == 0, registered.stderr

        agents.append(
            start_agent(tmp_path, address, "rome-1", "--replay-dump", str(rome), cluster="c")
        )
        wait_until(lambda: _hosts(address) == 3, what="the Rome host registered")
        code, doc = _show(address)
        assert code == 3
        status = {h["host"]: h for h in doc["hosts"]}
        assert status["rome-1"]["status"] == "BELOW_BASELINE"
        assert {"vaes", "pku"} <= set(status["rome-1"]["missing"])
        assert status["milan-1"]["status"] == status["milan-2"]["status"] == "OK"

        events = json.loads(
            run_cli("events", "--json", "--coordinator", address, "--cluster", "c").stdout
        )["events"]
        flagged = [e for e in events if e["kind"] == "host_below_baseline"]
        assert [e["host_id"] for e in flagged] == ["rome-1"]
        assert any(e["kind"] == "baseline_pinned" for e in events)

        targets = run_cli("vm", "targets", "web-1", "--json", "--coordinator", address)
        accepted = json.loads(targets.stdout)["accepted"]
        assert sorted(accepted) == ["milan-1", "milan-2"]  # Rome is no target for it

        unpinned = run_cli("cluster", "baseline", "unpin", "c", "--coordinator", address)
        assert unpinned.returncode == 0, unpinned.stderr
        assert _show(address) == (0, {"cluster": "c", "pinned": False})
        again = run_cli("cluster", "baseline", "unpin", "c", "--coordinator", address)
        assert again.returncode == 2 and "no pinned baseline" in again.stderr

        # A pin from a named baseline, kept across a coordinator restart.
        named = run_cli(
            "cluster", "baseline", "pin", "c", "--from", "model:qemu/EPYC-Rome",
            "--coordinator", address,
        )  # fmt: skip
        assert named.returncode == 0, named.stderr
    finally:
        for agent in agents:
            agent.stop()
        coordinator.stop()
    restarted = start_coordinator(tmp_path, "--allow-replayed", db=db, log="restarted.log")
    try:
        code, doc = _show(restarted.address)
        assert doc["source"] == "model:qemu/EPYC-Rome"
        assert {h["host"] for h in doc["hosts"]} == {"milan-1", "milan-2", "rome-1"}
    finally:
        restarted.stop()


def test_register_under_an_unpinned_cluster_is_refused(tmp_path: Path) -> None:
    coordinator = start_coordinator(tmp_path)
    try:
        result = run_cli(
            "vm", "register", "web-1", "--cluster", "c", "--baseline", "cluster",
            "--coordinator", coordinator.address,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert "no pinned baseline" in result.stderr and "cluster baseline pin" in result.stderr
        pinned = run_cli("cluster", "baseline", "pin", "c", "--coordinator", coordinator.address)
        assert pinned.returncode == 2 and "no hosts" in pinned.stderr
    finally:
        coordinator.stop()
