"""`--metrics-listen`: both daemons as real processes, scraped over HTTP(S) and parsed.

The scrape uses urllib (a real HTTP client) and prometheus_client's own text parser, so
what is asserted is what Prometheus would store: hosts by status, reports counted, a
refused call counted with its status code, the agent's policy as `policy show` gives it.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.certs import TestCA
from tests.support.daemons import Daemon, free_port, run_cli, start_agent, start_coordinator
from tests.support.scrape import scrape, value, wait_for


def test_both_daemons_export_what_an_operator_watches(tmp_path: Path) -> None:
    c_port, a_port = free_port(), free_port()
    coord = start_coordinator(tmp_path, "--metrics-listen", f"127.0.0.1:{c_port}")
    c_url = f"http://127.0.0.1:{c_port}/metrics"
    assert f"metrics on {c_url}" in coord.output()
    agent: Daemon | None = None
    try:
        before = scrape(c_url)  # served before any agent: an empty fleet, zero counters
        assert value(before, "cpucompat_agent_calls_received_total", kind="report") == 0
        assert not any(name == "cpucompat_hosts" for name, _ in before)

        agent = start_agent(
            tmp_path,
            coord.address,
            "h1",
            "--interval",
            "0.5",
            "--metrics-listen",
            str(a_port),  # a bare port: loopback
            "--state-file",
            str(tmp_path / "policy.json"),
        )
        a_url = f"http://127.0.0.1:{a_port}/metrics"
        assert f"metrics on {a_url}" in agent.output()

        c = wait_for(
            lambda: scrape(c_url),
            lambda s: value(s, "cpucompat_agent_calls_received_total", kind="heartbeat") >= 2,
            "a report and two heartbeats",
        )
        assert value(c, "cpucompat_hosts", cluster="prod", status="online") == 1
        assert value(c, "cpucompat_hosts", cluster="prod", status="stale") == 0
        assert value(c, "cpucompat_agent_calls_received_total", kind="report") >= 1
        assert value(c, "cpucompat_cluster_offline_action", cluster="prod", action="save") == 1
        assert value(c, "cpucompat_clusters", action="save") == 1
        assert value(c, "cpucompat_policy_changes_total", cluster="prod", action="save") == 1
        report = {"service": "cpucompat.v1.RegistryService", "method": "ReportProfile"}
        assert value(c, "cpucompat_rpc_handled_total", code="OK", **report) >= 1
        assert value(c, "cpucompat_rpc_duration_seconds_count", **report) >= 1
        assert value(c, "cpucompat_db_transaction_duration_seconds_count", kind="write") >= 1
        assert value(c, "cpucompat_stale_sweeps_total") >= 1

        # A call the coordinator refuses NOT_FOUND is counted with that code.
        missing = run_cli("policy", "show", "--cluster", "nosuch", "--coordinator", coord.address)
        assert missing.returncode != 0
        get_policy = {"service": "cpucompat.v1.PolicyService", "method": "GetPolicy"}
        assert (
            value(scrape(c_url), "cpucompat_rpc_handled_total", code="NOT_FOUND", **get_policy) == 1
        )

        shown = run_cli(
            "policy", "show", "--cluster", "prod", "--coordinator", coord.address, "--json"
        )
        assert shown.returncode == 0, shown.stderr
        policy = json.loads(shown.stdout)
        policy = policy[0] if isinstance(policy, list) else policy.get("policies", [policy])[0]
        a = wait_for(
            lambda: scrape(a_url),
            lambda s: value(s, "cpucompat_agent_policy_version") == policy["version"],
            "the agent to hold the policy `policy show` gives",
        )
        assert value(a, "cpucompat_agent_policy_action", action=policy["action"].lower()) == 1
        assert value(a, "cpucompat_agent_policy_action", action="shutdown") == 0
        assert value(a, "cpucompat_agent_reports_sent_total", kind="report") >= 1
        assert value(a, "cpucompat_agent_probes_total", result="ok") >= 1
        assert value(a, "cpucompat_agent_probe_duration_seconds_count") >= 1
        assert value(a, "cpucompat_agent_interval_seconds") == 0.5
        assert 0 <= value(a, "cpucompat_agent_seconds_since_last_ack") < 30

        # The agent stops: its host leaves; the coordinator's gauges follow at once.
        assert agent.stop() == 0
        agent = None
        c = scrape(c_url)
        assert value(c, "cpucompat_hosts", cluster="prod", status="online") == 0
        assert value(c, "cpucompat_hosts", cluster="prod", status="offline") == 1
        watch = {"service": "cpucompat.v1.PolicyService", "method": "WatchPolicy"}
        wait_for(  # its policy watch ended from the agent's side: counted as CANCELLED
            lambda: scrape(c_url),
            lambda s: value(s, "cpucompat_rpc_handled_total", code="CANCELLED", **watch) >= 1,
            "the agent's watch stream counted as cancelled",
        )
    finally:
        if agent is not None:
            agent.stop()
        assert coord.stop() == 0


def test_an_agent_that_cannot_report_says_so(tmp_path: Path) -> None:
    """No coordinator: failures counted by code, no acknowledgement (+Inf seconds since)."""
    port = free_port()
    agent = start_agent(
        tmp_path,
        f"127.0.0.1:{free_port()}",
        "lonely",
        "--interval",
        "0.2",
        "--metrics-listen",
        f"127.0.0.1:{port}",
        "--state-file",
        str(tmp_path / "p.json"),
    )
    try:
        a = wait_for(
            lambda: scrape(f"http://127.0.0.1:{port}/metrics"),
            lambda s: (
                value(s, "cpucompat_agent_reports_failed_total", kind="report", code="unavailable")
                >= 1
            ),
            "a failed report",
        )
        assert value(a, "cpucompat_agent_seconds_since_last_ack") == float("inf")
        assert value(a, "cpucompat_agent_reports_sent_total", kind="report") == 0
        assert value(a, "cpucompat_agent_policy_version") == 0
    finally:
        assert agent.stop() == 0


@pytest.mark.parametrize("command", ["coordinator", "agent"])
def test_plain_http_beyond_loopback_is_refused(tmp_path: Path, command: str) -> None:
    args = ["--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:9464"]
    if command == "coordinator":
        args += ["--db", str(tmp_path / "c.db")]
    else:
        args += ["--coordinator", "127.0.0.1:1", "--cluster", "prod", "--host-id", "h"]
    result = run_cli(command, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refusing to serve metrics over plain HTTP on 0.0.0.0:9464" in lines[0]
    assert "--tls-cert" in lines[0]
    assert not (tmp_path / "c.db").exists()  # refused before anything was opened


def test_a_taken_metrics_port_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--db",
            str(tmp_path / "c.db"),
            "--metrics-listen",
            f"127.0.0.1:{port}",
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr


def test_print_config_shows_the_key(tmp_path: Path) -> None:
    env = {"CPUCOMPAT_METRICS_LISTEN": "127.0.0.1:9999"}
    for command in ("coordinator", "agent"):
        extra = [] if command == "coordinator" else ["--coordinator", "c", "--cluster", "p"]
        shown = run_cli(command, *extra, "--print-config", "--json", env=env)
        assert shown.returncode == 0, shown.stderr
        setting = json.loads(shown.stdout)["settings"]["metrics_listen"]
        assert setting == {
            "value": "127.0.0.1:9999",
            "source": "environment CPUCOMPAT_METRICS_LISTEN",
        }
        flag = run_cli(command, *extra, "--print-config", "--metrics-listen", "9464", env=env)
        assert 'metrics_listen = "127.0.0.1:9464"  # flag --metrics-listen' in flag.stdout


def test_https_with_client_certificates_like_grpc(tmp_path: Path) -> None:
    """With --tls-cert/--tls-key/--tls-ca the endpoint is HTTPS and wants a client cert."""
    ca = TestCA(tmp_path / "pki")
    server_cert, server_key = ca.issue("coordinator", ip=["127.0.0.1"])
    scraper_cert, scraper_key = ca.issue("prometheus")
    port = free_port()
    coord = start_coordinator(
        tmp_path,
        "--metrics-listen",
        f"127.0.0.1:{port}",
        "--tls-cert",
        str(server_cert),
        "--tls-key",
        str(server_key),
        "--tls-ca",
        str(ca.ca_path),
        "--admin",
        "prometheus",
    )
    url = f"https://127.0.0.1:{port}/metrics"
    try:
        assert f"metrics on {url}" in coord.output()
        trusting = ssl.create_default_context(cafile=str(ca.ca_path))
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            scrape(url, trusting)  # no client certificate: the handshake is refused
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            scrape(f"http://127.0.0.1:{port}/metrics")  # no plain HTTP on a TLS endpoint
        trusting.load_cert_chain(str(scraper_cert), str(scraper_key))
        samples = scrape(url, trusting)
        assert value(samples, "cpucompat_stale_sweeps_total") >= 0
        assert value(samples, "cpucompat_clusters", action="shutdown") == 0
    finally:
        assert coord.stop() == 0


def test_ready_means_scrapable(tmp_path: Path) -> None:
    """systemd hears READY=1 only once /metrics answers: the first scrape after it works."""
    import socket

    path = str(tmp_path / "notify.sock")
    port = free_port()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(60)
        daemon = Daemon(
            [
                "coordinator",
                "--listen",
                "127.0.0.1:0",
                "--db",
                str(tmp_path / "c.db"),
                "--metrics-listen",
                f"127.0.0.1:{port}",
            ],
            tmp_path / "c.log",
            env={"NOTIFY_SOCKET": path},
        )
        try:
            while "READY=1" not in sock.recv(4096).decode():
                pass
            samples = scrape(f"http://127.0.0.1:{port}/metrics")
            assert value(samples, "cpucompat_clusters", action="save") == 0
        finally:
            assert daemon.stop() == 0


def test_refused_reports_are_counted_by_reason(tmp_path: Path) -> None:
    """A host not admitted: the coordinator counts permission_denied, the agent its failures."""
    c_port, a_port = free_port(), free_port()
    coord = start_coordinator(
        tmp_path, "--require-admission", "--metrics-listen", f"127.0.0.1:{c_port}"
    )
    agent = start_agent(
        tmp_path,
        coord.address,
        "intruder",
        "--interval",
        "0.5",
        "--metrics-listen",
        f"127.0.0.1:{a_port}",
        "--state-file",
        str(tmp_path / "p.json"),
    )
    try:
        c = wait_for(
            lambda: scrape(f"http://127.0.0.1:{c_port}/metrics"),
            lambda s: (
                value(
                    s,
                    "cpucompat_agent_calls_refused_total",
                    kind="report",
                    reason="permission_denied",
                )
                >= 1
            ),
            "a refused report",
        )
        assert not any(name == "cpucompat_hosts" for name, _ in c)  # nothing stored
        a = scrape(f"http://127.0.0.1:{a_port}/metrics")
        failed = value(
            a, "cpucompat_agent_reports_failed_total", kind="report", code="permission_denied"
        )
        assert failed >= 1
        assert value(a, "cpucompat_agent_seconds_since_last_ack") == float("inf")
    finally:
        agent.stop()
        assert coord.stop() == 0


def test_sighup_reloads_the_metrics_certificate(tmp_path: Path) -> None:
    """New scrapes see the re-read certificate, as new gRPC connections do."""
    import shutil
    import signal

    from tests.support.daemons import wait_until

    old, new = TestCA(tmp_path / "old"), TestCA(tmp_path / "new")
    old_cert, old_key = old.issue("coordinator", ip=["127.0.0.1"])
    new_cert, new_key = new.issue("coordinator", ip=["127.0.0.1"])
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(old_cert, cert)
    shutil.copy(old_key, key)
    port = free_port()
    coord = start_coordinator(
        tmp_path,
        "--metrics-listen",
        f"127.0.0.1:{port}",
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
    )
    url = f"https://127.0.0.1:{port}/metrics"
    trust_old = ssl.create_default_context(cafile=str(old.ca_path))
    trust_new = ssl.create_default_context(cafile=str(new.ca_path))
    try:
        assert value(scrape(url, trust_old), "cpucompat_stale_sweeps_total") >= 0
        with pytest.raises(urllib.error.URLError):
            scrape(url, trust_new)
        shutil.copy(new_cert, cert)
        shutil.copy(new_key, key)
        coord.proc.send_signal(signal.SIGHUP)
        wait_until(
            lambda: "metrics endpoint: TLS certificate reloaded" in coord.output(),
            what="the reload line",
        )
        assert value(scrape(url, trust_new), "cpucompat_stale_sweeps_total") >= 0
        with pytest.raises(urllib.error.URLError):
            scrape(url, trust_old)
    finally:
        assert coord.stop() == 0
