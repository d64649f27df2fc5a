"""The stale sweep after a database outage, with a clock the test moves (issue 13).

The registry and policy engine run in-process on a PostgreSQL server of the test's own,
which the test stops and starts again: heartbeats fail for real while it is down. The
rule: silence during an outage this coordinator noticed does not count, so a host turns
stale only after its whole window measured from the database's return; a host that
really died still does, and one stale before the outage stays stale.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.domain.hosts import HostStatus
from cpucompat.coordinator.domain.policy import OfflineAction
from cpucompat.coordinator.outage import OutageWatch, WatchedStorage
from cpucompat.coordinator.policy import PolicyEngine
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.storage.errors import StorageFault
from cpucompat.coordinator.storage.postgres import PostgresStorage
from tests.support.paths import DEV_DUMP
from tests.support.postgres import PostgresServer, running_server

INTERVAL = 10.0  # seconds; stale after three missed: 30 s of silence


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server this test alone uses: it is stopped in the middle."""
    with running_server() as server:
        yield server


def statuses(registry: Registry) -> dict[str, HostStatus]:
    return {r.host_id: r.status for r in registry.hosts()}


def test_silence_during_a_database_outage_does_not_make_hosts_stale(
    own_server: PostgresServer, tmp_path: Path
) -> None:
    clock = [1000.0]
    watch = OutageWatch(lambda: clock[0])
    store = WatchedStorage(PostgresStorage(own_server.database()), watch)
    registry = Registry(store, clock=lambda: clock[0], allow_replayed=True, outages=watch)
    policies = PolicyEngine(store, registry)
    capture = load_dump(DEV_DUMP)
    fingerprint = decode(capture).report_fingerprint
    try:
        for host, cluster in (("live", "prod"), ("dies", "prod"), ("early", "lab")):
            registry.report(
                host, cluster, capture, heartbeat_interval=INTERVAL, agent_fingerprint=fingerprint
            )
        clock[0] = 1020.0
        for host in ("live", "dies"):
            registry.heartbeat(host, "prod", fingerprint)
        clock[0] = 1035.0  # "early" was silent for 35 s: stale before any outage
        registry.sweep()
        assert statuses(registry) == {
            "live": HostStatus.ONLINE,
            "dies": HostStatus.ONLINE,
            "early": HostStatus.STALE,
        }
        before = policies.get("prod")
        assert before.decision.action == OfflineAction.SAVE

        own_server.stop()
        clock[0] = 1045.0
        with pytest.raises(StorageFault) as failed:
            registry.heartbeat("live", "prod", fingerprint)
        assert failed.value.outage  # the database was not there: not the heartbeat's fault
        assert watch.down and watch.down_since == 1045.0
        clock[0] = 1100.0  # everyone's 30 s ran out during the outage
        assert registry.sweep() == set()  # nobody is judged while the database fails
        own_server.resume()

        clock[0] = 1120.0
        store.probe()  # the sweeper's first question once the database answers
        assert not watch.down and watch.back_at == 1120.0 and watch.outages == 1
        clock[0] = 1121.0  # 101 s after the last heartbeats: without the grace, both stale
        registry.sweep()
        assert statuses(registry) == {
            "live": HostStatus.ONLINE,
            "dies": HostStatus.ONLINE,
            "early": HostStatus.STALE,  # stale before the outage: stays stale
        }
        after = policies.get("prod")
        assert (after.decision.action, after.version) == (OfflineAction.SAVE, before.version)

        clock[0] = 1135.0
        registry.heartbeat("live", "prod", fingerprint)  # the live agent is heard again
        clock[0] = 1150.0  # exactly one window after the return: not yet
        registry.sweep()
        assert registry.host("dies").status == HostStatus.ONLINE
        clock[0] = 1150.5  # beyond it: the host that really died is stale, and counts
        registry.sweep()
        assert statuses(registry) == {
            "live": HostStatus.ONLINE,
            "dies": HostStatus.STALE,
            "early": HostStatus.STALE,
        }
        assert policies.get("prod").decision.action == OfflineAction.SHUTDOWN
    finally:
        policies.close()
        store.close()


def test_only_a_database_that_was_not_there_starts_a_grace() -> None:
    clock = [50.0]
    watch = OutageWatch(lambda: clock[0])
    # One change's own failure (a deadlock, a damaged row, a refused report): no outage.
    watch.failed(StorageFault("deadlock detected", outage=False))
    watch.failed(ValueError("refused"))
    watch.answered()
    assert not watch.down and watch.back_at is None
    # A full disk is one: nothing could be recorded.
    watch.failed(StorageFault("no space left", full=True))
    assert watch.down_since == 50.0
    clock[0] = 60.0
    watch.failed(StorageFault("still unreachable"))  # the same outage goes on
    clock[0] = 70.0
    watch.answered()
    assert (watch.down, watch.back_at, watch.outages) == (False, 70.0, 1)
