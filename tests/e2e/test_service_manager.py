"""The daemons under a service manager: sd_notify readiness and watchdog, SIGHUP reloads TLS.

systemd is played by a real AF_UNIX datagram socket named in $NOTIFY_SOCKET; the
certificates are real, made by tests/certs.py, and checked by real TLS handshakes.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.certs import TestCA
from tests.support.daemons import Daemon, start_agent, start_coordinator, wait_until

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "docs" / "systemd"


@contextmanager
def notify_socket(path: str) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30)
    try:
        yield sock
    finally:
        sock.close()


def _messages(sock: socket.socket, until: str) -> list[str]:
    """Datagrams received until one contains ``until`` (the socket's timeout bounds a hang)."""
    seen: list[str] = []
    while not any(until in m for m in seen):
        seen.append(sock.recv(4096).decode())
    return seen


@contextmanager
def clean_stop(daemon: Daemon) -> Iterator[Daemon]:
    """``daemon`` while the block runs; then stopped, and it must exit 0 (a clean shutdown)."""
    try:
        yield daemon
    finally:
        assert daemon.stop() == 0


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[Daemon]:
    """A plain coordinator (no service manager, no TLS) for the agents to report to."""
    daemon = start_coordinator(tmp_path)
    yield daemon
    daemon.stop()


def agent(
    folder: Path, coordinator: Daemon, *extra: str, env: dict[str, str] | None = None
) -> Daemon:
    """Agent h1 of cluster prod, its policy state file in ``folder``."""
    state = str(folder / "policy.json")
    return start_agent(folder, coordinator.address, "h1", "--state-file", state, *extra, env=env)


def test_coordinator_notifies_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with notify_socket(path) as sock:
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"}
        with clean_stop(start_coordinator(tmp_path, env=env)) as daemon:
            first = _messages(sock, "READY=1")
            ready = next(m for m in first if "READY=1" in m)
            assert f"STATUS=listening on {daemon.address}" in ready
            assert f"MAINPID={daemon.proc.pid}" in ready
            pings = [m for m in _messages(sock, "WATCHDOG=1") if m == "WATCHDOG=1"]
            pings += [m for m in _messages(sock, "WATCHDOG=1") if m == "WATCHDOG=1"]
            assert len(pings) >= 2
        assert "STOPPING=1" in _messages(sock, "STOPPING=1")


def test_agent_notifies_ready_on_an_abstract_socket(tmp_path: Path, coordinator: Daemon) -> None:
    name = f"cpucompat-test-{tmp_path.name}"
    with notify_socket("\0" + name) as sock:
        env = {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "400000"}
        with clean_stop(agent(tmp_path, coordinator, env=env)) as daemon:
            messages = _messages(sock, "READY=1")
            assert any(f"STATUS=listening on {daemon.address}" in m for m in messages)
            assert "WATCHDOG=1" in _messages(sock, "WATCHDOG=1")


def _handshake(address: str, ca: Path) -> bool:
    """A new TLS connection trusting only ``ca``; True when the health check answers."""
    options = [("grpc.use_local_subchannel_pool", 1)]
    creds = grpc.ssl_channel_credentials(ca.read_bytes())
    with grpc.secure_channel(address, creds, options=options) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def install(ca: TestCA, name: str, cert: Path, key: Path) -> None:
    """A new certificate for ``name`` (and 127.0.0.1) from ``ca``, written over ``cert``
    and ``key``: what an operator's renewal does before SIGHUP."""
    issued_cert, issued_key = ca.issue(name, dns=[name], ip=["127.0.0.1"])
    shutil.copy(issued_cert, cert)
    shutil.copy(issued_key, key)


def sighup(daemon: Daemon, line: str) -> None:
    """Send SIGHUP and wait for the daemon to log ``line``."""
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: line in daemon.output(), what=repr(line))


def test_sighup_reloads_certificates_for_new_connections(tmp_path: Path) -> None:
    old, new = TestCA(tmp_path / "old"), TestCA(tmp_path / "new")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    install(old, "localhost", cert, key)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with clean_stop(start_coordinator(tmp_path, *tls)) as daemon:
        assert _handshake(daemon.address, old.ca_path)
        assert not _handshake(daemon.address, new.ca_path)

        install(new, "localhost", cert, key)
        sighup(daemon, "TLS certificates reloaded")
        assert _handshake(daemon.address, new.ca_path)
        assert not _handshake(daemon.address, old.ca_path)

        # a broken new certificate keeps the working one and says why
        cert.write_text("not a certificate\n")
        sighup(daemon, "TLS reload failed")
        assert "keeping the previous certificates" in daemon.output()
        assert daemon.proc.poll() is None
        assert _handshake(daemon.address, new.ca_path)


def test_agent_sighup_reloads_its_own_certificate(tmp_path: Path, coordinator: Daemon) -> None:
    old, new = TestCA(tmp_path / "old"), TestCA(tmp_path / "new")
    cert, key = tmp_path / "agent.pem", tmp_path / "agent.key"
    install(old, "h1", cert, key)
    tls = ("--tls-cert", str(cert), "--tls-key", str(key))
    with clean_stop(agent(tmp_path, coordinator, *tls)) as daemon:
        assert _handshake(daemon.address, old.ca_path)
        install(new, "h1", cert, key)
        sighup(daemon, "TLS certificates reloaded")
        assert _handshake(daemon.address, new.ca_path)
        assert daemon.proc.poll() is None


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    beside = Path(sys.executable).parent / "cpucompat"  # this interpreter's own script first
    cli = str(beside) if beside.exists() else shutil.which("cpucompat")
    if cli is None:
        pytest.skip("the cpucompat script is not on PATH (pip install -e .)")
    for name in ("cpucompat-coordinator.service", "cpucompat-agent.service"):
        text = (UNITS / name).read_text()
        assert "/usr/local/bin/cpucompat" in text
        # verify needs ExecStart's binary to exist: point it at the installed script
        unit = tmp_path / name
        unit.write_text(text.replace("/usr/local/bin/cpucompat", cli))
        done = subprocess.run(
            [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=120
        )
        problems = [
            line
            for line in (done.stdout + done.stderr).splitlines()
            if name in line or "Unknown" in line or "Failed" in line
        ]
        assert done.returncode == 0 and not problems, done.stdout + done.stderr
