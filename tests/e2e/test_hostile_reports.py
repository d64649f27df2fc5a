"""Hostile reports against a real coordinator: each is refused and changes nothing stored.

Issue 10, items 1 (validate before storing), 2 (bounded intervals), 3 (exact sources)
and 5 (names matched whole). Real gRPC servers on loopback and real SQLite files; the
daemon tests run `cpucompat coordinator` and `cpucompat agent` as subprocesses.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.domain.hosts import HostStatus
from cpucompat.coordinator.limits import Limits
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.store import Store
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.daemons import run_cli, start_agent, start_coordinator, wait_until
from tests.support.hostile import DEV_DUMP, DUMPS, raw_of, refused, report, seconds, snapshot
from tests.support.inprocess import Running


@pytest.fixture
def coord(tmp_path: Path) -> Iterator[Running]:
    """A coordinator that accepts replayed dumps, with one live host already stored."""
    running = Running(tmp_path, allow_replayed=True)
    running.registry.ReportProfile(report("existing"), timeout=10)
    yield running
    running.close()


def assert_refused(
    running: Running, call: object, request: object, code: grpc.StatusCode, *needles: str
) -> None:
    """The call fails with ``code`` naming ``needles``, and not one stored row changed."""
    before = snapshot(running.db)
    err = refused(call, request)
    assert err.code() == code, err.details()
    for needle in needles:
        assert needle in err.details(), err.details()
    assert snapshot(running.db) == before


# ---- 1: every field is checked before the transaction opens --------------------------


HUGE = 2**63 - 1


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"probe_interval": seconds(HUGE)}, "probe_interval"),
        ({"probe_interval": seconds(-5)}, "probe_interval"),
        ({"agent_version": "v" * 200_000}, "agent_version"),
        ({"agent_version": "1.0\x1b[2J"}, "control characters"),
        ({"agent_address": "a" * 300 + ":1"}, "agent_address"),
        ({"agent_address": "host:99999"}, "port 1-65535"),
        ({"agent_address": "host:7443\n"}, "agent_address"),
        ({"agent_fingerprint": "f" * 4096}, "agent_fingerprint"),
    ],
)
def test_bad_report_fields_store_nothing(coord: Running, fields: dict, needle: str) -> None:
    for host in ("existing", "newcomer"):  # neither an update nor a join goes through
        assert_refused(
            coord,
            coord.registry.ReportProfile,
            report(host, **fields),
            grpc.StatusCode.INVALID_ARGUMENT,
            needle,
        )


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda raw: setattr(raw, "microcode", "0x" + "f" * 500), "raw.microcode"),
        (lambda raw: setattr(raw, "origin", "/dumps/x.txt\x1b]0;owned\x07"), "raw.origin"),
        (lambda raw: raw.extra.update({f"k{i}": "v" for i in range(40)}), "raw.extra"),
        (lambda raw: raw.extra.update({"kernel": "x" * 5000}), "raw.extra"),
        (lambda raw: raw.extra.update({"": "empty key"}), "raw.extra"),
    ],
)
def test_bad_capture_strings_store_nothing(coord: Running, mutate, needle: str) -> None:
    raw = raw_of(DEV_DUMP, "replay:cpuid-r")
    mutate(raw)
    assert_refused(
        coord,
        coord.registry.ReportProfile,
        report("newcomer", raw=raw),
        grpc.StatusCode.INVALID_ARGUMENT,
        needle,
    )


def _duplicate_cpu(raw) -> None:
    raw.compact_cpus[1].cpu = raw.compact_cpus[0].cpu


def _missing_class(raw) -> None:
    raw.compact_cpus[1].cpu_class = 3


def _override_of_a_missing_leaf(raw) -> None:
    raw.compact_cpus[0].overrides.add(leaf=0x8000_00AA, subleaf=0, register=2, value=7)


def _expands_beyond_the_limit(raw) -> None:
    for n in range(256):
        raw.cpu_classes[0].leaves.add(leaf=0x4000_0100 + n)
    for n in range(2, 8192):
        raw.compact_cpus.add(cpu=n, cpu_class=0)


def _both_forms(raw) -> None:
    raw.cpus.extend(raw_of(DEV_DUMP, "replay:cpuid-r").cpus)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (_duplicate_cpu, "appears twice"),
        (_missing_class, "refers to CPU class 3"),
        (_override_of_a_missing_leaf, "names a leaf its class does not hold"),
        (_expands_beyond_the_limit, "expands to"),
        (_both_forms, "send one form"),
    ],
)
def test_a_compact_capture_that_does_not_add_up_stores_nothing(
    coord: Running, mutate, needle: str
) -> None:
    raw = raw_of(DEV_DUMP, "replay:cpuid-r", compact=True)
    mutate(raw)
    for host in ("existing", "newcomer"):
        assert_refused(
            coord,
            coord.registry.ReportProfile,
            report(host, raw=raw),
            grpc.StatusCode.INVALID_ARGUMENT,
            "report",
            needle,
        )


def test_old_and_new_agents_store_the_same_profile_and_its_leaves_once(coord: Running) -> None:
    """A full capture (older agents) and a compact one (agents now) are one profile."""
    full = coord.registry.ReportProfile(
        report("old-agent", raw=raw_of(DEV_DUMP, "replay:cpuid-r")), timeout=10
    )
    compact = coord.registry.ReportProfile(
        report("new-agent", raw=raw_of(DEV_DUMP, "replay:cpuid-r", compact=True)), timeout=10
    )
    assert full.fingerprint == compact.fingerprint
    query = pb_grpc.QueryServiceStub(coord.channel)
    raws = [
        query.GetHost(pb.GetHostRequest(host_id=h, include_raw=True), timeout=10).raw
        for h in ("old-agent", "new-agent")
    ]
    assert raws[0] == raws[1] and len(raws[0].cpus) == 2  # shown back in the full form
    stored = snapshot(coord.db)
    assert len(stored["leaf_classes"]) == 1  # "existing" is the same model as well


def test_heartbeat_with_a_huge_interval_stores_nothing(coord: Running) -> None:
    fingerprint = coord.coordinator.registry.host("existing").fingerprint
    for host in ("existing", "unknown"):
        assert_refused(
            coord,
            coord.registry.Heartbeat,
            pb.HeartbeatRequest(
                host_id=host, cluster="c", fingerprint=fingerprint, probe_interval=seconds(HUGE)
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "--max-interval",
        )
    assert coord.coordinator.registry.host("existing").heartbeat_interval == 300


def test_leave_and_policy_and_vm_fields_are_checked_first(coord: Running) -> None:
    policy = pb_grpc.PolicyServiceStub(coord.channel)
    vms = pb_grpc.VmServiceStub(coord.channel)
    assert_refused(
        coord,
        coord.registry.Leave,
        pb.LeaveRequest(host_id="existing", cluster="c", reason="r" * 10_000),
        grpc.StatusCode.INVALID_ARGUMENT,
        "reason",
    )
    assert_refused(
        coord,
        policy.PinPolicy,
        pb.PinPolicyRequest(
            cluster="c", action=pb.OFFLINE_ACTION_SHUTDOWN, reason="maintenance\x1b[31m"
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "reason",
    )
    assert_refused(
        coord,
        vms.RegisterVm,
        pb.RegisterVmRequest(vm_name="web-1", cluster="c", baseline="model:" + "x" * 1000),
        grpc.StatusCode.INVALID_ARGUMENT,
        "baseline",
    )


# ---- 2: the stale fail-safe cannot be defeated by the client --------------------------


def test_interval_beyond_the_bound_is_refused_naming_the_fix(coord: Running) -> None:
    assert_refused(
        coord,
        coord.registry.ReportProfile,
        report("forever", probe_interval=seconds(10**9)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "--max-interval 3600",
        "--interval",
    )
    assert coord.coordinator.registry.find("forever") is None


def test_interval_stored_before_the_bound_cannot_keep_a_host_online(tmp_path: Path) -> None:
    """A database written by an older coordinator holds 10^9 s: the bound applies anyway."""
    clock = [1_000_000.0]
    store = Store(tmp_path / "c.db")
    live = replace(load_dump(DEV_DUMP), source="cpuid-instruction", origin=None)
    Registry(store, clock=lambda: clock[0]).report("h1", "c", live)
    with store.transaction() as db:
        db.execute("UPDATE hosts SET heartbeat_interval = 1e9")
    store.close()
    clock[0] += 3600
    store = Store(tmp_path / "c.db")
    try:
        registry = Registry(store, clock=lambda: clock[0], limits=Limits(max_interval=10))
        assert registry.host("h1").heartbeat_interval == 10
        clock[0] += 31  # three bounded intervals after the restart
        assert registry.sweep() == {"c"}
        assert registry.host("h1").status == HostStatus.STALE
    finally:
        store.close()


def test_agent_with_a_longer_interval_is_told_the_fix(tmp_path: Path) -> None:
    coordinator = start_coordinator(tmp_path, "--max-interval", "2")
    agent = start_agent(tmp_path, coordinator.address, "slow", "--interval", "5")
    try:
        wait_until(lambda: "--max-interval 2" in agent.output(), what="the agent logs the refusal")
        assert "run the agent with --interval 2 or less" in agent.output()
        listed = run_cli("hosts", "--json", "--coordinator", coordinator.address)
        assert listed.returncode == 0 and json.loads(listed.stdout) == []
    finally:
        agent.stop()
        coordinator.stop()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e19", "abc"])
def test_max_interval_flag_is_range_checked(tmp_path: Path, value: str) -> None:
    result = run_cli(
        "coordinator", "--db", str(tmp_path / "c.db"), "--listen", "127.0.0.1:0",
        "--max-interval", value,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--max-interval" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "c.db").exists()


# ---- 3: replayed profiles are recognised from the exact source ------------------------


@pytest.mark.parametrize(
    "source",
    ["Replay:aida", " replay:aida", "", "totally-live", "replay:", "replay:nonsense",
     "cpuid-instruction ", "replay:aida\n"],
)  # fmt: skip
def test_unknown_sources_are_refused(coord: Running, source: str) -> None:
    assert_refused(
        coord,
        coord.registry.ReportProfile,
        report("newcomer", raw=raw_of(DEV_DUMP, source)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "raw.source",
    )


@pytest.mark.parametrize(
    ("source", "replayed"),
    [
        ("cpuid-instruction", False),
        ("devcpu", False),
        ("replay:aida", True),
        ("replay:libcpuid", True),
        ("replay:cpuid-r", True),
        ("replay:json", True),
    ],
)
def test_known_sources_are_accepted(coord: Running, source: str, replayed: bool) -> None:
    response = coord.registry.ReportProfile(
        report("newcomer", raw=raw_of(DEV_DUMP, source)), timeout=10
    )
    assert response.accepted
    host = coord.query.GetHost(pb.GetHostRequest(host_id="newcomer"), timeout=10).host
    assert host.replayed is replayed


def test_live_host_never_shows_a_dump_path_as_its_origin(tmp_path: Path) -> None:
    running = Running(tmp_path, allow_replayed=True)
    try:
        live = raw_of(DEV_DUMP, "cpuid-instruction")
        live.origin = "/srv/dumps/someone-else.txt"
        running.registry.ReportProfile(report("live-1", raw=live), timeout=10)
        replay = raw_of(DEV_DUMP, "replay:cpuid-r")
        replay.origin = "/srv/dumps/new-server.txt"
        running.registry.ReportProfile(report("rehearsal", raw=replay), timeout=10)

        def shown(host: str) -> str:
            result = run_cli("host", "show", host, "--coordinator", running.address)
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert "someone-else" not in shown("live-1")
        assert "new-server.txt" in shown("rehearsal")
        profile = running.query.GetHost(pb.GetHostRequest(host_id="live-1"), timeout=10).profile
        assert profile.origin == "" and not profile.replayed
    finally:
        running.close()
    # The same after a restart: what is shown comes from what was stored.
    again = Running(tmp_path, allow_replayed=True)
    try:
        get = again.query.GetHost
        assert get(pb.GetHostRequest(host_id="live-1"), timeout=10).profile.origin == ""
        assert get(pb.GetHostRequest(host_id="rehearsal"), timeout=10).profile.origin == (
            "/srv/dumps/new-server.txt"
        )
    finally:
        again.close()


# ---- 5: names are matched whole -------------------------------------------------------


@pytest.mark.parametrize("name", ["h-ok\n", "hostile\n", "h\nx", "h\x00", "-h", "h" * 254])
def test_names_are_matched_whole(coord: Running, name: str) -> None:
    policy = pb_grpc.PolicyServiceStub(coord.channel)
    vms = pb_grpc.VmServiceStub(coord.channel)
    fingerprint = coord.coordinator.registry.host("existing").fingerprint
    bad = grpc.StatusCode.INVALID_ARGUMENT
    assert_refused(coord, coord.registry.ReportProfile, report(name), bad, "host id")
    assert_refused(coord, coord.registry.ReportProfile, report("h2", cluster=name), bad, "cluster")
    assert_refused(
        coord,
        coord.registry.Heartbeat,
        pb.HeartbeatRequest(host_id="existing", cluster=name, fingerprint=fingerprint),
        bad,
        "cluster",
    )
    assert_refused(
        coord,
        vms.RegisterVm,
        pb.RegisterVmRequest(vm_name=name, cluster="c", boot_host="existing"),
        bad,
        "VM name",
    )
    assert_refused(
        coord,
        policy.PinPolicy,
        pb.PinPolicyRequest(cluster=name, action=pb.OFFLINE_ACTION_SHUTDOWN),
        bad,
        "cluster",
    )
    assert_refused(coord, coord.query.ListHosts, pb.ListHostsRequest(cluster=name), bad, "cluster")


def test_the_cli_sees_the_refusal_as_one_line(tmp_path: Path) -> None:
    running = Running(tmp_path)
    try:
        result = run_cli("hosts", "--cluster", "prod\n", "--coordinator", running.address)
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1 and "cluster" in result.stderr
    finally:
        running.close()


def test_stored_rows_are_read_back_unchanged_by_refusals(tmp_path: Path) -> None:
    """The snapshot used above sees real changes (it is no constant)."""
    running = Running(tmp_path, allow_replayed=True)
    try:
        before = snapshot(running.db)
        running.registry.ReportProfile(report("h1", raw=raw_of(DUMPS / "aida-tab.txt")), timeout=10)
        assert snapshot(running.db) != before
        with sqlite3.connect(running.db) as conn:
            assert conn.execute("SELECT COUNT(*) FROM hosts").fetchone()[0] == 1
    finally:
        running.close()
