"""WhatIf answers in pages, so a big cluster's what-if never outgrows 4 MiB.

A real coordinator on loopback gRPC, a cluster of hosts replaying three real processors
(two AMD, one Intel) and VMs booted on several of them, asked with a small page_size:
every host label and every VM comes exactly once, the pages put together are the
unpaged answer, and `cpucompat whatif` prints the same from either; an answer that
changes while a client pages says so (its snapshot) and the CLI's reader starts again;
a bad page token is INVALID_ARGUMENT with one line and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from cpucompat.agent.cli.main import build_parser
from cpucompat.coordinator.cli.refs import proto_ref
from cpucompat.coordinator.cli.whatif_cmd import render
from cpucompat.coordinator.cli.whatif_pages import call_whatif
from cpucompat.coordinator.convert import whatif_from_proto
from cpucompat.coordinator.service.paging import encode_token
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.inprocess import MIXED, Running, report_mixed

HOSTS = [f"h{n:02d}" for n in range(30)]
INTEL = [h for n, h in enumerate(HOSTS) if n % 3 == 2]
VMS = [f"vm{n}" for n in range(8)]
PAGE = 7


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = Running(tmp_path_factory.mktemp("whatif-pages"), allow_replayed=True)
    try:
        for n, host in enumerate(HOSTS):
            report_mixed(running, host, n)
        for n, vm in enumerate(VMS):  # booted on each processor
            pb_grpc.VmServiceStub(running.channel).RegisterVm(
                pb.RegisterVmRequest(vm_name=vm, cluster="big", boot_host=HOSTS[n]), timeout=30
            )
        yield running
    finally:
        running.close()


def request(**kw: Any) -> pb.WhatIfRequest:
    """Every Intel host out, an AMD dump and an x86-64 level in: the cluster after the
    change has one vendor, so its baseline lists members too."""
    added = [proto_ref(f"dump:{MIXED[1]}"), proto_ref("level:x86-64-v2@AuthenticAMD")]
    return pb.WhatIfRequest(cluster="big", add=added, remove=INTEL, **kw)


def pages(stub: Any, req: pb.WhatIfRequest) -> list[pb.WhatIfResponse]:
    out = []
    while True:
        response = stub.WhatIf(req, timeout=60)
        out.append(response)
        if not response.next_page_token:
            return out
        assert len(out) < 100, "the coordinator never ends the listing"
        req.page_token = response.next_page_token


def label_lists(msg: pb.WhatIfResponse) -> dict[str, list[str]]:
    out = {}
    for side in ("before", "after"):
        state = getattr(msg, side)
        out[f"{side}.hosts"] = list(state.hosts)
        out[f"{side}.stale_hosts"] = list(state.policy.stale_hosts)
        out[f"{side}.below_pinned_baseline"] = list(state.below_pinned_baseline)
        out[f"{side}.members"] = list(state.baseline.members)
    return out


def test_small_pages_hold_every_host_and_vm_once_and_merge_into_the_unpaged_answer(
    fleet: Running,
) -> None:
    decisions = pb_grpc.DecisionServiceStub(fleet.channel)
    whole = decisions.WhatIf(request(), timeout=60)
    assert whole.next_page_token == "" and whole.snapshot  # an old client: everything
    assert [v.vm_name for v in whole.vms] == VMS
    assert not whole.before.HasField("baseline")  # AMD and Intel
    assert len(whole.after.baseline.members) == len(HOSTS) - len(INTEL) + 2
    assert list(whole.after.baseline.members) == sorted(whole.after.baseline.members)
    assert whole.lose_save or whole.regain_save_after_power_cycle

    answers = pages(decisions, request(page_size=PAGE))
    assert len(answers) > 3
    assert {a.snapshot for a in answers} == {whole.snapshot}
    first, later = answers[0], answers[1:]
    assert first.view == whole.view and list(first.added) == list(whole.added)
    assert first.before.policy.action == whole.before.policy.action
    assert first.after.baseline.features == whole.after.baseline.features
    for page in later:  # the summary comes once
        assert not page.added and not page.view and not page.before.policy.reason
        assert not page.after.baseline.features
    for page in answers:  # at most PAGE entries: labels, then VMs
        labels = set().union(*label_lists(page).values())
        assert 0 < len(labels) + len(page.vms) <= PAGE
    for name, whole_list in label_lists(whole).items():  # each once, in order
        assert [x for a in answers for x in label_lists(a)[name]] == whole_list, name
    assert [v for a in answers for v in a.vms] == list(whole.vms)
    assert [n for a in answers for n in a.lose_save] == list(whole.lose_save)

    merged = pb.WhatIfResponse()
    for page in answers:
        merged.MergeFrom(page)
    merged.next_page_token = ""
    assert merged == whole

    # `cpucompat whatif` reads every page and prints what the unpaged answer prints.
    args = build_parser().parse_args(["whatif", "--cluster", "big", "--coordinator", "x"])
    read = call_whatif(args, decisions, request(page_size=PAGE))
    assert read == whole
    paged_doc, whole_doc = whatif_from_proto(read).to_json(), whatif_from_proto(whole).to_json()
    assert paged_doc == whole_doc
    assert render(paged_doc) == render(whole_doc)


class JoinAfterFirstCall:
    """The coordinator's DecisionService stub, with a host joining after the first WhatIf
    call (a rack arriving while an operator's what-if is being read)."""

    def __init__(self, running: Running, host: str) -> None:
        self.stub = pb_grpc.DecisionServiceStub(running.channel)
        self.running = running
        self.host = host
        self.calls = 0

    def WhatIf(self, req: pb.WhatIfRequest, **kw: Any) -> pb.WhatIfResponse:
        answer = self.stub.WhatIf(req, **kw)
        self.calls += 1
        if self.calls == 1:
            report_mixed(self.running, self.host, 0)
        return answer


def test_an_answer_that_changes_while_paging_is_read_again_whole(fleet: Running) -> None:
    decisions = pb_grpc.DecisionServiceStub(fleet.channel)
    first = decisions.WhatIf(request(page_size=PAGE), timeout=60)
    stub = JoinAfterFirstCall(fleet, "h05a")
    args = build_parser().parse_args(["whatif", "--cluster", "big", "--coordinator", "x"])
    try:
        read = call_whatif(args, stub, request(page_size=PAGE))
        assert stub.calls > len(pages(decisions, request(page_size=PAGE)))  # read again
        now = decisions.WhatIf(request(), timeout=60)
        assert now.snapshot != first.snapshot
        assert "h05a" in now.before.hosts
        assert read == now  # one state of the cluster, never a mix
    finally:
        fleet.query.RemoveHost(pb.RemoveHostRequest(host_id="h05a", force=True), timeout=30)
    assert decisions.WhatIf(request(page_size=PAGE), timeout=60).snapshot == first.snapshot


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token!",
        encode_token({"stage": "later", "after": ""}),
        encode_token({"stage": "hosts", "after": 5}),
        encode_token({"host": "h01"}),  # a Targets token
    ],
    ids=["garbage", "unknown-stage", "after-not-a-string", "another-listing"],
)
def test_a_bad_page_token_is_invalid_argument_and_stores_nothing(
    fleet: Running, token: str
) -> None:
    decisions = pb_grpc.DecisionServiceStub(fleet.channel)
    before = fleet.stored()
    with pytest.raises(grpc.RpcError) as caught:
        decisions.WhatIf(request(page_token=token), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    detail = caught.value.details()
    assert "page_token" in detail and "\n" not in detail
    assert fleet.stored() == before
