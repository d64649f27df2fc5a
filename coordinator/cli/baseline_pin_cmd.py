"""`cpucompat cluster baseline pin|unpin|show`: a cluster's pinned baseline (the EVC idea, exact)."""

from __future__ import annotations

import argparse
from typing import Any

from cpucompat.agent.cli.common import EXIT_NO, EXIT_OK, more, print_json, table, wrap

from .client import add_client_options, call, channel_for

BELOW = "BELOW_BASELINE"


def add_baseline_pin_parsers(cs: Any) -> None:
    """``cluster baseline ...`` under the ``cluster`` command's subparsers."""
    p = cs.add_parser(
        "baseline",
        help="pin, unpin or show the cluster's baseline (VMs registered with --baseline cluster "
        "boot under it; hosts that cannot give it are BELOW_BASELINE)",
    )
    bs = p.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)
    pin = bs.add_parser("pin", help="freeze the baseline (administrators only)")
    pin.add_argument("cluster", metavar="CLUSTER")
    pin.add_argument(
        "--from",
        dest="source",
        default="current",
        metavar="current|NAME",
        help="current (default): the common baseline of the cluster's hosts now; or a named "
        "baseline such as model:qemu/EPYC-Milan",
    )
    add_client_options(pin)
    pin.set_defaults(run=run_pin)
    unpin = bs.add_parser("unpin", help="lift the pin (administrators only)")
    unpin.add_argument("cluster", metavar="CLUSTER")
    add_client_options(unpin)
    unpin.set_defaults(run=run_unpin)
    show = bs.add_parser(
        "show", help="the pin and every host against it (exit 3 when a host is below it)"
    )
    show.add_argument("cluster", metavar="CLUSTER")
    add_client_options(show)
    show.set_defaults(run=run_show)


def _stub(args: argparse.Namespace) -> Any:
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    return pb_grpc.BaselineServiceStub(channel_for(args))


def pin_doc(pin: Any) -> dict[str, Any]:
    from cpucompat.coordinator.domain.requirement import component_names

    return {
        "cluster": pin.cluster,
        "source": pin.source,
        "vendor": pin.vendor,
        "features": list(pin.features),
        "xsave_components": list(component_names(pin.xsave_mask)),
        "physical_bits": pin.physical_bits or None,
        "members": list(pin.members),
        "pinned_at": pin.pinned_at.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pinned_by": pin.pinned_by,
        "hosts": [
            {
                "host": h.host_id,
                "status": BELOW if h.below_baseline else "OK",
                "missing": list(h.missing),
                "summary": h.summary,
            }
            for h in pin.hosts
        ],
    }


def _render(doc: dict[str, Any]) -> str:
    lines = [
        wrap(
            f"Cluster {doc['cluster']}: baseline pinned from {doc['source']} at "
            f"{doc['pinned_at']}" + (f" by {doc['pinned_by']}" if doc["pinned_by"] else "")
        ),
        wrap(f"{len(doc['features'])} features: {more(doc['features'], 16)}", indent="  "),
    ]
    if doc["hosts"]:
        lines.append(
            table(
                ("HOST", "STATUS", "MISSING"),
                [(h["host"], h["status"], more(h["missing"], 8) or "-") for h in doc["hosts"]],
            )
        )
    return "\n".join(lines)


def _print(args: argparse.Namespace, doc: dict[str, Any]) -> None:
    if args.json:
        print_json(doc)
    else:
        print(_render(doc))


def run_pin(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    request = pb.PinBaselineRequest(cluster=args.cluster, source=args.source)
    _print(args, pin_doc(call(args, _stub(args).PinBaseline, request).baseline))
    return EXIT_OK


def run_unpin(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    response = call(args, _stub(args).UnpinBaseline, pb.UnpinBaselineRequest(cluster=args.cluster))
    doc = pin_doc(response.baseline)
    if args.json:
        print_json(doc)
    else:
        print(f"Cluster {doc['cluster']}: baseline unpinned (it was pinned from {doc['source']})")
    return EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    response = call(
        args, _stub(args).GetPinnedBaseline, pb.GetPinnedBaselineRequest(cluster=args.cluster)
    )
    if not response.pinned:
        if args.json:
            print_json({"cluster": args.cluster, "pinned": False})
        else:
            print(f"Cluster {args.cluster} has no pinned baseline")
        return EXIT_OK
    doc = pin_doc(response.baseline)
    _print(args, doc)
    return EXIT_NO if any(h["status"] == BELOW for h in doc["hosts"]) else EXIT_OK
