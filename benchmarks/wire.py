"""What one server's report costs on the wire, in the coordinator's CPU and in its database.

Prints JSON. Replays a real dump (default: the shared 128-thread AMD Milan dump) as
--hosts hosts reporting to a real coordinator process on loopback, once per wire form:
"full" (every leaf of every logical CPU, as agents sent before the compact form) and
"compact" (each distinct class of CPUs once, what agents send now). For each form:
- the ReportProfileRequest's size in bytes;
- the coordinator's CPU time (user + system, read from /proc) per report of a new host
  (a changed profile: validated, decoded, stored) and per repeated report of a known,
  unchanged host;
- the database's growth per host, and the leaf classes stored.
Run it with an older cpucompat to get the "before" figures: a form that cpucompat
cannot send is reported as unsupported.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto, profile_to_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[1]
MILAN = (
    ROOT.parent / "shared" / "cpuid-dumps" / "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def start(db: Path) -> tuple[subprocess.Popen[str], grpc.Channel]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpucompat.agent.cli.main", "coordinator", "--listen",
         "127.0.0.1:0", "--db", str(db), "--allow-replayed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    address = line.split("listening on ")[1].split()[0]
    channel = grpc.insecure_channel(address)
    grpc.channel_ready_future(channel).result(timeout=60)
    return proc, channel


def measure(dump: Path, form: str, hosts: int, repeats: int) -> dict[str, Any]:
    capture = load_dump(dump)
    try:
        raw = (
            capture_to_proto(capture, compact=True)
            if form == "compact"
            else capture_to_proto(capture)
        )
    except TypeError:
        return {"unsupported": True}
    profile = profile_to_proto(decode(capture))

    def request(host: str) -> pb.ReportProfileRequest:
        return pb.ReportProfileRequest(host_id=host, cluster="bench", raw=raw, profile=profile)

    size = request("host-00000").ByteSize()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        proc, channel = start(db)
        try:
            stub = pb_grpc.RegistryServiceStub(channel)
            stub.ReportProfile(request("warm-up"), timeout=60)  # the first decode, the caches
            empty = db.stat().st_size
            before, t0 = cpu_seconds(proc.pid), time.perf_counter()
            for n in range(hosts):
                stub.ReportProfile(request(f"host-{n:05d}"), timeout=60)
            new_cpu, new_wall = cpu_seconds(proc.pid) - before, time.perf_counter() - t0
            before, t0 = cpu_seconds(proc.pid), time.perf_counter()
            for _ in range(repeats):
                stub.ReportProfile(request("host-00000"), timeout=60)
            same_cpu, same_wall = cpu_seconds(proc.pid) - before, time.perf_counter() - t0
        finally:
            channel.close()
            proc.terminate()
            proc.wait(timeout=60)
        with sqlite3.connect(db) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            classes = (
                conn.execute("SELECT COUNT(*) FROM leaf_classes").fetchone()[0]
                if "leaf_classes" in tables
                else None
            )
            raw_bytes = conn.execute("SELECT SUM(LENGTH(raw)) FROM profiles").fetchone()[0]
            class_bytes = (
                conn.execute("SELECT SUM(LENGTH(leaves)) FROM leaf_classes").fetchone()[0]
                if classes is not None
                else 0
            )
        grown = db.stat().st_size - empty
    return {
        "request_bytes": size,
        "coordinator_cpu_ms_per_new_host_report": round(1000 * new_cpu / hosts, 2),
        "wall_ms_per_new_host_report": round(1000 * new_wall / hosts, 2),
        "coordinator_cpu_ms_per_unchanged_report": round(1000 * same_cpu / repeats, 2),
        "wall_ms_per_unchanged_report": round(1000 * same_wall / repeats, 2),
        "stored_raw_bytes_per_host": round(((raw_bytes or 0) + (class_bytes or 0)) / (hosts + 1)),
        "database_growth_bytes_per_host": round(max(grown, 0) / hosts),
        "leaf_classes_stored": classes,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dump", type=Path, default=MILAN, help="the dump to replay (default: Milan)")
    p.add_argument("--hosts", type=int, default=200, help="new hosts reporting (default 200)")
    p.add_argument("--repeats", type=int, default=200, help="unchanged reports (default 200)")
    args = p.parse_args()
    capture = load_dump(args.dump)
    result = {
        "dump": args.dump.name,
        "logical_cpus": len(capture.cpus),
        "leaves": sum(len(c.leaves) for c in capture.cpus),
        "hosts": args.hosts,
        "repeats": args.repeats,
        "forms": {
            form: measure(args.dump, form, args.hosts, args.repeats) for form in ("full", "compact")
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
