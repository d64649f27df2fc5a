"""At 100,000 hosts every page of Targets and Audit fits in a default gRPC client's 4 MiB,
and so does every page of an audit of `pair_limit` hosts (which lists every host pair).

The answers are built by the coordinator's own page builders from a real audit of
100,000 hosts replaying three real processors (one cluster, the worst case): unpaged,
each answer is far over 4 MiB; paged, every page is under it and the pages hold every
host exactly once.
"""

from __future__ import annotations

from functools import cache

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator import convert
from cpucompat.coordinator.domain.audit import PAIR_HOST_LIMIT, AuditReport, HostInput, audit
from cpucompat.coordinator.domain.hosts import HostStatus
from cpucompat.coordinator.service.host_pages import audit_page, target_page
from cpucompat.coordinator.service.paging import decode_token
from cpucompat.v1 import coordinator_service_pb2 as pb
from tests.support.paths import FIXTURES

HOSTS = 100_000
DEFAULT_CLIENT_LIMIT = 4 * 1024 * 1024
PROCESSORS = [
    FIXTURES / "processors" / "dev-amd-epyc-kvm.cpuid-r.txt",
    FIXTURES / "processors" / "amd-zen3-x3d-l3-edited.cpuid-r.txt",
    FIXTURES / "processors" / "intel-skylake-leaf2-edited.cpuid-r.txt",
]
NAMES = [f"host-{n:06d}.rack{n // 40:04d}.example" for n in range(HOSTS)]


@cache
def fleet(hosts: int = HOSTS) -> AuditReport:
    profiles = [decode(load_dump(p)) for p in PROCESSORS]
    return audit(
        [HostInput(name, profiles[n % len(profiles)]) for n, name in enumerate(NAMES[:hosts])],
        cluster="big",
    )


def test_every_targets_page_at_100000_hosts_fits_and_the_pages_hold_every_host_once() -> None:
    report = fleet()
    source = report.hosts[0].profile
    results = [(h.name, report.matrix[source][h.profile]) for h in report.hosts[1:]]
    assert any(v.compatible for _, v in results) and any(not v.compatible for _, v in results)
    whole = pb.TargetsResponse(
        targets=[
            pb.TargetVerdict(host_id=name, verdict=convert.verdict_to_proto(v))
            for name, v in results
        ]
    )
    assert whole.ByteSize() > DEFAULT_CLIENT_LIMIT  # what one answer was before paging

    seen: list[str] = []
    after = None
    while True:
        page, token = target_page(results, lambda _: HostStatus.ONLINE, after, 0)
        answer = pb.TargetsResponse(source_label=NAMES[0], targets=page, next_page_token=token)
        assert answer.ByteSize() < DEFAULT_CLIENT_LIMIT
        seen += [t.host_id for t in page]
        if not token:
            break
        after = decode_token(token)["host"]
    assert len(set(seen)) == len(seen)
    assert sorted(seen) == NAMES[1:]


@pytest.mark.parametrize("hosts", [PAIR_HOST_LIMIT, HOSTS])
def test_every_audit_page_fits_and_the_pages_hold_every_host_once(hosts: int) -> None:
    """At `pair_limit` hosts the host pairs (hosts squared) are the biggest part."""
    report = fleet(hosts)
    assert convert.audit_to_proto(report, 0).ByteSize() > DEFAULT_CLIENT_LIMIT

    names: list[str] = []
    place = None
    pages = 0
    while True:
        answer = audit_page(report, 0, place, 0, 0)
        assert answer.ByteSize() < DEFAULT_CLIENT_LIMIT
        assert len(answer.report.losses) == len(answer.report.hosts)
        names += [h.name for h in answer.report.hosts]
        pages += 1
        if not answer.next_page_token:
            break
        place = decode_token(answer.next_page_token)
    assert pages > 1
    assert names == NAMES[:hosts]
