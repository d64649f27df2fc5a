"""Reports whose capture bytes were seen before skip checking, packing and decoding.

A fleet's hosts of one model send the same capture bytes, and a firmware change rolled
across it sends the same new bytes from each host it reaches; the coordinator remembers
each capture as sent by its digest. What it stores must be exactly what a fresh report
stores, and a refused capture is never remembered.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.cache import Region
from cpucompat.coordinator.storage.blobs import pack_capture
from cpucompat.v1 import coordinator_service_pb2 as pb
from tests.support.inprocess import Running
from tests.support.paths import PROCESSORS

ZEN3 = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
SKYLAKE = PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt"


def report(running: Running, host: str, raw: object) -> pb.ReportProfileResponse:
    return running.registry.ReportProfile(
        pb.ReportProfileRequest(host_id=host, cluster="lab", raw=raw), timeout=10
    )


def stored_raw(running: Running, host: str) -> bytes:
    registry = running.coordinator.registry
    with running.coordinator.store.read() as uow:
        row = uow.hosts.get(host)
        assert row is not None
        stored = uow.profiles.raw(row.profile_version)
    assert stored is not None and registry.host(host).profile_version == row.profile_version
    return stored.raw


def wire_hits(running: Running) -> int:
    return running.coordinator.registry.cache.stats()[Region.WIRE].hits


def test_hosts_sending_the_same_bytes_store_what_a_fresh_report_stores(tmp_path: Path) -> None:
    running = Running(tmp_path, allow_replayed=True)
    try:
        zen3, skylake = load_dump(ZEN3), load_dump(SKYLAKE)
        for n in range(3):
            report(running, f"zen3-{n}", capture_to_proto(zen3, compact=True))
        assert wire_hits(running) >= 2  # the second and third hosts
        expected = pack_capture(zen3).own
        fingerprint = decode(zen3).fingerprint
        for n in range(3):
            assert stored_raw(running, f"zen3-{n}") == expected
            assert running.coordinator.registry.host(f"zen3-{n}").fingerprint == fingerprint
        # Other bytes are other content: the same host moves to the other processor and back.
        report(running, "zen3-0", capture_to_proto(skylake, compact=True))
        assert (
            running.coordinator.registry.host("zen3-0").fingerprint == decode(skylake).fingerprint
        )
        assert stored_raw(running, "zen3-0") == pack_capture(skylake).own
        report(running, "zen3-0", capture_to_proto(zen3, compact=True))
        assert stored_raw(running, "zen3-0") == expected
    finally:
        running.close()


def test_a_refused_capture_is_refused_every_time_and_never_remembered(tmp_path: Path) -> None:
    running = Running(tmp_path, allow_replayed=True)
    try:
        raw = capture_to_proto(load_dump(ZEN3))
        raw.cpus[0].leaves[0].eax = 0xFFFF  # leaf 0 claims 65,535 standard leaves
        before = running.stored()
        for host in ("bad-1", "bad-2", "bad-1"):
            with pytest.raises(grpc.RpcError) as err:
                report(running, host, raw)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "standard leaves" in err.value.details()
        assert running.stored() == before
        assert running.coordinator.registry.cache.stats()[Region.WIRE].size == 0
    finally:
        running.close()
