"""Targets, GetVmTargets and Audit answer in pages, so a big cluster never outgrows 4 MiB.

A real coordinator on loopback gRPC, a cluster of hosts replaying three real processors,
asked with a small page_size: every host comes exactly once, with the verdict (and for
an audit, the whole report) the unpaged answer gives; hosts that join or leave while a
client pages never make another host come twice or go missing; a bad page token is
INVALID_ARGUMENT with one line and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from cpucompat.agent.cli.main import build_parser
from cpucompat.coordinator.cli.audit_pages import call_audit
from cpucompat.coordinator.cli.refs import proto_ref
from cpucompat.coordinator.convert import audit_from_proto
from cpucompat.coordinator.service.paging import encode_token
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.inprocess import MIXED, Running, report_mixed

HOSTS = [f"h{n:02d}" for n in range(30)]
PAGE = 7


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = Running(tmp_path_factory.mktemp("pages"), allow_replayed=True)
    try:
        for n, host in enumerate(HOSTS):
            report_mixed(running, host, n)
        pb_grpc.VmServiceStub(running.channel).RegisterVm(
            pb.RegisterVmRequest(vm_name="web", cluster="big", boot_host="h00"), timeout=30
        )
        yield running
    finally:
        running.close()


def pages(fn: Any, request: Any) -> list[Any]:
    """Every response of a paged call, following next_page_token."""
    out = []
    while True:
        response = fn(request, timeout=60)
        out.append(response)
        if not response.next_page_token:
            return out
        assert len(out) < 100, "the coordinator never ends the listing"
        request.page_token = response.next_page_token


def by_host(targets: list[pb.TargetVerdict]) -> dict[str, pb.TargetVerdict]:
    hosts = [t.host_id for t in targets]
    assert len(hosts) == len(set(hosts)), f"a host came twice: {sorted(hosts)}"
    return {t.host_id: t for t in targets}


@pytest.mark.parametrize("rpc", ["Targets", "GetVmTargets"])
def test_small_pages_hold_every_host_once_with_the_unpaged_verdicts(
    fleet: Running, rpc: str
) -> None:
    decisions = pb_grpc.DecisionServiceStub(fleet.channel)
    vms = pb_grpc.VmServiceStub(fleet.channel)
    call, request = {
        "Targets": (decisions.Targets, lambda **kw: pb.TargetsRequest(
            source=pb.HostRef(host_id="h00"), **kw)),
        "GetVmTargets": (vms.GetVmTargets, lambda **kw: pb.GetVmTargetsRequest(
            vm_name="web", **kw)),
    }[rpc]  # fmt: skip
    whole = call(request(), timeout=60)
    assert whole.next_page_token == ""  # an old client: the whole answer, as before paging
    assert sorted(t.host_id for t in whole.targets) == HOSTS[1:]
    assert any(t.verdict.compatible for t in whole.targets)
    assert any(not t.verdict.compatible for t in whole.targets)

    answers = pages(call, request(page_size=PAGE))
    assert len(answers) == -(-len(HOSTS[1:]) // PAGE)
    assert all(0 < len(a.targets) <= PAGE for a in answers)
    paged = by_host([t for a in answers for t in a.targets])
    assert paged == by_host(list(whole.targets))
    for answer in answers:  # within a page, the unpaged order: accepting hosts first
        keys = [(not t.verdict.compatible, t.host_id) for t in answer.targets]
        assert keys == sorted(keys)


def test_hosts_joining_and_leaving_while_paging_skip_and_repeat_no_other_host(
    tmp_path: Path,
) -> None:
    running = Running(tmp_path, allow_replayed=True)
    try:
        for n, host in enumerate(HOSTS):
            report_mixed(running, host, n)
        decisions = pb_grpc.DecisionServiceStub(running.channel)
        query = pb_grpc.QueryServiceStub(running.channel)
        request = pb.TargetsRequest(source=pb.HostRef(host_id="h00"), page_size=PAGE)
        first = decisions.Targets(request, timeout=60)
        sent = {t.host_id for t in first.targets}
        assert sent == set(HOSTS[1 : PAGE + 1])
        # Before the cursor: a new host and a removed one; after it: the same.
        report_mixed(running, "h05a", 0)
        report_mixed(running, "h99", 1)
        query.RemoveHost(pb.RemoveHostRequest(host_id="h03", force=True), timeout=30)
        query.RemoveHost(pb.RemoveHostRequest(host_id="h20", force=True), timeout=30)
        request.page_token = first.next_page_token
        rest = [t.host_id for a in pages(decisions.Targets, request) for t in a.targets]
        assert len(rest) == len(set(rest))
        assert not sent & set(rest)
        assert set(rest) == (set(HOSTS[PAGE + 1 :]) - {"h20"}) | {"h99"}
    finally:
        running.close()


def strip_time(report: pb.AuditReport) -> pb.AuditReport:
    copy = pb.AuditReport()
    copy.CopyFrom(report)
    copy.ClearField("generated_at")
    return copy


def test_an_audit_in_pages_is_the_unpaged_report_split_by_host(fleet: Running) -> None:
    decisions = pb_grpc.DecisionServiceStub(fleet.channel)
    extra = [proto_ref(f"dump:{MIXED[1]}"), proto_ref("level:x86-64-v2")]
    whole = decisions.Audit(pb.AuditRequest(cluster="big", extra_hosts=extra), timeout=60)
    assert whole.next_page_token == ""
    assert len(whole.report.hosts) == len(HOSTS) + 2
    assert len(whole.report.groups) > 1  # three processors: hosts in several groups

    answers = pages(
        decisions.Audit, pb.AuditRequest(cluster="big", extra_hosts=extra, page_size=PAGE)
    )
    assert len(answers) == -(-(len(HOSTS) + 2) // PAGE)
    first, later = answers[0].report, [a.report for a in answers[1:]]
    assert first.offline_action == whole.report.offline_action != pb.OFFLINE_ACTION_UNSPECIFIED
    assert first.refusals and first.baseline == whole.report.baseline
    for page in later:  # the summary comes once; each page indexes its own profiles
        assert not page.refusals and not page.HasField("baseline")
        assert {p.source for p in page.pairs} == {h.name for h in page.hosts}
        assert page.profiles == whole.report.profiles
        assert len(page.groups) == len(whole.report.groups)
    names = [h.name for a in answers for h in a.report.hosts]
    assert names == [h.name for h in whole.report.hosts]  # every host once, in order
    assert [loss for a in answers for loss in a.report.losses] == list(whole.report.losses)

    # The CLI's reader puts the pages back together into the unpaged report.
    args = build_parser().parse_args(["audit", "--cluster", "big", "--coordinator", fleet.address])
    merged = call_audit(args, decisions, pb.AuditRequest(
        cluster="big", extra_hosts=extra, page_size=PAGE))  # fmt: skip
    assert strip_time(merged) == strip_time(whole.report)
    assert audit_from_proto(merged).to_json() == audit_from_proto(whole.report).to_json()


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token!",
        encode_token({"host": 5}),
        encode_token({"cluster": "big", "host": "h01"}),  # a ListHosts token
    ],
    ids=["garbage", "host-not-a-string", "another-listing"],
)
@pytest.mark.parametrize("rpc", ["Targets", "GetVmTargets", "Audit"])
def test_a_bad_page_token_is_invalid_argument_and_stores_nothing(
    fleet: Running, rpc: str, token: str
) -> None:
    decisions = pb_grpc.DecisionServiceStub(fleet.channel)
    vms = pb_grpc.VmServiceStub(fleet.channel)
    call, request = {
        "Targets": (decisions.Targets, pb.TargetsRequest(
            source=pb.HostRef(host_id="h00"), page_token=token)),
        "GetVmTargets": (vms.GetVmTargets, pb.GetVmTargetsRequest(
            vm_name="web", page_token=token)),
        "Audit": (decisions.Audit, pb.AuditRequest(cluster="big", page_token=token)),
    }[rpc]  # fmt: skip
    before = fleet.stored()
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = caught.value.details()
    assert "page_token" in detail and "\n" not in detail
    assert fleet.stored() == before


def test_an_audit_token_counting_more_extra_hosts_than_the_request_names_is_refused(
    fleet: Running,
) -> None:
    decisions = pb_grpc.DecisionServiceStub(fleet.channel)
    request = pb.AuditRequest(
        cluster="big", extra_hosts=[proto_ref("level:x86-64-v2")], page_size=30
    )
    first = decisions.Audit(request, timeout=60)
    assert [h.name for h in first.report.hosts] == HOSTS and first.next_page_token
    request.page_token = first.next_page_token
    last = decisions.Audit(request, timeout=60)
    assert len(last.report.hosts) == 1 and last.report.hosts[0].name not in HOSTS
    assert not last.next_page_token
    # a token past the one extra host the request names
    request.page_token = encode_token({"host": "", "extras": 2})
    with pytest.raises(grpc.RpcError) as caught:
        decisions.Audit(request, timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
