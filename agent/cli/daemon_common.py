"""Options and plumbing both daemons and the query commands share (TLS, addresses, state)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import Any


def add_tls_options(p: argparse.ArgumentParser, side: str) -> None:
    g = p.add_argument_group("TLS")
    g.add_argument("--tls-cert", metavar="PEM", help=f"this {side}'s certificate (enables TLS)")
    g.add_argument("--tls-key", metavar="PEM", help=f"this {side}'s private key")
    g.add_argument(
        "--tls-ca",
        metavar="PEM",
        help="CA certificate that signs the peers; on a server it turns on mutual TLS",
    )


def tls_files(args: argparse.Namespace) -> Any:
    from ..tls import TlsFiles

    return TlsFiles(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)


def default_state_dir() -> Path:
    """Where daemons keep their files: $CPUCOMPAT_STATE_DIR, /var/lib/cpucompat as root, else XDG."""
    env = os.environ.get("CPUCOMPAT_STATE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/cpucompat")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cpucompat"


def wait_for_signal() -> int:
    """Block until SIGTERM or SIGINT; returns the signal number."""
    got: list[int] = []
    done = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        got.append(signum)
        done.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not done.wait(0.5):
        pass
    return got[0]
