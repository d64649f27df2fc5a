"""Report ingest of a coordinator, measured in one run. Prints JSON.

A quarter of the hosts are 128-CPU servers in clusters of their own (the shared Milan
dump; the largest project fixture when the shared dumps are absent, and the JSON says
so), the rest desktop processors replayed from real dumps, every fifth desktop cluster
mixed. Reports are built the way the agent builds them
(`agent.wire.capture_to_proto(..., compact=True)`, `profile_to_proto`, the report
fingerprint), so a change of the wire format shows here. Measured over gRPC on loopback against real
coordinator processes, fully durable:

- health-check QPS of the coordinator (the reference), and ReportProfile QPS of
  unchanged profiles (an agent that restarted) and of changed ones (every report a new
  profile version: one feature bit toggled, as a BIOS update would), each with its
  ratio to the health checks (target: at least 0.15);
- the time from a coordinator restart until every host's first report is stored and
  acknowledged (target: at most 30 s for 10,000 hosts, none lost: every host's
  last-seen time is checked in the database afterwards), with many reports in flight
  (asynchronous gRPC, simulated agents that retry while the coordinator starts);
- the same with two coordinators on one PostgreSQL database, restarted together (a
  throwaway server made with initdb when PostgreSQL's binaries exist, or ``--db URL``: an
  empty database);
- the coordinator's resident memory (VmRSS) once it has started on 10,000 and 100,000
  hosts (``--memory-hosts``).

Hosts are seeded in bulk through the storage layer (one packed capture per distinct
processor, thousands of hosts per transaction), not report by report.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import _common
import grpc
from _common import Running, Stage, interleaved_qps, medians, rounded, warm
from google.protobuf.duration_pb2 import Duration
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cpucompat.agent.cli.progress import Progress
from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import LogicalCpu, RawCapture
from cpucompat.agent.wire import capture_to_proto, profile_to_proto
from cpucompat.coordinator.domain.hosts import HostStatus
from cpucompat.coordinator.profile_changes import version_summary
from cpucompat.coordinator.storage import open_storage
from cpucompat.coordinator.storage.blobs import pack_capture
from cpucompat.coordinator.storage.interface import HostRow, NewProfile
from cpucompat.v1 import coordinator_service_pb2 as pb

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "cpuid-dumps"
FIXTURES = ROOT / "tests" / "fixtures" / "processors"
SERVER_DUMP = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
REPORT_METHOD = "/cpucompat.v1.RegistryService/ReportProfile"
TARGET_RATIO = 0.15
TARGET_RESTART_S = 30.0
INTERVAL = 3600.0  # agents' heartbeat interval: nobody goes stale while the benchmark runs
SEED_BATCH = 5000
RDRAND = (1, 0, 2, 30)  # leaf 1 ECX bit 30: the bit a "BIOS update" toggles for a changed report


# ---- processors and reports ------------------------------------------------------------


@dataclass(frozen=True)
class Processor:
    """One distinct processor: its capture, decoded profile and a report without a host."""

    capture: RawCapture
    profile: Profile
    request: bytes  # a serialized ReportProfileRequest lacking host_id and cluster


def toggled(capture: RawCapture) -> RawCapture:
    """The same processor with one feature bit flipped on every CPU (a changed profile)."""
    leaf, sub, reg, bit = RDRAND
    cpus = []
    for cpu in capture.cpus:
        leaves = dict(cpu.leaves)
        regs = list(leaves[(leaf, sub)])
        regs[reg] ^= 1 << bit
        leaves[(leaf, sub)] = tuple(regs)  # type: ignore[assignment]
        cpus.append(LogicalCpu(cpu.index, leaves, cpu.xcr0))
    return replace(capture, cpus=tuple(cpus))


def processor(capture: RawCapture) -> Processor:
    """Built the way the agent's reporter builds a report (agent/daemon/reporter.py)."""
    profile = decode(capture)
    interval = Duration()
    interval.FromSeconds(int(INTERVAL))
    request = pb.ReportProfileRequest(
        raw=capture_to_proto(capture, compact=True),  # as agent/daemon/reporter.py sends it
        agent_version="benchmark",
        profile=profile_to_proto(profile),
        probe_interval=interval,
        agent_fingerprint=profile.report_fingerprint,
    )
    return Processor(capture, profile, request.SerializeToString())


def report_bytes(proc: Processor, host_id: str, cluster: str) -> bytes:
    """A host's report: protobuf merges concatenated messages, so the big part is built once."""
    return (
        proc.request + pb.ReportProfileRequest(host_id=host_id, cluster=cluster).SerializeToString()
    )


def load_processors() -> tuple[list[RawCapture], RawCapture, str]:
    """(desktop captures, the 128-CPU server's capture, where they came from)."""
    if (SHARED / SERVER_DUMP).exists():
        desktops = []
        for path in sorted(SHARED.glob("*.txt")):
            capture = load_dump(path)
            if path.name == SERVER_DUMP or capture.cpus[0].max_leaf(0x8000_0000) is None:
                continue
            if 8 <= len(capture.cpus) <= 32 and capture.cpus[0].get(1) is not None:
                desktops.append(capture)
        return desktops[:12], load_dump(SHARED / SERVER_DUMP), f"shared dumps ({SHARED})"
    captures = sorted(
        (load_dump(p) for p in sorted(FIXTURES.glob("*.txt"))), key=lambda c: len(c.cpus)
    )
    server = captures[-1]
    return (
        captures[:-1] or [server],
        server,
        (
            f"project fixtures ({FIXTURES}): the shared dumps are absent, so the 'server' is "
            f"the largest fixture ({len(server.cpus)} logical CPUs), not a 128-CPU Milan"
        ),
    )


@dataclass
class Fleet:
    """The simulated hosts: which processor each reports, and both of its variants."""

    hosts: list[tuple[str, str]]  # (host id, cluster)
    kinds: list[int]  # index into processors (variant 0); variant 1 is kinds + offset
    processors: list[Processor]
    offset: int

    def report(self, n: int, variant: int) -> bytes:
        host_id, cluster = self.hosts[n]
        return report_bytes(
            self.processors[self.kinds[n] + variant * self.offset], host_id, cluster
        )


def make_fleet(
    hosts: int, cluster_size: int, desktops: list[RawCapture], server: RawCapture
) -> Fleet:
    """Every fourth cluster all servers (a quarter of the hosts); the others desktops,
    uniform except every fifth cluster, which mixes several processors."""
    captures = [server, *desktops]
    processors = [processor(c) for c in captures] + [processor(toggled(c)) for c in captures]
    kinds, ids = [], []
    for n in range(hosts):
        cluster = n // cluster_size
        if cluster % 4 == 0:
            kinds.append(0)
        elif cluster % 5 == 0:
            kinds.append(1 + n % len(desktops))
        else:
            kinds.append(1 + cluster % len(desktops))
        ids.append((f"h{n:06d}", f"c{cluster:05d}"))
    return Fleet(ids, kinds, processors, len(captures))


def seed(db: str, fleet: Fleet, label: str) -> float:
    """Store every host with its variant-0 profile in bulk (storage layer, few transactions).
    Returns the seconds the transactions took."""
    store = open_storage(db, durable=False)
    blobs = {k: pack_capture(fleet.processors[k].capture) for k in set(fleet.kinds)}
    now = time.time()
    try:
        with Stage(label, len(fleet.hosts)) as stage:
            for start in range(0, len(fleet.hosts), SEED_BATCH):
                with store.unit_of_work() as uow:
                    for n in range(start, min(start + SEED_BATCH, len(fleet.hosts))):
                        host_id, cluster = fleet.hosts[n]
                        proc = fleet.processors[fleet.kinds[n]]
                        profile = proc.profile
                        version = uow.profiles.add(
                            NewProfile(
                                host_id=host_id,
                                recorded_at=now,
                                fingerprint=profile.fingerprint,
                                source=proc.capture.source,
                                raw=blobs[fleet.kinds[n]].own,
                                features=sorted(profile.features),
                                gained=[],
                                lost=[],
                                summary=version_summary(profile),
                                leaf_classes=blobs[fleet.kinds[n]].classes,
                            )
                        )
                        uow.hosts.upsert(
                            HostRow(
                                host_id=host_id,
                                cluster=cluster,
                                agent_address="",
                                agent_version="benchmark",
                                status=HostStatus.ONLINE,
                                replayed=proc.capture.replayed,
                                fingerprint=profile.fingerprint,
                                agent_fingerprint=profile.report_fingerprint,
                                profile_version=version,
                                first_seen=now,
                                last_seen=now,
                                heartbeat_interval=INTERVAL,
                            )
                        )
                stage.advance(min(SEED_BATCH, len(fleet.hosts) - start))
    finally:
        store.close()
    return stage.seconds


def last_seen_before(db: str, since: float) -> list[str]:
    """Hosts the database does not show heard since ``since`` (lost reports)."""
    store = open_storage(db)
    try:
        with store.read() as uow:
            return sorted(r.host_id for r in uow.hosts.all() if r.last_seen < since)
    finally:
        store.close()


# ---- coordinator processes and measuring ----------------------------------------------

COORDINATOR_OPTIONS = ("--profile-changes-per-hour", "3600", "--max-interval", str(int(INTERVAL)))


def start_coordinator(db: str) -> Running:
    return _common.start_coordinator(db, *COORDINATOR_OPTIONS)


def coordinator(db: str) -> AbstractContextManager[Running]:
    return _common.coordinator(db, *COORDINATOR_OPTIONS)


def report_rates(address: str, fleet: Fleet, seconds: float, rounds: int, threads: int) -> dict:
    """Health, unchanged-report and changed-report QPS, interleaved rounds, medians."""
    channel = grpc.insecure_channel(
        address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    )
    grpc.channel_ready_future(channel).result(timeout=60)
    health = health_pb2_grpc.HealthStub(channel)
    report = channel.unary_unary(
        REPORT_METHOD, response_deserializer=pb.ReportProfileResponse.FromString
    )
    variant = [0] * len(fleet.hosts)  # what each host's stored profile is now
    unchanged_hosts = itertools.cycle(range(len(fleet.hosts)))
    # Changed reports walk the hosts in a shuffled order (no host twice in flight).
    order = list(range(len(fleet.hosts)))
    random.Random(3).shuffle(order)
    changed_hosts = itertools.cycle(order)
    changed_ok = [True]

    def do_health() -> None:
        health.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)

    def do_unchanged() -> None:
        n = next(unchanged_hosts)
        response = report(fleet.report(n, variant[n]), timeout=60)
        if response.changed:
            changed_ok[0] = False

    def do_changed() -> None:
        n = next(changed_hosts)
        variant[n] ^= 1
        response = report(fleet.report(n, variant[n]), timeout=60)
        if not response.changed:
            changed_ok[0] = False

    warm({"health": do_health, "unchanged": do_unchanged}, 2 * threads)
    samples = interleaved_qps(
        {"health": do_health, "unchanged": do_unchanged, "changed": do_changed},
        rounds,
        seconds,
        threads,
    )
    channel.close()
    median = medians(samples)
    health_qps, unchanged, changed = median["health"], median["unchanged"], median["changed"]
    return {
        "health_qps": round(health_qps, 1),
        "report_unchanged_qps": round(unchanged, 1),
        "report_changed_qps": round(changed, 1),
        "unchanged_vs_health": round(unchanged / health_qps, 3),
        "changed_vs_health": round(changed / health_qps, 3),
        "ratio_target": TARGET_RATIO,
        "ratio_ok": min(unchanged, changed) / health_qps >= TARGET_RATIO,
        "every_changed_report_stored_a_version": changed_ok[0],
        "qps_samples": rounded(samples),
    }


async def _first_reports(addresses: list[str], fleet: Fleet, in_flight: int) -> int:
    """Every host's report, spread over ``addresses``; retried until acknowledged.
    Returns how many calls were retried."""
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024)]
    channels = [grpc.aio.insecure_channel(a, options=options) for a in addresses]
    calls = [c.unary_unary(REPORT_METHOD, response_deserializer=pb.ReportProfileResponse.FromString)
             for c in channels]  # fmt: skip
    gate = asyncio.Semaphore(in_flight)
    retries = [0]
    progress = Progress("first reports", len(fleet.hosts))

    async def agent(n: int) -> None:
        request = fleet.report(n, 0)
        async with gate:
            while True:
                try:
                    await calls[n % len(calls)](request, timeout=60)
                    progress.advance()
                    return
                except grpc.aio.AioRpcError as exc:
                    if exc.code() not in (
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.StatusCode.DEADLINE_EXCEEDED,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                    ):
                        raise
                    retries[0] += 1
                    await asyncio.sleep(0.05)

    with progress:
        await asyncio.gather(*(agent(n) for n in range(len(fleet.hosts))))
    for c in channels:
        await c.close()
    return retries[0]


def restart_absorption(db: str, fleet: Fleet, coordinators: int, in_flight: int) -> dict:
    """Seconds from starting ``coordinators`` processes on a seeded database until every
    host's first report is acknowledged; then none may be missing from the database."""
    with coordinator(db):  # the first start computes every policy: not what is measured
        pass
    wall = time.time()
    start = time.perf_counter()
    # Restarted together (a deploy, a host reboot): each starts while the others do.
    with ThreadPoolExecutor(coordinators) as pool:
        running = list(pool.map(lambda _: start_coordinator(db), range(coordinators)))
    try:
        listening = time.perf_counter() - start
        retried = asyncio.run(_first_reports([r.address for r in running], fleet, in_flight))
        stored = time.perf_counter() - start
        rss = [round(r.rss_mib(), 1) for r in running]
    finally:
        for r in running:
            r.stop()
    lost = last_seen_before(db, wall)
    return {
        "coordinators": coordinators,
        "reports_in_flight": in_flight,
        "restart_to_listening_s": round(listening, 2),
        "restart_to_all_reports_stored_s": round(stored, 2),
        "reports_retried": retried,
        "reports_lost": len(lost),
        "target_s": TARGET_RESTART_S,
        "ok": not lost and stored <= TARGET_RESTART_S,
        "coordinator_rss_mib": rss,
    }


def memory(hosts: int, cluster_size: int, desktops: list[RawCapture], server: RawCapture) -> dict:
    """The coordinator's resident memory once started on ``hosts`` seeded hosts."""
    fleet = make_fleet(hosts, cluster_size, desktops, server)
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "memory.db")
        seeded = seed(db, fleet, f"seeding {hosts} hosts")
        t0 = time.perf_counter()
        with coordinator(db) as running:
            channel = grpc.insecure_channel(running.address)
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=600)
            channel.close()
            started = time.perf_counter() - t0
            rss = running.rss_mib()
    return {
        "hosts": hosts,
        "seed_s": round(seeded, 1),
        "start_s": round(started, 1),
        "coordinator_rss_mib": round(rss, 1),
    }


@contextmanager
def postgres(url: str | None) -> Iterator[str | None]:
    """``url`` itself, or a fresh database on a throwaway server (None: no binaries)."""
    if url:
        yield url
        return
    sys.path.insert(0, str(ROOT))
    from tests.support.postgres import throwaway_server

    server = throwaway_server("cpucompat-bench-pg-")
    if server is None:
        yield None
        return
    try:
        yield server.database("ingest")
    finally:
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--cluster-size", type=int, default=50)
    parser.add_argument("--db", help="an empty PostgreSQL database (postgresql://...) for the "
                        "two-coordinator run; default: a throwaway server")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=3.0, help="per QPS sample")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved samples of each RPC")
    parser.add_argument("--threads", type=int, default=16, help="client threads for QPS")
    parser.add_argument("--in-flight", type=int, default=256,
                        help="reports in flight after a restart (simulated agents)")  # fmt: skip
    parser.add_argument("--memory-hosts", default="10000,100000",
                        help="comma-separated host counts for the RSS figures ('' skips)")  # fmt: skip
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    desktops, server, origin = load_processors()
    fleet = make_fleet(args.hosts, args.cluster_size, desktops, server)
    out: dict = {
        "hosts": args.hosts,
        "cluster_size": args.cluster_size,
        "server_share": round(fleet.kinds.count(0) / len(fleet.kinds), 3),
        "server_logical_cpus": len(server.cpus),
        "desktop_logical_cpus": sorted({len(c.cpus) for c in desktops}),
        "report_bytes": {
            "server": len(fleet.report(0, 0)),
            "desktop_median": int(
                statistics.median(len(fleet.report(n, 0)) for n, k in enumerate(fleet.kinds) if k)
            ),
        },
        "processors_from": origin,
        "client_threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "ingest.db")
        out["seed_s"] = round(seed(db, fleet, "seeding hosts"), 1)
        out["sqlite_restart"] = restart_absorption(db, fleet, 1, args.in_flight)
        with coordinator(db) as running:
            out |= report_rates(running.address, fleet, args.seconds, args.rounds, args.threads)
    if args.skip_postgres:
        out["postgres_two_coordinators"] = "skipped (--skip-postgres)"
    else:
        with postgres(args.db) as url:
            if url is None:
                out["postgres_two_coordinators"] = "skipped: no PostgreSQL binaries and no --db"
            else:
                seed(url, fleet, "seeding hosts (PostgreSQL)")
                out["postgres_two_coordinators"] = restart_absorption(url, fleet, 2, args.in_flight)
    memory_hosts = [int(h) for h in args.memory_hosts.split(",") if h.strip()]
    out["memory"] = [memory(h, args.cluster_size, desktops, server) for h in memory_hosts]
    out["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
