"""Where daemons may serve: plaintext only on addresses that resolve to loopback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from cpucompat.v1 import agent_service_pb2 as apb
from cpucompat.v1 import agent_service_pb2_grpc as apb_grpc
from tests.support.certs import TestCA
from tests.support.daemons import CLI, Daemon, run_cli
from tests.support.paths import DEV_DUMP

pytestmark = pytest.mark.e2e


def run_offline(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a network namespace of its own when one can be made, so resolving a
    hostile name sends nothing beyond this machine."""
    prefix: list[str] = []
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        prefix = [unshare, "-n"]
    return subprocess.run(
        prefix + CLI + list(args), capture_output=True, text=True, stdin=subprocess.DEVNULL
    )


def agent_args(listen: str, *extra: str) -> list[str]:
    return [
        "agent",
        "--coordinator",
        "127.0.0.1:1",
        "--cluster",
        "c",
        "--host-id",
        "h1",
        "--listen",
        listen,
        "--replay-dump",
        str(DEV_DUMP),
        *extra,
    ]


@pytest.mark.parametrize("listen", ["127.attacker.example:0", "0.0.0.0:0", ":0", "[::]:0"])
def test_plaintext_beyond_loopback_is_refused_by_both_daemons(tmp_path: Path, listen: str) -> None:
    for cmd in (
        agent_args(listen),
        ["coordinator", "--listen", listen, "--db", str(tmp_path / "c.db")],
    ):
        result = run_offline(*cmd)
        assert result.returncode == 2, (cmd, result.stdout, result.stderr)
        assert "refusing to serve plaintext" in result.stderr and "listening" not in result.stdout
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_ca_alone_does_not_make_the_agent_serve_tls(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "pki")
    result = run_cli(*agent_args("0.0.0.0:0", "--tls-ca", str(ca.ca_path)))
    assert result.returncode == 2 and "refusing to serve plaintext" in result.stderr
    coordinator = run_cli(
        "coordinator",
        "--listen",
        "127.0.0.1:0",
        "--db",
        str(tmp_path / "c.db"),
        "--tls-ca",
        str(ca.ca_path),
    )
    assert coordinator.returncode == 2 and "--tls-cert" in coordinator.stderr


def test_localhost_resolves_to_loopback_and_is_served(tmp_path: Path) -> None:
    agent = Daemon(agent_args("localhost:0"), tmp_path / "agent.log")
    try:
        with grpc.insecure_channel(agent.address) as channel:
            reply = apb_grpc.AgentServiceStub(channel).GetProfile(
                apb.GetProfileRequest(), timeout=10
            )
        assert reply.host_id == "h1"
    finally:
        agent.stop()


def test_agent_with_its_own_certificate_serves_only_tls(tmp_path: Path) -> None:
    ca = TestCA(tmp_path / "pki")
    cert, key = ca.issue("h1", dns=["h1"], ip=["127.0.0.1"])
    admin_cert, admin_key = ca.issue("admin")
    agent = Daemon(
        agent_args(
            "127.0.0.1:0",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            "--tls-ca",
            str(ca.ca_path),
        ),
        tmp_path / "agent.log",
    )
    try:
        with grpc.insecure_channel(agent.address) as plain, pytest.raises(grpc.RpcError):
            apb_grpc.AgentServiceStub(plain).GetProfile(apb.GetProfileRequest(), timeout=5)
        creds = grpc.ssl_channel_credentials(
            ca.ca_path.read_bytes(), admin_key.read_bytes(), admin_cert.read_bytes()
        )
        with grpc.secure_channel(agent.address, creds) as channel:
            reply = apb_grpc.AgentServiceStub(channel).GetProfile(
                apb.GetProfileRequest(), timeout=10
            )
        assert reply.host_id == "h1"
    finally:
        agent.stop()
