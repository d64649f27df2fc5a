"""Bounds on what a client may make the coordinator store: sizes, intervals, sources, rates.

Every request is held to these before a transaction opens, so a refused request
changes nothing. A report's strings end up in every listing, so their size is
bounded here; a report's interval decides when its host counts as stale, so a
client must not be able to push it beyond what the operator allows.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import get_args

from cpucompat.agent.dumps.detect import Format
from cpucompat.agent.errors import ExhaustedError, InputError
from cpucompat.agent.names import NAME_PATTERN
from cpucompat.agent.raw import REPLAY_PREFIX, SOURCE_DEVCPU, SOURCE_INSTRUCTION

MAX_AGENT_VERSION = 128
MAX_AGENT_ADDRESS = 270  # a 253-character host name, brackets, ':' and a port
MAX_FINGERPRINT = 128
MAX_MICROCODE = 64
MAX_ORIGIN = 1024
MAX_EXTRA_ENTRIES = 32
MAX_EXTRA_KEY = 64
MAX_EXTRA_VALUE = 1024
MAX_REASON = 512
MAX_SPEC = 256  # baselines, vendors, model specs

LIVE_SOURCES = frozenset({SOURCE_INSTRUCTION, SOURCE_DEVCPU})
REPLAY_SOURCES = frozenset(f"{REPLAY_PREFIX}{name}" for name in get_args(Format))
KNOWN_SOURCES = LIVE_SOURCES | REPLAY_SOURCES

DEFAULT_MAX_INTERVAL = 3600.0
MAX_INTERVAL_RANGE = (1.0, 7 * 86400.0)
DEFAULT_MAX_PROFILE_VERSIONS = 50
MAX_PROFILE_VERSIONS_RANGE = (2, 100_000)
DEFAULT_PROFILE_CHANGES_PER_HOUR = 12
PROFILE_CHANGES_RANGE = (1, 3600)
RATE_WINDOW = 3600.0

_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.%A-Za-z]{2,64}\]|[A-Za-z0-9._-]{0,253}):([0-9]{1,5})")


class LimitError(InputError):
    """A request field is malformed or over its bound (INVALID_ARGUMENT); nothing is stored."""


class RateLimitedError(ExhaustedError):
    """A host changes its profile faster than allowed (RESOURCE_EXHAUSTED); retry later."""


@dataclass(frozen=True)
class Limits:
    """The operator-set bounds (coordinator flags); each is range-checked on creation."""

    max_interval: float = DEFAULT_MAX_INTERVAL
    max_profile_versions: int = DEFAULT_MAX_PROFILE_VERSIONS
    profile_changes_per_hour: int = DEFAULT_PROFILE_CHANGES_PER_HOUR

    def __post_init__(self) -> None:
        low, high = MAX_INTERVAL_RANGE
        if not (math.isfinite(self.max_interval) and low <= self.max_interval <= high):
            raise ValueError(
                f"--max-interval {self.max_interval!r}: give {low:g} to {high:g} seconds"
            )
        low_v, high_v = MAX_PROFILE_VERSIONS_RANGE
        if not low_v <= self.max_profile_versions <= high_v:
            raise ValueError(
                f"--max-profile-versions {self.max_profile_versions}: give {low_v} to {high_v}"
            )
        low_r, high_r = PROFILE_CHANGES_RANGE
        if not low_r <= self.profile_changes_per_hour <= high_r:
            raise ValueError(
                f"--profile-changes-per-hour {self.profile_changes_per_hour}: "
                f"give {low_r} to {high_r}"
            )


def check_name(value: str, what: str) -> str:
    """A host id, cluster or VM name matched whole (a trailing newline is not a name)."""
    if NAME_PATTERN.fullmatch(value) is None:
        raise LimitError(
            f"{what} {value[:80]!r} is not valid: use 1-253 letters, digits, '.', '_', '-', ':' or "
            "'@', starting with a letter or digit"
        )
    return value


def check_text(value: str, what: str, limit: int, *, required: bool = False) -> str:
    """A stored string: at most ``limit`` characters, none of them a control character."""
    if required and not value:
        raise LimitError(f"{what} is required")
    if len(value) > limit:
        raise LimitError(f"{what} is {len(value)} characters long; at most {limit} are stored")
    if value and not value.isprintable():
        raise LimitError(f"{what} {value[:80]!r} contains control characters")
    return value


def check_agent_address(value: str) -> str:
    """Empty (the agent serves nothing) or HOST:PORT as the agent listens."""
    check_text(value, "agent_address", MAX_AGENT_ADDRESS)
    if not value:
        return value
    m = _ADDRESS.fullmatch(value)
    if m is None or not 1 <= int(m[2]) <= 65535:
        raise LimitError(
            f"agent_address {value[:80]!r} is not HOST:PORT (port 1-65535); leave it empty "
            "when the agent serves no port"
        )
    return value


def check_source(source: str) -> bool:
    """The capture's source, one of the exact known values; returns whether it is a replay."""
    if source not in KNOWN_SOURCES:
        known = ", ".join(sorted(KNOWN_SOURCES))
        raise LimitError(f"raw.source {source[:80]!r} is not a known source; use one of {known}")
    return source in REPLAY_SOURCES


def check_capture_fields(
    source: str, microcode: str | None, origin: str | None, extra: Mapping[str, str]
) -> bool:
    """Every string of a raw capture besides its leaves; returns whether it is a replay."""
    replayed = check_source(source)
    check_text(microcode or "", "raw.microcode", MAX_MICROCODE)
    check_text(origin or "", "raw.origin", MAX_ORIGIN)
    if len(extra) > MAX_EXTRA_ENTRIES:
        raise LimitError(f"raw.extra has {len(extra)} entries; at most {MAX_EXTRA_ENTRIES}")
    for key, value in extra.items():
        check_text(key, "a raw.extra key", MAX_EXTRA_KEY, required=True)
        check_text(value, f"raw.extra[{key!r}]", MAX_EXTRA_VALUE)
    return replayed


def check_interval(seconds: float, limits: Limits, what: str = "probe_interval") -> float:
    """A client's interval: 0 means "not given"; negative or beyond --max-interval is refused.

    Refused rather than clamped: the stale fail-safe counts three intervals, and an agent
    that believes it may stay silent longer than the coordinator waits must be told.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise LimitError(f"{what} {seconds:g} s is not a duration; give a positive number")
    if seconds > limits.max_interval:
        raise LimitError(
            f"{what} {seconds:g} s is longer than this coordinator's --max-interval "
            f"{limits.max_interval:g} s: run the agent with --interval {limits.max_interval:g} "
            "or less, or start the coordinator with a larger --max-interval"
        )
    return seconds


def add_limit_options(p: argparse.ArgumentParser) -> None:
    """The coordinator's flags for the bounds above (documented in docs/operations.md)."""
    g = p.add_argument_group("limits")
    g.add_argument(
        "--max-interval",
        type=float,
        default=DEFAULT_MAX_INTERVAL,
        metavar="SECONDS",
        help="longest probe/heartbeat interval an agent may report; longer ones are refused "
        f"(default {DEFAULT_MAX_INTERVAL:g}; {MAX_INTERVAL_RANGE[0]:g} to "
        f"{MAX_INTERVAL_RANGE[1]:g})",
    )
    g.add_argument(
        "--max-profile-versions",
        type=int,
        default=DEFAULT_MAX_PROFILE_VERSIONS,
        metavar="N",
        help=f"profile versions kept per host, oldest pruned (default "
        f"{DEFAULT_MAX_PROFILE_VERSIONS})",
    )
    g.add_argument(
        "--profile-changes-per-hour",
        type=int,
        default=DEFAULT_PROFILE_CHANGES_PER_HOUR,
        metavar="N",
        help=f"new profile versions a host may store per hour; more are refused "
        f"(default {DEFAULT_PROFILE_CHANGES_PER_HOUR})",
    )


def limits_from_args(args: argparse.Namespace) -> Limits:
    """The flags as Limits; ValueError with a one-line message naming the flag."""
    return Limits(
        max_interval=args.max_interval,
        max_profile_versions=args.max_profile_versions,
        profile_changes_per_hour=args.profile_changes_per_hour,
    )
