"""Names of hosts, clusters and VMs: one rule for the agent, the coordinator and the CLI."""

from __future__ import annotations

import re

from .errors import InputError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,252}")
"""Used with ``fullmatch`` only: ``$`` would let a trailing newline through."""


def valid_name(value: str, what: str) -> str:
    """``value`` when it is a usable name; ValueError naming the rule otherwise."""
    if NAME_PATTERN.fullmatch(value or "") is None:
        raise InputError(
            f"{what} {value[:80]!r} is not valid: use 1-253 letters, digits, '.', '_', '-', ':' or '@', "
            "starting with a letter or digit"
        )
    return value
