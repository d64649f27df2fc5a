"""Shared test fixtures. Where a new test goes, and what it may import:

- ``tests/unit/``: pure functions on fixtures and dumps (decoding, parsing, decisions,
  static checks of the source). No server, no database file, no subprocess.
- ``tests/integration/``: real parts in this process: a gRPC server on loopback
  (``tests.support.inprocess.Running``), real SQLite files, or a tool run to completion
  (ruff, mypy, `cpuid`, the protobuf generator). No cpucompat daemon or CLI subprocess.
- ``tests/e2e/``: the `cpucompat` CLI or its daemons as real subprocesses
  (``tests.support.daemons``: ``run_cli``, ``start_coordinator``, ``start_agent``, ...).

A module goes in the heaviest layer any of its tests uses. Each test is marked with its
layer (``python3 -m pytest -q -m unit`` runs the fast layer alone); the whole suite is
still the one command, ``python3 -m pytest -q``. Helpers live in
``tests/support/`` (``from tests.support.paths import DEV_DUMP``); no test module imports
another (``tests/unit/test_test_layout.py`` enforces these rules). See tests/README.md.

No test may take a fixture for "the machine running the tests": CI may be Intel or AMD,
bare metal or a VM. A test that needs "a processor identical to this host" records one
now with `live_host_dump` (`cpucompat probe --raw`, replayed as a dump).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile

from .support.paths import IS_X86_64
from .support.postgres import PostgresServer, running_server

if TYPE_CHECKING:
    from .support.inprocess import Running

LAYERS = ("unit", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its layer, from the folder it sits in."""
    for item in items:
        layer = item.path.parent.name
        if layer in LAYERS:
            item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture
def require_x86() -> None:
    if not IS_X86_64:
        pytest.skip("the live probe needs an x86-64 processor")


@pytest.fixture
def live_host_dump(tmp_path: Path, require_x86: None) -> Path:
    """This host's processors recorded now by `cpucompat probe --raw`: its identical twin as a dump.

    Replayed (agent --replay-dump, dump:PATH), it is a second processor exactly like the one
    running the tests, whatever vendor, model, hypervisor or kernel that is. (It runs the
    CLI as a subprocess: only e2e tests use it.)
    """
    from .support.daemons import run_cli

    result = run_cli("probe", "--raw")
    assert result.returncode == 0, result.stderr
    path = tmp_path / "this-host.cpuid-r.txt"
    path.write_text(result.stdout)
    return path


@pytest.fixture
def live_host_profile(live_host_dump: Path) -> Profile:
    """The decoded profile of `live_host_dump` (vendor, features, ... of this host)."""
    return decode(load_dump(live_host_dump))


@pytest.fixture
def live_coordinator(tmp_path: Path) -> Iterator[Running]:
    """A coordinator served in this process on loopback (`tests.support.inprocess.Running`)."""
    from .support.inprocess import Running

    running = Running(tmp_path)
    yield running
    running.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session (skips without its binaries)."""
    with running_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def coordinator_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A coordinator's ``--db`` under test: an SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "coordinator.db")
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.database()
