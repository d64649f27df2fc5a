"""The pages of one audit listing come from one computed audit, never a stale one.

A real coordinator on loopback gRPC with its SQLite file, a cluster of hosts replaying
real processors, its audit read in small pages: the pages put together are the unpaged
report, byte for byte the pages an audit computed afresh gives; the cache's metrics,
scraped over HTTP, count the first page a miss and every later one a hit. A member that
changes its processor, leaves or joins between two pages makes the next page a fresh
audit of the cluster as it is (the CLI's reader then starts again), never the audit
computed before.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cpucompat.agent.cli.main import build_parser
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.metrics_http import MetricsEndpoint
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.cache import Region
from cpucompat.coordinator.cli.audit_pages import call_audit
from cpucompat.coordinator.cli.refs import proto_ref
from cpucompat.coordinator.compatibility import Ref
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.inprocess import Running
from tests.support.paths import FIXTURES

PROCESSORS = [
    FIXTURES / "processors" / "dev-amd-epyc-kvm.cpuid-r.txt",
    FIXTURES / "processors" / "amd-zen3-x3d-l3-edited.cpuid-r.txt",
    FIXTURES / "processors" / "intel-skylake-leaf2-edited.cpuid-r.txt",
]
OTHER = FIXTURES / "processors" / "amd-zen5-zen5c-edited.cpuid-r.txt"
HOSTS = [f"h{n:02d}" for n in range(12)]
PAGE = 5


def report(running: Running, host: str, dump: Path) -> None:
    running.registry.ReportProfile(
        pb.ReportProfileRequest(host_id=host, cluster="c", raw=capture_to_proto(load_dump(dump))),
        timeout=30,
    )


class Cluster:
    """A coordinator holding HOSTS in cluster "c", its cache metrics served over HTTP."""

    def __init__(self, tmp_path: Path) -> None:
        self.running = Running(tmp_path, allow_replayed=True)
        self.metrics = MetricsEndpoint(
            "127.0.0.1:0",
            self.running.coordinator.metrics.registry,
            self.running.coordinator.config.tls,
        )
        self.metrics.start()
        for n, host in enumerate(HOSTS):
            report(self.running, host, PROCESSORS[n % len(PROCESSORS)])
        self.decisions = pb_grpc.DecisionServiceStub(self.running.channel)

    def audit_cache(self) -> dict[str, float]:
        """The audit region's entries, hits and misses as a scrape of /metrics shows them."""
        with urllib.request.urlopen(self.metrics.url, timeout=30) as response:
            text = response.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("region") == "audit" and sample.name in (
                    "cpucompat_cache_entries",
                    "cpucompat_cache_hits_total",
                    "cpucompat_cache_misses_total",
                ):
                    out[sample.name.split("_")[2]] = sample.value
        return out

    def close(self) -> None:
        self.metrics.stop()
        self.running.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    made = Cluster(tmp_path)
    try:
        yield made
    finally:
        made.close()


def request(page_size: int = PAGE, token: str = "") -> pb.AuditRequest:
    extra = [proto_ref(f"dump:{OTHER}"), proto_ref("level:x86-64-v2")]
    return pb.AuditRequest(cluster="c", extra_hosts=extra, page_size=page_size, page_token=token)


def pages(cluster: Cluster) -> list[pb.AuditResponse]:
    """Every page of the audit, following next_page_token."""
    out = [cluster.decisions.Audit(request(), timeout=60)]
    while out[-1].next_page_token:
        assert len(out) < 20, "the coordinator never ends the listing"
        out.append(cluster.decisions.Audit(request(token=out[-1].next_page_token), timeout=60))
    return out


def timeless(response: pb.AuditResponse) -> bytes:
    """A page's bytes without the time it was generated."""
    copy = pb.AuditResponse()
    copy.CopyFrom(response)
    copy.report.ClearField("generated_at")
    return copy.SerializeToString(deterministic=True)


def names(responses: list[pb.AuditResponse]) -> list[str]:
    return [h.name for r in responses for h in r.report.hosts]


def merged(cluster: Cluster) -> Any:
    args = build_parser().parse_args(
        ["audit", "--cluster", "c", "--coordinator", cluster.running.address]
    )
    return call_audit(args, cluster.decisions, request())


def test_later_pages_come_from_the_first_pages_audit_byte_for_byte(cluster: Cluster) -> None:
    start = cluster.audit_cache()
    cached = pages(cluster)
    after = cluster.audit_cache()
    assert len(cached) == 3  # 12 hosts and 2 extra ones, 5 a page
    assert after["misses"] - start["misses"] == 1  # the first page computed the audit
    assert after["hits"] - start["hits"] == len(cached) - 1  # every later page reused it

    # Computed afresh for every page: the same bytes.
    fresh = []
    for n in range(len(cached)):
        cluster.running.coordinator.registry.cache.clear()
        token = cached[n - 1].next_page_token if n else ""
        fresh.append(cluster.decisions.Audit(request(token=token), timeout=60))
    assert [timeless(r) for r in cached] == [timeless(r) for r in fresh]

    # The pages put together are the unpaged report, which the cache answers too.
    whole = cluster.decisions.Audit(request(page_size=0), timeout=60)
    assert whole.next_page_token == ""
    assert names(cached) == [h.name for h in whole.report.hosts]
    assert len(whole.report.hosts) == len(HOSTS) + 2
    together = merged(cluster)
    together.ClearField("generated_at")
    whole.report.ClearField("generated_at")
    assert together.SerializeToString(deterministic=True) == whole.report.SerializeToString(
        deterministic=True
    )


def change_profile(cluster: Cluster) -> None:
    report(cluster.running, "h00", OTHER)


def leave(cluster: Cluster) -> None:
    query = pb_grpc.QueryServiceStub(cluster.running.channel)
    query.RemoveHost(pb.RemoveHostRequest(host_id="h09", force=True), timeout=30)


def join(cluster: Cluster) -> None:
    report(cluster.running, "h00a", OTHER)  # no tag of the cached audit names it


@pytest.mark.parametrize("change", [change_profile, leave, join], ids=lambda f: f.__name__)
def test_a_member_changing_between_pages_makes_the_next_page_a_fresh_audit(
    cluster: Cluster, change: Any
) -> None:
    first = cluster.decisions.Audit(request(), timeout=60)
    assert first.next_page_token
    seen = cluster.audit_cache()
    assert seen["entries"] == 1
    change(cluster)
    # A changed or removed member's answers go at once; a newcomer is named by no tag
    # (the key, which lists every member, keeps the old audit from answering for it).
    assert cluster.audit_cache()["entries"] == (1 if change is join else 0)
    second = cluster.decisions.Audit(request(token=first.next_page_token), timeout=60)
    assert cluster.audit_cache()["misses"] == seen["misses"] + 1  # not the audit held

    # The next page is the page of the cluster as it is now, computed afresh.
    cluster.running.coordinator.registry.cache.clear()
    now = cluster.decisions.Audit(request(token=first.next_page_token), timeout=60)
    assert timeless(second) == timeless(now)

    # A whole listing, read as the CLI reads it, shows the change.
    listing = merged(cluster)
    hosts = {h.name: h for h in listing.hosts}
    fingerprints = [p.fingerprint for p in listing.profiles]
    other = cluster.decisions.Audit(
        pb.AuditRequest(extra_hosts=[proto_ref(f"dump:{OTHER}")]), timeout=60
    ).report.profiles[0]
    if change is change_profile:
        assert fingerprints[hosts["h00"].profile] == other.fingerprint
    elif change is leave:
        assert "h09" not in hosts and len(hosts) == len(HOSTS) + 1
    else:
        assert fingerprints[hosts["h00a"].profile] == other.fingerprint
        assert len(hosts) == len(HOSTS) + 3


def test_maintenance_and_rules_are_audits_of_their_own(cluster: Cluster) -> None:
    generic = cluster.decisions.Audit(request(page_size=0), timeout=60)
    kvm = pb.AuditRequest()
    kvm.CopyFrom(request(page_size=0))
    kvm.hypervisor = pb.HYPERVISOR_KVM
    seen = cluster.audit_cache()
    assert cluster.decisions.Audit(kvm, timeout=60).report.view != generic.report.view
    assert cluster.audit_cache()["misses"] == seen["misses"] + 1
    query = pb_grpc.QueryServiceStub(cluster.running.channel)
    query.SetMaintenance(pb.SetMaintenanceRequest(host_id="h01", on=True), timeout=30)
    again = cluster.decisions.Audit(request(page_size=0), timeout=60)
    assert cluster.audit_cache()["misses"] == seen["misses"] + 2
    assert timeless(again) == timeless(generic)


def test_a_dump_known_by_no_digest_is_audited_afresh_each_time(cluster: Cluster) -> None:
    decisions = cluster.running.coordinator.decisions
    cache = cluster.running.coordinator.registry.cache
    named = Ref.dump("other.txt", load_dump(OTHER))  # made in process: no digest of the bytes
    first = decisions.audit("c", [named])
    assert cache.stats()[Region.AUDIT].size == 0
    second = decisions.audit("c", [named])
    assert second is not first and second.to_json() == first.to_json()
    assert "dump:other.txt" in [h.name for h in second.hosts]
