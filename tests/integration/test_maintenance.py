"""Maintenance and per-VM actions over the real SQLite store, with a controlled clock.

The stale sweep is time-driven, so these run the coordinator's services in-process
with a clock the test moves (the end-to-end test in test_vm_actions_e2e.py runs the
same behaviour with daemons).
"""

from __future__ import annotations

from pathlib import Path

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.compatibility import CompatibilityService
from cpucompat.coordinator.domain.hosts import EventKind, HostStatus
from cpucompat.coordinator.domain.policy import OfflineAction
from cpucompat.coordinator.policy import PolicyEngine
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.store import Store
from cpucompat.coordinator.vms import VmRegistry
from tests.support.shared import MILAN, ROME, shared_dump


class Stack:
    """The coordinator's services on one database file, as the daemon wires them."""

    def __init__(self, path: Path, clock: list[float]) -> None:
        self.store = Store(path)
        self.registry = Registry(self.store, clock=lambda: clock[0], allow_replayed=True)
        self.policies = PolicyEngine(self.store, self.registry)
        self.decisions = CompatibilityService(self.registry)
        self.vms = VmRegistry(self.store, self.registry, self.decisions, self.policies)

    def action(self, vm: str) -> tuple[OfflineAction, tuple[str, ...]]:
        found = self.vms.actions.get(vm)
        assert found is not None
        return found.action, found.refusing_hosts

    def close(self) -> None:
        self.policies.close()
        self.store.close()


def test_maintenance_skips_the_sweep_survives_a_restart_and_ends_at_a_report(
    tmp_path: Path,
) -> None:
    milan, rome = load_dump(shared_dump(MILAN)), load_dump(shared_dump(ROME))
    # What an agent sends with its reports and heartbeats (agent/daemon/reporter.py).
    milan_fp = decode(milan).report_fingerprint
    clock = [1000.0]
    stack = Stack(tmp_path / "c.db", clock)
    try:
        for host, capture in (("milan-1", milan), ("milan-2", milan), ("rome-1", rome)):
            stack.registry.report(
                host,
                "prod",
                capture,
                heartbeat_interval=10,
                agent_fingerprint=decode(capture).report_fingerprint,
            )
        stack.vms.register("db-1", "prod", boot_host="milan-1")
        assert stack.action("db-1") == (OfflineAction.SHUTDOWN, ("rome-1",))
        assert stack.policies.get("prod").decision.action == OfflineAction.SHUTDOWN

        stack.registry.set_maintenance("rome-1", True, "firmware")
        assert stack.action("db-1") == (OfflineAction.SAVE, ())
        assert stack.policies.get("prod").decision.action == OfflineAction.SAVE

        # Rome's agent falls silent; the Milan agents send one heartbeat, which counts.
        clock[0] += 5
        for host in ("milan-1", "milan-2"):
            record, wants_report = stack.registry.heartbeat(host, "prod", milan_fp)
            assert record is not None and not wants_report
            assert stack.registry.host(host).last_seen == clock[0]
        # 31 s after the reports, 26 s after the heartbeats: nobody is swept yet.
        clock[0] += 26
        stack.registry.sweep()
        assert stack.registry.host("milan-1").status == HostStatus.ONLINE
        # Three intervals after the heartbeats the Milans are swept; Rome, in maintenance, not.
        clock[0] += 5
        stack.registry.sweep()
        assert stack.registry.host("rome-1").status == HostStatus.ONLINE
        assert stack.registry.host("milan-1").status == HostStatus.STALE
        assert stack.action("db-1") == (OfflineAction.SHUTDOWN, ("milan-2",))
        for host in ("milan-1", "milan-2"):
            stack.registry.report(host, "prod", milan, heartbeat_interval=10)
        assert stack.action("db-1") == (OfflineAction.SAVE, ())
    finally:
        stack.close()

    # A restart keeps the maintenance and the stored actions.
    stack = Stack(tmp_path / "c.db", clock)
    try:
        rome_record = stack.registry.host("rome-1")
        assert (rome_record.maintenance, rome_record.maintenance_reason) == ("on", "firmware")
        assert stack.action("db-1") == (OfflineAction.SAVE, ())
        stack.registry.set_maintenance("rome-1", False)
        assert stack.registry.host("rome-1").maintenance == "ending"
        assert stack.action("db-1") == (OfflineAction.SAVE, ())  # not before its next report
        stack.registry.report("rome-1", "prod", rome, heartbeat_interval=10)
        assert stack.registry.host("rome-1").maintenance == ""
        assert stack.action("db-1") == (OfflineAction.SHUTDOWN, ("rome-1",))
        kinds = [e.kind for e in stack.registry.events("prod")]
        assert kinds.count(EventKind.MAINTENANCE_CHANGED) == 3
        assert EventKind.VM_ACTION_CHANGED in kinds
    finally:
        stack.close()


def test_a_pin_and_a_move_recompute_the_vms_actions(tmp_path: Path) -> None:
    milan = load_dump(shared_dump(MILAN))
    stack = Stack(tmp_path / "c.db", [1000.0])
    try:
        for host in ("milan-1", "milan-2"):
            stack.registry.report(host, "prod", milan, heartbeat_interval=10)
        stack.vms.register("db-1", "prod", boot_host="milan-1")
        assert stack.action("db-1") == (OfflineAction.SAVE, ())
        stack.policies.pin("prod", OfflineAction.SHUTDOWN, "change freeze")
        assert stack.action("db-1")[0] == OfflineAction.SHUTDOWN
        stack.policies.unpin("prod")
        assert stack.action("db-1") == (OfflineAction.SAVE, ())
        # A live move to milan-2: its host's agent now carries it.
        stack.vms.register("db-1", "prod", boot_host="milan-2")
        assert [a.vm for a in stack.vms.actions.on_host("milan-2")] == ["db-1"]
        assert stack.vms.actions.on_host("milan-1") == []
        stack.vms.remove("db-1")
        assert stack.vms.actions.get("db-1") is None
    finally:
        stack.close()


def test_a_host_whose_agent_never_returns_from_maintenance_goes_stale_and_refuses(
    tmp_path: Path,
) -> None:
    """Off asked, no fresh report: the sweep judges it as any host (fail-safe, not SAVE)."""
    milan, rome = load_dump(shared_dump(MILAN)), load_dump(shared_dump(ROME))
    clock = [1000.0]
    stack = Stack(tmp_path / "c.db", clock)
    try:
        for host, capture in (("milan-1", milan), ("milan-2", milan), ("rome-1", rome)):
            stack.registry.report(host, "prod", capture, heartbeat_interval=10)
        stack.vms.register("db-1", "prod", boot_host="milan-1")
        stack.registry.set_maintenance("rome-1", True, "new CPU")
        assert stack.action("db-1") == (OfflineAction.SAVE, ())
        # Rome's agent dies during the work; the others keep reporting.
        for _ in range(4):
            clock[0] += 10
            for host in ("milan-1", "milan-2"):
                stack.registry.report(host, "prod", milan, heartbeat_interval=10)
            stack.registry.sweep()
        assert stack.registry.host("rome-1").status == HostStatus.ONLINE  # maintenance: kept
        assert stack.registry.host("milan-2").status == HostStatus.ONLINE
        stack.registry.set_maintenance("rome-1", False)
        assert stack.action("db-1") == (OfflineAction.SAVE, ())  # until the next sweep
        stack.registry.sweep()
        assert stack.registry.host("rome-1").status == HostStatus.STALE
        assert stack.action("db-1") == (OfflineAction.SHUTDOWN, ("rome-1",))
        assert stack.policies.get("prod").decision.action == OfflineAction.SHUTDOWN
        # Its agent comes back: the report ends maintenance and the processor decides.
        stack.registry.report("rome-1", "prod", rome, heartbeat_interval=10)
        assert stack.registry.host("rome-1").maintenance == ""
        assert stack.action("db-1") == (OfflineAction.SHUTDOWN, ("rome-1",))
    finally:
        stack.close()
