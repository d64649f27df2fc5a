"""A minimal QMP client for asking a real QEMU about its x86 CPU models.

QEMU answers questions about its CPU models over QMP (the JSON machine
protocol, one object per line on ``-qmp stdio``). Only tools and tests use
this (the QEMU models table generator, its cross-check); decisions never
start QEMU.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
from types import TracebackType
from typing import IO, Any

QEMU_BINARY = "qemu-system-x86_64"


class QmpError(RuntimeError):
    """QEMU refused a command or went away; the message carries QEMU's own words."""


def qemu_binary() -> str | None:
    """The path of ``qemu-system-x86_64`` (Debian package ``qemu-system-x86``), or None."""
    return shutil.which(QEMU_BINARY)


class Qmp:
    """One QEMU process driven over ``-qmp stdio``; use as a context manager.

    ``args`` are extra QEMU arguments (machine, accelerator, ``-cpu``, ...).
    QEMU's stderr (its warnings) is kept in a file and read by ``stderr()``
    once the process has ended.
    """

    def __init__(self, args: list[str], binary: str | None = None) -> None:
        path = binary or qemu_binary()
        if path is None:
            raise QmpError(f"{QEMU_BINARY} not found; install the Debian package qemu-system-x86")
        # Closed in close(), which keeps its text: QEMU's warnings outlive the process.
        self._stderr: IO[str] = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        self._stderr_text: str | None = None
        self._proc = subprocess.Popen(
            [path, *args, "-nodefaults", "-nographic", "-qmp", "stdio"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
        )
        greeting = self._read()
        self.version: dict[str, Any] = greeting.get("QMP", {}).get("version", {})
        self.command("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        while True:
            line = self._proc.stdout.readline()
            if not line:
                self._proc.wait()
                raise QmpError(f"QEMU exited ({self._proc.returncode}): {self.stderr().strip()}")
            message: dict[str, Any] = json.loads(line)
            if "event" not in message:
                return message

    def command(self, name: str, **arguments: Any) -> Any:
        """Run one QMP command and return its ``return`` value."""
        assert self._proc.stdin is not None
        request: dict[str, Any] = {"execute": name}
        if arguments:
            request["arguments"] = arguments
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        reply = self._read()
        if "error" in reply:
            error = reply["error"]
            raise QmpError(f"QEMU refused {name}: {error.get('desc', error)}")
        return reply.get("return")

    def close(self) -> None:
        """Ask QEMU to quit and wait for it."""
        if self._proc.poll() is None:
            with contextlib.suppress(QmpError, BrokenPipeError, OSError):
                self.command("quit")
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        if self._stderr_text is None:
            self._stderr_text = self.stderr()
            self._stderr.close()

    def stderr(self) -> str:
        """What QEMU wrote to stderr so far (its warnings)."""
        if self._stderr_text is not None:
            return self._stderr_text
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def __enter__(self) -> Qmp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
