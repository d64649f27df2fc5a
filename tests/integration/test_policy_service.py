"""PolicyService on a real server: watch streams, their cap, and refusals."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.inprocess import Running, dev_raw
from tests.support.paths import PROCESSORS

ZEN3 = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
SKYLAKE = PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt"


def test_watch_streams_are_capped_and_never_starve_reports(tmp_path: Path) -> None:
    running = Running(tmp_path, workers=40)  # 40 threads: 8 for watchers, 32 reserved
    try:
        running.registry.ReportProfile(
            pb.ReportProfileRequest(host_id="h1", cluster="c", raw=dev_raw()), timeout=10
        )
        policy = pb_grpc.PolicyServiceStub(running.channel)
        streams = [policy.WatchPolicy(pb.WatchPolicyRequest(cluster="c")) for _ in range(8)]
        firsts = [next(s) for s in streams]
        assert {f.policy.action for f in firsts} == {pb.OFFLINE_ACTION_SAVE}
        extra = policy.WatchPolicy(pb.WatchPolicyRequest(cluster="c"))
        with pytest.raises(grpc.RpcError) as err:
            next(extra)
        assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--workers" in err.value.details()
        # Reports still go through, and every open stream hears the change.
        got: list[int] = []
        threads = [
            threading.Thread(target=lambda s=s: got.append(next(s).policy.version)) for s in streams
        ]
        for t in threads:
            t.start()
        running.registry.ReportProfile(
            pb.ReportProfileRequest(host_id="h2", cluster="c", raw=dev_raw()), timeout=10
        )
        for t in threads:
            t.join(timeout=30)
        assert len(got) == 8 and min(got) > firsts[0].policy.version
        for s in streams:
            s.cancel()
    finally:
        running.close()


def test_unknown_cluster_and_pin_refusals(tmp_path: Path) -> None:
    running = Running(tmp_path)
    try:
        policy = pb_grpc.PolicyServiceStub(running.channel)
        with pytest.raises(grpc.RpcError) as err:
            policy.GetPolicy(pb.GetPolicyRequest(cluster="nowhere"), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as err:
            next(policy.WatchPolicy(pb.WatchPolicyRequest(cluster="nowhere")))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        running.registry.ReportProfile(
            pb.ReportProfileRequest(host_id="h1", cluster="c", raw=dev_raw()), timeout=10
        )
        with pytest.raises(grpc.RpcError) as err:
            policy.PinPolicy(pb.PinPolicyRequest(cluster="c"), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # no action given
        pinned = policy.PinPolicy(
            pb.PinPolicyRequest(
                cluster="c", action=pb.OFFLINE_ACTION_SHUTDOWN, reason="maintenance"
            ),
            timeout=10,
        ).policy
        assert pinned.action == pb.OFFLINE_ACTION_SHUTDOWN
        assert pinned.computed_action == pb.OFFLINE_ACTION_SAVE
        assert pinned.hyperv_offline_action == 2 and "maintenance" in pinned.reason
        unpinned = policy.UnpinPolicy(pb.UnpinPolicyRequest(cluster="c"), timeout=10).policy
        assert unpinned.action == pb.OFFLINE_ACTION_SAVE and unpinned.version > pinned.version
    finally:
        running.close()


def test_policy_survives_a_restart(tmp_path: Path) -> None:
    running = Running(tmp_path)
    running.registry.ReportProfile(
        pb.ReportProfileRequest(host_id="h1", cluster="c", raw=dev_raw()), timeout=10
    )
    pb_grpc.PolicyServiceStub(running.channel).PinPolicy(
        pb.PinPolicyRequest(cluster="c", action=pb.OFFLINE_ACTION_TURN_OFF), timeout=10
    )
    running.close()
    again = Running(tmp_path)
    try:
        policy = (
            pb_grpc.PolicyServiceStub(again.channel)
            .GetPolicy(pb.GetPolicyRequest(cluster="c"), timeout=10)
            .policy
        )
        assert policy.action == pb.OFFLINE_ACTION_TURN_OFF
        assert policy.hyperv_offline_action == 0
    finally:
        again.close()


def test_blocking_pairs_travel_per_profile_with_their_host_counts(tmp_path: Path) -> None:
    running = Running(tmp_path, allow_replayed=True)
    try:
        hosts = [(f"zen3-{n}", ZEN3) for n in range(3)] + [(f"sky-{n}", SKYLAKE) for n in range(2)]
        for host_id, dump in hosts:
            running.registry.ReportProfile(
                pb.ReportProfileRequest(
                    host_id=host_id, cluster="lab", raw=capture_to_proto(load_dump(dump))
                ),
                timeout=10,
            )
        policy = pb_grpc.PolicyServiceStub(running.channel)
        got = policy.GetPolicy(pb.GetPolicyRequest(cluster="lab"), timeout=10).policy
        assert got.action == pb.OFFLINE_ACTION_SHUTDOWN
        pairs = {(p.source, p.target): (p.source_hosts, p.target_hosts) for p in got.blocking_pairs}
        assert pairs == {("zen3-0", "sky-0"): (3, 2), ("sky-0", "zen3-0"): (2, 3)}
        assert got.blocking_pairs_total == 2
        assert "(+2 alike)" in got.reason
    finally:
        running.close()
