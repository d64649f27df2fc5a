"""Options and plumbing both daemons and the query commands share (TLS, addresses, state)."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from pathlib import Path
from typing import Any


def add_tls_options(p: argparse.ArgumentParser, side: str) -> None:
    g = p.add_argument_group("TLS (each flag defaults to $CPUCOMPAT_TLS_CERT, _KEY, _CA)")
    env = os.environ.get
    g.add_argument(
        "--tls-cert",
        metavar="PEM",
        default=env("CPUCOMPAT_TLS_CERT") or None,
        help=f"this {side}'s certificate (enables TLS)",
    )
    g.add_argument(
        "--tls-key",
        metavar="PEM",
        default=env("CPUCOMPAT_TLS_KEY") or None,
        help=f"this {side}'s private key",
    )
    g.add_argument(
        "--tls-ca",
        metavar="PEM",
        default=env("CPUCOMPAT_TLS_CA") or None,
        help="CA certificate that signs the peers; on a server it turns on mutual TLS",
    )


def address_type(kind: str) -> Any:
    """An argparse type for --listen ("listen") or --coordinator ("dial", default port 7443)."""
    from ..addresses import dial_address, listen_address

    def parse(text: str) -> str:
        try:
            return listen_address(text) if kind == "listen" else dial_address(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


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


def listen_error(listen: str, exc: Exception) -> str:
    """One line for a server that could not start; gRPC says only "Failed to bind"."""
    text = str(exc)
    if "bind" in text.lower() or "in use" in text:
        return f"cannot listen on {listen}: the address is in use or not available on this host"
    return text
