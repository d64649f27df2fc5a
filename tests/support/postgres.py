"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl in a temporary folder.

The server listens on no TCP port, only on a unix socket inside its own folder, with
``trust`` authentication for that socket (nobody else can reach the folder). initdb
refuses to run as root, so under root (CI) the server runs as the unprivileged user
``nobody`` and the folder is given to it. Tests that need the server skip with one line
only when no PostgreSQL binaries can be found (``initdb`` on PATH or under
/usr/lib/postgresql/*/bin).
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUPERUSER = "cpucompat"
SKIP_REASON = (
    "no PostgreSQL binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin: "
    "install Debian's postgresql package (bash .ci/run does) to run the PostgreSQL tests"
)


def find_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl, the newest Debian version first."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in versions:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


@dataclass
class PostgresServer:
    """A running server; ``database()`` makes a fresh, empty database and returns its URL."""

    folder: Path
    bin: Path
    run_as: tuple[int, int] | None
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def socket_dir(self) -> Path:
        return self.folder

    def url(self, database: str, password: str | None = None) -> str:
        user = SUPERUSER if password is None else f"{SUPERUSER}:{password}"
        return f"postgresql://{user}@/{database}?host={self.socket_dir}"

    def database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{next(self._names)}"
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        done = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.socket_dir), "-U", SUPERUSER, "-d", database, "-c", sql],
            capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        kwargs: dict = {}
        if self.run_as is not None:
            kwargs = {"user": self.run_as[0], "group": self.run_as[1], "extra_groups": []}
        return subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            cwd=self.folder,
            **kwargs,
        )

    def start(self) -> None:
        data = self.folder / "data"
        done = self._run(
            str(self.bin / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stdout}{done.stderr}")
        self.resume()

    def resume(self) -> None:
        """Start the server on its existing data folder (after `stop`: an outage ends)."""
        data = self.folder / "data"
        options = (
            f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' "
            "-c max_connections=100 -c shared_buffers=16MB"
        )
        done = self._run(
            str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "server.log"),
            "-o", options, "-w", "-t", "120", "start",
        )  # fmt: skip
        if done.returncode != 0:
            log = (self.folder / "server.log").read_text(errors="replace")
            raise RuntimeError(f"pg_ctl start failed: {done.stdout}{done.stderr}\n{log}")

    def stop(self) -> None:
        """Stop at once, as a crash would (``-m immediate``); `resume` starts it again."""
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w",
            "stop",
        )  # fmt: skip


def start_server() -> PostgresServer:
    """`throwaway_server` for a test, which is skipped without PostgreSQL's binaries."""
    server = throwaway_server()
    if server is None:
        pytest.skip(SKIP_REASON)
    return server


@contextmanager
def running_server() -> Iterator[PostgresServer]:
    """`start_server` for the body of a fixture: stopped and removed after it."""
    server = start_server()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


def throwaway_server(prefix: str = "cpucompat-pg-") -> PostgresServer | None:
    """Start a server in a new temporary folder as this user, or as ``nobody`` when this is
    root; None without PostgreSQL's binaries. The caller stops it and removes its folder."""
    binaries = find_binaries()
    if binaries is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    run_as = None
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        run_as = (nobody.pw_uid, nobody.pw_gid)
        os.chown(folder, *run_as)
    server = PostgresServer(folder, binaries, run_as)
    try:
        server.start()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return server
