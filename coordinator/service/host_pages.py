"""Pages of the answers that list a cluster's hosts: Targets, GetVmTargets and Audit.

At 100,000 hosts one such answer is tens of MiB, far over the 4 MiB a default gRPC client
accepts. Pages follow each other in host id order and the token holds the last host
sent, so while hosts join or leave no host is sent twice or skipped: a host that joins
behind the last one sent comes on a later page, one that joins before it is not listed.
A request without page_size gets HOSTS_PAGE_SIZE hosts (as many as fit in PAGE_BYTES),
which is the whole answer of any cluster the answer fitted for before paging.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from cpucompat.v1 import coordinator_service_pb2 as pb

from .. import convert
from ..domain.audit import AuditReport
from ..domain.compat import Verdict
from ..domain.hosts import HostStatus
from .paging import PAGE_BYTES, cursor, encode_token, fill, hosts_page_size

ENTRY_OVERHEAD = 24
"""Bytes a repeated entry costs beyond its own size (tag and length prefixes)."""


def host_after(token: str) -> str | None:
    """The last host id a Targets or GetVmTargets page held (LimitError for a bad token)."""
    place = cursor(token, {"host": str})
    return None if place is None else str(place["host"])


def target_page(
    results: list[tuple[str, Verdict]],
    status: Callable[[str], HostStatus],
    after: str | None,
    requested: int,
    beside: int = 0,
) -> tuple[list[pb.TargetVerdict], str]:
    """The page after host ``after`` and the token of the next one ("" on the last);
    ``beside`` is the bytes the response holds besides the targets.

    Within a page the order is the unpaged answer's (accepting hosts first, then by host
    id), so a client that sends no page_size sees what it saw before paging."""
    ordered = sorted((r for r in results if after is None or r[0] > after), key=lambda r: r[0])
    size = hosts_page_size(requested)
    chunk = ordered[:size]
    messages = convert.verdicts_to_proto([verdict for _, verdict in chunk])

    def entry(item: tuple[str, pb.Verdict]) -> pb.TargetVerdict:
        host_id, verdict = item
        return pb.TargetVerdict(
            host_id=host_id, status=convert.status_to_proto(status(host_id)), verdict=verdict
        )

    pairs = [(host_id, message) for (host_id, _), message in zip(chunk, messages, strict=True)]
    page, cut = fill(pairs, size, entry, PAGE_BYTES - beside)
    more = cut or len(ordered) > len(page)
    token = encode_token({"host": page[-1].host_id}) if page and more else ""
    page.sort(key=lambda t: (not t.verdict.compatible, t.host_id))
    return page, token


def audit_page(
    report: AuditReport,
    extras: int,
    place: dict[str, Any] | None,
    requested: int,
    now: float,
) -> pb.AuditResponse:
    """One page of an audit of registered hosts (sorted by id) followed by ``extras`` hosts
    named in the request (in request order).

    The first page holds the whole summary; a later one only `cluster`, `generated_at`
    and `profiles` beside its hosts (see `AuditResponse` in the proto). Up to
    `pair_limit` hosts, `pairs` and `blocking_pairs` list host pairs (their square grows
    fastest of all: 37 MB for 200 hosts of 37 processors) and each page holds the pairs
    whose source is one of its hosts. ``place`` is the
    decoded token: the last registered host sent, or how many extras were sent."""
    registered = len(report.hosts) - extras
    if place is None:
        start = 0
    elif place["extras"]:
        start = registered + place["extras"]
    else:
        names = [h.name for h in report.hosts[:registered]]
        start = bisect.bisect_right(names, place["host"])
    host_pairs = report.pairs_mode == "hosts"  # then `pairs` go with their source host
    if place is None:
        msg = convert.audit_summary_to_proto(report, now, host_pairs=not host_pairs)
    else:
        msg = pb.AuditReport(
            cluster=report.cluster or "",
            generated_at=convert.timestamp(now),
            profiles=convert.audit_profiles_to_proto(report),
        )
    budget = PAGE_BYTES - msg.ByteSize()
    end = min(len(report.hosts), start + hosts_page_size(requested))
    sent: list[int] = []
    used = 0
    reasons: dict[int, list[dict[str, Any]]] = {}
    for index in range(start, end):
        host, loss = convert.audit_host_to_proto(report, index)
        cost = host.ByteSize() + loss.ByteSize() + len(host.name) + 3 * ENTRY_OVERHEAD
        pairs = convert.audit_host_pairs_to_proto(report, index, reasons) if host_pairs else []
        blocking = [p for p in pairs if not p.compatible]
        cost += sum(p.ByteSize() + ENTRY_OVERHEAD for p in pairs + blocking)
        if sent and used + cost > budget:
            break
        msg.hosts.append(host)
        msg.losses.append(loss)
        msg.pairs.extend(pairs)
        msg.blocking_pairs.extend(blocking)
        sent.append(index)
        used += cost
    msg.groups.extend(convert.audit_groups_to_proto(report, sent))
    token = ""
    if sent and start + len(sent) < len(report.hosts):
        last = sent[-1]
        if last < registered:
            token = encode_token({"host": report.hosts[last].name, "extras": 0})
        else:
            token = encode_token({"host": "", "extras": last - registered + 1})
    return pb.AuditResponse(report=msg, next_page_token=token)
