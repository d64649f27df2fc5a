"""A coordinator and agents as real processes: listing, history, staleness, restarts, mTLS."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import grpc
import pytest

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.certs import TestCA
from tests.support.daemons import (
    Daemon,
    free_port,
    run_cli,
    start_agent,
    start_coordinator,
    wait_until,
)
from tests.support.paths import DEV_DUMP, SHARED_DUMPS

pytestmark = pytest.mark.e2e

ROME = SHARED_DUMPS / "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
MILAN = SHARED_DUMPS / "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
INTERVAL = 2.0  # seconds between an agent's cycles (see the cluster test)


def coordinator(tmp_path: Path, *extra: str, db: Path | str | None = None) -> Daemon:
    return start_coordinator(tmp_path, *extra, db=db)


def agent(tmp_path: Path, coord: str, host: str, *extra: str) -> Daemon:
    return start_agent(tmp_path, coord, host, "-v", *extra)


def hosts(address: str, *extra: str) -> dict[str, dict]:
    result = run_cli("hosts", "--coordinator", address, "--json", *extra)
    assert result.returncode == 0, result.stderr
    return {h["host_id"]: h for h in json.loads(result.stdout)}


def events(address: str) -> list[dict]:
    result = run_cli("events", "--coordinator", address, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["events"]


def test_cluster_of_live_and_replayed_agents(tmp_path: Path, coordinator_db: str) -> None:
    coord = coordinator(tmp_path, "--allow-replayed", db=coordinator_db)
    swap = tmp_path / "swap.txt"
    swappable = ROME.is_file() and MILAN.is_file()
    shutil.copy(ROME if swappable else DEV_DUMP, swap)
    # An agent waits one interval *after* each cycle, and a cycle re-reads its dump: the
    # 256-CPU Rome dump takes 0.8-1.3 s to load and decode on the 2-core machine under
    # load, so with 0.5 s the heartbeats came ~2 s apart and the host flapped stale within
    # its 1.5 s window. 2 s (6 s window) leaves room for that and for a coordinator busy
    # with a big report; every assertion below stays as it was.
    every = ("--interval", str(INTERVAL))
    agents = [
        agent(tmp_path, coord.address, "live-1", *every),
        agent(tmp_path, coord.address, "rehearsal", *every, "--replay-dump", str(swap)),
        agent(tmp_path, coord.address, "spare", *every, "--replay-dump", str(DEV_DUMP)),
    ]
    try:
        listing = wait_until(
            lambda: (h := hosts(coord.address)) and len(h) == 3 and h, what="3 hosts"
        )
        assert isinstance(listing, dict)
        assert {h: listing[h]["replayed"] for h in listing} == {
            "live-1": False,
            "rehearsal": True,
            "spare": True,
        }
        assert all(h["status"] == "online" and h["cluster"] == "prod" for h in listing.values())
        table = run_cli("hosts", "--coordinator", coord.address)
        assert "rehearsal (replayed)" in table.stdout and "live-1 " in table.stdout

        if swappable:  # the replayed processor is swapped: Rome -> Milan
            tmp = tmp_path / "swap.new"
            shutil.copy(MILAN, tmp)
            tmp.replace(swap)

            def two_versions() -> object:
                r = run_cli(
                    "host", "history", "rehearsal", "--coordinator", coord.address, "--json"
                )
                versions = json.loads(r.stdout)["versions"]
                return versions if len(versions) == 2 else None

            versions = wait_until(two_versions, what="a second profile version")
            assert isinstance(versions, list)
            assert {"vaes", "vpclmulqdq", "pku", "erms", "fsrm", "invpcid"} <= set(
                versions[1]["features_gained"]
            )
            assert "x2apic" in versions[1]["features_lost"]
            changed = [e for e in events(coord.address) if e["kind"] == "profile_changed"]
            assert changed and changed[0]["host_id"] == "rehearsal"
            assert "vaes" in changed[0]["features_gained"]

        agents[0].kill()  # SIGKILL: no goodbye, heartbeats simply stop
        wait_until(lambda: hosts(coord.address)["live-1"]["status"] == "stale", what="live-1 stale")
        assert agents[2].stop(signal.SIGTERM) == 0
        wait_until(
            lambda: hosts(coord.address)["spare"]["status"] == "offline", what="spare offline"
        )
        kinds = [(e["host_id"], e["kind"]) for e in events(coord.address)]
        assert ("live-1", "host_joined") in kinds and ("live-1", "status_changed") in kinds
        assert hosts(coord.address)["rehearsal"]["status"] == "online"
    finally:
        for a in agents:
            a.kill()
        assert coord.stop() == 0


def test_acknowledged_report_survives_kill_9(tmp_path: Path, coordinator_db: str) -> None:
    db = coordinator_db
    coord = coordinator(tmp_path, "--allow-replayed", db=db)
    one = agent(tmp_path, coord.address, "durable", "--replay-dump", str(DEV_DUMP))
    try:
        wait_until(lambda: "durable" in hosts(coord.address), what="report acknowledged")
        fingerprint = hosts(coord.address)["durable"]["fingerprint"]
    finally:
        one.kill()
    coord.stop(signal.SIGKILL)
    again = coordinator(tmp_path, db=db)
    try:
        listed = hosts(again.address)
        assert listed["durable"]["fingerprint"] == fingerprint
        show = run_cli("host", "show", "durable", "--coordinator", again.address, "--json")
        assert json.loads(show.stdout)["profile"]["vendor"] == "AuthenticAMD"
    finally:
        again.stop()


def test_agent_reports_once_the_coordinator_comes_back(tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    waiting = agent(tmp_path, address, "patient", "--interval", "0.5")
    try:
        health = run_cli("agent", "--help")
        assert health.returncode == 0
        coord = Daemon(
            ["coordinator", "--listen", address, "--db", str(tmp_path / "late.db")],
            tmp_path / "late.log",
        )
        try:
            wait_until(lambda: "patient" in hosts(address), what="report after coordinator start")
        finally:
            coord.stop()
        assert waiting.proc.poll() is None  # the agent kept running throughout
    finally:
        waiting.kill()


def _stub(
    address: str, creds: grpc.ChannelCredentials | None = None
) -> pb_grpc.RegistryServiceStub:
    channel = grpc.secure_channel(address, creds) if creds else grpc.insecure_channel(address)
    return pb_grpc.RegistryServiceStub(channel)


def test_mutual_tls_binds_reports_to_certificates(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "pki")
    server_cert, server_key = ca.issue("coordinator", dns=["localhost"], ip=["127.0.0.1"])
    host_cert, host_key = ca.issue("host-a")
    admin_cert, admin_key = ca.issue("ops")
    coord = coordinator(
        tmp_path,
        "--tls-cert",
        str(server_cert),
        "--tls-key",
        str(server_key),
        "--tls-ca",
        str(ca.ca_path),
        "--admin",
        "ops",
    )
    tls_agent = [
        "--tls-cert",
        str(host_cert),
        "--tls-key",
        str(host_key),
        "--tls-ca",
        str(ca.ca_path),
    ]
    admin = [
        "--tls-cert",
        str(admin_cert),
        "--tls-key",
        str(admin_key),
        "--tls-ca",
        str(ca.ca_path),
    ]
    # Under mutual TLS a host joins only the clusters an administrator admitted it to.
    admitted = run_cli("cluster", "admit", "prod", "host-a", "--coordinator", coord.address, *admin)
    assert admitted.returncode == 0, admitted.stderr
    a = agent(tmp_path, coord.address, "host-a", "--interval", "0.5", *tls_agent)
    try:
        wait_until(lambda: "host-a" in hosts(coord.address, *admin), what="host-a over mTLS")

        creds = grpc.ssl_channel_credentials(
            ca.ca_path.read_bytes(), host_key.read_bytes(), host_cert.read_bytes()
        )
        spoof = pb.ReportProfileRequest(
            host_id="host-b", cluster="prod", raw=capture_to_proto(load_dump(DEV_DUMP))
        )
        with pytest.raises(grpc.RpcError) as err:
            _stub(coord.address, creds).ReportProfile(spoof, timeout=10)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "host-b" not in hosts(coord.address, *admin)

        as_host = run_cli("hosts", "--coordinator", coord.address, *tls_agent)
        assert as_host.returncode == 2
        assert "not an administrator" in as_host.stderr

        no_cert = run_cli("hosts", "--coordinator", coord.address, "--tls-ca", str(ca.ca_path))
        assert no_cert.returncode != 0
    finally:
        a.kill()
        coord.stop()


def test_coordinator_refuses_plain_text_beyond_loopback(tmp_path: Path) -> None:
    result = run_cli("coordinator", "--listen", "0.0.0.0:0", "--db", str(tmp_path / "x.db"))
    assert result.returncode == 2
    assert "--insecure" in result.stderr
