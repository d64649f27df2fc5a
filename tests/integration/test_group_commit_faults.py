"""A group commit that fails acknowledges nobody, and a database outage fails it at once.

Changes queued together share one transaction. When it fails, every caller must get an
error (nothing was committed), even when reading the mirror back fails too; a failure
that may be one change's fault is retried change by change, but a database outage is
not (each retry would wait for the database in turn while agents could move on).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.registry import Registry, _Queued
from cpucompat.coordinator.storage import open_storage
from cpucompat.coordinator.storage.errors import StorageFault
from cpucompat.coordinator.storage.interface import Storage, UnitOfWork
from tests.support.paths import PROCESSORS

ZEN3 = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"


class Failing:
    """A real SQLite storage whose transactions (and reads, when asked) fail with ``fault``."""

    def __init__(self, inner: Storage, fault: StorageFault) -> None:
        self.inner, self.fault, self.fail_reads, self.units = inner, fault, False, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        self.units += 1
        raise self.fault
        yield  # pragma: no cover

    @contextmanager
    def read(self) -> Iterator[UnitOfWork]:
        if self.fail_reads:
            raise self.fault
        with self.inner.read() as uow:
            yield uow


def queued(registry: Registry, host_id: str) -> _Queued:
    def work(uow: UnitOfWork, now: float) -> set[str]:
        return {"lab"}

    return _Queued(work, {host_id})


@pytest.mark.parametrize("outage", [True, False])
def test_a_failed_batch_acknowledges_nobody_even_when_the_reload_fails(
    tmp_path: Path, outage: bool
) -> None:
    inner = open_storage(tmp_path / "c.db")
    registry = Registry(inner, allow_replayed=True)
    registry.report("h1", "lab", load_dump(ZEN3))
    registry.report("h2", "lab", load_dump(ZEN3))
    fault = StorageFault("database unreachable", outage=outage)
    failing = Failing(inner, fault)
    failing.fail_reads = True
    registry.store = failing  # type: ignore[assignment]
    batch = [queued(registry, "h1"), queued(registry, "h2")]
    try:
        registry._run_batch(batch)
        assert all(item.done and item.error is not None for item in batch)
        # An outage fails the batch once; a change's own fault is retried change by change.
        assert failing.units == (1 if outage else 3)
    finally:
        inner.close()
