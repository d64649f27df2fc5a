"""Shared test fixtures: where the shared dumps live, the project's own fixtures."""

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
