"""After a report commits, the mirror holds the host exactly as stored.

The registry mirrors the host row a report or heartbeat wrote, as written, instead of
reading it back (with what the storage keeps of a known host: first seen, pruned
versions, maintenance; and a changed report's new profile as its unit of work added
it). Whatever the report changed, the mirror must equal what a coordinator starting
on the same database reads.
"""

from __future__ import annotations

from pathlib import Path

from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.limits import Limits
from cpucompat.coordinator.registry import HostRecord, Registry
from cpucompat.coordinator.storage import open_storage
from tests.support.paths import PROCESSORS

ZEN3 = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
ZEN5 = PROCESSORS / "amd-zen5-zen5c-edited.cpuid-r.txt"
SKYLAKE = PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt"


def _seen(record: HostRecord) -> tuple[object, ...]:
    """Everything a user reads of a mirrored host (the decoded profile by fingerprint)."""
    fields = {k: v for k, v in vars(record).items() if k != "profile"}
    return (*sorted(fields.items()), record.profile.fingerprint, record.profile.brand)


def test_the_mirror_after_each_report_equals_a_fresh_read_of_the_database(
    tmp_path: Path,
) -> None:
    store = open_storage(tmp_path / "c.db")
    limits = Limits(max_profile_versions=2)
    registry = Registry(store, allow_replayed=True, limits=limits)
    ticks = iter(range(1_000, 2_000))
    registry.clock = lambda: float(next(ticks))
    steps = [
        ("lab", ZEN3, 0),  # joins
        ("lab", ZEN3, 0),  # unchanged
        ("lab", SKYLAKE, 0),  # a new version
        ("lab", ZEN5, 0),  # a third version: the oldest is pruned
        ("lab", ZEN3, 30),  # another interval
        ("lab", ZEN5, "maintenance"),  # in maintenance, a new version
        ("lab", SKYLAKE, 0),  # still in maintenance (kept as stored)
        ("lab", SKYLAKE, "end"),  # maintenance asked off: the next report ends it
        ("lab", ZEN3, 0),  # ends it, a new version
        ("other", ZEN3, 0),  # moves to another cluster
    ]
    joined = 0.0
    try:
        for cluster, dump, extra in steps:
            if extra == "maintenance":
                registry.set_maintenance("h1", True, "firmware")
            elif extra == "end":
                registry.set_maintenance("h1", False)
            interval = float(extra) if isinstance(extra, int) else 0.0
            registry.report("h1", cluster, load_dump(dump), heartbeat_interval=interval)
            # A registry of its own (its own cache) reads every host from the database.
            fresh = Registry(store, allow_replayed=True, limits=limits)
            assert _seen(registry.host("h1")) == _seen(fresh.host("h1"))
            joined = joined or registry.host("h1").first_seen
        record = registry.host("h1")
        assert record.first_seen == joined  # kept across every version
        assert record.cluster == "other" and not record.maintenance
        with store.read() as uow:
            row = uow.hosts.get("h1")
        assert row is not None and row.pruned_versions >= 2
    finally:
        store.close()
