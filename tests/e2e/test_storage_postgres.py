"""What only the PostgreSQL backend has to show: its schema matches SQLite's, coordinators
starting together migrate once, a lost connection is one clear fault and then reopened,
and a URL's password never reaches an error, a log or a listing.

Runs on the throwaway server of `tests/postgres.py` (skipped only without PostgreSQL).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from cpucompat.coordinator.domain.hosts import EventKind
from cpucompat.coordinator.storage import StorageFault, StoreError, open_storage
from cpucompat.coordinator.storage.interface import EventFilter
from cpucompat.coordinator.storage.migrations import load
from cpucompat.coordinator.storage.postgres import SCHEMA_VERSION, PostgresStorage
from cpucompat.coordinator.storage.postgres.url import connection_defaults, redact
from cpucompat.coordinator.storage.sqlite import SqliteStorage
from tests.support.daemons import run_cli, start_coordinator, wait_until
from tests.support.postgres import PostgresServer

SECRET = "s3cr3t-Pa55"


def database_name(url: str) -> str:
    return url.split("@/", 1)[1].split("?", 1)[0]


def columns_pg(server: PostgresServer, url: str) -> dict[str, set[str]]:
    out = server.psql(
        "SELECT table_name || '.' || column_name FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name <> 'cpucompat_schema'",
        database=database_name(url),
    )
    tables: dict[str, set[str]] = {}
    for line in out.splitlines():
        table, column = line.split(".")
        tables.setdefault(table, set()).add(column)
    return tables


def columns_sqlite(path: Path) -> dict[str, set[str]]:
    with sqlite3.connect(path) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {n: {r[1] for r in conn.execute(f"PRAGMA table_info({n})")} for n in names}


def test_migrations_are_numbered_and_named_as_sqlites() -> None:
    pg = load("cpucompat.coordinator.storage.postgres.migrations")
    lite = load("cpucompat.coordinator.storage.sqlite.migrations")
    assert [(m.version, m.name) for m in pg] == [(m.version, m.name) for m in lite]


def test_a_new_database_has_the_same_tables_and_columns_as_sqlite(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.database()
    PostgresStorage(url).close()
    SqliteStorage(tmp_path / "c.db").close()
    assert columns_pg(postgres_server, url) == columns_sqlite(tmp_path / "c.db")
    version = postgres_server.psql(
        "SELECT version FROM cpucompat_schema", database=database_name(url)
    )
    assert int(version) == SCHEMA_VERSION == 9


def test_coordinators_starting_together_migrate_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.database()
    opened: list[PostgresStorage] = []
    failed: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresStorage(url))
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in opened:
        s.close()
    assert failed == [] and len(opened) == 4
    rows = postgres_server.psql(
        "SELECT count(*) FROM cpucompat_schema", database=database_name(url)
    )
    assert rows == "1"


def test_a_newer_or_foreign_database_is_refused_untouched(postgres_server: PostgresServer) -> None:
    newer = postgres_server.database()
    PostgresStorage(newer).close()
    postgres_server.psql(
        f"UPDATE cpucompat_schema SET version = {SCHEMA_VERSION + 1}",
        database=database_name(newer),
    )
    with pytest.raises(StoreError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than"):
        open_storage(newer)

    foreign = postgres_server.database()
    postgres_server.psql("CREATE TABLE invoices (n int)", database=database_name(foreign))
    with pytest.raises(StoreError, match=r"not a cpucompat database .*invoices"):
        open_storage(foreign)
    tables = postgres_server.psql(
        "SELECT string_agg(table_name, ',') FROM information_schema.tables "
        "WHERE table_schema = 'public'",
        database=database_name(foreign),
    )
    assert tables == "invoices"


def test_a_lost_connection_is_one_fault_then_the_next_unit_of_work_reconnects(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.database()
    storage = open_storage(url)
    try:
        with storage.unit_of_work() as uow:
            uow.events.add(1.0, "prod", "h1", EventKind.HOST_JOINED, "before", {})
        # The server ends the coordinator's session (a restart or failover looks the same).
        postgres_server.psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database_name(url)}' AND pid <> pg_backend_pid()"
        )
        # pg_terminate_backend only signals: wait until the session is really gone.
        wait_until(
            lambda: (
                postgres_server.psql(
                    "SELECT count(*) FROM pg_stat_activity "
                    f"WHERE datname = '{database_name(url)}' AND pid <> pg_backend_pid()"
                )
                == "0"
            ),
            what="the coordinator's session ended",
        )
        with pytest.raises(StorageFault) as lost, storage.unit_of_work() as uow:
            uow.events.add(2.0, "prod", "h1", EventKind.HOST_JOINED, "lost", {})
        message = str(lost.value)
        assert "\n" not in message and not lost.value.full
        assert message.startswith(f"the coordinator's database {redact(url)} ")
        assert "check the PostgreSQL server" in message
        with storage.unit_of_work() as uow:
            uow.events.add(3.0, "prod", "h1", EventKind.HOST_JOINED, "after", {})
        with storage.read() as uow:
            page = uow.events.page(
                EventFilter(), after_id=0, before_id=None, ascending=True, limit=10
            )
        assert [e.message for e in page] == ["before", "after"]
    finally:
        storage.close()


def test_redact_drops_the_password_wherever_the_url_carries_it() -> None:
    assert redact(f"postgresql://ops:{SECRET}@db.example:5433/cc") == (
        "postgresql://ops@db.example:5433/cc"
    )
    assert redact(f"postgres://db/cc?password={SECRET}&sslmode=require") == (
        "postgres://db/cc?sslmode=require"
    )


def test_connections_notice_a_dead_network_quickly_unless_the_url_says_otherwise(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{postgres_server.database()}&keepalives_idle=42&tcp_user_timeout=30000"
    storage = PostgresStorage(url)
    try:
        assert storage.holds_lease("stale-sweep")
        for conn in (storage._conn, storage._lease_conn):
            assert conn is not None
            given = conn.info.get_parameters()
            # The URL's own values win; the rest are the defaults of url.py.
            assert (given["keepalives_idle"], given["tcp_user_timeout"]) == ("42", "30000")
            assert given["keepalives"] == "1" and given["keepalives_interval"] == "3"
            assert given["keepalives_count"] == "3" and given["connect_timeout"] == "5"
    finally:
        storage.close()
    assert connection_defaults("postgresql://db/cc?connect_timeout=2")["keepalives"] == "1"
    assert "connect_timeout" not in connection_defaults("postgresql://db/cc?connect_timeout=2")
    monkeypatch.setenv("PGCONNECT_TIMEOUT", "7")  # libpq's own variable wins too
    assert "connect_timeout" not in connection_defaults("postgresql://db/cc")


def test_unreachable_server_is_one_line_naming_the_url_without_its_password(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    gone = tmp_path / "no-server-here"
    gone.mkdir()
    url = f"postgresql://ops:{SECRET}@/cc?host={gone}"
    result = run_cli("coordinator", "--listen", "127.0.0.1:0", "--db", url)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"postgresql://ops@/cc?host={gone}" in lines[0]
    assert "start the server or correct --db" in lines[0]
    assert SECRET not in result.stderr + result.stdout


def test_a_running_coordinator_never_shows_the_password(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.database()
    with_password = url.replace("cpucompat@", f"cpucompat:{SECRET}@")
    coord = start_coordinator(tmp_path, db=with_password)
    try:
        assert f"(db {url})" in coord.output()  # the listening line names the database
        hosts = run_cli("hosts", "--coordinator", coord.address, "--json")
        assert hosts.returncode == 0, hosts.stderr
    finally:
        assert coord.stop() == 0
    assert SECRET not in coord.output()
    assert SECRET not in (tmp_path / "coordinator.log").read_text()
