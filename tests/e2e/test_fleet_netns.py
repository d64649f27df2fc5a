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
import shutil
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
from tests.support.netns import require_netns, sweep_stale
from tests.support.postgres import SKIP_REASON, find_binaries

pytestmark = pytest.mark.e2e

STEADY, MIXED = "steady", "mixed"
AGENTS_PER_CLUSTER = 6


def stale_events(fleet: Fleet, since_id: int) -> list[str]:
    rows = fleet.sql(
        "SELECT host_id FROM events WHERE id > %s AND message LIKE %s ORDER BY id",
        since_id,
        "%heartbeats missed%",
    )
    return [r[0] for r in rows]


def last_event(fleet: Fleet) -> int:
    return int(fleet.sql("SELECT coalesce(max(id), 0) FROM events")[0][0])


def all_online(fleet: Fleet) -> bool:
    status = fleet.host_status()
    return len(status) == len(fleet.agents) and set(status.values()) == {"online"}


def settled(fleet: Fleet) -> bool:
    """Every host online, each cluster's policy as its processors say, every agent's state
    file at its cluster's stored version."""
    if not all_online(fleet):
        return False
    expected = {STEADY: "SAVE", MIXED: "SHUTDOWN"}
    for cluster, action in expected.items():
        stored, version = fleet.policy(cluster)
        if stored != action:
            return False
        for a in fleet.in_cluster(cluster):
            state = a.state()
            if state.get("policy_version") != version or state.get("action") != action:
                return False
    return True


def policy_via(fleet: Fleet, index: int, cluster: str) -> dict:
    shown = fleet.cli(
        "policy", "show", "--cluster", cluster, "--coordinator", fleet.coords[index].address,
        "--json",
    )  # fmt: skip
    assert shown.returncode in (0, 3), shown.stderr
    return dict(json.loads(shown.stdout))


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
        interval=0.5,
    )
    try:
        fleet.start()
        poll(lambda: settled(fleet), "the fleet to settle")
        # Both coordinators answer the admin seat over mutual TLS, alike.
        for index in (0, 1):
            listed = fleet.cli("hosts", "--coordinator", fleet.coords[index].address, "--json")
            assert listed.returncode == 0, listed.stderr
            assert {h["host_id"] for h in json.loads(listed.stdout)} == {
                a.name for a in fleet.agents
            }
        assert policy_via(fleet, 0, STEADY)["version"] == policy_via(fleet, 1, STEADY)["version"]

        # 1. One steady host is cut off: heard by no coordinator, so its cluster fails
        # safe; the others hear SHUTDOWN naming it; it comes back and all return to SAVE.
        cut = fleet.in_cluster(STEADY)[1]
        mark = last_event(fleet)
        fleet.net.set_link(cut.link, up=False)  # type: ignore[union-attr]
        poll(lambda: fleet.policy(STEADY)[0] == "SHUTDOWN", "SHUTDOWN with a host cut off")
        assert fleet.host_status()[cut.name] == "stale"
        others = [a for a in fleet.in_cluster(STEADY) if a is not cut]
        poll(
            lambda: all(a.state().get("stale_hosts") == [cut.name] for a in others),
            "the others to hear SHUTDOWN naming the cut host",
        )
        assert {a.state()["action"] for a in others} == {"SHUTDOWN"}
        assert stale_events(fleet, mark) == [cut.name]
        assert fleet.policy(MIXED)[0] == "SHUTDOWN"
        fleet.net.set_link(cut.link, up=True)  # type: ignore[union-attr]
        poll(lambda: settled(fleet), "SAVE once the host returns")

        # 2. The mixed hosts change processor (each takes the next one's dump): reports
        # acknowledged while coordinator A dies with -9 and is restarted.
        dumps = [a.dump.read_bytes() for a in fleet.in_cluster(MIXED)]
        for i, a in enumerate(fleet.in_cluster(MIXED)):
            a.dump.write_bytes(dumps[(i + 1) % len(dumps)])
        mark = last_event(fleet)
        a_coord = fleet.coords[0]
        assert a_coord.daemon is not None
        a_coord.daemon.kill()
        on_a = [a for i, a in enumerate(fleet.agents) if i % 2 == 0]
        if fleet.failover:
            # Every agent moves on to B: nobody goes unheard, nothing fails safe.
            poll(lambda: all_online(fleet) and fleet.policy(STEADY)[0] == "SAVE", "B hears all")
        else:
            # The agents of A are heard by no coordinator: their hosts go stale, their
            # clusters fail safe; B's agents stay online.
            poll(
                lambda: (
                    {h for h, s in fleet.host_status().items() if s == "stale"}
                    == {a.name for a in on_a}
                ),
                "A's hosts stale, B's online",
            )
            assert fleet.policy(STEADY)[0] == "SHUTDOWN"
        fleet.start_coordinator(a_coord)  # restart
        poll(lambda: settled(fleet), "SAVE again after A's restart")
        if fleet.failover:
            assert stale_events(fleet, mark) == []
        else:
            assert sorted(stale_events(fleet, mark)) == sorted(a.name for a in on_a)

        # 3. Coordinator A is cut off from the database (its back link down): A can no
        # longer record what it hears; once healed it serves again and all settle.
        mark = last_event(fleet)
        fleet.net.set_link(a_coord.back, up=False)  # type: ignore[union-attr]
        if fleet.failover:
            poll(lambda: all_online(fleet), "B hears every host while A has no database")
        else:
            poll(
                lambda: fleet.policy(STEADY)[0] == "SHUTDOWN",
                "SHUTDOWN: A's hosts are heard by no coordinator that can record it",
            )
        fleet.net.set_link(a_coord.back, up=True)  # type: ignore[union-attr]
        poll(lambda: settled(fleet), "SAVE once A reaches the database again")

        # The end: no acknowledged report lost, every state file at its cluster's
        # version, both coordinators agree.
        assert fleet.lost_acknowledgements() == []
        assert all(len(a.acknowledged()) >= 2 for a in fleet.in_cluster(MIXED))
        for cluster in (STEADY, MIXED):
            _, version = fleet.policy(cluster)
            assert {a.state()["policy_version"] for a in fleet.in_cluster(cluster)} == {version}
            assert policy_via(fleet, 0, cluster)["version"] == version
            assert policy_via(fleet, 1, cluster)["version"] == version
    finally:
        fleet.close()
        net = fleet.net
        if net is not None:
            assert net.leftovers() == []
        shutil.rmtree(tmp_path / "pki", ignore_errors=True)
