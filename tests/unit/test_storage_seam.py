"""The storage seam holds: SQL and drivers live only in the backends.

Services (registry, policy, VMs, admissions, servicers) speak the repository
protocols of `coordinator/storage/interface.py`, so a backend (SQLite, PostgreSQL)
needs no change outside `coordinator/storage/`: `sqlite3` is imported only by the
SQLite backend, `psycopg` only by the PostgreSQL one. This walks every module's syntax tree.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.support.paths import PROJECT_ROOT

SQLITE_BACKEND = PROJECT_ROOT / "coordinator" / "storage" / "sqlite"
POSTGRES_BACKEND = PROJECT_ROOT / "coordinator" / "storage" / "postgres"
# The statements both backends run, written once (no driver imported there).
SHARED_SQL = PROJECT_ROOT / "coordinator" / "storage" / "sql_common.py"
SOURCES = [PROJECT_ROOT / "agent", PROJECT_ROOT / "coordinator"]

# SQL as this project writes it: upper-case keywords, SQLite's functions and pragmas.
SQL = re.compile(
    r"\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+(?:OR\s+\w+\s+)?INTO\b|\bUPDATE\s+\w+\s+SET\b"
    r"|\bDELETE\s+FROM\b|\bCREATE\s+(?:TABLE|INDEX)\b|\bALTER\s+TABLE\b|\bPRAGMA\b"
    r"|\bBEGIN\s+IMMEDIATE\b|\bjson_(?:set|extract)\b|\bsqlite_master\b|\blastrowid\b"
)
# Which modules may name the SQLite backend: the factory that opens --db and the old alias
# (whose other names, StoreError, FaultLog, are backend-neutral re-exports).
MAY_IMPORT_BACKEND = {
    PROJECT_ROOT / "coordinator" / "storage" / "__init__.py",
    PROJECT_ROOT / "coordinator" / "store.py",
}


def modules() -> list[Path]:
    return sorted(p for root in SOURCES for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def in_backend(path: Path) -> bool:
    return SQLITE_BACKEND in path.parents or POSTGRES_BACKEND in path.parents or path == SHARED_SQL


def imported(tree: ast.AST, path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to dotted paths from the root."""
    package = path.relative_to(PROJECT_ROOT).parent.parts
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def sql_strings(tree: ast.AST) -> list[str]:
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
    ]


def test_only_each_backend_imports_its_driver() -> None:
    offenders = []
    for path in modules():
        names = imported(ast.parse(path.read_text()), path)
        for driver, home in (("sqlite3", SQLITE_BACKEND), ("psycopg", POSTGRES_BACKEND)):
            if home in path.parents:
                continue
            if driver in names or any(n.startswith(f"{driver}.") for n in names):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}: {driver}")
    assert offenders == [], f"a database driver imported outside its backend: {offenders}"


def test_no_sql_outside_the_sqlite_backend() -> None:
    offenders = {}
    for path in modules():
        if in_backend(path):
            continue
        found = sql_strings(ast.parse(path.read_text()))
        if found:
            offenders[str(path.relative_to(PROJECT_ROOT))] = found[:2]
    assert offenders == {}, f"SQL outside the storage backends: {offenders}"


def test_the_detector_sees_the_backends_sql() -> None:
    """The two checks above can fail: they find the SQL and the imports where they belong."""
    shared = sql_strings(ast.parse(SHARED_SQL.read_text()))
    assert len(shared) >= 25
    assert not in_backend(PROJECT_ROOT / "coordinator" / "storage" / "interface.py")
    pg = POSTGRES_BACKEND / "repositories.py"
    pg_tree = ast.parse(pg.read_text())
    assert any("= ANY(?)" in s for s in sql_strings(pg_tree))  # arrays: no SQLite here
    assert "psycopg" in imported(pg_tree, pg)
    repositories = SQLITE_BACKEND / "repositories.py"
    tree = ast.parse(repositories.read_text())
    found = sql_strings(tree)
    assert any("INSERT OR REPLACE INTO vms" in s for s in found)
    assert any("json_set" in s for s in found)
    assert "sqlite3" in imported(tree, repositories)


def test_services_reach_storage_only_through_the_interface() -> None:
    offenders = []
    for path in modules():
        if in_backend(path) or path in MAY_IMPORT_BACKEND:
            continue
        names = imported(ast.parse(path.read_text()), path)
        bad = sorted(
            n
            for n in names
            if n.removeprefix("cpucompat.").startswith(
                ("coordinator.storage.sqlite", "coordinator.storage.postgres")
            )
            or n.removeprefix("cpucompat.") == "coordinator.store.Store"
        )
        if bad:
            offenders.append(f"{path.relative_to(PROJECT_ROOT)}: {bad}")
    assert offenders == [], offenders


def test_statements_for_postgresql_hold_no_percent_sign() -> None:
    """PostgreSQL runs the shared statements with each ``?`` turned into psycopg's ``%s``
    (`postgres/repositories.py` `PgSql`): a ``%`` of their own would be read as a placeholder."""
    for path in (SHARED_SQL, POSTGRES_BACKEND / "repositories.py"):
        found = sql_strings(ast.parse(path.read_text()))
        assert found, path
        assert [s for s in found if "%" in s] == [], path
