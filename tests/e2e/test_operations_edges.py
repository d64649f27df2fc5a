"""Operator-visible edges: restarts, one coordinator per database, paging, re-registration."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from cpucompat.coordinator.domain.hosts import EventKind, HostStatus
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.store import Store, StoreError
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.certs import TestCA
from tests.support.daemons import Daemon, run_cli, wait_until
from tests.support.inprocess import Running, dev_raw
from tests.support.paths import DEV_DUMP


def report(running: Running, host: str, cluster: str = "c", interval: float = 300) -> None:
    from google.protobuf.duration_pb2 import Duration

    d = Duration()
    d.FromNanoseconds(int(interval * 1e9))
    running.registry.ReportProfile(
        pb.ReportProfileRequest(host_id=host, cluster=cluster, raw=dev_raw(), probe_interval=d),
        timeout=10,
    )


def test_one_coordinator_per_database(tmp_path: Path) -> None:
    first = Store(tmp_path / "c.db")
    try:
        with pytest.raises(StoreError, match="in use by another coordinator"):
            Store(tmp_path / "c.db")
        result = run_cli("coordinator", "--db", str(tmp_path / "c.db"), "--listen", "127.0.0.1:0")
        assert result.returncode == 2 and "in use" in result.stderr
    finally:
        first.close()
    Store(tmp_path / "c.db").close()  # released on close


def test_restart_gives_hosts_time_to_heartbeat_before_going_stale(tmp_path: Path) -> None:
    clock = [1000.0]
    store = Store(tmp_path / "c.db")
    from cpucompat.agent.dumps import load_dump

    registry = Registry(store, clock=lambda: clock[0], allow_replayed=True)
    registry.report("h1", "c", load_dump(DEV_DUMP), heartbeat_interval=10)
    store.close()
    clock[0] = 5000.0  # the coordinator was down for over an hour
    store = Store(tmp_path / "c.db")
    try:
        restarted = Registry(store, clock=lambda: clock[0])
        assert restarted.sweep() == set()
        assert restarted.host("h1").status == HostStatus.ONLINE
        clock[0] += 31  # three missed intervals after the restart
        assert restarted.sweep() == {"c"}
        assert restarted.host("h1").status == HostStatus.STALE
    finally:
        store.close()


def test_sweeper_survives_a_failing_sweep(tmp_path: Path) -> None:
    running = Running(tmp_path)
    try:
        report(running, "h1", interval=0.2)
        calls = {"n": 0}
        real = running.coordinator.registry.sweep

        def flaky() -> set[str]:
            calls["n"] += 1
            if calls["n"] == 1:
                raise RuntimeError("database is locked")
            return real()

        running.coordinator.registry.sweep = flaky  # type: ignore[method-assign]
        running.coordinator.start()
        wait_until(
            lambda: running.coordinator.registry.host("h1").status == HostStatus.STALE, what="stale"
        )
        assert calls["n"] >= 2
    finally:
        running.close()


def test_event_paging_and_host_filter_apply_before_the_limit(tmp_path: Path) -> None:
    running = Running(tmp_path)
    try:
        for n in range(6):
            report(running, f"h{n}")
        query = running.query
        only = query.ListEvents(pb.ListEventsRequest(host_id="h0", limit=5), timeout=10).events
        assert [e.host_id for e in only] == ["h0"]
        everything = query.ListEvents(pb.ListEventsRequest(limit=1000), timeout=10).events
        page1 = query.ListEvents(
            pb.ListEventsRequest(after_id=everything[0].id, limit=3), timeout=10
        ).events
        page2 = query.ListEvents(
            pb.ListEventsRequest(after_id=page1[-1].id, limit=3), timeout=10
        ).events
        assert [e.id for e in page1] + [e.id for e in page2] == [e.id for e in everything][1:7]
        newest = query.ListEvents(
            pb.ListEventsRequest(limit=2, newest_first=True), timeout=10
        ).events
        assert [e.id for e in newest] == [everything[-1].id, everything[-2].id]
    finally:
        running.close()


def test_policy_events_carry_their_actions_and_pins_are_idempotent(tmp_path: Path) -> None:
    running = Running(tmp_path)
    try:
        report(running, "h1")
        policy = pb_grpc.PolicyServiceStub(running.channel)
        first = policy.PinPolicy(
            pb.PinPolicyRequest(cluster="c", action=pb.OFFLINE_ACTION_SHUTDOWN, reason="m"),
            timeout=10,
        )
        again = policy.PinPolicy(
            pb.PinPolicyRequest(cluster="c", action=pb.OFFLINE_ACTION_SHUTDOWN, reason="m"),
            timeout=10,
        )
        assert again.policy.version == first.policy.version
        result = run_cli("events", "--json", "--coordinator", running.address)
        events = json.loads(result.stdout)["events"]
        flips = [
            e for e in events if e["kind"] == "policy_changed" and e["new_action"] != "UNSPECIFIED"
        ]
        assert [(e["old_action"], e["new_action"]) for e in flips][-1] == ("SAVE", "SHUTDOWN")
        assert all(isinstance(e["id"], int) for e in events)
        shown = json.loads(
            run_cli(
                "policy", "show", "--cluster", "c", "--json", "--coordinator", running.address
            ).stdout
        )
        assert isinstance(shown["version"], int)
    finally:
        running.close()


def test_vm_requirement_is_fixed_until_a_reboot(tmp_path: Path) -> None:
    running = Running(tmp_path)
    try:
        report(running, "h1")
        report(running, "h2")
        vms = pb_grpc.VmServiceStub(running.channel)
        vms.RegisterVm(pb.RegisterVmRequest(vm_name="web", cluster="c", boot_host="h1"), timeout=10)
        moved = vms.RegisterVm(
            pb.RegisterVmRequest(vm_name="web", cluster="c", boot_host="h2"), timeout=10
        )
        assert moved.requirement_updated is False and moved.vm.boot_host == "h1"
        with pytest.raises(grpc.RpcError) as err:
            vms.RegisterVm(
                pb.RegisterVmRequest(vm_name="web", cluster="c", baseline="level:x86-64-v1@amd"),
                timeout=10,
            )
        assert (
            err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            and "--rebooted" in err.value.details()
        )
        rebooted = vms.RegisterVm(
            pb.RegisterVmRequest(
                vm_name="web", cluster="c", baseline="level:x86-64-v1@amd", rebooted=True
            ),
            timeout=10,
        )
        assert rebooted.requirement_updated and rebooted.vm.baseline == "level:x86-64-v1@amd"
        listed = vms.ListVms(pb.ListVmsRequest(cluster="c"), timeout=10).vms
        assert listed[0].requirement.x86_64_level == "x86-64-v1"
    finally:
        running.close()


def test_removing_an_online_host_needs_force(tmp_path: Path) -> None:
    running = Running(tmp_path)
    try:
        report(running, "h1")
        refused = run_cli("host", "remove", "h1", "--coordinator", running.address)
        assert refused.returncode == 3 and "stop its agent first" in refused.stderr
        forced = run_cli("host", "remove", "h1", "--force", "--coordinator", running.address)
        assert forced.returncode == 0, forced.stderr
        events = run_cli("events", "--json", "--coordinator", running.address)
        assert events.returncode == 0, events.stderr
        listed = json.loads(events.stdout)["events"]
        kinds = [e["kind"] for e in listed if e["host_id"] == "h1"]
        assert kinds[-1] == "host_removed" and "host_left" not in kinds, kinds
    finally:
        running.close()


def test_a_removed_host_leaves_no_history_behind(tmp_path: Path) -> None:
    from cpucompat.agent.dumps import load_valid_dump
    from tests.support.paths import FIXTURES

    store = Store(tmp_path / "c.db")
    try:
        registry = Registry(store, allow_replayed=True)
        registry.report("h1", "c", load_valid_dump(DEV_DUMP))
        other = FIXTURES / "processors" / "intel-skylake-leaf2-edited.cpuid-r.txt"
        registry.report("h1", "c", load_valid_dump(other))  # a second profile version
        assert len(registry.history("h1")[1]) == 2
        registry.remove("h1", force=True)
        removed = registry.events(host_id="h1")[-1]
        assert removed.kind == EventKind.HOST_REMOVED
        assert removed.details["profile_versions_removed"] == 2
        # The same id joining again starts a new history: nothing of the removed host's.
        registry.report("h1", "c", load_valid_dump(DEV_DUMP))
        pruned, versions = registry.history("h1")
        assert pruned == 0 and len(versions) == 1
        assert registry.events(host_id="h1")[-1].kind == EventKind.HOST_JOINED
    finally:
        store.close()


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    for since in ("3000000d", "99999999999999d", "\u00b2h", "yesterday"):
        result = run_cli("events", "--since", since, "--coordinator", "127.0.0.1:9")
        assert result.returncode == 2, (since, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    agent = run_cli(
        "agent", "--coordinator", "127.0.0.1:9", "--cluster", "c", "--host-id", "bad/name"
    )
    assert agent.returncode == 2 and "host id" in agent.stderr
    store = run_cli("coordinator", "--db", "/proc/nope/x.db", "--listen", "127.0.0.1:0")
    assert store.returncode == 2 and "Traceback" not in store.stderr


def test_only_cn_and_dns_sans_are_identities(tmp_path: Path) -> None:
    from cryptography import x509

    ca = TestCA(tmp_path / "pki")
    server_cert, server_key = ca.issue("coordinator", dns=["localhost"], ip=["127.0.0.1"])
    # A certificate whose CN is not an admin but whose IP SAN spells one: not an admin.
    sneaky_cert, sneaky_key = ca.issue("sneaky", ip=["127.0.0.2"])
    assert x509.load_pem_x509_certificate(sneaky_cert.read_bytes())
    dns_cert, dns_key = ca.issue("someone", dns=["ops"])
    coord = Daemon(
        [
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--db",
            str(tmp_path / "c.db"),
            "--tls-cert",
            str(server_cert),
            "--tls-key",
            str(server_key),
            "--tls-ca",
            str(ca.ca_path),
            "--admin",
            "ops",
            "--admin",
            "127.0.0.2",
        ],
        tmp_path / "c.log",
    )
    try:

        def hosts(cert: Path, key: Path) -> int:
            return run_cli(
                "hosts",
                "--coordinator",
                coord.address,
                "--tls-cert",
                str(cert),
                "--tls-key",
                str(key),
                "--tls-ca",
                str(ca.ca_path),
            ).returncode

        assert hosts(dns_cert, dns_key) == 0  # DNS SAN "ops" is on the admin list
        assert hosts(sneaky_cert, sneaky_key) == 2  # an IP SAN never counts
    finally:
        coord.stop()


def test_repeated_answers_follow_host_state(tmp_path: Path) -> None:
    """Check and PlanFailover answers are reused per host version, never past a change."""
    running = Running(tmp_path)
    try:
        report(running, "h1")
        report(running, "h2")
        decisions = pb_grpc.DecisionServiceStub(running.channel)
        request = pb.CheckRequest(source=pb.HostRef(host_id="h1"), target=pb.HostRef(host_id="h2"))
        first = decisions.Check(request, timeout=10)
        assert first.verdict.compatible
        assert "STALE_PROFILE" not in [w.code for w in first.verdict.warnings]
        vms = pb_grpc.VmServiceStub(running.channel)
        vms.RegisterVm(pb.RegisterVmRequest(vm_name="web", cluster="c", boot_host="h1"), timeout=10)
        plan = vms.PlanFailover(
            pb.PlanFailoverRequest(vm_name="web", to_host="h2"), timeout=10
        ).plan
        assert plan.action == pb.OFFLINE_ACTION_SAVE
        running.coordinator.registry._set_status(["h2"], HostStatus.STALE, "test")
        again = decisions.Check(request, timeout=10)
        assert "STALE_PROFILE" in [w.code for w in again.verdict.warnings]
        policy = pb_grpc.PolicyServiceStub(running.channel)
        policy.PinPolicy(
            pb.PinPolicyRequest(cluster="c", action=pb.OFFLINE_ACTION_SHUTDOWN_FORCED), timeout=10
        )
        pinned = vms.PlanFailover(
            pb.PlanFailoverRequest(vm_name="web", to_host="h2"), timeout=10
        ).plan
        assert pinned.action == pb.OFFLINE_ACTION_SHUTDOWN_FORCED
    finally:
        running.close()
