"""Operator input: numbers, ports and flags out of range are one-line errors with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import DEV_DUMP


def assert_usage_error(result: object, *words: str) -> None:
    out = result.stdout  # type: ignore[attr-defined]
    err = result.stderr  # type: ignore[attr-defined]
    assert result.returncode == 2, (out, err)  # type: ignore[attr-defined]
    assert "Traceback" not in err and "listening" not in out
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("interval", ["nan", "inf", "1e19", "0", "-1", "-inf", "x"])
def test_agent_refuses_an_impossible_interval_before_starting(interval: str) -> None:
    result = run_cli(
        "agent",
        "--coordinator",
        "127.0.0.1:1",
        "--cluster",
        "c",
        "--host-id",
        "h1",
        "--replay-dump",
        str(DEV_DUMP),
        "--interval",
        interval,
    )
    assert_usage_error(result, "--interval")


@pytest.mark.parametrize("limit", ["100000000000", "0", "-1", "1.5"])
def test_events_limit_out_of_range(limit: str) -> None:
    assert_usage_error(
        run_cli("events", "--limit", limit, "--coordinator", "127.0.0.1:1"), "--limit"
    )


def test_coordinator_flags_out_of_range(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    for flags, word in (
        (["--max-message-bytes", "99999999999"], "--max-message-bytes"),
        (["--max-message-bytes", "-5"], "--max-message-bytes"),
        (["--workers", "0"], "--workers"),
        (["--listen", "127.0.0.1:99999"], "65535"),
        (["--listen", "127.0.0.1:-1"], "65535"),
        (["--listen", "127.0.0.1"], "needs a port"),
        (["--admin", "ops"], "--admin needs mutual TLS"),
    ):
        result = run_cli("coordinator", "--db", db, "--listen", "127.0.0.1:0", *flags)
        assert_usage_error(result, word)
    assert_usage_error(run_cli("hosts", "--coordinator", "127.0.0.1:70000"), "65535")


def test_an_address_without_port_dials_the_default_port() -> None:
    result = run_cli("hosts", "--coordinator", "localhost")
    assert result.returncode == 1 and "localhost:7443" in result.stderr, result.stderr


def test_tls_flags_read_the_environment(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-ca.pem"
    result = run_cli(
        "hosts", "--coordinator", "127.0.0.1:1", env={"CPUCOMPAT_TLS_CA": str(missing)}
    )
    assert result.returncode == 2 and str(missing) in result.stderr, result.stderr


@pytest.mark.e2e
def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    coord = start_coordinator(tmp_path)
    try:
        again = run_cli(
            "coordinator", "--listen", coord.address, "--db", str(tmp_path / "other.db")
        )
        assert again.returncode == 2 and "in use" in again.stderr
        assert len(again.stderr.strip().splitlines()) == 1
        agent = start_agent(tmp_path, coord.address, "h1", "--replay-dump", str(DEV_DUMP))
        try:
            second = run_cli(
                "agent",
                "--coordinator",
                coord.address,
                "--cluster",
                "prod",
                "--host-id",
                "h2",
                "--replay-dump",
                str(DEV_DUMP),
                "--listen",
                agent.address,
            )
            assert second.returncode == 2 and "in use" in second.stderr, second.stderr
            assert len(second.stderr.strip().splitlines()) == 1
        finally:
            agent.stop()
    finally:
        coord.stop()


@pytest.mark.e2e
def test_a_cut_event_list_says_how_many_more(tmp_path: Path) -> None:
    coord = start_coordinator(tmp_path, "--allow-replayed")
    agents: list[Daemon] = []
    try:
        for host in ("h1", "h2", "h3"):
            agents.append(
                start_agent(tmp_path, coord.address, host, "--replay-dump", str(DEV_DUMP))
            )
        wait_until(
            lambda: run_cli("events", "--coordinator", coord.address).stdout.count("h") >= 3,
            what="events of three hosts",
        )
        full = run_cli("events", "--json", "--coordinator", coord.address)
        import json

        doc = json.loads(full.stdout)
        total = len(doc["events"])
        assert doc["more"] == 0 and doc["more_exact"]
        cut = run_cli("events", "--limit", "1", "--coordinator", coord.address)
        assert cut.returncode == 0
        last = cut.stdout.strip().splitlines()[-1]
        assert last.startswith(f"\u2026 and {total - 1} more earlier events"), cut.stdout
        assert all(len(line) <= 100 for line in cut.stdout.splitlines())
        # Scripts are told too: the one event kept, and how many earlier ones were left out.
        cut_json = json.loads(
            run_cli("events", "--limit", "1", "--json", "--coordinator", coord.address).stdout
        )
        assert cut_json["events"] == doc["events"][-1:]
        assert cut_json["more"] == total - 1 and cut_json["more_exact"]
    finally:
        for agent in agents:
            agent.stop()
        coord.stop()


@pytest.mark.e2e
def test_wrong_kind_of_peer_is_named(tmp_path: Path) -> None:
    from tests.support.certs import TestCA

    ca = TestCA(tmp_path / "pki")
    cert, key = ca.issue("coordinator", ip=["127.0.0.1"])
    coord = start_coordinator(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key))
    agent = start_agent(
        tmp_path, coord.address, "h1", "--replay-dump", str(DEV_DUMP), "--tls-ca", str(ca.ca_path)
    )
    try:
        plain = run_cli("hosts", "--coordinator", coord.address)
        assert plain.returncode == 2 and "the coordinator speaks TLS: pass --tls-ca" in plain.stderr
        wrong = run_cli("hosts", "--coordinator", agent.address)
        assert wrong.returncode == 2 and "is a cpucompat agent" in wrong.stderr, wrong.stderr
        named = run_cli(
            "hosts",
            "--coordinator",
            coord.address.replace("127.0.0.1", "localhost"),
            "--tls-ca",
            str(ca.ca_path),
        )
        assert named.returncode == 2 and "does not name" in named.stderr, named.stderr
        ok = run_cli("hosts", "--coordinator", coord.address, "--tls-ca", str(ca.ca_path))
        assert ok.returncode == 0, ok.stderr
    finally:
        agent.stop()
        coord.stop()
