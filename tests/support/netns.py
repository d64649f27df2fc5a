"""Real hosts on one machine: Linux network namespaces joined by bridges, torn down after.

Every namespace a run makes is named ``cpucompat-test-PID-ROLE`` (PID: the process that
made it), so parallel runs never collide and a run that crashed leaves names a later run
recognises: `sweep_stale` removes the namespaces whose owning process is gone. Nothing
is created in the root namespace: the bridges live in a "switch" namespace of their own,
each veth pair is created with its two ends already in their namespaces, and every
address comes from 198.18.0.0/15 (RFC 2544, reserved for benchmarking), assigned only
inside these namespaces. The namespaces have no route anywhere else, so traffic can only
go to those addresses and to each namespace's own loopback.

Needs root (``ip netns add``); `require_netns` skips with one line otherwise, e.g. in an
unprivileged container.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PREFIX = "cpucompat-test-"
BENCHMARK_RANGE = ipaddress.ip_network("198.18.0.0/15")
_OWNED = re.compile(rf"^{re.escape(PREFIX)}(\d+)-")
_runs = itertools.count(1)


class NetnsError(RuntimeError):
    """An ``ip`` command failed; the message holds the command and its error."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS`` (iproute2) to completion."""
    done = subprocess.run(
        ["ip", *args], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if check and done.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here (not root, no iproute2, refused), or None."""
    if os.geteuid() != 0:
        return "the network-namespace fleet needs root (ip netns add); run the suite as root"
    probe = f"{PREFIX}{os.getpid()}-probe"
    try:
        added = ip("netns", "add", probe, check=False)
    except FileNotFoundError:
        return "the network-namespace fleet needs iproute2's `ip` on PATH"
    if added.returncode != 0:
        return f"`ip netns add` is not allowed here ({added.stderr.strip()}): no fleet"
    try:
        bridge = ip("-n", probe, "link", "add", "br0", "type", "bridge", check=False)
        if bridge.returncode != 0:
            return f"no Linux bridge in a network namespace ({bridge.stderr.strip()}): no fleet"
    finally:
        ip("netns", "del", probe, check=False)
    return None


def require_netns() -> None:
    """Skip the calling test, with the reason, when namespaces cannot be made here."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_pids(name: str) -> list[int]:
    done = ip("netns", "pids", name, check=False)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def _kill_inside(name: str) -> None:
    """SIGKILL what still runs in namespace ``name`` (only ever one this module made)."""
    for pid in namespace_pids(name):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def sweep_stale() -> list[str]:
    """Remove ``cpucompat-test-PID-*`` namespaces whose PID is dead (a crashed run's)."""
    removed = []
    listed = ip("netns", "list", check=False).stdout.splitlines()
    for line in listed:
        name = line.split()[0] if line.split() else ""
        m = _OWNED.match(name)
        if m is None or _alive(int(m[1])):
            continue
        _kill_inside(name)
        if ip("netns", "del", name, check=False).returncode == 0:
            removed.append(name)
    return removed


@dataclass
class Link:
    """One veth end inside a host's namespace, on one of the switch's bridges."""

    namespace: str
    device: str
    address: str


@dataclass
class Network:
    """Namespaces of one run, a switch namespace with named bridges, and the veths between.

    ``close`` removes everything it made, whatever state the run left it in (processes
    still running inside are killed first).
    """

    bridges: Sequence[str] = ("front", "back")
    run_id: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}-{next(_runs)}")
    namespaces: list[str] = field(default_factory=list)
    _peers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        try:
            self.switch = self.add_namespace("switch")
            for bridge in self.bridges:
                ip("-n", self.switch, "link", "add", bridge, "type", "bridge")
                ip("-n", self.switch, "link", "set", bridge, "up")
        except BaseException:
            self.close()  # the caller never gets a handle to close
            raise

    def name(self, role: str) -> str:
        return f"{self.run_id}-{role}"

    def add_namespace(self, role: str) -> str:
        """A fresh namespace with its loopback up."""
        name = self.name(role)
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("-n", name, "link", "set", "lo", "up")
        return name

    def attach(self, namespace: str, bridge: str, device: str, address: str) -> Link:
        """A veth from ``namespace`` (as ``device``, holding ``address``/24) to ``bridge``."""
        if ipaddress.ip_address(address) not in BENCHMARK_RANGE:
            raise ValueError(f"{address} is outside {BENCHMARK_RANGE}: the fleet uses no other")
        peer = f"p{next(self._peers)}"  # interface names are short (15 bytes)
        ip("link", "add", device, "netns", namespace, "type", "veth", "peer", "name", peer,
           "netns", self.switch)  # fmt: skip
        ip("-n", self.switch, "link", "set", peer, "master", bridge, "up")
        ip("-n", namespace, "addr", "add", f"{address}/24", "dev", device)
        ip("-n", namespace, "link", "set", device, "up")
        return Link(namespace, device, address)

    def set_link(self, link: Link, up: bool) -> None:
        """Cut (down) or heal (up) a host's link, inside its own namespace."""
        ip("-n", link.namespace, "link", "set", link.device, "up" if up else "down")

    def exec_prefix(self, namespace: str) -> list[str]:
        return ["ip", "netns", "exec", namespace]

    def close(self) -> None:
        """Kill what still runs inside, delete every namespace (veths and bridges go too)."""
        for name in reversed(self.namespaces):
            _kill_inside(name)
            ip("netns", "del", name, check=False)
        self.namespaces.clear()

    def leftovers(self) -> list[str]:
        """This run's namespaces the system still lists (none after ``close``)."""
        listed = ip("netns", "list", check=False).stdout.split()
        return [n for n in listed if n.startswith(f"{self.run_id}-")]


class NetnsDaemon:
    """A `cpucompat` daemon run in a namespace (``ip netns exec NS python -m ...``).

    Ready once it prints "listening on ADDR", like `tests.support.daemons.Daemon`; the
    output goes to ``log`` and is kept in ``lines``.
    """

    READY = re.compile(r"listening on (\S+)")

    def __init__(
        self, namespace: str, command: list[str], log: Path, timeout: float | None = 120.0
    ) -> None:
        """Start it and wait until it serves; ``timeout=None``: start only (then call
        `wait_ready`, so that several start at once)."""
        self.namespace = namespace
        self.command = command
        self.log_path = log
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self._ready: queue.Queue[str] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.address = ""
        if timeout is not None:
            self.wait_ready(timeout)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with self.log_path.open("a") as log:
            for line in self.proc.stdout:
                self.lines.append(line)
                log.write(line)
                log.flush()
                m = self.READY.search(line)
                if m:
                    self._ready.put(m[1])

    def wait_ready(self, timeout: float = 120.0) -> str:
        """The address it serves on, once it says so; RuntimeError with its output if not."""
        if self.address:
            return self.address
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.address = self._ready.get(timeout=0.1)
                return self.address
            except queue.Empty:
                if self.proc.poll() is not None and not self._reader.is_alive():
                    break
        self.kill()
        raise RuntimeError(
            f"`{' '.join(self.command)}` in {self.namespace} did not start:\n{self.output()}"
        )

    def output(self) -> str:
        return "".join(self.lines)

    def kill(self) -> None:
        """SIGKILL (kill -9): no goodbye to anyone."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(timeout=5)
        return code
