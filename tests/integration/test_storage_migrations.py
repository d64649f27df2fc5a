"""Databases written before the storage seam open, migrate and keep every row.

The fixture `tests/fixtures/storage/main-d22b1c5-schema.sql` is the schema code of the
coordinator as it was before the migrations became `.sql` files; each test builds a real
SQLite file exactly as that code did (at every schema version it ever wrote), fills it
with rows as that code wrote them, and opens it with today's coordinator.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.raw import RawCapture
from cpucompat.agent.rawjson import capture_to_json
from cpucompat.coordinator.domain.hosts import EventKind, HostStatus
from cpucompat.coordinator.domain.policy import OfflineAction
from cpucompat.coordinator.policy import PolicyEngine
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.storage import StoreError, open_storage
from cpucompat.coordinator.storage.blobs import pack_raw
from cpucompat.coordinator.storage.migrations import Migration, load, migrate, statements
from cpucompat.coordinator.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStorage
from tests.support.hostile import DEV_DUMP, DUMPS
from tests.support.paths import FIXTURES, PROCESSORS

LEGACY_SCHEMA = FIXTURES / "storage" / "main-d22b1c5-schema.sql"


def legacy_migrations() -> dict[int, str]:
    """The old code's MIGRATIONS: {version: SQL}, read from the fixture."""
    sections: dict[int, str] = {}
    current: int | None = None
    for line in LEGACY_SCHEMA.read_text().splitlines(keepends=True):
        m = re.fullmatch(r"-- version (\d+)\s*", line)
        if m is not None:
            current = int(m[1])
            sections[current] = ""
        elif current is not None:
            sections[current] += line
    return sections


def legacy_database(path: Path, version: int) -> Path:
    """A database as the old code left it at ``version`` (its own statement splitting)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for number, sql in sorted(legacy_migrations().items()):
            if number > version:
                break
            conn.execute("BEGIN IMMEDIATE")
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
    finally:
        conn.close()
    return path


def whole_capture(capture: RawCapture) -> bytes:
    """A capture as versions before schema 8 stored it: every CPU's leaves in one blob."""
    doc = capture_to_json(capture)
    if capture.origin:
        doc["origin"] = capture.origin
    return pack_raw(doc)


def schema_of(path: Path) -> list[tuple[str, str, str]]:
    """Every table and index with its definition, whitespace normalised."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ).fetchall()
    return [(kind, name, " ".join((sql or "").split())) for kind, name, sql in rows]


def test_the_fixture_is_the_whole_old_schema() -> None:
    assert sorted(legacy_migrations()) == [1, 2, 3, 4] == [m.version for m in load_sqlite()][:4]


def load_sqlite() -> list:
    return load("cpucompat.coordinator.storage.sqlite.migrations")


def test_a_new_database_has_exactly_the_old_schema(tmp_path: Path) -> None:
    """The database format did not change: same tables, columns, types and indexes.

    Migrations after the fixture's version 4 (5: ``vms.cpu_definition``, 6:
    ``baseline_pins``, 7: maintenance and per-VM actions, 8: leaf classes by digest, 9:
    ``vms.refusing_total``) are applied to the old database by hand, so the comparison
    still covers every old statement.
    """
    old = legacy_database(tmp_path / "old.db", 4)
    with sqlite3.connect(old) as conn:
        for migration in load_sqlite()[4:]:
            for statement in migration.statements:
                conn.execute(statement)
    storage = SqliteStorage(tmp_path / "new.db")
    try:
        assert storage.schema_version() == SCHEMA_VERSION == 9
    finally:
        storage.close()
    assert schema_of(tmp_path / "new.db") == schema_of(old)
    assert len(schema_of(old)) == 14  # 9 tables, 5 indexes


def test_each_migration_file_holds_the_old_statements() -> None:
    for migration in load_sqlite()[:4]:
        old = statements(legacy_migrations()[migration.version])
        assert [" ".join(s.split()) for s in migration.statements] == [
            " ".join(s.split()) for s in old
        ]


@pytest.mark.parametrize("version", [1, 2, 3, 4])
def test_old_database_with_rows_opens_migrates_and_keeps_them(tmp_path: Path, version: int) -> None:
    db = legacy_database(tmp_path / "c.db", version)
    capture = load_dump(DEV_DUMP)
    profile = decode(capture)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO profiles (host_id, recorded_at, fingerprint, source, raw, features, "
            "gained, lost, summary) VALUES ('h1', 100.0, ?, ?, ?, ?, '[]', '[]', '{}')",
            (profile.fingerprint, capture.source, whole_capture(capture), json.dumps(sorted(profile.features))),
        )  # fmt: skip
        conn.execute(
            "INSERT INTO hosts (host_id, cluster, agent_address, agent_version, status, replayed, "
            "fingerprint, agent_fingerprint, profile_version, first_seen, last_seen, "
            "heartbeat_interval) VALUES ('h1', 'prod', '', '0.1', 'online', 1, ?, 'a', 1, 100.0, "
            "100.0, 30.0)",
            (profile.fingerprint,),
        )
        conn.execute(
            "INSERT INTO events (time, cluster, host_id, kind, message, details) VALUES "
            "(100.0, 'prod', 'h1', 'host_joined', 'host h1 joined cluster prod', '{}')"
        )
        if version >= 2:
            conn.execute(
                "INSERT INTO policies (cluster, action, computed_action, pinned_action, reason, "
                "details, version, updated_at) VALUES ('prod', '2', '1', '2', 'pinned', "
                '\'{"pin_reason": "maintenance"}\', 3, 100.0)'
            )
        if version >= 4:
            conn.execute(
                "INSERT INTO admissions VALUES ('prod', 'h*', 100.0, 'ops')"
            )  # fmt: skip

    clock = [200.0]
    storage = open_storage(db)
    try:
        assert isinstance(storage, SqliteStorage) and storage.schema_version() == SCHEMA_VERSION
        registry = Registry(storage, clock=lambda: clock[0], allow_replayed=True)
        policies = PolicyEngine(storage, registry)
        host = registry.host("h1")
        assert (host.cluster, host.status, host.fingerprint) == (
            "prod",
            HostStatus.ONLINE,
            profile.fingerprint,
        )
        assert registry.history("h1")[0] == 0  # pruned_versions: 0 after migration 3
        assert registry.events()[0].kind == EventKind.HOST_JOINED
        stored = policies.get("prod")
        if version >= 2:
            assert stored.decision.pinned == OfflineAction.SHUTDOWN
            assert stored.decision.pin_reason == "maintenance"
        # The migrated file takes new versions, numbered after the stored one.
        clock[0] += 1
        changed = registry.report(
            "h1", "prod", load_dump(DUMPS / "libcpuid-single.txt"), heartbeat_interval=30
        )
        assert changed.profile_version == 2
        assert [v.version for v in registry.history("h1")[1]] == [1, 2]
    finally:
        storage.close()
    SqliteStorage(tmp_path / "fresh.db").close()
    assert schema_of(db) == schema_of(tmp_path / "fresh.db")


def test_database_from_a_newer_cpucompat_is_refused_untouched(tmp_path: Path) -> None:
    db = legacy_database(tmp_path / "c.db", 4)
    with sqlite3.connect(db) as conn:
        for migration in load_sqlite()[4:]:  # every table this cpucompat knows is there
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = schema_of(db)
    newer = rf"schema version {SCHEMA_VERSION + 1}, newer than this cpucompat \({SCHEMA_VERSION}\)"
    with pytest.raises(StoreError, match=newer):
        open_storage(db)
    assert schema_of(db) == before


def test_migration_files_split_into_statements_without_their_comments() -> None:
    assert statements("-- a; comment\nCREATE TABLE a (x);\n\n CREATE INDEX i ON a (x)") == (
        "CREATE TABLE a (x)",
        "CREATE INDEX i ON a (x)",
    )


def test_a_failing_migration_leaves_the_database_at_its_version(tmp_path: Path) -> None:
    """Each file is one transaction with its version record: half a step never lands."""
    storage = SqliteStorage(tmp_path / "c.db")
    try:
        broken = Migration(
            SCHEMA_VERSION + 1, "broken", ("CREATE TABLE extra (x)", "CREATE TABLE hosts (x)")
        )
        with pytest.raises(sqlite3.OperationalError, match="already exists"):
            migrate(storage, [*MIGRATIONS, broken], "database c.db")
        assert storage.schema_version() == SCHEMA_VERSION
        # The steps already applied are skipped: only the missing ones run.
        assert migrate(storage, MIGRATIONS, "database c.db") == []
    finally:
        storage.close()
    assert "extra" not in {name for _, name, _ in schema_of(tmp_path / "c.db")}


Execute = Callable[[str, tuple[object, ...]], object]


def _migrated_to(
    version: int,
    backend: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    fill: Callable[[Execute, str, str], None],
) -> str:
    """A ``backend`` database as cpucompat left it at schema ``version`` (an SQLite file
    from schema 4 on; PostgreSQL from its first migration), then ``fill(execute,
    placeholder, true literal)`` writes the rows that schema held. Returns its --db."""
    if backend == "sqlite":
        db = legacy_database(tmp_path / "c.db", 4)
        with sqlite3.connect(db) as conn:
            for migration in load_sqlite()[4:version]:
                for statement in migration.statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            fill(conn.execute, "?", "1")
        return str(db)
    import psycopg

    url: str = request.getfixturevalue("postgres_server").database()
    with psycopg.connect(url, autocommit=True) as pg:
        for migration in load("cpucompat.coordinator.storage.postgres.migrations")[:version]:
            for statement in migration.statements:
                pg.execute(statement.encode())
        pg.execute("CREATE TABLE cpucompat_schema (version integer NOT NULL)")
        pg.execute(f"INSERT INTO cpucompat_schema (version) VALUES ({version})".encode())
        fill(lambda sql, params: pg.execute(sql.encode(), params), "%s", "true")
    return url


# ---- schema 8: leaf classes stored once by digest, on both backends ---------------------

HYBRID = PROCESSORS / "amd-zen5-zen5c-edited.cpuid-r.txt"  # 4 CPUs of 2 classes


def _at_version_7(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database as cpucompat left it at schema 7, holding host h1 whose one version
    keeps its whole capture (as every version before schema 8 did)."""
    capture = load_dump(HYBRID)
    profile = decode(capture)
    row = (
        profile.fingerprint,
        capture.source,
        whole_capture(capture),
        json.dumps(sorted(profile.features)),
    )
    insert_profile = (
        "INSERT INTO profiles (host_id, recorded_at, fingerprint, source, raw, features, "
        "gained, lost, summary) VALUES ('h1', 100.0, {0}, {0}, {0}, {0}, '[]', '[]', '{{}}')"
    )
    insert_host = (
        "INSERT INTO hosts (host_id, cluster, agent_address, agent_version, status, replayed, "
        "fingerprint, agent_fingerprint, profile_version, first_seen, last_seen, "
        "heartbeat_interval) VALUES ('h1', 'prod', '', '0.1', 'online', {1}, {0}, 'a', 1, "
        "100.0, 100.0, 30.0)"
    )

    def fill(execute: Execute, mark: str, true: str) -> None:
        execute(insert_profile.format(mark), row)
        execute(insert_host.format(mark, true), (profile.fingerprint,))

    return _migrated_to(7, backend, tmp_path, request, fill)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_schema_7_keeps_whole_captures_and_new_versions_share_their_leaf_classes(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = _at_version_7(backend, tmp_path, request)
    capture = load_dump(HYBRID)
    storage = open_storage(db)
    try:
        assert storage.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
        registry = Registry(storage, clock=lambda: 200.0, allow_replayed=True)
        # The version stored whole reads back as the capture it was.
        assert registry.host("h1").profile.raw == capture
        for host_id in ("h2", "h3", "h4"):  # three more hosts of the same model
            registry.report(host_id, "prod", capture, heartbeat_interval=30)
        with storage.read() as uow:
            assert uow.profiles.leaf_class_count() == 2  # stored once, not once per host
        # A coordinator starting on this database reads every host back from the store.
        reread = Registry(storage, clock=lambda: 200.0, allow_replayed=True)
        for host_id in ("h1", "h2", "h3", "h4"):
            record = reread.host(host_id)
            assert record.profile.raw == capture
            assert record.fingerprint == registry.host("h1").fingerprint
        for host_id in ("h2", "h3"):
            reread.remove(host_id, force=True)
        with storage.read() as uow:
            assert uow.profiles.leaf_class_count() == 2  # h4 still uses them
        reread.remove("h4", force=True)
        with storage.read() as uow:
            assert uow.profiles.leaf_class_count() == 0  # h1's version is stored whole
        assert reread.host("h1").profile.raw == capture
    finally:
        storage.close()


# ---- schema 9: a VM's refusing hosts are counted beside the few listed ------------------


def _at_version_8(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database as cpucompat left it at schema 8, holding VM web-1 whose stored action
    lists each of its 25 refusing hosts (as every row before schema 9 did)."""
    insert_vm = (
        "INSERT INTO vms (name, cluster, mode, boot_host, baseline, requirement, registered_at, "
        "booted_at, current_host, cpu_definition, offline_action, refusing_hosts, action_reason) "
        "VALUES ('web-1', 'prod', 'host', 'h1', NULL, 'stamp', 10.0, 10.0, 'h1', NULL, 3, {0}, "
        "'refused')"
    )
    refusing = json.dumps([f"h{n:02d}" for n in range(2, 27)])

    def fill(execute: Execute, mark: str, true: str) -> None:
        execute(insert_vm.format(mark), (refusing,))

    return _migrated_to(8, backend, tmp_path, request, fill)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_schema_8_vm_rows_count_every_host_they_list_and_take_a_bounded_action(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    db = _at_version_8(backend, tmp_path, request)
    storage = open_storage(db)
    try:
        assert storage.schema_version() == SCHEMA_VERSION  # type: ignore[attr-defined]
        with storage.read() as uow:
            old = uow.vms.get("web-1")
        assert old is not None and len(old.refusing_hosts) == old.refusing_total == 25
        with storage.unit_of_work() as uow:  # what the next recompute stores
            uow.vms.set_action("web-1", 3, old.refusing_hosts[:20], "refused", 25)
        with storage.read() as uow:
            new = uow.vms.get("web-1")
        assert new is not None
        assert (new.refusing_hosts, new.refusing_total) == (old.refusing_hosts[:20], 25)
    finally:
        storage.close()
