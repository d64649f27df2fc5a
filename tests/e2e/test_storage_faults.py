"""Storage faults (issue 10, item 9): one line and a proper status, never a traceback.

At start a bad database is one line on stderr and exit 2; at run time a full disk is
RESOURCE_EXHAUSTED with one log line, and nothing half-written is left behind. The
daemons are real `cpucompat coordinator` processes; the full disk is a real tmpfs of a
few hundred KiB (the test skips when this process may not mount one).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.daemons import Daemon, run_cli, start_coordinator
from tests.support.hostile import report
from tests.support.inprocess import Running


def start_fails(db: Path, *needles: str) -> str:
    """`cpucompat coordinator --db DB` exits 2 with one line naming ``needles``."""
    result = run_cli("coordinator", "--db", str(db), "--listen", "127.0.0.1:0")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def stored_database(tmp_path: Path, hosts: int = 3) -> Path:
    """A real coordinator database holding a few hosts, closed."""
    running = Running(tmp_path)
    for n in range(hosts):
        running.registry.ReportProfile(report(f"h{n}", agent_version="x" * 100), timeout=10)
    running.close()
    return running.db


def test_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "inventory.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE hosts (name TEXT, rack INTEGER)")
        conn.execute("INSERT INTO hosts VALUES ('web-1', 4)")
    before = db.read_bytes()
    start_fails(db, "not a cpucompat database", "hosts")
    assert db.read_bytes() == before


def test_foreign_file_claiming_our_schema_version_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE hosts (host_id TEXT)")
        conn.execute("PRAGMA user_version = 3")
    start_fails(db, "not a cpucompat database")


def test_page_corrupted_database_is_one_line(tmp_path: Path) -> None:
    db = stored_database(tmp_path)
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 3 * page
    data[2 * page : len(data)] = b"\xa5" * (len(data) - 2 * page)  # every page after the 2nd
    db.write_bytes(bytes(data))
    start_fails(db, str(db), "damaged")


def test_not_a_database_at_all_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 200)
    start_fails(db, "damaged or not an SQLite file")


def test_damaged_profile_blob_is_one_line_naming_the_host(tmp_path: Path) -> None:
    db = stored_database(tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE profiles SET raw = X'789c0badbeef' WHERE id = "
            "(SELECT profile_version FROM hosts WHERE host_id = 'h1')"
        )
    start_fails(db, "host h1", "cannot be decoded", "backup")


def test_dev_null_is_not_a_database(tmp_path: Path) -> None:
    lock = Path("/dev/null.lock")
    existed = lock.exists()
    start_fails(Path("/dev/null"), "not a regular file")
    assert lock.exists() == existed


def test_missing_folder_is_an_error_not_created(tmp_path: Path) -> None:
    folder = tmp_path / "nonexistent" / "dir"
    start_fails(folder / "c.db", "does not exist")
    assert not (tmp_path / "nonexistent").exists()


def test_default_location_folder_is_still_created(tmp_path: Path) -> None:
    """Only a given --db must exist: the default state folder is made on first start."""
    state = tmp_path / "state" / "cpucompat"
    daemon = Daemon(
        ["coordinator", "--listen", "127.0.0.1:0"],
        tmp_path / "default.log",
        env={"CPUCOMPAT_STATE_DIR": str(state)},
    )
    try:
        assert (state / "coordinator.db").is_file()
    finally:
        daemon.stop()


# ---- a full disk at run time ------------------------------------------------------------


def fill_disk(folder: Path) -> Path:
    """Write zeros into ``folder`` until the filesystem says no more; returns the file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 640 KiB tmpfs; skipped (with the reason) where mounting is not permitted."""
    mount = tmp_path / "small"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small filesystem to fill")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"mounting a small tmpfs is not permitted here: {made.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_is_resource_exhausted_with_one_log_line(
    tmp_path: Path, small_disk: Path
) -> None:
    coordinator = start_coordinator(tmp_path, db=small_disk / "c.db")
    channel = grpc.insecure_channel(coordinator.address)
    registry = pb_grpc.RegistryServiceStub(channel)
    query = pb_grpc.QueryServiceStub(channel)
    try:
        registry.ReportProfile(report("first"), timeout=10)
        # Fill what is left of the disk, then keep reporting new hosts until one no longer fits
        # (SQLite may still reuse room inside its write-ahead log for a while).
        filler = fill_disk(small_disk)
        failure: grpc.RpcError | None = None
        accepted = ["first"]
        for n in range(400):
            try:
                registry.ReportProfile(report(f"h{n}", agent_version="v" * 128), timeout=10)
                accepted.append(f"h{n}")
            except grpc.RpcError as err:
                failure = err
                break
        assert failure is not None, "the disk never filled up"
        assert failure.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, failure.details()
        assert "disk is full" in failure.details() and "free space" in failure.details()
        # The refused host is stored nowhere; the ones acknowledged before are all there.
        listed = query.ListHosts(pb.ListHostsRequest(), timeout=10).hosts
        assert sorted(h.host_id for h in listed) == sorted(accepted)
        # The CLI says what is wrong in one line (not "cannot reach the coordinator").
        events = run_cli("events", "--coordinator", coordinator.address)
        assert events.returncode == 0, events.stderr
        # Space again: reports are accepted again, no restart needed.
        filler.unlink()
        registry.ReportProfile(report(f"h{n}"), timeout=10)
        assert query.GetHost(pb.GetHostRequest(host_id=f"h{n}"), timeout=10).host.host_id
    finally:
        channel.close()
        coordinator.stop()
    log = coordinator.output()
    full_lines = [line for line in log.splitlines() if "disk is full" in line]
    assert len(full_lines) == 1, log
    assert "ReportProfile failed" in full_lines[0]
    assert "Traceback" not in log


def test_full_disk_answer_reaches_the_cli_as_one_line(tmp_path: Path, small_disk: Path) -> None:
    coordinator = start_coordinator(tmp_path, db=small_disk / "c.db")
    channel = grpc.insecure_channel(coordinator.address)
    registry = pb_grpc.RegistryServiceStub(channel)
    try:
        registry.ReportProfile(report("h0"), timeout=10)
        fill_disk(small_disk)
        # Administrative writes hit the same full disk: pinning needs room for its event.
        code = 0
        result = None
        for n in range(400):
            result = run_cli(
                "policy", "pin", "--cluster", "c", "SHUTDOWN", "--reason", f"try {n} " + "x" * 400,
                "--coordinator", coordinator.address,
            )  # fmt: skip
            code = result.returncode
            if code != 0:
                break
        assert result is not None and code == 1, result.stdout + result.stderr if result else ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "disk is full" in lines[0], result.stderr
        assert "cannot reach" not in lines[0]
        listed = json.loads(run_cli("hosts", "--json", "--coordinator", coordinator.address).stdout)
        assert [h["host_id"] for h in listed] == ["h0"]
    finally:
        channel.close()
        coordinator.stop()
    assert "Traceback" not in coordinator.output()
