"""Enforcement end to end: the policy follows the processors and reaches every agent."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from cpucompat.agent.profile import Profile
from tests.support.daemons import (
    Daemon,
    free_port,
    run_cli,
    start_agent,
    start_coordinator,
    wait_until,
)
from tests.support.shared import older_processor

pytestmark = pytest.mark.e2e


def policy(address: str) -> dict:
    result = run_cli("policy", "show", "--cluster", "prod", "--json", "--coordinator", address)
    assert result.returncode in (0, 3), result.stderr
    return json.loads(result.stdout)


def state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def test_policy_follows_the_processors_and_reaches_every_agent(
    tmp_path: Path, live_host_dump: Path, live_host_profile: Profile, coordinator_db: str
) -> None:
    older, lacking = older_processor(live_host_profile)
    coord = start_coordinator(tmp_path, "--allow-replayed", db=coordinator_db)
    address = coord.address
    hooks = {h: tmp_path / f"hook-{h}.log" for h in ("new-1", "new-2")}
    states = {h: tmp_path / f"state-{h}.json" for h in ("new-1", "new-2")}

    def agent(host: str, *extra: str) -> Daemon:
        return start_agent(tmp_path, address, host, "--interval", "0.5", *extra)

    hook = 'echo "$CPUCOMPAT_CLUSTER $CPUCOMPAT_ACTION $CPUCOMPAT_HYPERV_OFFLINE_ACTION" >> {}'
    agents = {
        "new-1": agent(
            "new-1",
            "--state-file",
            str(states["new-1"]),
            "--on-policy-change",
            hook.format(hooks["new-1"]),
        ),
        "new-2": agent(
            "new-2",
            "--replay-dump",
            str(live_host_dump),  # new-1's twin, recorded from this host just now
            "--state-file",
            str(states["new-2"]),
            "--on-policy-change",
            hook.format(hooks["new-2"]),
        ),
    }
    try:
        # Two identical processors: save state is safe.
        wait_until(lambda: policy(address).get("host_count") == 2, what="both hosts counted")
        assert policy(address)["action"] == "SAVE"
        for host in states:
            wait_until(
                lambda h=host: (state(states[h]) or {}).get("action") == "SAVE",
                what=f"{host} state SAVE",
            )

        run_cli(
            "vm",
            "register",
            "web-1",
            "--cluster",
            "prod",
            "--boot-host",
            "new-1",
            "--coordinator",
            address,
        )

        # An older processor joins: SHUTDOWN at once, on every agent, hook run.
        agents["old"] = agent("old", "--replay-dump", str(older))
        wait_until(
            lambda: policy(address)["action"] == "SHUTDOWN",
            what="SHUTDOWN after the old host joined",
        )
        doc = policy(address)
        assert doc["hyperv_offline_action"] == 2
        assert any(p["target"] == "old" for p in doc["blocking_pairs"])
        for host in states:
            wait_until(
                lambda h=host: (state(states[h]) or {}).get("action") == "SHUTDOWN",
                what=f"{host} state",
            )
            wait_until(
                lambda h=host: "prod SHUTDOWN 2" in hooks[h].read_text(), what=f"{host} hook ran"
            )
            assert (state(states[host]) or {})["hyperv_offline_action"] == 2

        # Fail-over plans: the VM booted on a newer host may not be saved onto the old one.
        to_old = run_cli(
            "failover", "plan", "web-1", "--to", "old", "--json", "--coordinator", address
        )
        assert to_old.returncode == 3
        plan = json.loads(to_old.stdout)
        assert plan["action"] == "SHUTDOWN"
        reasons = {r["code"]: r for r in plan["verdict"]["reasons"]}
        if lacking:  # same vendor: refused for features this host has and the old one lacks
            missing = set(reasons["MISSING_FEATURES"]["features"])
            assert missing and missing <= lacking, (missing, lacking)
        else:
            assert "VENDOR_MISMATCH" in reasons
        to_twin = run_cli(
            "failover", "plan", "web-1", "--to", "new-2", "--json", "--coordinator", address
        )
        assert to_twin.returncode == 0 and json.loads(to_twin.stdout)["action"] == "SAVE"

        # Pinning SAVE on a mixed cluster is refused, naming the blocking pairs.
        pin = run_cli("policy", "pin", "--cluster", "prod", "SAVE", "--coordinator", address)
        assert pin.returncode == 3
        assert "old" in pin.stderr and len(pin.stderr.strip().splitlines()) == 1
        assert policy(address)["action"] == "SHUTDOWN"

        # The old host leaves for good: back to SAVE.
        agents.pop("old").stop()
        removed = run_cli("host", "remove", "old", "--coordinator", address)
        assert removed.returncode == 0, removed.stderr
        wait_until(lambda: policy(address)["action"] == "SAVE", what="SAVE after removal")
        for host in states:
            wait_until(
                lambda h=host: (state(states[h]) or {}).get("action") == "SAVE",
                what=f"{host} back to SAVE",
            )

        # Both flips are events with their reasons.
        events = json.loads(
            run_cli("events", "--cluster", "prod", "--json", "--coordinator", address).stdout
        )["events"]
        flips = [
            e
            for e in events
            if e["kind"] == "policy_changed" and "new_action" in e.get("details", {})
        ]
        actions = [e["details"]["new_action"] for e in flips]
        assert actions == ["SAVE", "SHUTDOWN", "SAVE"]
        assert "mixed" in flips[-2]["details"]["reason"]

        # An agent killed past the stale limit: unknown means shutdown.
        agents.pop("new-2").kill()
        wait_until(lambda: policy(address)["action"] == "SHUTDOWN", what="SHUTDOWN on a stale host")
        assert policy(address)["stale_hosts"] == ["new-2"]
        wait_until(
            lambda: (state(states["new-1"]) or {}).get("action") == "SHUTDOWN", what="new-1 told"
        )
    finally:
        for a in agents.values():
            a.kill()
        coord.stop()


def test_failing_hook_never_stops_the_agent(tmp_path: Path) -> None:
    coord = start_coordinator(tmp_path)
    state_file = tmp_path / "s.json"
    agent = start_agent(
        tmp_path,
        coord.address,
        "h",
        "--interval",
        "0.5",
        "--state-file",
        str(state_file),
        "--on-policy-change",
        "exit 7",
    )
    try:
        wait_until(lambda: (state(state_file) or {}).get("action") == "SAVE", what="state written")
        pin = run_cli(
            "policy", "pin", "--cluster", "prod", "SHUTDOWN_FORCED", "--coordinator", coord.address
        )
        assert pin.returncode == 0, pin.stderr
        wait_until(
            lambda: (state(state_file) or {}).get("action") == "SHUTDOWN_FORCED",
            what="pinned action",
        )
        assert agent.proc.poll() is None
        assert "policy hook failed" in agent.output()
        unpin = run_cli("policy", "unpin", "--cluster", "prod", "--coordinator", coord.address)
        assert unpin.returncode == 0
        wait_until(lambda: (state(state_file) or {}).get("action") == "SAVE", what="unpinned")
    finally:
        agent.kill()
        coord.stop()


def test_policy_export_prints_hyperv_commands(tmp_path: Path, live_host_dump: Path) -> None:
    coord = start_coordinator(tmp_path, "--allow-replayed")
    agent = start_agent(
        tmp_path,
        coord.address,
        "h1",
        "--replay-dump",
        str(live_host_dump),
        "--state-file",
        str(tmp_path / "s.json"),
    )
    try:
        wait_until(lambda: policy(coord.address).get("host_count") == 1, what="host counted")
        for vm in ("sql-1", "web-1"):
            r = run_cli(
                "vm",
                "register",
                vm,
                "--cluster",
                "prod",
                "--boot-host",
                "h1",
                "--coordinator",
                coord.address,
            )
            assert r.returncode == 0, r.stderr
        export = run_cli(
            "policy",
            "export",
            "--cluster",
            "prod",
            "--format",
            "powershell",
            "--coordinator",
            coord.address,
        )
        assert export.returncode == 0
        lines = [line for line in export.stdout.splitlines() if not line.startswith("#")]
        assert lines == [
            "Get-ClusterResource -Name 'Virtual Machine sql-1' |",
            "    Set-ClusterParameter -Name OfflineAction -Value 1",
            "Get-ClusterResource -Name 'Virtual Machine web-1' |",
            "    Set-ClusterParameter -Name OfflineAction -Value 1",
        ]
        # Registering again after a live move keeps the boot requirement.
        again = run_cli(
            "vm",
            "register",
            "web-1",
            "--cluster",
            "prod",
            "--boot-host",
            "h1",
            "--json",
            "--coordinator",
            coord.address,
        )
        assert json.loads(again.stdout)["requirement_updated"] is False
        rebooted = run_cli(
            "vm",
            "register",
            "web-1",
            "--cluster",
            "prod",
            "--boot-host",
            "h1",
            "--rebooted",
            "--json",
            "--coordinator",
            coord.address,
        )
        assert json.loads(rebooted.stdout)["requirement_updated"] is True
    finally:
        agent.kill()
        coord.stop()


def test_agent_resubscribes_after_the_coordinator_restarts(
    tmp_path: Path, coordinator_db: str
) -> None:

    address = f"127.0.0.1:{free_port()}"
    coord = start_coordinator(tmp_path, listen=address, log="c1.log", db=coordinator_db)
    state_file = tmp_path / "s.json"
    agent = start_agent(
        tmp_path, address, "h", "--interval", "0.5", "--state-file", str(state_file)
    )
    try:
        wait_until(lambda: (state(state_file) or {}).get("action") == "SAVE", what="first policy")
        coord.stop(signal.SIGKILL)
        coord = start_coordinator(tmp_path, listen=address, log="c2.log", db=coordinator_db)
        pin = run_cli("policy", "pin", "--cluster", "prod", "SHUTDOWN", "--coordinator", address)
        assert pin.returncode == 0, pin.stderr
        wait_until(
            lambda: (state(state_file) or {}).get("action") == "SHUTDOWN",
            what="policy after restart",
        )
    finally:
        agent.kill()
        coord.stop()
