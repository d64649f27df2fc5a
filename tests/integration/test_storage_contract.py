"""What every storage backend promises the services (`coordinator/storage/interface.py`).

Each test runs against every backend in ``BACKENDS`` through the interface alone; a
backend joins the parameter list and must pass unchanged. The SQLite backend runs on a
real file, the PostgreSQL backend on a fresh database of a throwaway server
(`tests/postgres.py`; skipped only when no PostgreSQL binaries exist).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cpucompat.coordinator.domain.hosts import EventKind, HostStatus
from cpucompat.coordinator.storage import Storage, StorageFault, open_storage
from cpucompat.coordinator.storage.interface import (
    Admission,
    BaselinePinRow,
    EventFilter,
    HostRow,
    NewProfile,
    PolicyRow,
    VmRow,
)

BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Storage]] = {
    "sqlite": lambda request, folder: open_storage(folder / "c.db"),
    "postgresql": lambda request, folder: open_storage(
        request.getfixturevalue("postgres_server").database()
    ),
}


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    opened = BACKENDS[request.param](request, tmp_path)
    yield opened
    opened.close()


def host(host_id: str = "h1", cluster: str = "prod", version: int = 1, **fields: object) -> HostRow:
    row = HostRow(
        host_id=host_id,
        cluster=cluster,
        agent_address="10.0.0.1:7444",
        agent_version="0.1",
        status=HostStatus.ONLINE,
        replayed=False,
        fingerprint="f" * 64,
        agent_fingerprint="a",
        profile_version=version,
        first_seen=100.0,
        last_seen=100.0,
        heartbeat_interval=30.0,
    )
    return replace(row, **fields)  # type: ignore[arg-type]


def profile(
    host_id: str = "h1", at: float = 100.0, features: tuple[str, ...] = ("sse2",)
) -> NewProfile:
    return NewProfile(
        host_id=host_id,
        recorded_at=at,
        fingerprint="f" * 64,
        source="cpuid-instruction",
        raw=b"\x78\x9c\x00raw",
        features=features,
        gained=(),
        lost=(),
        summary={"vendor": "GenuineIntel"},
    )


def test_a_unit_of_work_commits_then_runs_its_hooks_in_order(storage: Storage) -> None:
    seen: list[tuple[str, object]] = []

    def look(name: str) -> None:
        with storage.read() as uow:
            stored = uow.hosts.get("h1")
        seen.append((name, None if stored is None else stored.cluster))

    with storage.unit_of_work() as uow:
        version = uow.profiles.add(profile())
        uow.hosts.upsert(host(version=version))
        uow.on_commit(lambda: look("first"))
        uow.on_commit(lambda: look("second"))
        assert seen == []  # nothing runs before the commit
    assert seen == [("first", "prod"), ("second", "prod")]


def test_an_exception_rolls_everything_back_and_runs_no_hook(storage: Storage) -> None:
    ran: list[str] = []
    with pytest.raises(RuntimeError, match="refused"), storage.unit_of_work() as uow:
        uow.profiles.add(profile())
        uow.hosts.upsert(host())
        uow.events.add(1.0, "prod", "h1", EventKind.HOST_JOINED, "joined", {})
        uow.on_commit(lambda: ran.append("hook"))
        raise RuntimeError("refused")
    assert ran == []
    with storage.read() as uow:
        assert uow.hosts.all() == []
        assert uow.profiles.history("h1") == []
        assert (
            uow.events.page(EventFilter(), after_id=0, before_id=None, ascending=True, limit=10)
            == []
        )


def test_a_failing_statement_is_a_storage_fault_and_stores_nothing(storage: Storage) -> None:
    taken = Admission("prod", "node-*", 1.0, "ops")
    with storage.unit_of_work() as uow:
        uow.admissions.add([taken])
    with pytest.raises(StorageFault), storage.unit_of_work() as uow:
        uow.admissions.add([Admission("prod", "web-*", 2.0, "ops")])
        uow.admissions.add([taken])  # already admitted: the backend's constraint refuses
    with storage.read() as uow:
        assert uow.admissions.all() == [taken]


def test_profile_numbers_increase_and_are_never_reused(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        first = uow.profiles.add(profile(at=1.0))
        second = uow.profiles.add(profile(at=2.0, features=("sse2", "avx")))
        uow.profiles.delete([second])
    with storage.unit_of_work() as uow:
        third = uow.profiles.add(profile(at=3.0))
    assert first < second < third
    with storage.read() as uow:
        assert [v.version for v in uow.profiles.history("h1")] == [first, third]
        assert uow.profiles.count("h1") == 2
        assert uow.profiles.features(first) == ["sse2"]
        assert uow.profiles.features(second) is None
        stored = uow.profiles.raw(first)
        assert stored is not None and (stored.host_id, stored.raw) == ("h1", b"\x78\x9c\x00raw")
        assert uow.profiles.oldest("h1", 5, keep=first) == [third]
        assert uow.profiles.oldest("h1", 1, keep=None) == [first]
        assert uow.profiles.history("h1")[0].summary == {"vendor": "GenuineIntel"}


def test_leaf_classes_are_stored_once_and_go_with_the_last_version_using_them(
    storage: Storage,
) -> None:
    """Two hosts of one model share their leaf class; a class no version uses is forgotten."""
    shared = {"a" * 64: b"leaves of the shared class"}
    own = {"b" * 64: b"leaves only h2 has"}
    with storage.unit_of_work() as uow:
        first = uow.profiles.add(replace(profile("h1"), leaf_classes=shared))
        second = uow.profiles.add(replace(profile("h2"), leaf_classes={**shared, **own}))
        plain = uow.profiles.add(profile("h3"))  # a version stored whole refers to none
    with storage.read() as uow:
        assert uow.profiles.leaf_class_count() == 2
        one, two, three = (uow.profiles.raw(v) for v in (first, second, plain))
        assert one is not None and dict(one.leaf_classes) == shared
        assert two is not None and dict(two.leaf_classes) == {**shared, **own}
        assert three is not None and dict(three.leaf_classes) == {}
    with storage.unit_of_work() as uow:
        uow.profiles.delete([second])
    with storage.read() as uow:
        assert uow.profiles.leaf_class_count() == 1  # h1 still uses the shared class
        kept = uow.profiles.raw(first)
        assert kept is not None and dict(kept.leaf_classes) == shared
    with storage.unit_of_work() as uow:
        uow.profiles.delete([first])
    with storage.read() as uow:
        assert uow.profiles.leaf_class_count() == 0


def test_a_rolled_back_version_leaves_no_leaf_class(storage: Storage) -> None:
    with pytest.raises(RuntimeError, match="refused"), storage.unit_of_work() as uow:
        uow.profiles.add(replace(profile(), leaf_classes={"c" * 64: b"x"}))
        raise RuntimeError("refused")
    with storage.read() as uow:
        assert uow.profiles.leaf_class_count() == 0


def test_a_refreshed_host_keeps_when_it_was_first_seen_and_its_pruned_count(
    storage: Storage,
) -> None:
    with storage.unit_of_work() as uow:
        uow.hosts.upsert(host())
        uow.hosts.add_pruned("h1", 3)
        uow.hosts.upsert(host(cluster="dev", first_seen=500.0, last_seen=500.0, replayed=True))
        uow.hosts.upsert(host("h2", cluster="dev"))
    with storage.read() as uow:
        stored = uow.hosts.get("h1")
        assert stored is not None
        assert (stored.first_seen, stored.last_seen, stored.cluster) == (100.0, 500.0, "dev")
        assert (stored.pruned_versions, stored.replayed) == (3, True)
        assert [h.host_id for h in uow.hosts.in_cluster("dev")] == ["h1", "h2"]
    with storage.unit_of_work() as uow:
        locked = uow.hosts.get("h2", for_update=True)
        assert locked is not None and locked.status == HostStatus.ONLINE
        uow.hosts.heard("h2", 900.0, HostStatus.ONLINE, 60.0)
        uow.hosts.set_status("h1", HostStatus.STALE)
        uow.hosts.delete("h2")
    with storage.read() as uow:
        assert [(h.host_id, h.status) for h in uow.hosts.all()] == [("h1", HostStatus.STALE)]
        assert uow.hosts.get("h2") is None


def test_events_filter_and_page_by_id(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        for n in range(6):
            cluster = "prod" if n % 2 else "dev"
            uow.events.add(float(n), cluster, f"h{n}", EventKind.STATUS_CHANGED, f"e{n}", {"n": n})
    with storage.read() as uow:
        every = uow.events.page(
            EventFilter(), after_id=0, before_id=None, ascending=True, limit=100
        )
        ids = [e.id for e in every]
        assert ids == sorted(ids) and [e.message for e in every] == [f"e{n}" for n in range(6)]
        assert every[3].details == {"n": 3} and every[3].kind == EventKind.STATUS_CHANGED
        prod = EventFilter(cluster="prod")
        assert uow.events.window(prod, 2) == (ids[3], ids[5])
        assert uow.events.window(EventFilter(host_id="nobody"), 2) is None
        newest = uow.events.page(prod, after_id=0, before_id=ids[5], ascending=False, limit=1)
        assert [e.message for e in newest] == ["e3"]
        since = uow.events.page(
            EventFilter(since=4.0), after_id=ids[0], before_id=None, ascending=True, limit=100
        )
        assert [e.message for e in since] == ["e4", "e5"]


def test_policies_keep_actions_as_numbers_and_a_pin_keeps_the_rest(storage: Storage) -> None:
    stored = PolicyRow("prod", 1, 1, None, "one group", {"host_count": 2}, 1, 10.0)
    with storage.unit_of_work() as uow:
        uow.policies.put(stored)
        uow.policies.set_pin("prod", 2, "maintenance", initial=PolicyRow("prod", 9, 9, None, ""))
        uow.policies.set_pin(
            "new", 2, "new rack", initial=PolicyRow("new", 1, 1, None, "", {}, 0, 20.0)
        )
    with storage.read() as uow:
        prod = uow.policies.get("prod")
        assert prod == replace(
            stored, pinned_action=2, details={"host_count": 2, "pin_reason": "maintenance"}
        )
        assert uow.policies.get("new") == PolicyRow(
            "new", 1, 1, 2, "", {"pin_reason": "new rack"}, 0, 20.0
        )
        assert [p.cluster for p in uow.policies.all()] == ["new", "prod"]
    with storage.unit_of_work() as uow:
        uow.policies.set_pin("prod", None, "", initial=PolicyRow("prod", 9, 9, None, ""))
    with storage.read() as uow:
        unpinned = uow.policies.get("prod", for_update=True)
        assert unpinned is not None and unpinned.pinned_action is None
        assert unpinned.details["pin_reason"] == "" and unpinned.action == 1


def test_a_policy_version_is_bumped_and_its_pin_read_without_the_rest(storage: Storage) -> None:
    details = {"blocking_pairs": [{"source": "a", "target": "b"}], "host_count": 2}
    stored = PolicyRow("prod", 2, 2, None, "two groups", details, 4, 10.0)
    with storage.unit_of_work() as uow:
        uow.policies.put(stored)
        assert uow.policies.bump_version("prod", 20.0) == 5
        assert uow.policies.bump_version("nowhere", 20.0) is None  # nothing stored: nothing made
        assert uow.policies.pinned_action("prod") is None
        uow.policies.set_pin("prod", 3, "rack work", initial=stored)
        assert uow.policies.pinned_action("prod") == 3
        assert uow.policies.pinned_action("nowhere") is None
    with storage.read() as uow:
        assert uow.policies.get("prod") == replace(
            stored,
            pinned_action=3,
            details={**details, "pin_reason": "rack work"},
            version=5,
            updated_at=20.0,
        )
        assert uow.policies.get("nowhere") is None


def test_vms_are_replaced_moved_and_removed(storage: Storage) -> None:
    vm = VmRow("web-1", "prod", "host", "h1", None, "stamp", 10.0, 10.0, "h1")
    with storage.unit_of_work() as uow:
        uow.vms.put(vm)
        uow.vms.put(replace(vm, booted_at=20.0, requirement="stamp 2"))
        uow.vms.put(replace(vm, name="db-1", mode="baseline", boot_host=None, baseline="zen3"))
    with storage.unit_of_work() as uow:
        uow.vms.move("web-1", "dev", None)
    with storage.read() as uow:
        assert uow.vms.get("web-1") == replace(
            vm, booted_at=20.0, requirement="stamp 2", cluster="dev", current_host=None
        )
        assert [v.name for v in uow.vms.all()] == ["db-1", "web-1"]
    with storage.unit_of_work() as uow:
        uow.vms.delete("web-1")
    with storage.read() as uow:
        assert uow.vms.get("web-1") is None


def test_a_vm_keeps_its_own_action_as_a_number(storage: Storage) -> None:
    vm = VmRow("web-1", "prod", "host", "h1", None, "stamp", 10.0, 10.0, "h1")
    with storage.unit_of_work() as uow:
        uow.vms.put(vm)
        uow.vms.set_action("web-1", 3, ["h2", "h3"], "h2 lacks avx512f", 5)
    with storage.read() as uow:  # the first refusing hosts and how many refuse in all
        assert uow.vms.get("web-1") == replace(
            vm,
            offline_action=3,
            refusing_hosts=("h2", "h3"),
            action_reason="h2 lacks avx512f",
            refusing_total=5,
        )
    with storage.unit_of_work() as uow:
        uow.vms.put(replace(vm, offline_action=2))  # a replaced VM takes its new action
    with storage.read() as uow:
        assert uow.vms.in_cluster("prod") == [replace(vm, offline_action=2)]


def test_a_baseline_pin_is_replaced_listed_and_removed(storage: Storage) -> None:
    pin = BaselinePinRow("prod", "current", {"vendor": "AuthenticAMD", "features": ["sse2"]}, 1.0)
    with storage.unit_of_work() as uow:
        uow.baseline_pins.put(pin)
        uow.baseline_pins.put(replace(pin, cluster="dev", pinned_by="ops"))
        uow.baseline_pins.put(replace(pin, source="model:zen3", pinned_at=2.0))
    with storage.read() as uow:
        assert uow.baseline_pins.get("prod") == replace(pin, source="model:zen3", pinned_at=2.0)
        assert [p.cluster for p in uow.baseline_pins.all()] == ["dev", "prod"]
    with storage.unit_of_work() as uow:
        uow.baseline_pins.delete("prod")
    with storage.read() as uow:
        assert uow.baseline_pins.get("prod") is None
        assert uow.baseline_pins.all() == [replace(pin, cluster="dev", pinned_by="ops")]


def test_admissions_are_added_and_removed(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        uow.admissions.add(
            [Admission("prod", "node-*", 1.0, "ops"), Admission("dev", "h1", 2.0, "")]
        )
    with storage.unit_of_work() as uow:
        uow.admissions.remove("prod", ["node-*"])
    with storage.read() as uow:
        assert uow.admissions.all() == [Admission("dev", "h1", 2.0, "")]


def test_members_and_own_bytes_read_in_bulk_what_is_stored(storage: Storage) -> None:
    with storage.unit_of_work() as uow:
        versions = [uow.profiles.add(profile(f"h{n}", at=float(n))) for n in range(3)]
        for n, version in enumerate(versions):
            uow.hosts.upsert(
                host(f"h{n}", version=version, status=HostStatus.STALE if n else HostStatus.ONLINE)
            )
        uow.hosts.upsert(host("elsewhere", cluster="other", version=versions[0]))
        uow.hosts.set_maintenance("h2", "on", "firmware")
    with storage.read() as uow:
        members = uow.hosts.members("prod")
        assert [(m.host_id, m.profile_version, m.status, m.maintenance) for m in members] == [
            (r.host_id, r.profile_version, r.status, r.maintenance)
            for r in uow.hosts.in_cluster("prod")
        ]
        assert [m.maintenance for m in members] == ["", "", "on"]
        assert uow.hosts.members("nowhere") == []
        # More versions than one query takes, one of them never stored.
        wanted = [*versions, 10**9] * 400
        own = uow.profiles.own_bytes(wanted)
        assert own == {v: b"\x78\x9c\x00raw" for v in versions}
