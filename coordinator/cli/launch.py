"""Start `cpucompat` daemons as child processes and wait until they serve.

`cpucompat quickstart` and the end-to-end tests launch daemons the same way: this
interpreter's `cpucompat` entry point, stdout and stderr merged into a log file, ready
once the daemon prints "listening on ADDR". A reader thread drains the output for the
daemon's whole life, so a chatty daemon never blocks on a full pipe.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

CLI = [sys.executable, "-m", "cpucompat.agent.cli.main"]
READY = re.compile(r"listening on (\S+)")
START_TIMEOUT = 60.0


class LaunchError(RuntimeError):
    """The daemon exited or stayed silent before it served; the message holds its output."""


class Launched:
    """One daemon process, started and serving at ``address``; its output kept in ``lines``."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        env: Mapping[str, str] | None = None,
        append: bool = True,
        timeout: float = START_TIMEOUT,
    ) -> None:
        self.args = args
        self.log_path = log
        self.lines: list[str] = []
        self._signalled = False
        self.proc = subprocess.Popen(
            CLI + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ if env is None else env),
        )
        self._ready: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, args=(append,), daemon=True)
        self._reader.start()
        self.address = self._wait_ready(timeout)

    def _read(self, append: bool) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("a" if append else "w") as log:
            for line in self.proc.stdout:
                self.lines.append(line)
                log.write(line)
                log.flush()
                m = READY.search(line)
                if m:
                    self._ready.put(m[1])

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                return self._ready.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and not self._reader.is_alive():
                    break
        self.kill()
        raise LaunchError(f"`cpucompat {' '.join(self.args)}` did not start:\n{self.output()}")

    def output(self) -> str:
        return "".join(self.lines)

    def terminate(self, sig: int = signal.SIGTERM) -> None:
        """Ask the daemon to stop without waiting (stop several at once, then `stop` each)."""
        if self.proc.poll() is None and not self._signalled:
            self.proc.send_signal(sig)
            self._signalled = True

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the daemon, wait for it (killing it after ``timeout``); its exit code."""
        self.terminate(sig)
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
