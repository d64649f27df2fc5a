"""systemd's readiness and watchdog protocol (sd_notify) with the standard library.

A `Type=notify` unit sets $NOTIFY_SOCKET: a datagram socket path, or with a leading
`@` a name in the abstract namespace. The daemons send READY=1 once they serve,
WATCHDOG=1 at half of $WATCHDOG_USEC while their main loop is alive, and STOPPING=1
when they begin to stop. Without $NOTIFY_SOCKET every call does nothing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Mapping


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``state`` ("READY=1", ...) to systemd; False when there is no socket or it fails."""
    path = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "@/":
        return False
    address = "\0" + path[1:] if path[0] == "@" else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError:
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings (half of $WATCHDOG_USEC), or None when no watchdog is asked for."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 2_000_000


class Watchdog:
    """Pings WATCHDOG=1 only while the main loop calls `beat()`: a stuck loop gets restarted."""

    def __init__(self) -> None:
        self.interval = watchdog_interval()
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)

    def beat(self) -> None:
        self._last = time.monotonic()

    def start(self) -> None:
        if self.interval is not None:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        assert self.interval is not None
        # the main loop beats every 0.5 s; silence beyond a whole watchdog period is a hang
        allowed = max(2.0, 2 * self.interval)
        while not self._stop.wait(self.interval):
            if time.monotonic() - self._last < allowed:
                notify("WATCHDOG=1")


def serve_until_stopped(
    address: str,
    stopping: threading.Event,
    reload: threading.Event,
    on_reload: Callable[[], None],
) -> None:
    """A daemon's main loop under a service manager: ready, watchdog, SIGHUP, stopping.

    Tells systemd READY=1 (with ``address``), pings the watchdog while this loop runs,
    calls ``on_reload`` when ``reload`` is set, and returns once ``stopping`` is set,
    after telling systemd STOPPING=1. The caller stops its own servers afterwards.
    """
    notify(f"READY=1\nSTATUS=listening on {address}\nMAINPID={os.getpid()}")
    watchdog = Watchdog()
    watchdog.start()
    try:
        while not stopping.wait(0.5):
            watchdog.beat()
            if reload.is_set():
                reload.clear()
                on_reload()
    finally:
        notify("STOPPING=1")
        watchdog.stop()
