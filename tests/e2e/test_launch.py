"""Daemons start one way for quickstart and the tests: ready on "listening on", else a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpucompat.coordinator.cli.launch import Launched, LaunchError


def test_a_daemon_that_cannot_start_is_an_error_holding_its_output(tmp_path: Path) -> None:
    db = tmp_path / "missing-folder" / "c.db"
    log = tmp_path / "coordinator.log"
    with pytest.raises(LaunchError) as failed:
        Launched(["coordinator", "--listen", "127.0.0.1:0", "--db", str(db)], log)
    message = str(failed.value)
    assert "`cpucompat coordinator --listen 127.0.0.1:0" in message
    assert "missing-folder" in message  # the daemon's own one-line error, from its output
    assert "missing-folder" in log.read_text()


def test_a_started_daemon_serves_at_its_address_and_stops_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "coordinator.log"
    log.write_text("an earlier run\n")
    daemon = Launched(
        ["coordinator", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "c.db")],
        log,
        append=False,
    )
    try:
        host, _, port = daemon.address.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
    finally:
        code = daemon.stop()
    assert code == 0
    text = log.read_text()
    assert "an earlier run" not in text  # append=False starts the log afresh
    assert f"listening on {daemon.address}" in text
    assert "cpucompat coordinator stopped" in daemon.output()
