"""Names are matched whole: a trailing newline makes no host, cluster or VM name.

`re.match` with `$` accepts `h\\n`; a name that ends in a newline would print as two lines
in every table and log. The agent, the CLI and the coordinator all refuse it with exit 2
and store nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.daemons import run_cli, start_coordinator
from tests.support.hostile import DEV_DUMP, snapshot

pytestmark = pytest.mark.e2e

BAD = ("h\n", "hostile\n", "h-ok\n", "\nh", "h\nx")


@pytest.mark.parametrize("name", BAD)
def test_agent_refuses_a_name_with_a_newline_before_it_starts(tmp_path: Path, name: str) -> None:
    coord = start_coordinator(tmp_path, "--allow-replayed")
    db = tmp_path / "coordinator.db"
    before = snapshot(db)
    try:
        for flags in (
            ("--host-id", name, "--cluster", "prod"),
            ("--host-id", "h", "--cluster", name),
        ):
            result = run_cli(
                "agent",
                "--coordinator",
                coord.address,
                "--listen",
                "127.0.0.1:0",
                "--replay-dump",
                str(DEV_DUMP),
                "--state-file",
                str(tmp_path / "policy.json"),
                *flags,
            )
            assert result.returncode == 2, result.stdout + result.stderr
            assert "is not valid" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert "listening" not in result.stdout
        assert snapshot(db) == before
        assert not (tmp_path / "policy.json").exists()
    finally:
        coord.stop()


def test_cli_names_with_a_newline_are_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    coord = start_coordinator(tmp_path)
    db = tmp_path / "coordinator.db"
    c = ("--coordinator", coord.address)
    before = snapshot(db)
    try:
        for args in (
            ("vm", "register", "web\n", "--cluster", "prod", "--baseline", "model:icelake"),
            ("vm", "register", "web", "--cluster", "prod\n", "--baseline", "model:icelake"),
            ("policy", "pin", "--cluster", "prod\n", "SHUTDOWN"),
            ("cluster", "admit", "prod\n", "node-1"),
            ("cluster", "admit", "prod", "node-1\n"),
            ("host", "show", "h\n"),
        ):
            result = run_cli(*args, *c)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert snapshot(db) == before
    finally:
        coord.stop()


def test_pki_refuses_a_host_name_with_a_newline(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    assert run_cli("pki", "init", "--dir", str(pki)).returncode == 0
    before = sorted(p.name for p in pki.iterdir())
    result = run_cli("pki", "issue", "host", "node-1\n", "--dir", str(pki))
    assert result.returncode == 2 and "is not valid" in result.stderr, result.stderr
    assert sorted(p.name for p in pki.iterdir()) == before
