"""`cpucompat cluster admit|revoke|admissions`: which hosts may join which cluster."""

from __future__ import annotations

import argparse
from typing import Any

from cpucompat.agent.cli.common import EXIT_OK, print_json, table

from .client import add_client_options, call, call_pages, channel_for


def add_cluster_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Admissions: which hosts may join which cluster. With the coordinator's "
            "--require-admission (the default under mutual TLS) a host reporting into a "
            "cluster it was not admitted to is refused and stored nowhere. HOST is a host id "
            "or an fnmatch pattern such as 'node-*' (quote it from the shell). Administrators "
            "only."
        ),
    )
    cs = p.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    admit = cs.add_parser("admit", help="let hosts (ids or patterns) join a cluster")
    admit.add_argument("cluster", metavar="CLUSTER")
    admit.add_argument("hosts", metavar="HOST", nargs="+")
    add_client_options(admit)
    admit.set_defaults(run=run_admit)
    revoke = cs.add_parser(
        "revoke",
        help="withdraw admissions exactly as admitted; a revoked member's reports are refused "
        "and it goes stale",
    )
    revoke.add_argument("cluster", metavar="CLUSTER")
    revoke.add_argument("hosts", metavar="HOST", nargs="+")
    add_client_options(revoke)
    revoke.set_defaults(run=run_revoke)
    ls = cs.add_parser("admissions", help="list admissions")
    ls.add_argument("--cluster", help="one cluster (default: all)")
    add_client_options(ls)
    ls.set_defaults(run=run_list)
    from .baseline_pin_cmd import add_baseline_pin_parsers

    add_baseline_pin_parsers(cs)


def _stub(args: argparse.Namespace) -> Any:
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    return pb_grpc.AdmissionServiceStub(channel_for(args))


def _doc(item: Any) -> dict[str, Any]:
    return {
        "cluster": item.cluster,
        "pattern": item.pattern,
        "admitted_at": item.admitted_at.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "admitted_by": item.admitted_by,
    }


def _print(args: argparse.Namespace, items: list[Any], empty: str) -> None:
    docs = [_doc(i) for i in items]
    if args.json:
        print_json(docs)
    elif not docs:
        print(empty)
    else:
        print(
            table(
                ("CLUSTER", "HOST OR PATTERN", "ADMITTED (UTC)", "BY"),
                [
                    (d["cluster"], d["pattern"], d["admitted_at"], d["admitted_by"] or "-")
                    for d in docs
                ],
            )
        )


def run_admit(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    response = call(
        args,
        _stub(args).AdmitHosts,
        pb.AdmitHostsRequest(cluster=args.cluster, patterns=args.hosts),
    )
    _print(args, list(response.admissions), "")
    return EXIT_OK


def run_revoke(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    response = call(
        args,
        _stub(args).RevokeHosts,
        pb.RevokeHostsRequest(cluster=args.cluster, patterns=args.hosts),
    )
    _print(args, list(response.admissions), f"cluster {args.cluster} admits no host now")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    items = call_pages(
        args,
        _stub(args).ListAdmissions,
        pb.ListAdmissionsRequest(cluster=args.cluster or ""),
        "admissions",
    )
    _print(args, items, "no admissions: with --require-admission no host may join any cluster")
    return EXIT_OK
