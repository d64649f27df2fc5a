"""Agents and the CLI given several coordinators (`--coordinator A,B`) move on when one fails.

Two coordinators on one PostgreSQL database are one truth: a host is stale only when
no coordinator heard from it, because its last-seen time is the shared row's. Killing
the coordinator an agent reports to must move the agent to the other one with no stale
mark and no SHUTDOWN; the agent must also start with the first address dead, wait out
every coordinator being down, and the CLI must answer from the first one that answers.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.support.certs import TestCA
from tests.support.cli_reads import events, hosts, last_seen, state, wait_until
from tests.support.daemons import Daemon, free_port, run_cli, start_agent, start_coordinator
from tests.support.paths import FIXTURES
from tests.support.postgres import PostgresServer

DEV_DUMP = FIXTURES / "processors" / "dev-amd-epyc-kvm.cpuid-r.txt"
INTERVAL = "1"  # a host is stale after 3 missed heartbeats: 3 s of silence


def agent(
    folder: Path, coordinators: str, host: str = "h1", state_file: Path | None = None
) -> Daemon:
    extra = ["--state-file", str(state_file)] if state_file else []
    return start_agent(
        folder,
        coordinators,
        host,
        "--interval",
        INTERVAL,
        "--replay-dump",
        str(DEV_DUMP),
        *extra,
    )


@pytest.mark.e2e
def test_killing_the_agents_coordinator_moves_it_on_without_a_false_shutdown(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.database()
    # B starts first, so B holds the stale-sweep lease while h1 reports to A.
    b = start_coordinator(tmp_path, "--allow-replayed", db=url, log="b.log")
    a = start_coordinator(tmp_path, "--allow-replayed", db=url, log="a.log")
    state_file = tmp_path / "policy.json"
    h1 = agent(tmp_path, f"{a.address},{b.address}", state_file=state_file)
    try:
        wait_until(lambda: state(state_file).get("action") == "SAVE", "the agent's policy SAVE")
        wait_until(lambda: hosts(b.address).get("h1", {}).get("status") == "online", "h1 online")
        first_version = state(state_file)["policy_version"]
        # B sweeps with the last-seen times A writes: more than three intervals of
        # heartbeats to A alone leave h1 online.
        for _ in range(4):
            seen = last_seen(b.address, "h1")
            wait_until(lambda seen=seen: last_seen(b.address, "h1") > seen, "a heartbeat via A")
        assert hosts(b.address)["h1"]["status"] == "online"
        assert not any("switching" in line for line in h1.lines), h1.output()  # A is kept

        killed_at = time.time()
        a.stop(signal.SIGKILL)
        # The next heartbeat lands on B: the shared last-seen time moves past the kill.
        wait_until(lambda: last_seen(b.address, "h1") > killed_at, "a heartbeat through B")
        print(f"failover: h1 heard through B {time.time() - killed_at:.2f}s after the kill")

        # Policy changes reach the agent's state file through B.
        pin = run_cli("policy", "pin", "--cluster", "prod", "SAVE", "--coordinator", b.address)
        assert pin.returncode == 0, pin.stderr
        wait_until(lambda: state(state_file).get("pinned") is True, "the pin in the state file")
        assert state(state_file)["policy_version"] > first_version
        assert state(state_file)["action"] == "SAVE"

        # More than the three intervals that would make h1 stale, heard through B alone.
        for _ in range(4):
            seen = last_seen(b.address, "h1")
            wait_until(lambda seen=seen: last_seen(b.address, "h1") > seen, "another heartbeat")
        assert hosts(b.address)["h1"]["status"] == "online"

        log = events(b.address)
        assert not [e for e in log if e["host_id"] == "h1" and "stale" in e["message"]], log
        shutdown = [e for e in log if "SHUTDOWN" in e["message"]]
        assert not shutdown, shutdown  # no policy version ever said SHUTDOWN
        assert state(state_file)["stale_hosts"] == []

        # The switch is told once, naming both coordinators.
        switches = [line for line in h1.lines if f"switching to {b.address}" in line]
        assert len(switches) == 1, h1.output()
        assert a.address in switches[0]
    finally:
        h1.kill()
        b.stop()
        a.kill()


@pytest.mark.e2e
def test_an_agent_whose_first_coordinator_is_dead_reports_to_the_next(tmp_path: Path) -> None:
    live = start_coordinator(tmp_path, "--allow-replayed")
    dead = f"127.0.0.1:{free_port()}"
    state_file = tmp_path / "policy.json"
    h1 = agent(tmp_path, f"{dead},{live.address}", state_file=state_file)
    try:
        wait_until(lambda: hosts(live.address).get("h1", {}).get("status") == "online", "h1")
        wait_until(lambda: state(state_file).get("action") == "SAVE", "the policy via the live one")
        assert any(f"{dead} failed" in line for line in h1.lines), h1.output()
    finally:
        h1.kill()
        live.stop()


@pytest.mark.e2e
def test_an_agent_waits_out_every_coordinator_down_and_joins_the_one_that_returns(
    tmp_path: Path,
) -> None:
    first, second = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    state_file = tmp_path / "policy.json"
    h1 = agent(tmp_path, f"{first},{second}", state_file=state_file)
    coordinator: Daemon | None = None
    try:
        wait_until(lambda: "no coordinator answers" in h1.output(), "the all-down warning")
        assert h1.output().count("no coordinator answers") == 1, h1.output()  # said once
        coordinator = start_coordinator(tmp_path, "--allow-replayed", listen=second)
        wait_until(lambda: hosts(second).get("h1", {}).get("status") == "online", "h1 joined")
        wait_until(lambda: state(state_file).get("action") == "SAVE", "the policy")
        assert f"coordinator {second} answers again" in h1.output()
    finally:
        h1.kill()
        if coordinator is not None:
            coordinator.stop()


@pytest.mark.e2e
def test_cli_commands_answer_from_the_first_coordinator_that_answers(tmp_path: Path) -> None:
    live = start_coordinator(tmp_path)
    dead, dead_too = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    try:
        done = run_cli("hosts", "--coordinator", f"{dead},{live.address}", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == []
        assert done.stderr == ""  # a dead coordinator passed over is no error
        by_env = run_cli("hosts", env={"CPUCOMPAT_COORDINATOR": f"{dead},{live.address}"})
        assert by_env.returncode == 0, by_env.stderr

        none = run_cli("hosts", "--coordinator", f"{dead},{dead_too}")
        assert none.returncode == 1
        assert none.stderr.count("\n") == 1, none.stderr
        assert dead in none.stderr and dead_too in none.stderr
    finally:
        live.stop()


@pytest.mark.e2e
def test_each_coordinators_certificate_is_checked_against_its_own_address(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "pki")
    tls_ca = ["--tls-ca", str(ca.ca_path)]

    def tls(cert: tuple[Path, Path]) -> list[str]:
        return ["--tls-cert", str(cert[0]), "--tls-key", str(cert[1]), *tls_ca]

    # A's certificate names another host, not the 127.0.0.1 the agents dial; B's names it.
    misnamed = tls(ca.issue("coordinator-a", dns=["coordinator-a.invalid"]))
    named = tls(ca.issue("coordinator-b", ip=["127.0.0.1"]))
    admin, host = tls(ca.issue("ops")), tls(ca.issue("host-a"))
    a = start_coordinator(tmp_path, "--allow-replayed", "--admin", "ops", *misnamed, log="a.log")
    b = start_coordinator(
        tmp_path, "--allow-replayed", "--admin", "ops", *named, db=tmp_path / "b.db", log="b.log"
    )
    both = f"{a.address},{b.address}"
    h1: Daemon | None = None
    try:
        alone = run_cli("hosts", "--coordinator", a.address, *admin)
        assert alone.returncode == 2 and "does not name" in alone.stderr, alone.stderr
        admit = run_cli("cluster", "admit", "prod", "host-a", "--coordinator", both, *admin)
        assert admit.returncode == 0, admit.stderr  # the same client certificate, through B

        h1 = start_agent(
            tmp_path, both, "host-a", "--interval", INTERVAL, "--replay-dump", str(DEV_DUMP), *host
        )

        def listed() -> dict[str, dict]:
            done = run_cli("hosts", "--coordinator", b.address, "--json", *admin)
            assert done.returncode == 0, done.stderr
            return {h["host_id"]: h for h in json.loads(done.stdout)}

        wait_until(lambda: listed().get("host-a", {}).get("status") == "online", "host-a via B")
        assert any(f"coordinator {a.address} failed" in line for line in h1.lines), h1.output()
    finally:
        if h1 is not None:
            h1.kill()
        a.stop()
        b.stop()
