"""Bulk seeding stores what agents' reports and `vm register` store, one by one over gRPC.

The benchmark fills 10,000 hosts and VMs through `coordinator.seeding` (hooks deferred
to one unit of work). Here the same replayed dumps are reported and the same VMs
registered over gRPC to a real coordinator on loopback, one by one, and every stored
row is compared: hosts, profile versions (raw leaves, features, summaries), cluster
policies, VMs (requirement, action, refusing hosts, reason) and the events.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.errors import InputError
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.domain.policy import OfflineAction
from cpucompat.coordinator.domain.stamp import load_stamp
from cpucompat.coordinator.seeding import BootedVm, HostReport, register_booted, report_hosts
from cpucompat.coordinator.server import Coordinator, CoordinatorConfig
from cpucompat.coordinator.storage.interface import EventFilter, Storage
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.inprocess import Running
from tests.support.paths import FIXTURES

AMD = FIXTURES / "processors" / "dev-amd-epyc-kvm.cpuid-r.txt"
ZEN3 = FIXTURES / "processors" / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
INTEL = FIXTURES / "processors" / "intel-skylake-leaf2-edited.cpuid-r.txt"

# Cluster "same" of two identical hosts; cluster "mixed" of three processors, so its
# policy is SHUTDOWN with blocking pairs and its VMs are refused by some hosts.
HOSTS = [
    ("a1", "same", AMD),
    ("a2", "same", AMD),
    ("m1", "mixed", AMD),
    ("m2", "mixed", ZEN3),
    ("m3", "mixed", INTEL),
]
VMS = [("web", "same", "a1"), ("db", "mixed", "m1"), ("cache", "mixed", "m3")]
TIMES = ("first_seen", "last_seen", "recorded_at", "registered_at", "booted_at", "updated_at")


def untimed(row: Any) -> dict[str, Any]:
    values = dataclasses.asdict(row)
    for name in (*TIMES, "version", "profile_version"):
        values.pop(name, None)
    if "requirement" in values:  # a stamp: its time and label differ, its requirement not
        values["requirement"] = load_stamp(values["requirement"]).to_json()
    return values


def stored(store: Storage) -> dict[str, Any]:
    with store.read() as uow:
        hosts = sorted(uow.hosts.all(), key=lambda r: r.host_id)
        return {
            "hosts": [untimed(r) for r in hosts],
            "profiles": {
                r.host_id: [untimed(v) for v in uow.profiles.history(r.host_id)] for r in hosts
            },
            "raw": {r.host_id: uow.profiles.raw(r.profile_version).raw for r in hosts},  # type: ignore[union-attr]
            "policies": sorted(
                (untimed(p) for p in uow.policies.all()), key=lambda p: p["cluster"]
            ),
            "vms": sorted((untimed(v) for v in uow.vms.all()), key=lambda v: v["name"]),
            "events": sorted(
                (e.kind, e.host_id, e.message)
                for e in uow.events.page(
                    EventFilter(), after_id=0, before_id=None, ascending=True, limit=1000
                )
                if e.kind.name != "POLICY_CHANGED"  # one per computation: fewer when seeded
            ),
        }


def test_seeded_rows_are_the_rows_reports_and_registrations_store(tmp_path: Path) -> None:
    (tmp_path / "rpc").mkdir()
    running = Running(tmp_path / "rpc", allow_replayed=True)
    try:
        registry = pb_grpc.RegistryServiceStub(running.channel)
        for host, cluster, dump in HOSTS:
            raw = capture_to_proto(load_dump(dump))
            request = pb.ReportProfileRequest(host_id=host, cluster=cluster, raw=raw)
            request.probe_interval.FromSeconds(3600)
            registry.ReportProfile(request, timeout=10)
        vms = pb_grpc.VmServiceStub(running.channel)
        for name, cluster, boot_host in VMS:
            vms.RegisterVm(
                pb.RegisterVmRequest(vm_name=name, cluster=cluster, boot_host=boot_host), timeout=10
            )
        expected = stored(running.coordinator.store)
    finally:
        running.close()

    seeded = Coordinator(CoordinatorConfig(db_path=tmp_path / "seeded.db", allow_replayed=True))
    try:
        reports = [HostReport(h, c, load_dump(d), heartbeat_interval=3600) for h, c, d in HOSTS]
        assert report_hosts(seeded.registry, reports) == {"same", "mixed"}
        assert register_booted(seeded.vms, [BootedVm(*vm) for vm in VMS]) == len(VMS)
        got = stored(seeded.store)
        # What the services answer from the seeded coordinator's mirrors, too.
        mirrored = [seeded.vms.actions.get(name) for name, _, _ in VMS]
        actions = {a.vm: (a.action.name, a.refusing_hosts) for a in mirrored if a is not None}
        assert [v.name for v in seeded.vms.all()] == ["cache", "db", "web"]
    finally:
        seeded.close()
    assert expected["policies"][0]["cluster"] == "mixed"
    assert expected["policies"][0]["action"] != expected["policies"][1]["action"]  # both kinds
    assert {v["name"]: v["refusing_hosts"] for v in expected["vms"]}["db"]  # a refused VM
    for part in ("hosts", "profiles", "raw", "policies", "vms", "events"):
        assert got[part] == expected[part], part
    assert actions == {
        v["name"]: (OfflineAction(v["offline_action"]).name, v["refusing_hosts"])
        for v in expected["vms"]
    }


def test_seeding_refuses_a_vm_on_a_host_of_another_cluster_and_stores_none(
    tmp_path: Path,
) -> None:
    seeded = Coordinator(CoordinatorConfig(db_path=tmp_path / "seeded.db", allow_replayed=True))
    try:
        report_hosts(seeded.registry, [HostReport("a1", "same", load_dump(AMD))])
        with pytest.raises(InputError, match="host a1 is in cluster same, not other"):
            register_booted(
                seeded.vms, [BootedVm("ok", "same", "a1"), BootedVm("bad", "other", "a1")]
            )
        assert seeded.vms.all() == []
        with seeded.store.read() as uow:
            assert uow.vms.all() == []
    finally:
        seeded.close()
