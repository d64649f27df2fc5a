"""Progress of long operations: on a terminal's stderr only, never in piped output."""

from __future__ import annotations

import io
import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from cpucompat.agent.cli.progress import LONG, Progress
from tests.support.daemons import CLI, run_cli
from tests.support.paths import DEV_DUMP


@pytest.fixture(scope="module")
def many_dumps(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """More than LONG dumps, each its own name: links to the project's own fixture."""
    folder = tmp_path_factory.mktemp("many")
    args = []
    for n in range(LONG + 1):
        link = folder / f"host-{n:04d}.txt"
        link.symlink_to(DEV_DUMP)
        args.append(f"dump:{link}")
    return args


def read_all(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the pty's other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def test_piped_audit_of_many_dumps_prints_no_progress(many_dumps: list[str]) -> None:
    result = run_cli("audit", *many_dumps)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "reading" not in result.stdout and "\r" not in result.stdout
    assert "SAVE" in result.stdout


def test_audit_on_a_terminal_shows_progress_and_keeps_stdout_clean(
    many_dumps: list[str], tmp_path: Path
) -> None:
    main, side = pty.openpty()
    report = tmp_path / "audit.json"
    try:
        # stdout to a file: a pipe nobody reads while the pty is read would fill up.
        with report.open("wb") as out_file:
            proc = subprocess.Popen(
                [*CLI, "audit", "--json", *many_dumps],
                stdout=out_file,
                stderr=side,
                stdin=subprocess.DEVNULL,
            )
        os.close(side)
        side = -1
        terminal = read_all(main)
        proc.wait()
    finally:
        os.close(main)
        if side != -1:
            os.close(side)
    assert proc.returncode == 0
    assert f"reading {LONG + 1}/{LONG + 1} (100%)" in terminal
    assert f"decoding {LONG + 1}/{LONG + 1} (100%)" in terminal
    assert terminal.endswith("\r\x1b[K")  # the line is wiped when done
    assert json.loads(report.read_text())["offline_action"] == "SAVE"  # stdout: JSON alone


def test_a_short_audit_on_a_terminal_stays_quiet() -> None:
    main, side = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*CLI, "audit", f"dump:{DEV_DUMP}", "model:qemu/EPYC-Milan"],
            stdout=subprocess.DEVNULL,
            stderr=side,
            stdin=subprocess.DEVNULL,
        )
        os.close(side)
        side = -1
        terminal = read_all(main)
        proc.wait()
    finally:
        os.close(main)
        if side != -1:
            os.close(side)
    assert "reading" not in terminal and "decoding" not in terminal


def test_helper_draws_on_a_pty_and_not_on_a_pipe() -> None:
    main, side = pty.openpty()
    with (
        open(side, "w", closefd=True) as tty,
        Progress("seeding hosts", 5, stream=tty, minimum=0) as progress,
    ):
        for _ in range(5):
            progress.advance()
    shown = read_all(main)
    assert "seeding hosts 1/5 (20%)" in shown and "seeding hosts 5/5 (100%)" in shown
    os.close(main)

    piped = io.StringIO()  # not a terminal, like a pipe or a file
    with Progress("seeding hosts", 5000, stream=piped) as progress:
        for _ in range(5000):
            progress.advance()
    assert piped.getvalue() == ""


def test_helper_stays_quiet_on_a_terminal_for_short_loops() -> None:
    main, side = pty.openpty()
    with open(side, "w", closefd=True) as tty, Progress("reading", LONG, stream=tty) as progress:
        for _ in range(LONG):
            progress.advance()
    shown = read_all(main)  # the writer side is closed: everything written, then EIO
    os.close(main)
    assert shown == ""
