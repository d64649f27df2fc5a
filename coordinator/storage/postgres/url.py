"""A PostgreSQL ``--db`` URL, and how it is shown: never with its password."""

from __future__ import annotations

import os
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# libpq options the coordinator's connections get unless the URL (or, for the connect
# timeout, PGCONNECT_TIMEOUT) sets them: a dead server or network is noticed in seconds,
# not after the kernel's two hours of TCP silence, so requests fail fast (UNAVAILABLE,
# the agents move on), the stale-sweep lease passes on and a broken LISTEN reconnects.
CONNECTION_DEFAULTS: dict[str, str] = {
    "connect_timeout": "5",  # seconds for a new connection
    "keepalives": "1",
    "keepalives_idle": "10",  # seconds of an idle connection before the first probe
    "keepalives_interval": "3",  # seconds between unanswered probes
    "keepalives_count": "3",  # unanswered probes before the connection counts as dead
    "tcp_user_timeout": "10000",  # ms that sent data may stay unacknowledged (Linux)
}
ENVIRONMENT = {"connect_timeout": "PGCONNECT_TIMEOUT"}  # libpq's own variables that win too


def redact(url: str) -> str:
    """The URL as logs, errors and listings show it: user, host, port and database only.

    The password goes whether it sits in the user part or in a ``password=`` parameter.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}@{hostport}" if user else hostport
        query = urlencode(
            [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"],
            safe="/",
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return f"{url.split('://', 1)[0]}://(unparsable URL)"


def connection_defaults(url: str) -> dict[str, str]:
    """The `CONNECTION_DEFAULTS` the URL does not set itself (a URL's own value wins)."""
    try:
        given = {key for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    except ValueError:
        given = set()
    return {
        key: value
        for key, value in CONNECTION_DEFAULTS.items()
        if key not in given and not os.environ.get(ENVIRONMENT.get(key, ""))
    }


def password_of(url: str) -> str | None:
    """The password the URL carries, to scrub it from any driver message that echoes it."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.password:
        return parts.password
    for key, value in parse_qsl(parts.query):
        if key == "password" and value:
            return value
    return None
