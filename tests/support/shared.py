"""The shared real dumps (../shared/cpuid-dumps): every helper skips the test when absent."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import RawDataError
from cpucompat.coordinator.domain.requirement import guest_visible

from .paths import SHARED_DUMPS


def shared_dumps_or_skip() -> Path:
    if not (SHARED_DUMPS / "MANIFEST.json").is_file():
        pytest.skip(f"shared CPUID dumps not found at {SHARED_DUMPS}")
    return SHARED_DUMPS


def manifest_entries() -> list[dict]:
    path = SHARED_DUMPS / "MANIFEST.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text())


def shared_dump(name: str) -> Path:
    """One shared dump by file name (skips the test when the folder is absent)."""
    path = shared_dumps_or_skip() / name
    if not path.is_file():
        pytest.skip(f"{name} not in {SHARED_DUMPS}")
    return path


@cache
def shared_profile(name: str) -> Profile:
    """One shared dump, decoded once per test session (skips when the folder is absent)."""
    return decode(load_dump(shared_dump(name)))


def _contrasting(
    host: Profile, gap: Callable[[Profile], frozenset[str]]
) -> tuple[Path, frozenset[str]]:
    """The shared dump of ``host``'s vendor with the widest ``gap``; else another vendor's."""
    shared_dumps_or_skip()
    best: tuple[int, str, frozenset[str]] | None = None
    foreign: str | None = None
    for entry in manifest_entries():
        name = entry["file"]
        try:
            other = shared_profile(name)
        except RawDataError:
            continue  # a dump the importer refuses cannot stand for a processor here
        if other.vendor != host.vendor:
            foreign = foreign or name
            continue
        features = gap(other)
        if features and (best is None or (len(features), name) > best[:2]):
            best = (len(features), name, features)
    if best is not None:
        return shared_dump(best[1]), best[2]
    if foreign is None:
        pytest.skip(f"no shared dump of a processor to contrast with this {host.vendor} host")
    return shared_dump(foreign), frozenset()


def older_processor(host: Profile) -> tuple[Path, frozenset[str]]:
    """A real processor a VM booted on ``host`` may not be saved onto, whatever ``host`` is.

    Of the host's vendor, the shared dump lacking most of the host's guest-visible features,
    returned with those features. For a vendor no shared dump has: another vendor's
    processor and an empty set (it lacks the vendor, which is enough).
    """
    mine = guest_visible(host.features)
    return _contrasting(host, lambda other: mine - other.features)


def richer_processor(host: Profile) -> tuple[Path, frozenset[str]]:
    """A real processor whose VMs may not be saved onto ``host``, whatever ``host`` is.

    Of the host's vendor, the shared dump with most guest-visible features the host lacks,
    returned with those features; else another vendor's processor and an empty set.
    """
    return _contrasting(host, lambda other: guest_visible(other.features) - host.features)


# Shared dumps several modules name (file names in ../shared/cpuid-dumps).
MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
