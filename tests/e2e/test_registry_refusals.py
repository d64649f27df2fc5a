"""Bad reports get a proper gRPC status and change nothing stored (real server, real SQLite)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from cpucompat.v1 import coordinator_service_pb2 as pb
from tests.support.daemons import run_cli
from tests.support.hostile import refused
from tests.support.inprocess import Running, dev_raw


def test_replayed_report_refused_unless_allowed(live_coordinator: Running) -> None:
    request = pb.ReportProfileRequest(host_id="h1", cluster="c", raw=dev_raw("replay:cpuid-r"))
    err = refused(live_coordinator.registry.ReportProfile, request)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--allow-replayed" in err.details()
    assert live_coordinator.stored() == (0, 0, 0)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda raw: raw.cpus[0].leaves[0].__setattr__("ebx", 0x00000001), "vendor string"),
        (
            lambda raw: raw.cpus[0].leaves.add(leaf=0x1, subleaf=0, eax=1),
            "twice with different values",
        ),
        (lambda raw: raw.cpus[0].leaves.add(leaf=0x0000_1234), "architectural range"),
        (lambda raw: raw.cpus[0].leaves.add(leaf=0x1234_5678), "outside the CPUID ranges"),
        (lambda raw: raw.ClearField("cpus"), "no logical CPU"),
        (lambda raw: raw.cpus[1].__setattr__("cpu", raw.cpus[0].cpu), "appears twice"),
    ],
)
def test_raw_leaves_that_cannot_be_a_processor(
    live_coordinator: Running, mutate, needle: str
) -> None:
    raw = dev_raw()
    mutate(raw)
    err = refused(
        live_coordinator.registry.ReportProfile,
        pb.ReportProfileRequest(host_id="h1", cluster="c", raw=raw),
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in err.details()
    assert live_coordinator.stored() == (0, 0, 0)


def test_bad_names_and_oversized_messages(tmp_path: Path) -> None:
    running = Running(tmp_path, max_message_bytes=64 * 1024)
    try:
        err = refused(
            running.registry.ReportProfile,
            pb.ReportProfileRequest(host_id="bad id!", cluster="c", raw=dev_raw()),
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        big = dev_raw()
        for i in range(200):
            big.cpus.add(cpu=100 + i).leaves.extend(big.cpus[0].leaves)
        err = refused(
            running.registry.ReportProfile,
            pb.ReportProfileRequest(host_id="h1", cluster="c", raw=big),
        )
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert running.stored() == (0, 0, 0)
    finally:
        running.close()


def test_unknown_host_is_not_found(live_coordinator: Running) -> None:
    err = refused(live_coordinator.query.GetHost, pb.GetHostRequest(host_id="ghost"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    result = run_cli("host", "show", "ghost", "--coordinator", live_coordinator.address)
    assert result.returncode == 2
    assert "ghost" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_repeated_reports_are_idempotent(live_coordinator: Running) -> None:
    request = pb.ReportProfileRequest(host_id="h1", cluster="c", raw=dev_raw())
    first = live_coordinator.registry.ReportProfile(request, timeout=10)
    after_first = live_coordinator.stored()
    second = live_coordinator.registry.ReportProfile(request, timeout=10)
    assert first.fingerprint == second.fingerprint
    assert second.changed is False
    assert after_first[:2] == (1, 1)  # one host, one profile version
    assert live_coordinator.stored() == after_first  # the repeat added no version and no event


def test_heartbeat_from_unknown_host_asks_for_a_report(live_coordinator: Running) -> None:
    response = live_coordinator.registry.Heartbeat(
        pb.HeartbeatRequest(host_id="new", cluster="c"), timeout=10
    )
    assert response.report_required
    assert live_coordinator.stored() == (0, 0, 0)


def test_garbage_bytes_are_refused_without_storing(live_coordinator: Running) -> None:
    call = live_coordinator.channel.unary_unary(
        "/cpucompat.v1.RegistryService/ReportProfile",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as err:
        call(b"\xff\xfe\x00garbage\x12\x34", timeout=10)
    assert err.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT)
    assert live_coordinator.stored() == (0, 0, 0)
