"""How big the coordinator's answers get as one cluster grows. Prints JSON.

Seeds a database with N hosts in ONE cluster (the worst case for every answer that lists
a cluster's hosts; real dumps replayed, each report through `Registry.report`, see
`coordinator/seeding.py`) and VMs booted on the first hosts (one by default; most of the
cluster's other hosts refuse each of them, the worst case for a VM's action), serves it
in this process on loopback and calls every query RPC whose answer grows with the hosts
or VMs, following `next_page_token` where the answer has one. For each it reports the
first page, the biggest page and the whole answer in bytes, and whether the biggest page
fits in the 4 MiB a default gRPC client accepts (`fits_default_client`). `vm_action`
gives the first VM's own action as every `Vm` message carries it and as its row stores it.

    python benchmarks/answer_sizes.py --hosts 10000 --hosts 100000 [--vms 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from _common import Stage

from coordinator import dumps, host_id  # the sibling benchmark's fleet
from cpucompat.coordinator.limits import Limits
from cpucompat.coordinator.seeding import BootedVm, HostReport, register_booted, report_hosts
from cpucompat.coordinator.server import Coordinator, CoordinatorConfig, build_server
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

DEFAULT_CLIENT_LIMIT = 4 * 1024 * 1024
CLUSTER = "big"


def pages(fn: Callable[..., Any], request: Any) -> dict[str, Any]:
    """Every page of one answer: sizes in bytes and the count of pages."""
    sizes: list[int] = []
    started = time.perf_counter()
    while True:
        try:
            response = fn(request, timeout=3600)
        except grpc.RpcError as exc:  # e.g. over the server's own 64 MiB send limit
            return {"pages": len(sizes), "error": exc.code().name, "detail": exc.details()}
        sizes.append(response.ByteSize())
        token = getattr(response, "next_page_token", "")
        if not token:
            break
        request.page_token = token
    return {
        "pages": len(sizes),
        "first_page_bytes": sizes[0],
        "largest_page_bytes": max(sizes),
        "total_bytes": sum(sizes),
        "fits_default_client": max(sizes) < DEFAULT_CLIENT_LIMIT,
        "seconds": round(time.perf_counter() - started, 1),
    }


def vm_action(coordinator: Coordinator, vms: Any) -> dict[str, Any]:
    """The first VM's action: how many hosts refuse it, how many it names, its bytes."""
    listed = vms.ListVms(pb.ListVmsRequest(cluster=CLUSTER, page_size=1), timeout=3600).vms[0]
    with coordinator.store.read() as uow:
        row = uow.vms.get(listed.name)
    assert row is not None
    return {
        "refusing_hosts_total": listed.action.refusing_hosts_total,
        "refusing_hosts_listed": len(listed.action.refusing_hosts),
        "wire_bytes": listed.action.ByteSize(),
        "stored_bytes": len(json.dumps(list(row.refusing_hosts))) + len(row.action_reason),
    }


def measure(hosts: int, vm_count: int = 1) -> dict[str, Any]:
    captures = dumps()
    with tempfile.TemporaryDirectory() as tmp:
        coordinator = Coordinator(
            CoordinatorConfig(
                db_path=Path(tmp) / "sizes.db",
                listen="127.0.0.1:0",
                allow_replayed=True,
                durable=False,
            )
        )
        try:
            coordinator.registry.limits = Limits(profile_changes_per_hour=3600)
            reports = (
                HostReport(host_id(n), CLUSTER, captures[n % len(captures)], 3600)
                for n in range(hosts)
            )
            with Stage(f"seeding {hosts} hosts", hosts) as stage:
                report_hosts(coordinator.registry, reports, stage.advance)
            booted = [BootedVm(f"vm{n}", CLUSTER, host_id(n % hosts)) for n in range(vm_count)]
            with Stage(f"registering {vm_count} VMs", vm_count) as stage:
                register_booted(coordinator.vms, booted, stage.advance)
            server, port = build_server(coordinator)
            server.start()
            channel = grpc.insecure_channel(
                f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 1 << 30)]
            )
            try:
                query = pb_grpc.QueryServiceStub(channel)
                decisions = pb_grpc.DecisionServiceStub(channel)
                vms = pb_grpc.VmServiceStub(channel)
                policies = pb_grpc.PolicyServiceStub(channel)
                source = pb.HostRef(host_id=host_id(0))
                answers = {
                    "ListHosts": pages(query.ListHosts, pb.ListHostsRequest(cluster=CLUSTER)),
                    "Targets": pages(decisions.Targets, pb.TargetsRequest(source=source)),
                    "GetVmTargets": pages(vms.GetVmTargets, pb.GetVmTargetsRequest(vm_name="vm0")),
                    "ListVms": pages(vms.ListVms, pb.ListVmsRequest(cluster=CLUSTER)),
                    "Audit": pages(decisions.Audit, pb.AuditRequest(cluster=CLUSTER)),
                    "GetPolicy": pages(policies.GetPolicy, pb.GetPolicyRequest(cluster=CLUSTER)),
                    "WhatIf": pages(
                        decisions.WhatIf, pb.WhatIfRequest(cluster=CLUSTER, remove=[host_id(1)])
                    ),
                }
                action = vm_action(coordinator, vms)
            finally:
                channel.close()
                server.stop(None)
        finally:
            coordinator.close()
    return {
        "hosts": hosts,
        "vms": vm_count,
        "distinct_processors": len(captures),
        "biggest_page_bytes": max(a.get("largest_page_bytes", 0) for a in answers.values()),
        "all_fit_default_client": all(a.get("fits_default_client") for a in answers.values()),
        "answers": answers,
        "vm_action": action,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, action="append", help="repeat for several fleets")
    parser.add_argument("--vms", type=int, default=1, help="VMs booted on the first hosts")
    args = parser.parse_args()
    print(json.dumps([measure(n, args.vms) for n in args.hosts or [10_000]], indent=2))


if __name__ == "__main__":
    main()
