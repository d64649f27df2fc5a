"""A fleet of real hosts in network namespaces, through faults (issue 13, item 5).

PostgreSQL, two coordinators on it and a dozen agents, each in a namespace of its own
(`tests.support.fleet`), under mutual TLS over 198.18.0.0/15 addresses only. The
"steady" cluster's hosts replay variants of one processor (SAVE while all are fresh);
the "mixed" cluster's replay different processors (SHUTDOWN for its processors), and
swap them mid-run so reports are acknowledged while the faults happen. Then: one agent
cut off, one coordinator killed with -9 and restarted, one coordinator cut off from the
database. Asserted: SHUTDOWN exactly while a host is heard by no coordinator, SAVE when
it returns; no report an agent saw acknowledged is missing from the database; every
agent's state file ends at its cluster's stored policy version; nothing left behind.

Needs root for ``ip netns`` and PostgreSQL's binaries; skips with one line otherwise.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.fleet import (
    MIXED_DUMPS,
    MIXED_SHARED,
    STEADY_DUMPS,
    STEADY_SHARED,
    Fleet,
    pick_dumps,
    poll,
)
from tests.support.netns import PREFIX, ip, require_netns, sweep_stale
from tests.support.postgres import SKIP_REASON, find_binaries

pytestmark = pytest.mark.e2e

STEADY, MIXED = "steady", "mixed"
AGENTS_PER_CLUSTER = 6
# Three intervals (the stale threshold) must outlast a coordinator's failing call to a
# database it lost (the URL's tcp_user_timeout) and the agent's move to the next one.
INTERVAL = 3.0


def saw_shutdown(fleet: Fleet) -> int:
    """How many times the steady cluster's agents have heard SHUTDOWN so far."""
    return sum(a.heard("SHUTDOWN") for a in fleet.in_cluster(STEADY))


@pytest.mark.e2e
def test_a_fleet_in_namespaces_fails_safe_exactly_while_a_host_is_unheard(
    tmp_path: Path,
) -> None:
    require_netns()
    if find_binaries() is None:
        pytest.skip(SKIP_REASON)
    sweep_stale()
    fleet = Fleet(
        tmp_path,
        {
            STEADY: pick_dumps(STEADY_SHARED, STEADY_DUMPS, AGENTS_PER_CLUSTER),
            MIXED: pick_dumps(MIXED_SHARED, MIXED_DUMPS, AGENTS_PER_CLUSTER),
        },
        {STEADY: "SAVE", MIXED: "SHUTDOWN"},
        interval=INTERVAL,
        failover=True,
    )
    try:
        fleet.start()
        poll(fleet.settled, "the fleet to settle")
        # Both coordinators answer the admin seat over mutual TLS, alike.
        for index in (0, 1):
            listed = fleet.cli("hosts", "--coordinator", fleet.coords[index].address, "--json")
            assert listed.returncode == 0, listed.stderr
            assert {h["host_id"] for h in json.loads(listed.stdout)} == {
                a.name for a in fleet.agents
            }
        assert fleet.policy_via(0, STEADY)["version"] == fleet.policy_via(1, STEADY)["version"]

        # 1. One steady host is cut off: heard by no coordinator, so its cluster fails
        # safe; the others hear SHUTDOWN naming it; it comes back and all return to SAVE.
        cut = fleet.in_cluster(STEADY)[1]
        mark = fleet.last_event()
        fleet.cut(cut.link)
        poll(lambda: fleet.policy(STEADY)[0] == "SHUTDOWN", "SHUTDOWN with a host cut off")
        assert fleet.host_status()[cut.name] == "stale"
        others = [a for a in fleet.in_cluster(STEADY) if a is not cut]
        poll(
            lambda: all(a.state().get("stale_hosts") == [cut.name] for a in others),
            "the others to hear SHUTDOWN naming the cut host",
        )
        assert {a.state()["action"] for a in others} == {"SHUTDOWN"}
        assert fleet.stale_events(mark) == [cut.name]
        assert fleet.policy(MIXED)[0] == "SHUTDOWN"
        fleet.heal(cut.link)
        poll(fleet.settled, "SAVE once the host returns")

        # 2. The mixed hosts change processor (each takes the next one's dump): reports
        # acknowledged while coordinator A dies with -9. Every agent lists both
        # coordinators: A's move on to B, nobody goes unheard, nothing fails safe.
        fleet.rotate_processors(MIXED)
        mark, before = fleet.last_event(), saw_shutdown(fleet)
        a_coord = fleet.coords[0]
        assert a_coord.daemon is not None
        a_coord.daemon.kill()
        poll(
            lambda: all(len(a.acknowledged()) >= 2 for a in fleet.in_cluster(MIXED)),
            "the changed processors reported to B",
        )
        poll(fleet.settled, "every host heard by B")
        fleet.start_coordinator(a_coord)  # and back
        poll(fleet.settled, "all settled with A back")
        assert fleet.stale_events(mark) == []
        assert saw_shutdown(fleet) == before

        # 3. B, which every agent now uses, is cut off from the database (its back link
        # down): what it hears it cannot record, so it fails the calls (within the URL's
        # tcp_user_timeout, well inside three heartbeat intervals) and every agent moves
        # on to A; healed, B serves again. Nobody went unheard: nothing fails safe.
        b_coord = fleet.coords[1]
        moves = [a.switches_to(a_coord.address) for a in fleet.agents]
        fleet.cut(b_coord.back)
        poll(
            lambda: all(
                a.switches_to(a_coord.address) > n for a, n in zip(fleet.agents, moves, strict=True)
            ),
            "every agent to move on to A",
        )
        fleet.heal(b_coord.back)
        poll(fleet.settled, "all settled once B reaches the database again")
        assert fleet.stale_events(mark) == []
        assert saw_shutdown(fleet) == before

        # The end: no acknowledged report lost, every state file at its cluster's
        # version, both coordinators agree.
        assert fleet.lost_acknowledgements() == []
        assert all(len(a.acknowledged()) >= 2 for a in fleet.in_cluster(MIXED))
        for cluster in (STEADY, MIXED):
            _, version = fleet.policy(cluster)
            assert {a.state()["policy_version"] for a in fleet.in_cluster(cluster)} == {version}
            assert fleet.policy_via(0, cluster)["version"] == version
            assert fleet.policy_via(1, cluster)["version"] == version
    finally:
        fleet.close()
    assert fleet.leftovers() == []


@pytest.mark.e2e
def test_the_startup_sweep_removes_only_namespaces_of_dead_runs() -> None:
    require_netns()
    dead_pid = _exited_pid()
    dead, alive = f"{PREFIX}{dead_pid}-crashed", f"{PREFIX}{os.getpid()}-running"
    made = []
    try:
        for name in (dead, alive):
            ip("netns", "add", name)
            made.append(name)
        removed = sweep_stale()
        listed = ip("netns", "list").stdout.split()
        assert dead in removed and dead not in listed
        assert alive not in removed and alive in listed
    finally:
        for name in made:
            ip("netns", "del", name, check=False)


def _exited_pid() -> int:
    """The pid of a child that has exited and been reaped (no process holds it now)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid
