"""Cluster admission under mutual TLS: a valid host certificate alone cannot join a cluster.

Real coordinator and agent processes, real certificates from a throwaway CA; every refusal
is checked against every stored row.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.certs import TestCA
from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.hostile import DEV_DUMP, refused, report, snapshot

pytestmark = pytest.mark.e2e

HOSTS = ("node-1", "node-2", "web-1", "web-2")


class Pki:
    def __init__(self, folder: Path) -> None:
        self.ca = TestCA(folder)
        self.server = self.ca.issue("coordinator", dns=["localhost"], ip=["127.0.0.1"])
        self.certs = {name: self.ca.issue(name) for name in (*HOSTS, "ops")}

    def flags(self, name: str) -> list[str]:
        cert, key = self.certs[name]
        return ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(self.ca.ca_path)]

    def server_flags(self) -> list[str]:
        cert, key = self.server
        return ["--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(self.ca.ca_path)]

    def registry(self, address: str, name: str) -> pb_grpc.RegistryServiceStub:
        cert, key = self.certs[name]
        creds = grpc.ssl_channel_credentials(
            self.ca.ca_path.read_bytes(), key.read_bytes(), cert.read_bytes()
        )
        return pb_grpc.RegistryServiceStub(grpc.secure_channel(address, creds))


def cli(coord: Daemon, pki: Pki, who: str, *args: str):  # type: ignore[no-untyped-def]
    return run_cli(*args, "--coordinator", coord.address, *pki.flags(who))


def joined(coord: Daemon, pki: Pki) -> dict[str, str]:
    result = cli(coord, pki, "ops", "hosts", "--json")
    assert result.returncode == 0, result.stderr
    return {h["host_id"]: h["cluster"] for h in json.loads(result.stdout)}


@pytest.fixture
def running(tmp_path: Path):  # type: ignore[no-untyped-def]
    pki = Pki(tmp_path / "pki")
    coord = start_coordinator(tmp_path, *pki.server_flags(), "--admin", "ops")
    try:
        yield tmp_path / "coordinator.db", coord, pki
    finally:
        coord.stop()


def test_unadmitted_host_certificate_is_refused_and_nothing_is_stored(running) -> None:  # type: ignore[no-untyped-def]
    db, coord, pki = running
    stub = pki.registry(coord.address, "node-1")
    before = snapshot(db)
    err = refused(stub.ReportProfile, report("node-1", "prod"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "cpucompat cluster admit prod node-1" in (err.details() or "")
    beat = refused(stub.Heartbeat, pb.HeartbeatRequest(host_id="node-1", cluster="prod"))
    assert beat.code() == grpc.StatusCode.PERMISSION_DENIED
    assert snapshot(db) == before
    wait_until(lambda: "not admitted to cluster prod" in coord.output(), what="refusal logged")

    # A host's certificate is no administrator: it cannot admit itself.
    self_admit = cli(coord, pki, "node-1", "cluster", "admit", "prod", "node-1")
    assert self_admit.returncode == 2 and "not an administrator" in self_admit.stderr
    assert snapshot(db) == before
    assert refused(stub.ReportProfile, report("node-1", "prod")).code() == (
        grpc.StatusCode.PERMISSION_DENIED
    )


def test_admitted_hosts_join_patterns_admit_and_clusters_stay_apart(running) -> None:  # type: ignore[no-untyped-def]
    db, coord, pki = running
    admit = cli(coord, pki, "ops", "cluster", "admit", "prod", "node-1", "web-*")
    assert admit.returncode == 0, admit.stderr
    assert "web-*" in admit.stdout and "ops" in admit.stdout

    pki.registry(coord.address, "node-1").ReportProfile(report("node-1", "prod"), timeout=10)
    pki.registry(coord.address, "web-2").ReportProfile(report("web-2", "prod"), timeout=10)
    assert joined(coord, pki) == {"node-1": "prod", "web-2": "prod"}
    # node-2 matches no admission of prod.
    err = refused(pki.registry(coord.address, "node-2").ReportProfile, report("node-2", "prod"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED

    # Admitted to prod is not admitted to staging: no move, nothing stored.
    before = snapshot(db)
    err = refused(pki.registry(coord.address, "node-1").ReportProfile, report("node-1", "staging"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "cpucompat cluster admit staging node-1" in (err.details() or "")
    assert snapshot(db) == before
    assert joined(coord, pki)["node-1"] == "prod"

    listed = cli(coord, pki, "ops", "cluster", "admissions", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(a["cluster"], a["pattern"]) for a in json.loads(listed.stdout)] == [
        ("prod", "node-1"),
        ("prod", "web-*"),
    ]
    other = cli(coord, pki, "ops", "cluster", "admissions", "--cluster", "staging", "--json")
    assert other.returncode == 0 and json.loads(other.stdout) == []


def test_revoke_refuses_the_next_report_and_names_covering_patterns(running) -> None:  # type: ignore[no-untyped-def]
    db, coord, pki = running
    assert cli(coord, pki, "ops", "cluster", "admit", "prod", "node-1", "web-*").returncode == 0
    node = pki.registry(coord.address, "node-1")
    node.ReportProfile(report("node-1", "prod"), timeout=10)
    pki.registry(coord.address, "web-1").ReportProfile(report("web-1", "prod"), timeout=10)

    # web-1 is admitted by its pattern, not by name: revoking the name changes nothing.
    before = snapshot(db)
    wrong = cli(coord, pki, "ops", "cluster", "revoke", "prod", "node-1", "web-1")
    assert wrong.returncode == 2 and "web-*" in wrong.stderr
    assert snapshot(db) == before

    not_admin = cli(coord, pki, "web-1", "cluster", "revoke", "prod", "node-1")
    assert not_admin.returncode == 2 and "not an administrator" in not_admin.stderr

    revoke = cli(coord, pki, "ops", "cluster", "revoke", "prod", "node-1")
    assert revoke.returncode == 0, revoke.stderr
    before = snapshot(db)
    assert refused(node.ReportProfile, report("node-1", "prod")).code() == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    beat = refused(node.Heartbeat, pb.HeartbeatRequest(host_id="node-1", cluster="prod"))
    assert beat.code() == grpc.StatusCode.PERMISSION_DENIED
    assert snapshot(db) == before
    # The revoked member stays listed (it goes stale) until an administrator removes it.
    assert joined(coord, pki) == {"node-1": "prod", "web-1": "prod"}

    # Admissions survive a restart: they live in the database.
    coord.stop()
    again = start_coordinator(db.parent, *pki.server_flags(), "--admin", "ops", log="c2.log")
    try:
        listed = cli(again, pki, "ops", "cluster", "admissions", "--json")
        assert [a["pattern"] for a in json.loads(listed.stdout)] == ["web-*"]
        err = refused(pki.registry(again.address, "node-1").ReportProfile, report("node-1", "prod"))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        pki.registry(again.address, "web-1").ReportProfile(report("web-1", "prod"), timeout=10)
    finally:
        again.stop()


def test_no_require_admission_lets_any_certified_host_join(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    coord = start_coordinator(
        tmp_path, *pki.server_flags(), "--admin", "ops", "--no-require-admission"
    )
    try:
        pki.registry(coord.address, "node-2").ReportProfile(report("node-2", "prod"), timeout=10)
        assert joined(coord, pki) == {"node-2": "prod"}
    finally:
        coord.stop()


def test_agent_logs_the_refusal_with_the_fix(running) -> None:  # type: ignore[no-untyped-def]
    db, coord, pki = running
    agent = start_agent(
        db.parent,
        coord.address,
        "node-2",
        "--interval",
        "0.5",
        "--replay-dump",
        str(DEV_DUMP),
        *pki.flags("node-2"),
    )
    try:
        wait_until(
            lambda: "cpucompat cluster admit prod node-2" in agent.output(),
            what="the agent's refusal line",
        )
        assert agent.proc.poll() is None  # it keeps running and retries slowly
        assert agent.output().count("not admitted to cluster prod") == 1
    finally:
        agent.stop()
    assert snapshot(db)["hosts"] == []


def test_malformed_admissions_are_refused_and_change_nothing(running) -> None:  # type: ignore[no-untyped-def]
    db, coord, pki = running
    before = snapshot(db)
    for args in (
        ("prod", "bad name"),
        ("prod", "node-1\n"),
        ("bad/cluster", "node-1"),
        ("prod", "node-1", "x" * 300),
    ):
        result = cli(coord, pki, "ops", "cluster", "admit", *args)
        assert result.returncode == 2, (args, result.stdout)
        assert "not valid" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(db) == before
    assert "no host admitted yet" in coord.output()


def test_require_admission_without_tls_guards_the_claimed_host_id(tmp_path: Path) -> None:
    """Without certificates the host id is only claimed, but the admission list still applies."""
    coord = start_coordinator(tmp_path, "--require-admission")
    try:
        stub = pb_grpc.RegistryServiceStub(grpc.insecure_channel(coord.address))
        err = refused(stub.ReportProfile, report("h1", "prod"))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED
        admit = run_cli("cluster", "admit", "prod", "h1", "--coordinator", coord.address)
        assert admit.returncode == 0, admit.stderr
        assert stub.ReportProfile(report("h1", "prod"), timeout=10).accepted
    finally:
        coord.stop()


def test_a_revoked_agent_logs_the_refusal_and_rejoins_when_admitted_again(tmp_path: Path) -> None:
    pki = Pki(tmp_path / "pki")
    coord = start_coordinator(tmp_path, *pki.server_flags(), "--admin", "ops", "--allow-replayed")
    agent = None
    state = tmp_path / "policy-prod.json"
    try:
        assert cli(coord, pki, "ops", "cluster", "admit", "prod", "node-1").returncode == 0
        agent = start_agent(
            tmp_path,
            coord.address,
            "node-1",
            "--interval",
            "3600",  # an hour: the revoke must not wait for the next heartbeat
            "--replay-dump",
            str(DEV_DUMP),
            "--state-file",
            str(state),
            *pki.flags("node-1"),
        )
        wait_until(lambda: joined(coord, pki) == {"node-1": "prod"}, what="node-1 joined")
        # The agent follows the cluster's policy (its state file is written): it is watching.
        wait_until(state.exists, what="the agent's policy state file")
        assert cli(coord, pki, "ops", "cluster", "revoke", "prod", "node-1").returncode == 0
        fix = "cpucompat cluster admit prod node-1"

        def refusals() -> list[str]:
            lines = agent.output().splitlines()
            return [x for x in lines if "coordinator refused this host" in x and fix in x]

        wait_until(refusals, what="the reporter's refusal naming the fix")
        assert "PERMISSION_DENIED" in refusals()[0], agent.output()
        assert agent.proc.poll() is None  # it keeps running and retrying

        # Admitted again: the agent's next retry is accepted; it does not sit out a long wait.
        assert cli(coord, pki, "ops", "cluster", "admit", "prod", "node-1").returncode == 0
        wait_until(lambda: "accepts this host again" in agent.output(), what="the agent back in")
        assert len(refusals()) == 1  # logged once per change, not every retry
        assert "Traceback" not in agent.output()
    finally:
        if agent is not None:
            agent.stop()
        coord.stop()
