"""gRPC addresses on the command line: listen and dial forms, port ranges, loopback by address.

One rule for the agent and the coordinator: without TLS a daemon serves only on
addresses that resolve to loopback, judged by the resolved address itself (a name
like ``127.attacker.example`` is not loopback because of how it is spelt).
"""

from __future__ import annotations

import ipaddress
import socket

DEFAULT_COORDINATOR_PORT = 7443


def split_host_port(text: str) -> tuple[str, str | None]:
    """(host, port text or None): ``h:p``, ``[v6]:p``, ``[v6]``, a bare name or IPv6 address."""
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"address {text!r} is not valid: write [IPv6]:PORT")
        return host, rest[1:] if rest else None
    if text.count(":") > 1:  # a bare IPv6 address: no port can be told apart
        return text, None
    host, sep, port = text.partition(":")
    return host, port if sep else None


def _port(text: str, address: str, allow_zero: bool) -> int:
    low = 0 if allow_zero else 1
    if not text.isdigit() or not low <= int(text) <= 65535:
        pick = " (0 picks a free one)" if allow_zero else ""
        raise ValueError(f"address {address!r}: the port must be a number {low}-65535{pick}")
    return int(text)


def listen_address(text: str) -> str:
    """A listen address with a valid port (0-65535, 0 picks one); ValueError otherwise."""
    if text.startswith("unix:"):
        return text
    _, port = split_host_port(text)
    if port is None:
        raise ValueError(f"listen address {text!r} needs a port: HOST:PORT, e.g. 127.0.0.1:7443")
    _port(port, text, allow_zero=True)
    return text


def dial_address(text: str, default_port: int = DEFAULT_COORDINATOR_PORT) -> str:
    """An address to dial, with ``default_port`` added when none is given (never gRPC's 443)."""
    if "://" in text or text.startswith("unix:"):
        return text
    host, port = split_host_port(text)
    if not host:
        raise ValueError(f"address {text!r} has no host name")
    if port is None:
        return f"[{host}]:{default_port}" if ":" in host else f"{host}:{default_port}"
    _port(port, text, allow_zero=False)
    return text


def is_loopback(host: str) -> bool:
    """True when ``host`` is, or resolves only to, loopback addresses (127.0.0.0/8, ::1)."""
    if not host:
        return False  # an empty host means every interface
    try:
        return _loopback_ip(host)
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False  # a name that does not resolve cannot be shown to be loopback
    return bool(infos) and all(_loopback_ip(str(info[4][0]).split("%")[0]) for info in infos)


def _loopback_ip(text: str) -> bool:
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def listen_error(listen: str, exc: Exception) -> str:
    """One line for a server that could not start; gRPC says only "Failed to bind"."""
    text = str(exc)
    if "bind" in text.lower() or "in use" in text:
        return f"cannot listen on {listen}: the address is in use or not available on this host"
    return text
