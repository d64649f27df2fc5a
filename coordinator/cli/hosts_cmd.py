"""`cpucompat hosts`, `cpucompat host show|history|remove`, `cpucompat events`."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from cpucompat.agent.cli.common import (
    EXIT_OK,
    MORE,
    CliError,
    file_label,
    key_values,
    more,
    number_in,
    print_json,
    safe,
    table,
)

from .client import add_client_options, call, call_pages, channel_for, to_doc

MAX_EVENTS = 100_000  # the coordinator's own cap on one ListEvents answer


def _when(ts: Any) -> str:
    if not ts.seconds and not ts.nanos:
        return "-"
    return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status(value: int) -> str:
    from cpucompat.agent.wire import enum_name
    from cpucompat.v1 import coordinator_service_pb2 as pb

    return enum_name(pb.HostStatus, value).lower()


def _state(h: Any) -> str:
    """The status, and maintenance when the host is in it."""
    if not h.maintenance:
        return _status(h.status)
    return _status(h.status) + (", maintenance ending" if h.maintenance_ending else ", maintenance")


def add_hosts_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description="List the hosts the coordinator knows.")
    p.add_argument("--cluster", help="only this cluster")
    add_client_options(p)
    p.set_defaults(run=run_hosts)


def run_hosts(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    stub = pb_grpc.QueryServiceStub(channel_for(args))
    hosts = call_pages(
        args, stub.ListHosts, pb.ListHostsRequest(cluster=args.cluster or ""), "hosts"
    )
    if args.json:
        print_json([to_doc(h) for h in hosts])
        return EXIT_OK
    rows = [
        (
            h.host_id + (" (replayed)" if h.replayed else ""),
            h.cluster,
            _state(h),
            h.summary.brand or h.summary.vendor,
            h.summary.x86_64_level.removeprefix("x86-64-") or "-",
            h.fingerprint[:12],
            _when(h.last_seen),
        )
        for h in hosts
    ]
    print(
        table(
            (
                "HOST",
                "CLUSTER",
                "STATUS",
                "PROCESSOR",
                "LEVEL",
                "FINGERPRINT",
                "LAST SEEN",
            ),
            rows,
            flex=(3,),
        )
    )
    return EXIT_OK


def add_host_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name, help=help_text, description="Show, trace or remove one registered host."
    )
    hs = p.add_subparsers(dest="host_command", metavar="ACTION", required=True)
    show = hs.add_parser("show", help="the host's current profile")
    show.add_argument("host_id", metavar="ID")
    show.add_argument("--raw", action="store_true", help="include the raw leaves in --json")
    add_client_options(show)
    show.set_defaults(run=run_show)
    hist = hs.add_parser("history", help="every profile version the host reported, with changes")
    hist.add_argument("host_id", metavar="ID")
    add_client_options(hist)
    hist.set_defaults(run=run_history)
    rm = hs.add_parser(
        "remove",
        help="forget a decommissioned host (administrator); refused while its agent is online",
    )
    rm.add_argument("host_id", metavar="ID")
    rm.add_argument("--force", action="store_true", help="remove even while its agent reports")
    add_client_options(rm)
    rm.set_defaults(run=run_remove)
    mt = hs.add_parser(
        "maintenance",
        help="put a host in maintenance or end it (administrator)",
        description=(
            "A host in maintenance is no fail-over target, counts towards no VM's or cluster's "
            "offline action, and its agent may stop without the cluster going stale. `off` "
            "takes effect at the host's next fresh report."
        ),
    )
    mt.add_argument("host_id", metavar="ID")
    mt.add_argument("state", choices=("on", "off"), type=str.lower, metavar="on|off")
    mt.add_argument("--reason", default="", help="why, recorded in the event log")
    add_client_options(mt)
    mt.set_defaults(run=run_maintenance)


def run_show(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    stub = pb_grpc.QueryServiceStub(channel_for(args))
    r = call(args, stub.GetHost, pb.GetHostRequest(host_id=args.host_id, include_raw=args.raw))
    if args.json:
        doc = {"host": to_doc(r.host), "profile": to_doc(r.profile)}
        if args.raw:
            doc["raw"] = to_doc(r.raw)
        print_json(doc)
        return EXIT_OK
    h, p = r.host, r.profile
    rows = [
        ("Host", h.host_id + (" (replayed dump)" if h.replayed else "")),
        ("Cluster", h.cluster),
        ("Status", f"{_status(h.status)}, last seen {_when(h.last_seen)}"),
        ("Maintenance", _maintenance_line(h)),
        ("Agent", f"{h.agent_address or '-'} (version {h.agent_version or '?'})"),
        (
            "Processor",
            f"{p.brand} ({p.vendor}, family {p.family} model {p.model} stepping {p.stepping})",
        ),
        (
            "x86-64 level",
            (p.x86_64_level or "none")
            + (f", nearest microarchitecture {p.microarchitecture}" if p.microarchitecture else ""),
        ),
        ("Hypervisor", p.hypervisor or "none"),
        (
            "Address bits",
            f"{p.address_sizes.physical_bits} physical, {p.address_sizes.linear_bits} linear"
            + (
                f", {p.address_sizes.guest_physical_bits} guest-physical"
                if p.address_sizes.guest_physical_bits
                else ""
            ),
        ),
        ("XSAVE", f"0x{p.xsave.supported_mask:x}"),
        ("TSC", _tsc_line(p)),
        ("Source", p.source + (f" ({file_label(p.origin)})" if p.origin else "")),
        ("Profile version", f"{h.profile_version}, fingerprint {h.fingerprint[:16]}"),
        ("Features", f"{len(p.features)}: {' '.join(p.features)}"),
        *_offer_rows(p),
    ]
    print(key_values(rows))
    return EXIT_OK


def _tsc_line(p: Any) -> str:
    """The TSC a guest gets on the host: rate with its source, and scaling."""
    t = p.tsc
    rate = f"{t.hz / 1e6:.3f} MHz ({t.source})" if t.hz else f"rate unknown ({t.missing or '?'})"
    if not t.HasField("scaling"):
        scaling = "scaling unknown"
    else:
        scaling = "can scale" if t.scaling else "cannot scale"
    return f"{'invariant' if p.invariant_tsc else 'not invariant'}, {rate}, {scaling}"


def _offer_rows(p: Any) -> list[tuple[str, str]]:
    """The hypervisor offer lines of `host show`: what guests on this host get."""
    if not p.HasField("hypervisor_offer"):
        return [("Hypervisor offer", f"none ({p.hypervisor_offer_missing or 'not reported'})")]
    o = p.hypervisor_offer
    msrs = " ".join(f"{m.name or hex(m.index)}=0x{m.value:x}" for m in o.msrs) or "none"
    return [
        (
            "Hypervisor offer",
            f"{o.kind} API {o.api_version}"
            + (" (replayed)" if o.replayed else "")
            + f", fingerprint {o.fingerprint[:16]}",
        ),
        ("Offer features", f"{len(o.features)}: {' '.join(o.features)}"),
        ("Offer MSRs", msrs),
    ]


def _offer_change(v: Any) -> str:
    parts = [f"+{f}" for f in v.offer_features_gained] + [f"-{f}" for f in v.offer_features_lost]
    return " ".join(parts) or "-"


def run_history(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    stub = pb_grpc.QueryServiceStub(channel_for(args))
    request = pb.GetHostHistoryRequest(host_id=args.host_id)
    versions = call_pages(args, stub.GetHostHistory, request, "versions")
    if args.json:
        print_json(to_doc(pb.GetHostHistoryResponse(host_id=args.host_id, versions=versions)))
        return EXIT_OK
    rows = [
        (
            v.version,
            _when(v.recorded_at),
            v.fingerprint[:12],
            more(v.features_gained, 40) or "-",
            more(v.features_lost, 40) or "-",
            v.offer_fingerprint[:12] or "-",
            _offer_change(v),
        )
        for v in versions
    ]
    print(
        table(
            ("VERSION", "RECORDED", "FINGERPRINT", "GAINED", "LOST", "OFFER", "OFFER CHANGE"),
            rows,
        )
    )
    return EXIT_OK


def _maintenance_line(h: Any) -> str:
    if not h.maintenance:
        return "off"
    state = "ending at its next report" if h.maintenance_ending else "on"
    return state + (f" ({h.maintenance_reason})" if h.maintenance_reason else "")


def run_maintenance(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    stub = pb_grpc.QueryServiceStub(channel_for(args))
    request = pb.SetMaintenanceRequest(
        host_id=args.host_id, on=args.state == "on", reason=args.reason
    )
    h = call(args, stub.SetMaintenance, request).host
    if args.json:
        print_json(to_doc(h))
    elif not h.maintenance:
        print(f"host {safe(h.host_id)} is not in maintenance")
    elif h.maintenance_ending:
        print(
            f"host {safe(h.host_id)}: maintenance ends at its next fresh report (until then it "
            "is no fail-over target and counts towards no offline action)"
        )
    else:
        print(
            f"host {safe(h.host_id)} is in maintenance: no fail-over target, counts towards no "
            "offline action, its agent may stop"
        )
    return EXIT_OK


def run_remove(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    stub = pb_grpc.QueryServiceStub(channel_for(args))
    r = call(args, stub.RemoveHost, pb.RemoveHostRequest(host_id=args.host_id, force=args.force))
    if args.json:
        print_json(to_doc(r))
    else:
        print(f"removed host {safe(r.host.host_id)} from cluster {safe(r.host.cluster)}")
    return EXIT_OK


def parse_since(text: str) -> datetime:
    """An ISO time (2026-11-25T10:00) or a relative age (90s, 15m, 2h, 7d)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        if re.fullmatch(r"[0-9]+(\.[0-9]+)?[smhd]", text):
            return datetime.now(UTC) - timedelta(seconds=float(text[:-1]) * units[text[-1]])
        value = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise CliError(
            f"--since {text!r}: use an ISO time (2026-11-25T10:00) or an age (15m, 2h, 7d)"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_events_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name, help=help_text, description="Show the coordinator's event log, oldest first."
    )
    p.add_argument("--cluster", help="only this cluster")
    p.add_argument(
        "--since", metavar="T", help="only events since T (ISO time, or an age: 15m, 2h, 7d)"
    )
    p.add_argument(
        "--limit",
        type=number_in(1, MAX_EVENTS, integer=True),
        default=1000,
        help=f"at most N events, 1-{MAX_EVENTS} (newest kept)",
    )
    add_client_options(p)
    p.set_defaults(run=run_events)


def run_events(args: argparse.Namespace) -> int:
    from google.protobuf.timestamp_pb2 import Timestamp

    from cpucompat.agent.wire import enum_name
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    request = pb.ListEventsRequest(
        cluster=args.cluster or "", limit=min(args.limit + 1, MAX_EVENTS)
    )
    if args.since:
        ts = Timestamp()
        ts.FromDatetime(parse_since(args.since))
        request.since.CopyFrom(ts)
    stub = pb_grpc.QueryServiceStub(channel_for(args))
    events = sorted(call_pages(args, stub.ListEvents, request, "events"), key=lambda e: e.id)
    cut = max(0, len(events) - args.limit)
    events = events[cut:]  # the newest --limit events, oldest first
    older, exact = 0, True
    if cut:  # count what was left out, so no output ends silently short
        request.limit = MAX_EVENTS
        request.page_token = ""
        total = len(call_pages(args, stub.ListEvents, request, "events"))
        older = max(cut, total - args.limit)
        exact = total < MAX_EVENTS
    if args.json:
        # `more`: earlier events left out by --limit (a lower bound when `more_exact` is false).
        print_json({"events": [to_doc(e) for e in events], "more": older, "more_exact": exact})
        return EXIT_OK
    rows = [
        (
            _when(e.time),
            e.cluster,
            enum_name(pb.EventKind, e.kind).lower(),
            e.message,
        )
        for e in events
    ]
    print(table(("TIME", "CLUSTER", "KIND", "WHAT"), rows))
    if older:  # last, where the eye lands: the list above is not the whole log
        at_least = "" if exact else "at least "
        print(
            f"{MORE.format(n=f'{at_least}{older}')} earlier events (raise --limit or use --since)"
        )
    return EXIT_OK
