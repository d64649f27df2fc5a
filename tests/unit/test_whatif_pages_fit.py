"""A what-if of 100,000 hosts and 2,000 VMs: every page fits in a default gRPC client's
4 MiB, and the pages merge back into the whole answer.

The answer is what a what-if of such a cluster holds (every host in the lists of hosts
with a say and of the baselines' members, a third of them stale, a tenth below a pinned
baseline; each VM's three actions naming the 20 refusing hosts they may list), cut by
the coordinator's own page builder: unpaged it is far over 4 MiB.
"""

from __future__ import annotations

from cpucompat.coordinator.domain.vm_action import REFUSING_HOSTS_LISTED
from cpucompat.coordinator.service.paging import PAGE_BYTES
from cpucompat.coordinator.service.whatif_pages import whatif_page, whatif_place
from cpucompat.v1 import coordinator_service_pb2 as pb

HOSTS = 100_000
VMS = 2_000
DEFAULT_CLIENT_LIMIT = 4 * 1024 * 1024
NAMES = [f"host-{n:06d}.rack{n // 40:04d}.example" for n in range(HOSTS)]


def action(vm: str, n: int) -> pb.VmAction:
    refusing = NAMES[n : n + REFUSING_HOSTS_LISTED]
    return pb.VmAction(
        vm_name=vm,
        action=pb.OFFLINE_ACTION_SHUTDOWN,
        hyperv_offline_action=2,
        refusing_hosts=refusing,
        refusing_hosts_total=HOSTS // 3,
        reason=f"refused by {', '.join(refusing)}, \u2026 and {HOSTS // 3 - 20} more: "
        + "; ".join(f"{h}: refused: missing avx512f, avx512bw, avx512vl" for h in refusing[:3]),
        current_host=NAMES[n],
    )


def state(hosts: list[str], stale: list[str]) -> pb.WhatIfClusterState:
    return pb.WhatIfClusterState(
        policy=pb.ClusterPolicy(cluster="big", reason="processors are mixed", stale_hosts=stale),
        hosts=hosts,
        baseline=pb.WhatIfBaseline(vendor="AuthenticAMD", features=["sse2"], members=hosts),
        below_pinned_baseline=hosts[::10],
    )


def whole_answer() -> pb.WhatIfResponse:
    after = sorted([*NAMES[1:], "dump:new-server.txt"])
    vms = [f"vm-{n:05d}" for n in range(VMS)]
    return pb.WhatIfResponse(
        cluster="big",
        added=["dump:new-server.txt"],
        removed=[NAMES[0]],
        before=state(NAMES, NAMES[::3]),
        after=state(after, NAMES[1::3]),
        vms=[
            pb.VmWhatIf(
                vm_name=vm,
                mode="host",
                before=action(vm, n),
                after=action(vm, n + 1),
                after_power_cycle=action(vm, n + 2),
                power_cycle_into=f"host {NAMES[n]}",
            )
            for n, vm in enumerate(vms)
        ],
        lose_save=vms[::2],
        regain_save_after_power_cycle=vms[1::4],
        view="feature classes",
    )


def test_every_whatif_page_of_100000_hosts_and_2000_vms_fits_and_merges_back() -> None:
    whole = whole_answer()
    assert whole.ByteSize() > 3 * DEFAULT_CLIENT_LIMIT  # what one answer would be
    merged = pb.WhatIfResponse()
    place = None
    pages = []
    while True:
        page = whatif_page(whole, place, 0)
        assert page.ByteSize() < PAGE_BYTES + 64 * 1024 < DEFAULT_CLIENT_LIMIT
        pages.append(page)
        merged.MergeFrom(page)
        if not page.next_page_token:
            break
        place = whatif_place(page.next_page_token)
    assert len(pages) > 3
    assert len({p.snapshot for p in pages}) == 1
    merged.next_page_token = ""
    assert merged.snapshot == pages[0].snapshot
    merged.snapshot = ""
    assert merged == whole
