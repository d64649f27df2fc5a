"""Several coordinators on one PostgreSQL database: one truth.

Each coordinator mirrors its tables in memory; what another commits reaches it by
LISTEN/NOTIFY, so every coordinator answers alike, a policy pinned on one reaches the
agents watching another, and the stale sweep runs on one coordinator at a time (a
lease that passes on when its holder dies). Runs on the throwaway server of
`tests/postgres.py` (skipped only without PostgreSQL).
"""

from __future__ import annotations

import json
import queue
import signal
from pathlib import Path

import pytest

from cpucompat.coordinator.domain.hosts import EventKind
from cpucompat.coordinator.storage.postgres import PostgresStorage
from cpucompat.coordinator.storage.postgres.store import LOCK_CLASS_LEASE
from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import FIXTURES
from tests.support.postgres import PostgresServer
from tests.support.shared import MILAN, ROME, shared_dump

DEV_DUMP = FIXTURES / "processors" / "dev-amd-epyc-kvm.cpuid-r.txt"


def test_announcements_reach_the_other_coordinators_only_once_committed(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.database()
    one, two = PostgresStorage(url), PostgresStorage(url)
    heard_by_two: queue.Queue[tuple[str, str]] = queue.Queue()
    heard_by_one: queue.Queue[tuple[str, str]] = queue.Queue()
    try:
        two.subscribe(lambda topic, key: heard_by_two.put((topic, key)))
        one.subscribe(lambda topic, key: heard_by_one.put((topic, key)))
        # Once listening: reload everything (what was committed before was not announced).
        assert heard_by_two.get(timeout=10) == heard_by_one.get(timeout=10) == ("*", "")
        with pytest.raises(RuntimeError), one.unit_of_work() as uow:
            uow.announce("host", "rolled-back")
            raise RuntimeError("refused")
        with one.unit_of_work() as uow:
            uow.events.add(1.0, "prod", "h1", EventKind.HOST_JOINED, "joined", {})
            uow.announce("host", "h1")
            uow.announce("host", "h1")  # once per unit of work
        assert heard_by_two.get(timeout=10) == ("host", "h1")
        with two.unit_of_work() as uow:
            uow.announce("policy", "prod")
        assert heard_by_one.get(timeout=10) == ("policy", "prod")
        # Nobody hears its own commits, nor a rolled-back one, nor one twice.
        with one.unit_of_work() as uow:
            uow.announce("vm", "marker")
        assert heard_by_two.get(timeout=10) == ("vm", "marker")
        assert heard_by_two.empty() and heard_by_one.empty()
    finally:
        one.close()
        two.close()


def test_a_lease_is_held_by_one_coordinator_and_passes_on_when_it_goes(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.database()
    one, two = PostgresStorage(url), PostgresStorage(url)
    try:
        assert one.holds_lease("stale-sweep") is True
        assert one.holds_lease("stale-sweep") is True  # still ours
        assert two.holds_lease("stale-sweep") is False
        assert two.holds_lease("other-job") is True  # leases are per job
        one.close()  # the holder goes (kill -9 ends its session: the server frees it soon after)
        wait_until(lambda: two.holds_lease("stale-sweep"), what="the lease passed on")
    finally:
        one.close()
        two.close()


def lease_holders(server: PostgresServer, url: str) -> int:
    """Sessions holding the stale-sweep lease (a session advisory lock) on the database."""
    name = url.split("@/", 1)[1].split("?", 1)[0]
    count = server.psql(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        f"WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {LOCK_CLASS_LEASE} "
        f"AND d.datname = '{name}'"
    )
    return int(count)


def hosts(address: str) -> dict[str, dict]:
    result = run_cli("hosts", "--coordinator", address, "--json")
    assert result.returncode == 0, result.stderr
    return {h["host_id"]: h for h in json.loads(result.stdout)}


def policy(address: str) -> dict:
    result = run_cli("policy", "show", "--cluster", "prod", "--coordinator", address, "--json")
    assert result.returncode in (0, 3), result.stderr
    return json.loads(result.stdout)


def state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.e2e
def test_two_coordinators_answer_alike_push_policy_and_sweep_once(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.database()
    a = start_coordinator(tmp_path, "--allow-replayed", db=url, log="a.log")
    b = start_coordinator(tmp_path, "--allow-replayed", db=url, log="b.log")
    coordinators = [a, b]
    state_file = tmp_path / "state-h1.json"
    agents: list[Daemon] = [
        start_agent(
            tmp_path,
            a.address,
            "h1",
            "--interval",
            "0.5",
            "--replay-dump",
            str(DEV_DUMP),
            "--state-file",
            str(state_file),
        ),
        start_agent(tmp_path, b.address, "h2", "--interval", "0.5", "--replay-dump", str(DEV_DUMP)),
    ]
    try:
        # Each agent reports to one coordinator; both coordinators list both hosts.
        for c in coordinators:
            wait_until(lambda c=c: set(hosts(c.address)) == {"h1", "h2"}, what="both hosts")
        wait_until(lambda: policy(a.address).get("host_count") == 2, what="A counts both")
        assert policy(a.address)["version"] == policy(b.address)["version"]
        wait_until(lambda: state(state_file).get("action") == "SAVE", what="h1 SAVE")

        # Pinned through B: h1, watching A, hears it.
        pin = run_cli("policy", "pin", "--cluster", "prod", "SHUTDOWN", "--coordinator", b.address)
        assert pin.returncode == 0, pin.stderr
        wait_until(lambda: state(state_file).get("action") == "SHUTDOWN", what="h1 SHUTDOWN")
        assert policy(a.address)["version"] == policy(b.address)["version"]
        unpin = run_cli("policy", "unpin", "--cluster", "prod", "--coordinator", a.address)
        assert unpin.returncode == 0, unpin.stderr
        wait_until(lambda: state(state_file).get("action") == "SAVE", what="h1 SAVE again")

        # One sweeper: A, started first, holds the lease; B waits for it.
        assert lease_holders(postgres_server, url) == 1
        # A dies holding the lease; h2 goes silent and B, taking the lease over, marks it
        # stale, once.
        a.stop(signal.SIGKILL)
        agents[1].kill()
        wait_until(lambda: hosts(b.address)["h2"]["status"] == "stale", what="h2 stale")
        events = run_cli("events", "--coordinator", b.address, "--json", "--limit", "1000")
        stale = [
            e
            for e in json.loads(events.stdout)["events"]
            if e["host_id"] == "h2" and "stale" in e["message"]
        ]
        assert len(stale) == 1, stale
    finally:
        for agent in agents:
            agent.kill()
        for c in coordinators:
            c.stop()


def state_action(path: Path, vm: str) -> str | None:
    return next((v["offline_action"] for v in state(path).get("vms", []) if v["vm"] == vm), None)


@pytest.mark.e2e
def test_vm_actions_changed_through_one_coordinator_reach_agents_watching_another(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """A VM registered, moved and removed through B: milan-1's agent, watching A, gets
    each of its VMs' actions from A's mirror, refreshed by B's announcements."""
    # The dumps first: without ../shared the test skips before any daemon starts.
    milan, rome = str(shared_dump(MILAN)), str(shared_dump(ROME))
    url = postgres_server.database()
    a = start_coordinator(tmp_path, "--allow-replayed", db=url, log="a.log")
    b = start_coordinator(tmp_path, "--allow-replayed", db=url, log="b.log")
    state_file = tmp_path / "state-milan-1.json"

    def agent(address: str, name: str, dump: str, *extra: str) -> Daemon:
        # Heartbeats every 5 s: a loaded machine must not make a host stale mid-test.
        return start_agent(tmp_path, address, name, "--replay-dump", dump, "--interval", "5",
                           *extra)  # fmt: skip

    agents = [
        agent(a.address, "milan-1", milan, "--state-file", str(state_file)),
        agent(b.address, "milan-2", milan),
        agent(b.address, "rome-1", rome),
    ]

    def through_b(*args: str) -> None:
        done = run_cli("vm", *args, "--coordinator", b.address)
        assert done.returncode == 0, done.stderr

    try:
        for c in (a, b):
            wait_until(lambda c=c: len(hosts(c.address)) == 3, what="three hosts on each")
        wait_until(lambda: "host_id" in state(state_file), what="milan-1 watching A")
        # Booted on Milan: Rome cannot take it, so SHUTDOWN; it runs on milan-1.
        through_b("register", "db-1", "--cluster", "prod", "--boot-host", "milan-1")
        wait_until(lambda: state_action(state_file, "db-1") == "SHUTDOWN", what="db-1 on A")
        # Moved to milan-2 through B: milan-1's agent no longer applies it ...
        through_b("register", "db-1", "--cluster", "prod", "--boot-host", "milan-2")
        wait_until(lambda: state_action(state_file, "db-1") is None, what="db-1 moved away")
        # ... and back: it does again; removed through B: it is gone from milan-1's list.
        through_b("register", "db-1", "--cluster", "prod", "--boot-host", "milan-1")
        wait_until(lambda: state_action(state_file, "db-1") == "SHUTDOWN", what="db-1 back")
        listed = run_cli("vm", "list", "--json", "--coordinator", a.address)
        assert [(v["name"], v["offline_action"]) for v in json.loads(listed.stdout)] == [
            ("db-1", "SHUTDOWN")
        ]
        through_b("remove", "db-1")
        wait_until(lambda: state_action(state_file, "db-1") is None, what="db-1 removed")
        assert json.loads(run_cli("vm", "list", "--json", "--coordinator", a.address).stdout) == []
    finally:
        for one in agents:
            one.kill()
        for c in (a, b):
            c.stop()
