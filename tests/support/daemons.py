"""Run cpucompat daemons as real subprocesses for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cpucompat.coordinator.cli.launch import CLI, Launched

__all__ = [
    "CLI",
    "Daemon",
    "free_port",
    "run_cli",
    "start_agent",
    "start_coordinator",
    "wait_until",
]


class Daemon(Launched):
    """A daemon started as quickstart starts them (`cpucompat.coordinator.cli.launch`).

    ``env`` adds to this process's environment; the log is appended to. A daemon that
    does not start raises LaunchError (a RuntimeError) holding its output.
    """

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(args, log, env={**os.environ, **(env or {})})


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run one `cpucompat` command to completion."""
    return subprocess.run(
        CLI + list(args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    """A loopback port free now, for a daemon that must listen on a known address later."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    predicate: Callable[[], object], timeout: float = 60.0, what: str = "condition"
) -> object:
    """Poll until predicate() is truthy; the timeout only bounds a hung test, it asserts no speed."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last value {last!r})")


def start_coordinator(
    folder: Path,
    *extra: str,
    db: Path | str | None = None,
    listen: str = "127.0.0.1:0",
    log: str = "coordinator.log",
    env: dict[str, str] | None = None,
) -> Daemon:
    """A coordinator process on loopback with its database in ``folder`` (or ``db``: a file,
    or a PostgreSQL URL such as the ``coordinator_db`` fixture gives)."""
    database = db or folder / "coordinator.db"
    return Daemon(
        ["coordinator", "--listen", listen, "--db", str(database), *extra], folder / log, env
    )


def start_agent(
    folder: Path,
    coordinator: str,
    host: str,
    *extra: str,
    cluster: str = "prod",
    env: dict[str, str] | None = None,
) -> Daemon:
    """An agent process reporting ``host`` into ``cluster`` (extra flags: --replay-dump, ...)."""
    return Daemon(
        [
            "agent",
            "--coordinator",
            coordinator,
            "--cluster",
            cluster,
            "--host-id",
            host,
            "--listen",
            "127.0.0.1:0",
            *extra,
        ],
        folder / f"agent-{host}.log",
        env,
    )
