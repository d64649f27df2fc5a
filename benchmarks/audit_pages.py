"""How long reading a big cluster's whole audit takes, page by page. Prints JSON.

Seeds a database with N hosts in ONE cluster (real dumps replayed through the registry's
own report path, `coordinator/seeding.py`; `--db` keeps it for the next run), starts a
real coordinator process on it (`cpucompat coordinator`, loopback) and reads its audit
as the CLI does: the first page, then every `next_page_token`, twice over. It reports
the time of each page and of each whole listing; a page that recomputes the audit costs
about what the first one does, a page served from the audit the first one computed
(`Region.AUDIT`) only its conversion.

    python benchmarks/audit_pages.py --hosts 10000 --hosts 100000 --db /var/tmp/audit.db
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
from _common import Stage, coordinator

from coordinator import dumps, host_id  # the sibling benchmark's fleet
from cpucompat.coordinator.limits import Limits
from cpucompat.coordinator.seeding import HostReport, report_hosts
from cpucompat.coordinator.server import Coordinator, CoordinatorConfig
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

CLUSTER = "big"


def seed(db: Path, hosts: int) -> float:
    """``hosts`` hosts in one cluster, stored in ``db``; seconds taken (0 when it was there)."""
    if db.exists():
        return 0.0
    captures = dumps()
    seeding = Coordinator(
        CoordinatorConfig(db_path=db, listen="127.0.0.1:0", allow_replayed=True, durable=False)
    )
    try:
        seeding.registry.limits = Limits(profile_changes_per_hour=3600)
        reports = (
            HostReport(host_id(n), CLUSTER, captures[n % len(captures)], 3600) for n in range(hosts)
        )
        with Stage(f"seeding {hosts} hosts", hosts) as stage:
            report_hosts(seeding.registry, reports, stage.advance)
    finally:
        seeding.close()
    return round(stage.seconds, 1)


def listing(stub: Any) -> dict[str, Any]:
    """Every page of the cluster's audit: the seconds of each and of them all."""
    request = pb.AuditRequest(cluster=CLUSTER)
    seconds: list[float] = []
    hosts = 0
    started = time.perf_counter()
    while True:
        page_started = time.perf_counter()
        response = stub.Audit(request, timeout=3600)
        seconds.append(round(time.perf_counter() - page_started, 2))
        hosts += len(response.report.hosts)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    return {
        "pages": len(seconds),
        "hosts": hosts,
        "page_seconds": seconds,
        "seconds": round(time.perf_counter() - started, 2),
    }


def measure(hosts: int, db: Path) -> dict[str, Any]:
    seed_s = seed(db, hosts)
    with coordinator(str(db)) as running:
        channel = grpc.insecure_channel(
            running.address, options=[("grpc.max_receive_message_length", 1 << 30)]
        )
        try:
            stub = pb_grpc.DecisionServiceStub(channel)
            first = listing(stub)
            second = listing(stub)
            rss = round(running.rss_mib())
        finally:
            channel.close()
    assert first["hosts"] == second["hosts"] == hosts, "the audit did not list every host"
    return {
        "hosts": hosts,
        "seed_seconds": seed_s,
        "first_listing": first,
        "second_listing": second,
        "coordinator_rss_mib": rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, action="append", help="repeat for several fleets")
    parser.add_argument(
        "--db",
        type=Path,
        help="seeded database to keep and reuse (N hosts: PATH with -N before the suffix); "
        "default: a temporary one per run",
    )
    args = parser.parse_args()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.hosts or [10_000]:
            base = args.db or Path(tmp) / "audit.db"
            out.append(measure(n, base.with_stem(f"{base.stem}-{n}")))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
