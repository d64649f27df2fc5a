"""Strings from processors and remote agents reach the terminal with control characters escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpucompat.agent.cli.common import safe, table
from tests.support.daemons import run_cli, start_agent, start_coordinator, wait_until
from tests.support.hostile_dump import hostile_dump

CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0))]


def assert_inert(text: str) -> None:
    """No control character but the newlines that end lines reaches the terminal."""
    bad = sorted({hex(ord(c)) for c in text if c in CONTROL or c in "\u202e\u2028"})
    assert not bad, f"raw control characters on the terminal: {bad}"


def test_every_control_character_is_escaped_visibly() -> None:
    assert safe("a\x1b[31mb\x07\n\t\u202e\x9b") == "a\\x1b[31mb\\x07\\n\\t\\u202e\\x9b"
    rendered = table(("HOST", "PROCESSOR"), [("h\x1b]0;x\x07", "Evil\x1b[2J")])
    assert_inert(rendered.replace("\n", ""))
    assert "h\\x1b]0;x\\x07" in rendered and "Evil\\x1b[2J" in rendered


@pytest.mark.usefixtures("require_x86")
def test_offline_audit_escapes_a_brand_made_of_cpuid_leaves(tmp_path: Path) -> None:
    dump = hostile_dump(tmp_path)
    for cmd in (("audit", f"dump:{dump}", "model:zen3"), ("probe", "--from-dump", str(dump))):
        result = run_cli(*cmd)
        assert result.returncode in (0, 3), result.stderr
        assert_inert(result.stdout.replace("\n", ""))
        assert "\\x1b[2J" in result.stdout, cmd


@pytest.mark.e2e
@pytest.mark.usefixtures("require_x86")
def test_hosts_show_and_events_escape_what_an_agent_reported(tmp_path: Path) -> None:
    dump = hostile_dump(tmp_path)
    coord = start_coordinator(tmp_path, "--allow-replayed")
    agent = start_agent(tmp_path, coord.address, "evil", "--replay-dump", str(dump))
    try:
        wait_until(
            lambda: run_cli("host", "show", "evil", "--coordinator", coord.address).returncode == 0,
            what="the host registered",
        )
        for cmd in (
            ("hosts",),
            ("host", "show", "evil"),
            ("events",),
            ("audit", "--cluster", "prod"),
        ):
            result = run_cli(*cmd, "--coordinator", coord.address)
            assert result.returncode in (0, 3), (cmd, result.stderr)
            assert_inert(result.stdout.replace("\n", ""))
            if cmd[0] != "events":
                assert "\\x1b[2J" in result.stdout, cmd
    finally:
        agent.stop()
        coord.stop()
