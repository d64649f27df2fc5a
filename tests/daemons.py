"""Run cpucompat daemons as real subprocesses for end-to-end tests."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

CLI = [sys.executable, "-m", "cpucompat.agent.cli.main"]
READY = re.compile(r"listening on (\S+)")
START_TIMEOUT = 60.0


class Daemon:
    """One daemon process; its output is collected so a failing test can show it."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = args
        self.log_path = log
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            CLI + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self._ready: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.address = self._wait_ready()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("a") as log:
            for line in self.proc.stdout:
                self.lines.append(line)
                log.write(line)
                log.flush()
                m = READY.search(line)
                if m:
                    self._ready.put(m[1])

    def _wait_ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                return self._ready.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
        self.kill()
        raise RuntimeError(f"daemon {self.args} did not start:\n{self.output()}")

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


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
    db: Path | None = None,
    listen: str = "127.0.0.1:0",
    log: str = "coordinator.log",
) -> Daemon:
    """A coordinator process on loopback with its database in ``folder``."""
    database = db or folder / "coordinator.db"
    return Daemon(["coordinator", "--listen", listen, "--db", str(database), *extra], folder / log)


def start_agent(
    folder: Path, coordinator: str, host: str, *extra: str, cluster: str = "prod"
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
    )
