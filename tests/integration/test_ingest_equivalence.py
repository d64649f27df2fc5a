"""Fast ingest changes nothing but the cost: the same events, policies and VM actions.

Two coordinators' services run side by side on their own SQLite files with one clock:
one applies every report as a coordinator does (`Registry.report_from`: an unchanged
profile at a heartbeat's cost, the cluster's policy read once), the other through the
full report path alone. After every step of a generated sequence of joins, profile
changes, unchanged reports, goodbyes, removals, maintenance, stale sweeps and VM
registrations on replayed project dumps, both databases hold the same rows; at the
end a coordinator started on the database recomputes every cluster's policy and every
VM's action from scratch and finds nothing to change.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.errors import CpucompatError
from cpucompat.agent.raw import SOURCE_INSTRUCTION, HostTsc, LogicalCpu, RawCapture
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.compatibility import CompatibilityService
from cpucompat.coordinator.domain.hosts import EventKind
from cpucompat.coordinator.limits import Limits
from cpucompat.coordinator.policy import PolicyEngine
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.store import Store
from cpucompat.coordinator.vms import VmRegistry
from cpucompat.v1 import coordinator_service_pb2 as pb
from tests.support.inprocess import Running
from tests.support.paths import DEV_DUMP, NESTED_KVM_OFFER, PROCESSORS

INTERVAL = 10.0


def _toggled(capture: RawCapture) -> RawCapture:
    """The same processor with RDRAND (leaf 1 ECX bit 30) flipped: another profile."""
    cpus = []
    for cpu in capture.cpus:
        leaves = dict(cpu.leaves)
        regs = list(leaves[(1, 0)])
        regs[2] ^= 1 << 30
        leaves[(1, 0)] = (regs[0], regs[1], regs[2], regs[3])
        cpus.append(LogicalCpu(cpu.index, leaves, cpu.xcr0))
    return replace(capture, cpus=tuple(cpus))


def _captures() -> list[RawCapture]:
    base = [
        load_dump(DEV_DUMP),
        load_dump(NESTED_KVM_OFFER),  # carries a hypervisor offer
        load_dump(PROCESSORS / "amd-zen5-zen5c-edited.cpuid-r.txt"),
        load_dump(PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt"),
    ]
    return base + [_toggled(c) for c in base]


CAPTURES = _captures()
HOSTS = ["h0", "h1", "h2"]
CLUSTERS = ["a", "b"]


class Stack:
    """The coordinator's services on one database file, as the daemon wires them."""

    def __init__(self, path: Path, clock: list[float]) -> None:
        self.path = path
        self.store = Store(path)
        self.registry = Registry(
            self.store,
            clock=lambda: clock[0],
            allow_replayed=True,
            limits=Limits(profile_changes_per_hour=3600),
        )
        self.policies = PolicyEngine(self.store, self.registry)
        self.decisions = CompatibilityService(self.registry)
        self.vms = VmRegistry(self.store, self.registry, self.decisions, self.policies)

    def close(self) -> None:
        self.policies.close()
        self.store.close()


def _fast(stack: Stack, host: str, cluster: str, capture: RawCapture) -> bool:
    """Applied as a coordinator applies a report; returns whether it counted as unchanged."""
    return stack.registry.report_from(
        host,
        cluster,
        replace(capture, cpus=()),
        lambda: capture,
        heartbeat_interval=INTERVAL,
        agent_fingerprint=decode(capture).report_fingerprint,
    )[1]


def _full(stack: Stack, host: str, cluster: str, capture: RawCapture) -> None:
    stack.registry.report(
        host,
        cluster,
        capture,
        heartbeat_interval=INTERVAL,
        agent_fingerprint=decode(capture).report_fingerprint,
    )


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Everything stored that a user can see, table by table."""
    db = sqlite3.connect(path)
    try:
        return {
            table: db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("hosts", "events", "policies", "vms", "profiles")
        }
    finally:
        db.close()


def _step(stack: Stack, op: tuple[Any, ...], report: Callable[..., None]) -> str:
    """Apply one operation; returns the refusal's type name ('' when it was applied)."""
    kind = op[0]
    try:
        if kind == "report":
            _, host, cluster, capture = op
            report(stack, host, cluster, CAPTURES[capture])
        elif kind == "goodbye":
            stack.registry.goodbye(op[1])
        elif kind == "remove":
            stack.registry.remove(op[1], force=True)
        elif kind == "maintenance":
            stack.registry.set_maintenance(op[1], op[2], "firmware")
        elif kind == "sweep":  # the clock moved past three intervals first
            stack.registry.sweep()
        elif kind == "vm":
            record = stack.registry.host(op[1])
            stack.vms.register(f"vm-{op[1]}", record.cluster, boot_host=op[1])
    except CpucompatError as exc:
        return type(exc).__name__
    return ""


OPERATIONS = st.one_of(
    st.tuples(
        st.just("report"),
        st.sampled_from(HOSTS),
        st.sampled_from(CLUSTERS),
        st.integers(0, len(CAPTURES) - 1),
    ),
    # The same host reporting again, unchanged: the fast path's case, made frequent.
    st.tuples(st.just("again"), st.sampled_from(HOSTS)),
    st.tuples(st.just("goodbye"), st.sampled_from(HOSTS)),
    st.tuples(st.just("remove"), st.sampled_from(HOSTS)),
    st.tuples(st.just("maintenance"), st.sampled_from(HOSTS), st.booleans()),
    st.tuples(st.just("sweep")),
    st.tuples(st.just("vm"), st.sampled_from(HOSTS)),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(OPERATIONS, min_size=3, max_size=14))
# The cases an unchanged report must handle like a full one, always tried:
@example([("report", "h0", "a", 0), ("goodbye", "h0"), ("again", "h0")])
@example(
    [("report", "h0", "a", 1), ("report", "h1", "a", 0), ("vm", "h0"),
     ("maintenance", "h1", True), ("maintenance", "h1", False), ("again", "h1")]
)  # fmt: skip
@example([("report", "h0", "a", 0), ("report", "h1", "a", 4), ("sweep",), ("again", "h0")])
@example(
    [("report", "h0", "a", 0), ("vm", "h0"), ("report", "h1", "a", 2), ("again", "h1"),
     ("report", "h1", "a", 6), ("again", "h0"), ("report", "h0", "b", 0), ("again", "h0")]
)  # fmt: skip
def test_fast_ingest_stores_what_the_full_path_stores(operations: list[tuple[Any, ...]]) -> None:
    clock = [1_000_000.0]
    last: dict[str, tuple[str, int]] = {}  # each host's last report (cluster, capture)
    unchanged: list[bool] = []  # how the fast side applied this step's report
    with TemporaryDirectory() as tmp:
        fast, full = Stack(Path(tmp) / "fast.db", clock), Stack(Path(tmp) / "full.db", clock)
        try:
            for op in operations:
                again = op[0] == "again"
                if again:
                    if op[1] not in last:
                        continue
                    op = ("report", op[1], *last[op[1]])
                known = fast.registry.find(op[1]) if len(op) > 1 else None
                clock[0] += 4 * INTERVAL if op[0] == "sweep" else 1
                unchanged.clear()
                refused = _step(fast, op, lambda *a: unchanged.append(_fast(*a)))
                assert _step(full, op, _full) == refused, op
                if again and not refused:  # a host still registered costs a heartbeat
                    assert unchanged == [known is not None], op
                if op[0] == "report" and not refused:
                    last[op[1]] = (op[2], op[3])
                assert _rows(fast.path) == _rows(full.path), op
        finally:
            fast.close()
            full.close()
        # A coordinator starting on the database recomputes everything: nothing changes.
        before = _rows(Path(tmp) / "fast.db")
        again = Stack(Path(tmp) / "fast.db", clock)
        again.close()
        assert _rows(Path(tmp) / "fast.db") == before


def _events(stack: Stack, kind: EventKind) -> list[str]:
    return [e.message for e in stack.registry.events() if e.kind == kind]


def test_a_newer_feature_table_is_noticed_by_an_unchanged_report(tmp_path: Path) -> None:
    """The agent's fingerprint did not change, but this coordinator decodes the stored
    leaves differently from whoever stored them (an upgrade with a newer feature
    table): the report stores a new version, as it always did."""
    clock = [1_000_000.0]
    stack = Stack(tmp_path / "c.db", clock)
    capture = CAPTURES[0]
    try:
        _fast(stack, "h0", "a", capture)
        first = stack.registry.host("h0").profile_version
        stack.close()
        # What an older decoder stored: another fingerprint for the same leaves.
        db = sqlite3.connect(tmp_path / "c.db")
        with db:
            db.execute("UPDATE hosts SET fingerprint = ? WHERE host_id = 'h0'", ("0" * 64,))
        db.close()
        stack = Stack(tmp_path / "c.db", clock)
        clock[0] += 1
        _fast(stack, "h0", "a", capture)
        record = stack.registry.host("h0")
        assert record.profile_version > first
        assert record.fingerprint == decode(capture).fingerprint
        assert any(
            "processor profile changed" in m for m in _events(stack, EventKind.PROFILE_CHANGED)
        )
    finally:
        stack.close()


@pytest.mark.parametrize("khz", [3_000_000, 3_030_000])
def test_a_kernel_tsc_move_is_noticed_by_an_unchanged_report(tmp_path: Path, khz: int) -> None:
    """A live host's kernel TSC rate is not in the agent's fingerprint: a rate that moved
    beyond the recalibration tolerance is a new version; one within it is not."""
    clock = [1_000_000.0]
    stack = Stack(tmp_path / "c.db", clock)
    live = replace(
        CAPTURES[0],
        source=SOURCE_INSTRUCTION,
        origin=None,
        host_tsc=HostTsc(khz=3_000_000, source="kvm"),
    )
    try:
        _fast(stack, "h0", "a", live)
        first = stack.registry.host("h0").profile_version
        clock[0] += 1
        unchanged = _fast(stack, "h0", "a", replace(live, host_tsc=HostTsc(khz=khz, source="kvm")))
        moved = stack.registry.host("h0").profile_version != first
        assert unchanged == (not moved)
        assert moved == (khz != 3_000_000)
        assert bool(_events(stack, EventKind.PROFILE_CHANGED)) == moved
    finally:
        stack.close()


def test_over_grpc_an_unchanged_report_stores_no_version_and_a_moved_tsc_does(
    tmp_path: Path,
) -> None:
    """Through the RegistryService: the header read without the leaves carries the
    kernel's TSC, the offer and the extra fields the unchanged check needs."""
    running = Running(tmp_path)
    capture = replace(
        load_dump(NESTED_KVM_OFFER),
        source=SOURCE_INSTRUCTION,
        origin=None,
        extra={"kernel": "6.1"},
        host_tsc=HostTsc(khz=3_000_000, source="kvm"),
    )
    assert capture.offer is not None

    def send(capture: RawCapture, agent_version: str) -> pb.ReportProfileResponse:
        response: pb.ReportProfileResponse = running.registry.ReportProfile(
            pb.ReportProfileRequest(
                host_id="h0",
                cluster="a",
                raw=capture_to_proto(capture),
                agent_version=agent_version,
                agent_fingerprint=decode(capture).report_fingerprint,
            ),
            timeout=30,
        )
        return response

    registry = running.coordinator.registry
    full_reports: list[str] = []  # the leaves converted and decoded: the full path
    full_report = registry.report

    def counted(host_id: str, *args: Any, **kwargs: Any) -> Any:
        full_reports.append(host_id)
        return full_report(host_id, *args, **kwargs)

    registry.report = counted  # type: ignore[method-assign]
    try:
        first = send(capture, "1.0")
        again = send(capture, "1.1")
        assert (again.changed, again.profile_version) == (False, first.profile_version)
        assert full_reports == ["h0"]  # the second report cost a heartbeat
        assert registry.host("h0").agent_version == "1.1"
        moved = send(replace(capture, host_tsc=HostTsc(khz=3_100_000, source="kvm")), "1.1")
        assert moved.profile_version > first.profile_version
        assert running.stored()[1] == 2  # two profile versions: the first and the moved TSC
        assert full_reports == ["h0", "h0"]
    finally:
        running.close()
