"""Pages of a what-if: its lists of host labels, then its VMs, never over 4 MiB.

A what-if's answer grows with the cluster in two ways: lists of host labels (the hosts
with a say before and after, the baselines' members, the stale hosts, the hosts below a
pinned baseline: every host of the cluster, several times over) and one entry per
registered VM. Neither may be cut short (a script compares the lists; every VM's action
is the answer), so they are paged as Targets and Audit are: the labels first, in label
order, the token holding the last label sent, then the VMs by name, the token holding
the last VM sent. The first page holds every other field; merging the pages in order
(protobuf `MergeFrom`) gives the unpaged answer. Each page is cut from a what-if
computed afresh, so every page carries a digest of the whole answer (`snapshot`): a
reader that sees it change starts again (`coordinator/cli/whatif_pages.py`).
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from collections.abc import Iterator
from itertools import chain
from typing import Any

from cpucompat.v1 import coordinator_service_pb2 as pb

from ..limits import LimitError
from .host_pages import ENTRY_OVERHEAD
from .paging import PAGE_BYTES, cursor, encode_token

HOSTS, VMS = "hosts", "vms"
LABEL_OVERHEAD = 2
"""Bytes a label in a repeated string costs beyond itself (tag and length)."""


def whatif_place(token: str) -> tuple[str, str] | None:
    """(stage, last entry sent) of a WhatIf page token (LimitError for a bad one)."""
    place = cursor(token, {"stage": str, "after": str})
    if place is None:
        return None
    if place["stage"] not in (HOSTS, VMS):
        raise LimitError("page_token does not belong to this listing; start again without it")
    return str(place["stage"]), str(place["after"])


def host_lists(msg: pb.WhatIfResponse) -> Iterator[Any]:
    """Every list of host labels in ``msg``, each sorted, in a fixed order (reading one of
    an unset submessage sets nothing; only a list given entries does)."""
    for state in (msg.before, msg.after):
        yield state.hosts
        yield state.policy.stale_hosts
        yield state.below_pinned_baseline
        yield state.baseline.members


def whatif_page(
    whole: pb.WhatIfResponse, place: tuple[str, str] | None, requested: int
) -> pb.WhatIfResponse:
    """The page of ``whole`` after ``place``, with the token of the next ("" on the last).

    ``requested`` bounds the entries (labels and VMs) of the page; 0: as many as fit in
    PAGE_BYTES. A page holds at least one entry while any remain."""
    snapshot = hashlib.sha256(whole.SerializeToString(deterministic=True)).hexdigest()[:32]
    if place is None:
        page = pb.WhatIfResponse()
        page.CopyFrom(whole)
        for names in host_lists(page):
            if names:
                del names[:]
        for field in ("vms", "lose_save", "regain_save_after_power_cycle"):
            page.ClearField(field)
        stage, after = HOSTS, ""
    else:
        page = pb.WhatIfResponse(cluster=whole.cluster)
        stage, after = place
    page.snapshot = snapshot
    budget = PAGE_BYTES - page.ByteSize()
    size = requested or len(whole.vms) + sum(len(names) for names in host_lists(whole)) + 1
    count = used = 0
    if stage == HOSTS:
        count, used, sent = _labels(whole, page, after, size, budget)
        if sent is not None:
            page.next_page_token = encode_token({"stage": HOSTS, "after": sent})
            return page
        after = ""

    vms = list(whole.vms)
    names = [v.vm_name for v in vms]
    first = bisect.bisect_right(names, after)
    lose, regain = set(whole.lose_save), set(whole.regain_save_after_power_cycle)
    last = first
    while last < len(vms) and count < size:
        vm = vms[last]
        name_cost = len(vm.vm_name.encode()) + LABEL_OVERHEAD
        cost = vm.ByteSize() + ENTRY_OVERHEAD
        cost += name_cost * ((vm.vm_name in lose) + (vm.vm_name in regain))
        if count and used + cost > budget:
            break
        page.vms.append(vm)
        if vm.vm_name in lose:
            page.lose_save.append(vm.vm_name)
        if vm.vm_name in regain:
            page.regain_save_after_power_cycle.append(vm.vm_name)
        used += cost
        count += 1
        last += 1
    if last < len(vms):
        page.next_page_token = encode_token(
            {"stage": VMS, "after": names[last - 1] if last else ""}
        )
    return page


def _labels(
    whole: pb.WhatIfResponse, page: pb.WhatIfResponse, after: str, size: int, budget: int
) -> tuple[int, int, str | None]:
    """Fill ``page``'s lists of host labels with the labels after ``after`` that fit;
    returns (labels, bytes, the last label sent while more remain, else None)."""
    sources = [list(names) for names in host_lists(whole)]
    lists_of = Counter(chain.from_iterable(sources))  # label: how many lists hold it
    labels = sorted(lists_of)
    start = end = bisect.bisect_right(labels, after)
    used = 0
    while end < len(labels) and end - start < size:
        label = labels[end]
        cost = (len(label.encode()) + LABEL_OVERHEAD) * lists_of[label]
        if end > start and used + cost > budget:
            break
        used += cost
        end += 1
    if end > start:
        low, high = labels[start], labels[end - 1]
        for source, target in zip(sources, host_lists(page), strict=True):
            chunk = source[bisect.bisect_left(source, low) : bisect.bisect_right(source, high)]
            if chunk:
                target.extend(chunk)
    return end - start, used, labels[end - 1] if end < len(labels) else None
