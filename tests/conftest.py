"""Shared test fixtures: where the shared dumps live, the project's own fixtures, this host.

No test may take a fixture for "the machine running the tests": CI may be Intel or AMD,
bare metal or a VM. A test that needs "a processor identical to this host" records one
now with `live_host_dump` (`cpucompat probe --raw`, replayed as a dump).
"""

from __future__ import annotations

import json
import platform
import shutil
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import RawDataError
from cpucompat.coordinator.domain.requirement import guest_visible

from .postgres import PostgresServer, start_server

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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session (skips without its binaries)."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def coordinator_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A coordinator's ``--db`` under test: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "coordinator.db")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.database()
