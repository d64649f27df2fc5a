"""The WhatIf RPC's statuses, a pinned offline action and a stale host (fail-safe).

In-process: a controlled clock makes a host stale (the e2e tests in
tests/e2e/test_whatif.py run the command against daemons), and a coordinator served
on loopback answers bad requests with the documented gRPC statuses, storing nothing.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.baseline_pins import BaselinePins
from cpucompat.coordinator.compatibility import CompatibilityService, Ref
from cpucompat.coordinator.domain.hosts import HostStatus
from cpucompat.coordinator.domain.policy import OfflineAction
from cpucompat.coordinator.policy import PolicyEngine
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.store import Store
from cpucompat.coordinator.vms import VmRegistry
from cpucompat.coordinator.whatif import WhatIfService
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from cpucompat.v1 import profile_pb2
from tests.support.inprocess import Running
from tests.support.paths import PROCESSORS

ZEN3 = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
ZEN5 = PROCESSORS / "amd-zen5-zen5c-edited.cpuid-r.txt"


def test_a_stale_host_refuses_and_a_pinned_action_wins(tmp_path: Path) -> None:
    zen3, zen5 = load_dump(ZEN3), load_dump(ZEN5)
    clock = [1000.0]
    store = Store(tmp_path / "c.db")
    registry = Registry(store, clock=lambda: clock[0], allow_replayed=True)
    policies = PolicyEngine(store, registry)
    decisions = CompatibilityService(registry)
    pins = BaselinePins(store, registry)
    vms = VmRegistry(store, registry, decisions, policies, pins=pins)
    service = WhatIfService(registry, decisions, policies, vms, pins)
    try:
        registry.report("zen3-1", "lab", zen3, heartbeat_interval=10)
        registry.report("zen3-2", "lab", zen3, heartbeat_interval=10)
        vms.register("vm-1", "lab", boot_host="zen3-1")
        same = [Ref.dump("zen3.txt", zen3)]
        report = service.whatif("lab", add=same)
        assert report.lose_save == [] and not report.worse
        assert report.after.policy.action == OfflineAction.SAVE
        # A newer host takes every VM, but its own VMs could not come back: the cluster's
        # action (for VMs nobody registered) leaves SAVE, which is worse too.
        report = service.whatif("lab", add=[Ref.dump("zen5.txt", zen5)])
        assert report.lose_save == [] and report.cluster_worse and report.worse

        # zen3-2 falls silent: stale refuses, before and after (unknown means shutdown).
        clock[0] += 36
        registry.report("zen3-1", "lab", zen3, heartbeat_interval=10)  # zen3-1 stays fresh
        registry.sweep()
        assert registry.host("zen3-2").status == HostStatus.STALE
        report = service.whatif("lab", add=same)
        (vm,) = report.vms
        assert vm.before.action == vm.after.action == OfflineAction.SHUTDOWN
        assert vm.after.refusing_hosts == ("zen3-2",)
        assert report.after.policy.stale_hosts == ("zen3-2",)
        assert report.after.policy.action == OfflineAction.SHUTDOWN
        # Taking the stale host out is what brings SAVE back.
        report = service.whatif("lab", remove=["zen3-2"])
        assert report.vms[0].after.action == OfflineAction.SAVE
        assert report.regain_save == ["vm-1"] and not report.worse

        # A pinned colder action wins over any change of hosts.
        registry.report("zen3-2", "lab", zen3, heartbeat_interval=10)
        policies.pin("lab", OfflineAction.SHUTDOWN, "change freeze")
        report = service.whatif("lab", add=same)
        assert report.vms[0].after.action == OfflineAction.SHUTDOWN
        assert "pinned" in report.vms[0].after.reason
        assert report.after.policy.action == OfflineAction.SHUTDOWN
        assert report.after.policy.computed == OfflineAction.SAVE
    finally:
        policies.close()
        store.close()


@pytest.fixture
def running(tmp_path: Path) -> Running:
    coordinator = Running(tmp_path, allow_replayed=True)
    coordinator.coordinator.registry.report("zen3-1", "lab", load_dump(ZEN3), heartbeat_interval=10)
    coordinator.coordinator.registry.report(
        "zen5-1", "other", load_dump(ZEN5), heartbeat_interval=10
    )
    return coordinator


def test_whatif_statuses_on_the_wire(running: Running) -> None:
    stub = pb_grpc.DecisionServiceStub(running.channel)
    zen5 = pb.HostRef(dump=pb.DumpRef(name="zen5.txt", raw=capture_to_proto(load_dump(ZEN5))))
    try:
        stored = running.stored()
        good = stub.WhatIf(pb.WhatIfRequest(cluster="lab", add=[zen5]), timeout=30)
        assert list(good.added) == ["dump:zen5.txt"]
        assert list(good.after.hosts) == ["dump:zen5.txt", "zen3-1"]
        assert good.before.policy.version == 0  # computed, never stored
        for request, code in (
            (pb.WhatIfRequest(cluster="nope", add=[zen5]), grpc.StatusCode.NOT_FOUND),
            (pb.WhatIfRequest(cluster="lab", remove=["ghost"]), grpc.StatusCode.NOT_FOUND),
            (pb.WhatIfRequest(cluster="lab", remove=["zen5-1"]), grpc.StatusCode.INVALID_ARGUMENT),
            (pb.WhatIfRequest(cluster="lab"), grpc.StatusCode.INVALID_ARGUMENT),
            (
                pb.WhatIfRequest(cluster="lab", add=[pb.HostRef(host_id="zen5-1")]),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (
                pb.WhatIfRequest(
                    cluster="lab",
                    add=[pb.HostRef(dump=pb.DumpRef(name="x", raw=profile_pb2.RawCapture()))],
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (
                pb.WhatIfRequest(cluster="lab", add=[pb.HostRef(model="model:no-such-cpu")]),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (pb.WhatIfRequest(cluster="lab", add=[zen5, zen5]), grpc.StatusCode.INVALID_ARGUMENT),
            (pb.WhatIfRequest(cluster="bad name", add=[zen5]), grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                stub.WhatIf(request, timeout=30)
            assert caught.value.code() == code, (request, caught.value.details())
            assert "\n" not in (caught.value.details() or "")
        assert running.stored() == stored
    finally:
        running.close()
