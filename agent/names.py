"""Names of hosts, clusters and VMs: one rule for the agent, the coordinator and the CLI."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,252}$")


def valid_name(value: str, what: str) -> str:
    """``value`` when it is a usable name; ValueError naming the rule otherwise."""
    if not NAME_PATTERN.match(value or ""):
        raise ValueError(
            f"{what} {value!r} is not valid: use 1-253 letters, digits, '.', '_', '-', ':' or '@', "
            "starting with a letter or digit"
        )
    return value
