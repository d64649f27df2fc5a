"""A cluster's policy names at most 20 stale hosts and counts them all.

The policy rides in every watcher's update and is rewritten on every change of the
cluster: a large cluster whose agents all fell silent (a network cut, a coordinator
outage) must not make it grow with the cluster. The action still counts every host.
"""

from __future__ import annotations

from pathlib import Path

from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator import convert
from cpucompat.coordinator.domain.hosts import HostStatus
from cpucompat.coordinator.domain.policy import STALE_HOSTS_LISTED, OfflineAction
from cpucompat.coordinator.policy import PolicyEngine
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.storage.interface import PolicyRow
from cpucompat.coordinator.store import Store
from cpucompat.v1 import coordinator_service_pb2 as pb
from tests.support.paths import PROCESSORS

ZEN3 = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
SILENT = 27  # more than the policy names


def test_many_stale_hosts_are_named_up_to_the_bound_and_all_counted(tmp_path: Path) -> None:
    zen3 = load_dump(ZEN3)
    clock = [1000.0]
    store = Store(tmp_path / "c.db")
    registry = Registry(store, clock=lambda: clock[0], allow_replayed=True)
    policies = PolicyEngine(store, registry)
    try:
        hosts = [f"h{n:03d}" for n in range(SILENT + 3)]
        for host in hosts:
            registry.report(host, "lab", zen3, heartbeat_interval=10)
        assert policies.get("lab").decision.action == OfflineAction.SAVE
        # All but three fall silent past three intervals.
        clock[0] += 36
        for host in hosts[SILENT:]:
            registry.report(host, "lab", zen3, heartbeat_interval=10)
        registry.sweep()
        assert sum(registry.host(h).status == HostStatus.STALE for h in hosts) == SILENT

        decision = policies.get("lab").decision
        assert decision.action == OfflineAction.SHUTDOWN
        assert decision.stale_hosts == tuple(hosts[:STALE_HOSTS_LISTED])
        assert decision.stale_total == SILENT
        assert decision.host_count == SILENT + 3
        assert "h000, h001, h002, h003, h004, \u2026 and 22 more" in decision.reason
        assert "h005" not in decision.reason

        # Over the wire: the names and the total; an older coordinator's message (every
        # stale host named, no total) reads as naming them all.
        wire = convert.policy_to_proto(policies.get("lab"))
        assert list(wire.stale_hosts) == hosts[:STALE_HOSTS_LISTED]
        assert wire.stale_hosts_total == SILENT
        read = convert.decision_from_proto(pb.ClusterPolicy.FromString(wire.SerializeToString()))
        assert read.stale_total == SILENT
        older = pb.ClusterPolicy()
        older.CopyFrom(wire)
        older.ClearField("stale_hosts_total")
        older.stale_hosts[:] = hosts[:SILENT]
        assert convert.decision_from_proto(older).stale_total == SILENT

        # Every host heard again: nothing stale, SAVE again.
        for host in hosts:
            registry.report(host, "lab", zen3, heartbeat_interval=10)
        decision = policies.get("lab").decision
        assert decision.action == OfflineAction.SAVE
        assert decision.stale_hosts == () and decision.stale_total == 0
    finally:
        policies.close()
        store.close()


def test_a_row_stored_before_the_bound_reads_with_its_count() -> None:
    row = PolicyRow(
        cluster="lab",
        action=int(OfflineAction.SHUTDOWN),
        computed_action=int(OfflineAction.SHUTDOWN),
        pinned_action=None,
        reason="profile not fresh for ...",
        details={"stale_hosts": [f"h{n:03d}" for n in range(SILENT)], "host_count": 30},
        version=4,
    )
    decision = PolicyEngine._from_row(row).decision
    assert decision.stale_total == SILENT
    assert len(decision.stale_hosts) == STALE_HOSTS_LISTED
