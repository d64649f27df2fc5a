"""Shared test fixtures: where the shared dumps live, the project's own fixtures, this host.

No test may take a fixture for "the machine running the tests": CI may be Intel or AMD,
bare metal or a VM. A test that needs "a processor identical to this host" records one
now with `live_host_dump` (`cpucompat probe --raw`, replayed as a dump).
"""

from __future__ import annotations

import json
import platform
from functools import cache
from pathlib import Path

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = PROJECT_ROOT / "tests" / "fixtures"
SHARED_DUMPS = PROJECT_ROOT.parent / "shared" / "cpuid-dumps"
IS_X86_64 = platform.machine() in ("x86_64", "AMD64")


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


@pytest.fixture
def require_x86() -> None:
    if not IS_X86_64:
        pytest.skip("the live probe needs an x86-64 processor")


@cache
def shared_profile(name: str) -> Profile:
    """One shared dump, decoded once per test session (skips when the folder is absent)."""
    return decode(load_dump(shared_dump(name)))


@pytest.fixture
def live_host_dump(tmp_path: Path, require_x86: None) -> Path:
    """This host's processors recorded now by `cpucompat probe --raw`: its identical twin as a dump.

    Replayed (agent --replay-dump, dump:PATH), it is a second processor exactly like the one
    running the tests, whatever vendor, model, hypervisor or kernel that is.
    """
    from .daemons import run_cli

    result = run_cli("probe", "--raw")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "this-host.cpuid-r.txt"
    path.write_text(result.stdout)
    return path


@pytest.fixture
def live_host_profile(live_host_dump: Path) -> Profile:
    """The decoded profile of `live_host_dump` (vendor, features, ... of this host)."""
    return decode(load_dump(live_host_dump))
