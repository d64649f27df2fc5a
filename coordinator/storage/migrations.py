"""Schema migrations: ordered ``NNNN_name.sql`` files, applied by a backend-neutral runner.

Each backend keeps its own folder of files (its dialect), numbered alike: file N
upgrades the schema from version N-1 to N. The backend records the version it
reached (SQLite: the file header's ``user_version``, as every cpucompat database has
since the first release) and applies each file in one transaction with that record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Protocol

from .errors import StoreError

FILE_NAME = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


class Schema(Protocol):
    """A backend's side of migrating: read the recorded version, apply one step."""

    def schema_version(self) -> int: ...

    def apply(self, migration: Migration) -> None:
        """Run the statements and record ``migration.version``, all in one transaction."""
        ...


def statements(sql: str) -> tuple[str, ...]:
    """The statements of a file: ``--`` comment lines dropped, split at ``;``."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return tuple(s.strip() for s in text.split(";") if s.strip())


def load(package: str) -> list[Migration]:
    """The migrations shipped in ``package``, numbered 1, 2, ... without a gap."""
    found = []
    for entry in resources.files(package).iterdir():
        m = FILE_NAME.fullmatch(entry.name)
        if m is not None:
            found.append(Migration(int(m[1]), m[2], statements(entry.read_text("utf-8"))))
    found.sort(key=lambda mig: mig.version)
    numbers = [mig.version for mig in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations in {package} are not numbered 1..N: {numbers}")
    return found


def migrate(schema: Schema, migrations: list[Migration], database: str) -> list[int]:
    """Bring the schema up to the newest migration; returns the versions applied."""
    newest = migrations[-1].version if migrations else 0
    current = schema.schema_version()
    if current > newest:
        raise StoreError(
            f"{database} has schema version {current}, newer than this cpucompat ({newest}); "
            "upgrade cpucompat"
        )
    applied = []
    for migration in migrations[current:]:
        schema.apply(migration)
        applied.append(migration.version)
    return applied
