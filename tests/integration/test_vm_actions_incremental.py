"""The per-VM actions kept inside each change equal a full recompute from the stored hosts.

`VmActions` recomputes only the clusters a change touches, checks each distinct
requirement once per member and reuses the cached target views of the hosts the
change leaves alone. After every step of a random sequence of changes (replayed dumps
reported as profile changes, hosts joining, leaving, going offline, entering and
leaving maintenance, VMs registered, moved and rebooted), each stored VM action and
the mirror the services answer from must equal `vm_action` computed VM by VM, host by
host, from what the database holds, with nothing cached.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.compatibility import host_view
from cpucompat.coordinator.domain.hosts import HostStatus
from cpucompat.coordinator.domain.policy import OfflineAction
from cpucompat.coordinator.domain.stamp import load_stamp
from cpucompat.coordinator.domain.vm_action import Member, VmAction, has_no_say, vm_action
from cpucompat.coordinator.limits import Limits
from cpucompat.coordinator.server import Coordinator, CoordinatorConfig
from tests.support.paths import FIXTURES

DUMPS = [
    load_dump(FIXTURES / "processors" / name)
    for name in (
        "dev-amd-epyc-kvm.cpuid-r.txt",
        "amd-zen3-x3d-l3-edited.cpuid-r.txt",
        "amd-zen5-zen5c-edited.cpuid-r.txt",
        "intel-skylake-leaf2-edited.cpuid-r.txt",
    )
]
HOSTS = [f"h{n}" for n in range(6)]
CLUSTERS = ["c0", "c1"]
VMS = ["v0", "v1", "v2", "v3"]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("report"), st.sampled_from(HOSTS), st.integers(0, len(DUMPS) - 1)),
        st.tuples(st.just("goodbye"), st.sampled_from(HOSTS), st.just(0)),
        st.tuples(st.just("maintenance on"), st.sampled_from(HOSTS), st.just(0)),
        st.tuples(st.just("maintenance off"), st.sampled_from(HOSTS), st.just(0)),
        st.tuples(st.just("remove"), st.sampled_from(HOSTS), st.just(0)),
        st.tuples(st.just("boot"), st.sampled_from(VMS), st.integers(0, len(HOSTS) - 1)),
        st.tuples(st.just("move"), st.sampled_from(VMS), st.integers(0, len(HOSTS) - 1)),
    ),
    min_size=1,
    max_size=12,
)


def full_recompute(coordinator: Coordinator) -> dict[str, VmAction]:
    """Every VM's action from the stored rows: no cache, no grouping, one VM at a time."""
    registry = coordinator.registry
    rules = coordinator.decisions.hypervisor
    out = {}
    with coordinator.store.read() as uow:
        for vm in uow.vms.all():
            members = []
            for row in uow.hosts.in_cluster(vm.cluster):
                record = registry.record_of(uow, row)
                online = row.status == HostStatus.ONLINE
                members.append(
                    Member(
                        row.host_id,
                        online,
                        has_no_say(row.maintenance, online),
                        None if record is None else host_view(record, rules),
                    )
                )
            policy = uow.policies.get(vm.cluster)
            pinned = (
                None if policy is None or policy.pinned_action is None else policy.pinned_action
            )
            out[vm.name] = vm_action(
                vm.name,
                vm.cluster,
                load_stamp(vm.requirement),
                vm.current_host,
                members,
                None if pinned is None else OfflineAction(pinned),
            )
    return out


def stored_actions(coordinator: Coordinator) -> dict[str, VmAction]:
    with coordinator.store.read() as uow:
        rows = uow.vms.all()
    return {
        row.name: VmAction(
            row.name,
            row.cluster,
            OfflineAction(row.offline_action),
            row.refusing_hosts,
            row.action_reason,
            row.current_host,
            row.refusing_total,
        )
        for row in rows
        if row.offline_action is not None
    }


def apply(coordinator: Coordinator, clock: list[float], op: str, name: str, arg: int) -> None:
    registry, vms = coordinator.registry, coordinator.vms
    clock[0] += 10
    known = registry.find(name)
    if op == "report":
        cluster = known.cluster if known else CLUSTERS[HOSTS.index(name) % 2]
        registry.report(name, cluster, DUMPS[arg], heartbeat_interval=3600)
    elif op == "goodbye" and known:
        registry.goodbye(name)
    elif op in ("maintenance on", "maintenance off") and known:
        registry.set_maintenance(name, op.endswith("on"), "test")
    elif op == "remove" and known:
        registry.remove(name, force=True)
    elif op in ("boot", "move"):
        host = registry.find(HOSTS[arg])
        if host is None:
            return
        registered = {v.name for v in vms.all()}
        if op == "move" and name not in registered:
            return
        vms.register(name, host.cluster, boot_host=host.host_id, rebooted=op == "boot")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(start=st.lists(st.integers(0, len(DUMPS) - 1), min_size=3, max_size=6), changes=steps)
def test_kept_actions_equal_a_full_recompute_after_every_change(
    start: list[int], changes: list[tuple[str, str, int]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clock = [1.0e9]
        coordinator = Coordinator(
            CoordinatorConfig(db_path=Path(tmp) / "c.db", allow_replayed=True)
        )
        try:
            coordinator.registry.clock = lambda: clock[0]
            coordinator.registry.limits = Limits(profile_changes_per_hour=3600)
            for n, dump in enumerate(start):
                apply(coordinator, clock, "report", HOSTS[n], dump)
            for n, vm in enumerate(VMS[:2]):
                apply(coordinator, clock, "boot", vm, n)
            for step in changes:
                apply(coordinator, clock, *step)
                expected = full_recompute(coordinator)
                assert stored_actions(coordinator) == expected, step
                assert {n: coordinator.vms.actions.get(n) for n in expected} == expected, step
        finally:
            coordinator.close()


def test_a_profile_change_in_a_cluster_of_identical_hosts_turns_its_vms_to_shutdown(
    tmp_path: Path,
) -> None:
    """The benchmark's change, small: one host of a uniform cluster gets an older processor."""
    clock = [1.0e9]
    coordinator = Coordinator(CoordinatorConfig(db_path=tmp_path / "c.db", allow_replayed=True))
    try:
        coordinator.registry.clock = lambda: clock[0]
        amd, intel = DUMPS[0], DUMPS[3]
        for host in HOSTS[:4]:
            coordinator.registry.report(host, "c0", amd, heartbeat_interval=3600)
        for n, vm in enumerate(VMS):
            coordinator.vms.register(vm, "c0", boot_host=HOSTS[n])
        assert {a.action for a in full_recompute(coordinator).values()} == {OfflineAction.SAVE}
        clock[0] += 10
        coordinator.registry.report("h1", "c0", intel, heartbeat_interval=3600)
        actions = full_recompute(coordinator)
        assert stored_actions(coordinator) == actions
        assert actions["v1"].action == OfflineAction.SAVE  # its own host changed: not a target
        for vm in ("v0", "v2", "v3"):
            assert actions[vm].action == OfflineAction.SHUTDOWN
            assert actions[vm].refusing_hosts == ("h1",)
        assert coordinator.vms.actions.get("v0") == actions["v0"]
    finally:
        coordinator.close()
