"""Coordinator throughput, policy push latency and per-VM actions, in one run. Prints JSON.

Seeds a database with N hosts (real dumps replayed, each report through the same
`Registry.report` path an agent's report takes; Hyper-V failover clusters hold at most
64 nodes, so hosts are spread over clusters of --cluster-size) and one VM booted on
every host, with the cluster policies and VM actions computed once at the end
(`coordinator/seeding.py`: 10,000 hosts in well under a minute instead of half an
hour). Then, on that database:
- in process, the time the per-VM offline actions of N VMs take to be recomputed
  inside the transaction of one host's profile change (median and p95; target: median
  at most 50 ms), and the whole change;
- in a real coordinator process over gRPC on loopback: queries per second of `Check`
  and of `PlanFailover`, and of the standard health check on the same server (target:
  both at least 0.8 of health), and the time from a profile change to every one of 100
  `WatchPolicy` subscribers holding the new policy (target: at most 1 s).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from _common import Stage, interleaved_qps, medians, rounded, warm
from _common import coordinator as coordinator_process
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.raw import RawCapture
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.limits import Limits
from cpucompat.coordinator.seeding import BootedVm, HostReport, register_booted, report_hosts
from cpucompat.coordinator.server import Coordinator, CoordinatorConfig
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[1]
DUMP_DIRS = (ROOT.parent / "shared" / "cpuid-dumps", ROOT / "tests" / "fixtures" / "processors")
TARGET_QPS_RATIO = 0.8
TARGET_PUSH_SECONDS = 1.0
TARGET_VM_ACTIONS_MS = 50.0


def dumps(max_cpus: int = 4) -> list[RawCapture]:
    """Real processors to replay (a few logical CPUs each keeps seeding quick)."""
    out = []
    for folder in DUMP_DIRS:
        for path in sorted(folder.glob("*.txt")):
            capture = load_dump(path)
            if capture.cpus[0].max_leaf(0x8000_0000) is None:
                continue  # no extended leaves: not an x86-64 server candidate
            out.append(
                RawCapture(
                    cpus=capture.cpus[:max_cpus], source=capture.source, origin=capture.origin
                )
            )
    if not out:
        sys.exit("no CPUID dumps found in " + ", ".join(map(str, DUMP_DIRS)))
    return out


def host_reports(hosts: int, cluster_size: int, captures: list[RawCapture]) -> Iterator[HostReport]:
    """``hosts`` hosts in clusters of ``cluster_size``: mostly uniform, every fifth one mixed."""
    rng = random.Random(7)
    for n in range(hosts):
        cluster = n // cluster_size
        uniform = cluster % 5 != 0
        capture = captures[cluster % len(captures)] if uniform else rng.choice(captures)
        yield HostReport(host_id(n), f"c{cluster:04d}", capture, heartbeat_interval=3600)


def host_id(n: int) -> str:
    return f"h{n:05d}"


def vm_name(n: int) -> str:
    return f"vm{n:05d}"


def seed(
    coordinator: Coordinator, hosts: int, cluster_size: int, captures: list[RawCapture]
) -> dict[str, float]:
    """Every host through the registry's own report path, then one VM booted on each host;
    the cluster policies and VM actions are computed once at the end (`coordinator.seeding`)."""
    cpu0 = time.process_time()
    with Stage("seeding hosts", hosts) as hosts_stage:
        report_hosts(
            coordinator.registry, host_reports(hosts, cluster_size, captures), hosts_stage.advance
        )
    booted = (BootedVm(vm_name(n), f"c{n // cluster_size:04d}", host_id(n)) for n in range(hosts))
    with Stage("registering VMs", hosts) as vms_stage:
        register_booted(coordinator.vms, booted, vms_stage.advance)
    return {
        "seed_hosts_s": round(hosts_stage.seconds, 1),
        # includes the full recompute of every VM's action
        "seed_vms_s": round(vms_stage.seconds, 1),
        "seed_seconds": round(hosts_stage.seconds + vms_stage.seconds, 1),
        "seed_cpu_seconds": round(time.process_time() - cpu0, 1),  # the machine's load aside
    }


def vm_action_recompute(
    coordinator: Coordinator,
    clock: list[float],
    cluster_size: int,
    captures: list[RawCapture],
    rounds: int,
) -> dict[str, Any]:
    """Median and p95 ms of the per-VM action recompute inside the unit of work of one host's
    profile change (and of that whole report), with one VM booted on every host: in a uniform
    cluster (the target) and, reported beside it, in a mixed one (megabytes of policy details).
    """
    uniform = host_id(cluster_size + 1)  # in uniform cluster c0001
    here = captures[1 % len(captures)]
    other = next(c for c in captures if load_fingerprint(c) != load_fingerprint(here))
    figures = _changes(coordinator, clock, uniform, "c0001", (other, here), rounds)
    if rounds % 2:  # back to the cluster's own processor (the push below changes it)
        clock[0] += 2
        coordinator.registry.report(uniform, "c0001", here, heartbeat_interval=3600)
    mixed = _changes(coordinator, clock, host_id(3), "c0000", (other, here), rounds)
    return {
        "vm_actions_recompute_ms": figures["median_ms"],
        "vm_actions_recompute_p95_ms": figures["p95_ms"],
        "vm_actions_recompute_cpu_ms": figures["cpu_median_ms"],
        "vm_action_rounds": rounds,
        "vm_actions_samples_ms": figures["samples_ms"],
        "profile_change_report_ms": figures["report_median_ms"],
        "mixed_cluster": mixed,
    }


def _changes(
    coordinator: Coordinator,
    clock: list[float],
    member: str,
    cluster: str,
    captures: tuple[RawCapture, RawCapture],
    rounds: int,
) -> dict[str, Any]:
    """``rounds`` profile changes of ``member``, alternating between two processors, timed."""
    registry = coordinator.registry
    actions = coordinator.vms.actions
    timings: list[float] = []
    cpu: list[float] = []  # this thread's processor time: what the machine's load leaves out

    def timed(uow, clusters, now):  # type: ignore[no-untyped-def]
        start, start_cpu = time.perf_counter(), time.thread_time()
        actions.recompute_in_tx(uow, clusters, now)
        timings.append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)

    hooks = list(registry.on_change)
    registry.on_change[registry.on_change.index(actions.recompute_in_tx)] = timed
    whole: list[float] = []
    try:
        for i in range(rounds):
            clock[0] += 2  # under the rate limit of one change a second
            start = time.perf_counter()
            registry.report(member, cluster, captures[i % 2], heartbeat_interval=3600)
            whole.append(time.perf_counter() - start)
    finally:
        registry.on_change[:] = hooks
    return {
        "cluster": cluster,
        "median_ms": round(statistics.median(timings) * 1000, 2),
        "p95_ms": round(percentile(timings, 95) * 1000, 2),
        "cpu_median_ms": round(statistics.median(cpu) * 1000, 2),
        "samples_ms": [round(t * 1000, 1) for t in timings],
        "report_median_ms": round(statistics.median(whole) * 1000, 2),
    }


def percentile(values: list[float], p: int) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def push_latency(
    address: str, watchers: int, cluster: str, host_id: str, capture: RawCapture
) -> float:
    """Seconds from a changed report until every watcher holds the new policy version."""
    channels = [grpc.insecure_channel(address) for _ in range(4)]
    ready = threading.Barrier(watchers + 1)
    arrived: list[float] = []
    lock = threading.Lock()
    calls = []
    target = {"version": None}

    def watch(i: int) -> None:
        stub = pb_grpc.PolicyServiceStub(channels[i % len(channels)])
        call = stub.WatchPolicy(pb.WatchPolicyRequest(cluster=cluster))
        calls.append(call)
        first = True
        for message in call:
            if first:
                first = False
                ready.wait()
                continue
            if target["version"] is not None and message.policy.version >= target["version"]:
                with lock:
                    arrived.append(time.perf_counter())
                return

    threads = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(watchers)]
    for t in threads:
        t.start()
    ready.wait()
    registry = pb_grpc.RegistryServiceStub(channels[0])
    policy = (
        pb_grpc.PolicyServiceStub(channels[0])
        .GetPolicy(pb.GetPolicyRequest(cluster=cluster))
        .policy
    )
    target["version"] = policy.version + 1
    start = time.perf_counter()
    registry.ReportProfile(
        pb.ReportProfileRequest(host_id=host_id, cluster=cluster, raw=capture_to_proto(capture)),
        timeout=30,
    )
    for t in threads:
        t.join(timeout=30)
    for call in calls:
        call.cancel()
    if len(arrived) < watchers:
        return float("inf")
    return max(arrived) - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--cluster-size", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=2.0, help="per QPS sample")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved samples of each RPC")
    parser.add_argument("--threads", type=int, default=8, help="client threads")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument(
        "--vm-rounds", type=int, default=21, help="profile changes timed for the VM actions"
    )
    parser.add_argument(
        "--only-vm-actions", action="store_true", help="measure only the per-VM action recompute"
    )
    args = parser.parse_args()

    captures = dumps()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        # Seeding and the in-process VM action figures: no fsync per change (the measured
        # coordinator process below runs fully durable).
        clock = [time.time()]
        coordinator = Coordinator(CoordinatorConfig(db_path=db, allow_replayed=True, durable=False))
        try:
            coordinator.registry.clock = lambda: clock[0]
            coordinator.registry.limits = Limits(profile_changes_per_hour=3600)
            seeding = seed(coordinator, args.hosts, args.cluster_size, captures)
            vm_figures = vm_action_recompute(
                coordinator, clock, args.cluster_size, captures, args.vm_rounds
            )
        finally:
            coordinator.close()
        vm_figures |= {
            "vms": args.hosts,
            "vm_actions_target_ms": TARGET_VM_ACTIONS_MS,
            "vm_actions_ok": vm_figures["vm_actions_recompute_ms"] <= TARGET_VM_ACTIONS_MS,
        }
        sizes = {
            "hosts": args.hosts,
            "clusters": (args.hosts + args.cluster_size - 1) // args.cluster_size,
            "distinct_processors": len(captures),
            **seeding,
        }
        if args.only_vm_actions:
            print(json.dumps(sizes | vm_figures, indent=2))
            return
        ids = [host_id(n) for n in range(args.hosts)]
        plan_vm = vm_name(args.cluster_size)  # booted on a host of uniform cluster c0001
        with coordinator_process(str(db)) as running:
            address = running.address
            channel = grpc.insecure_channel(address)
            grpc.channel_ready_future(channel).result(timeout=60)
            health = health_pb2_grpc.HealthStub(channel)
            decisions = pb_grpc.DecisionServiceStub(channel)
            vms = pb_grpc.VmServiceStub(channel)
            rng = random.Random(1)
            pairs = [(rng.choice(ids), rng.choice(ids)) for _ in range(1000)]
            it = iter(range(10**12))

            def do_health() -> None:
                health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)

            def do_check() -> None:
                a, b = pairs[next(it) % len(pairs)]
                decisions.Check(
                    pb.CheckRequest(source=pb.HostRef(host_id=a), target=pb.HostRef(host_id=b)),
                    timeout=10,
                )

            def do_plan() -> None:
                vms.PlanFailover(
                    pb.PlanFailoverRequest(
                        vm_name=plan_vm, to_host=pairs[next(it) % len(pairs)][1]
                    ),
                    timeout=10,
                )

            calls = {"health": do_health, "check": do_check, "plan": do_plan}
            # Warm connections and the coordinator's per-host caches (a long-running
            # coordinator has them filled): every pair once.
            warm(calls, len(pairs))
            # Interleaved rounds, medians: the machine's noise hits all three alike.
            samples = interleaved_qps(calls, args.rounds, args.seconds, args.threads)
            median = medians(samples)
            reference, check_qps, plan_qps = median["health"], median["check"], median["plan"]
            # A profile change in one uniform cluster, pushed to 100 watchers.
            cluster = "c0001"
            member = ids[args.cluster_size + 1]
            other = next(
                c
                for c in captures
                if load_fingerprint(c) != load_fingerprint(captures[1 % len(captures)])
            )
            latency = push_latency(address, args.watchers, cluster, member, other)
            channel.close()
    print(
        json.dumps(
            {
                **sizes,
                "client_threads": args.threads,
                "rounds": args.rounds,
                "health_qps": round(reference, 1),
                "check_qps": round(check_qps, 1),
                "failover_plan_qps": round(plan_qps, 1),
                "check_vs_health": round(check_qps / reference, 3),
                "plan_vs_health": round(plan_qps / reference, 3),
                "qps_ratio_target": TARGET_QPS_RATIO,
                "qps_samples": rounded(samples),
                "qps_ok": check_qps / reference >= TARGET_QPS_RATIO
                and plan_qps / reference >= TARGET_QPS_RATIO,
                "watchers": args.watchers,
                "policy_push_seconds": round(latency, 4),
                "policy_push_target_s": TARGET_PUSH_SECONDS,
                "policy_push_ok": latency <= TARGET_PUSH_SECONDS,
                **vm_figures,
            },
            indent=2,
        )
    )


def load_fingerprint(capture: RawCapture) -> str:
    from cpucompat.agent.decode import decode

    return decode(capture).fingerprint


if __name__ == "__main__":
    main()
