"""`cpucompat whatif`: what adding or removing hosts would do to a cluster, stored nowhere.

Dumps are read and models resolved here, like `audit`'s extra hosts, and sent as raw
captures for the coordinator to decode; the coordinator answers from the rules its
stored state is kept by (`coordinator/whatif.py`).
"""

from __future__ import annotations

import argparse
from typing import Any

from cpucompat.agent.cli.common import (
    EXIT_NO,
    EXIT_OK,
    MORE,
    CliError,
    file_label,
    more,
    print_json,
    table,
    wrap,
)

from .client import add_client_options, channel_for
from .compat_cmd import _proto_refs, _vendor_option, add_hypervisor_option, hypervisor_wire
from .refs import check_baseline, is_offline
from .whatif_pages import call_whatif

SHOWN_PAIRS = 5

DESCRIPTION = (
    "What adding hosts (dump:PATH of hardware not racked yet, model:NAME) to a cluster or "
    "removing some of its hosts would do: the cluster's offline action, its common baseline "
    "and every registered VM's own action before and after, which VMs would lose SAVE, and "
    "which would regain it after a power cycle (a VM booted on a host boots there again; "
    "one under a baseline boots under the new cluster baseline, or the pinned one). As for "
    "the stored actions, hosts in maintenance have no say and a stale host refuses. Nothing "
    "is stored. Exit 0 when no VM would lose SAVE and the cluster's action would not leave "
    "SAVE, 3 when something would lose SAVE, 2 for an unknown cluster or host or a bad dump."
)


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=DESCRIPTION)
    p.add_argument("--cluster", required=True, help="the cluster to change")
    p.add_argument(
        "--add",
        action="append",
        default=[],
        metavar="SPEC",
        help="add a host: dump:PATH (a CPUID dump file) or model:NAME / level:x86-64-vN[@vendor]; "
        "repeat for several",
    )
    p.add_argument(
        "--remove",
        action="append",
        default=[],
        metavar="HOST",
        help="take a registered host of the cluster out; repeat for several",
    )
    _vendor_option(p)
    add_hypervisor_option(p)
    add_client_options(p)
    p.set_defaults(run=run)


def _label(name: str) -> str:
    """A dump by its file name (the full path is in --json); hosts and models as they are."""
    return file_label(name) if name.startswith("dump:") else name


def _action_cell(doc: dict[str, Any] | None) -> str:
    return "-" if doc is None else str(doc["offline_action"])


def _baseline_cell(state: dict[str, Any]) -> str:
    base = state.get("baseline")
    if base is None:
        return f"none ({state.get('baseline_note') or 'no host'})"
    return (
        f"{base['feature_count']} features, level {base.get('x86_64_level') or 'none'}, "
        f"{base.get('microarchitecture') or 'no named microarchitecture'}"
    )


def _why_not_save(policy: dict[str, Any]) -> list[str]:
    """What keeps the cluster's action after the change from SAVE, dumps by file name."""
    if policy["action"] == "SAVE":
        return []
    pairs = policy.get("blocking_pairs") or []
    if not pairs:
        return [wrap(f"After: {policy['reason']}")]
    out = [f"After, pairs that force SHUTDOWN: {len(pairs)}"]
    for pair in pairs[:SHOWN_PAIRS]:
        codes = ", ".join(r["code"] for r in pair.get("reasons", []))
        source, target = _label(pair["source"]), _label(pair["target"])
        out.append(wrap(f"{source} -> {target}: {codes}", indent="  "))
    if len(pairs) > SHOWN_PAIRS:
        out.append(f"  {MORE.format(n=len(pairs) - SHOWN_PAIRS)} (see --json)")
    return out


def render(doc: dict[str, Any]) -> str:
    from cpucompat.coordinator.domain.vm_action import listed

    change = [f"add {_label(a)}" for a in doc["added"]]
    change += [f"remove {r}" for r in doc["removed"]]
    before, after = doc["before"], doc["after"]
    out = [
        wrap(f"What if cluster {doc['cluster']}: {', '.join(change)} (nothing is stored)"),
        f"Decided by: {doc.get('view') or 'feature classes'}",
        "",
        table(
            ("", "BEFORE", "AFTER"),
            [
                ("Cluster action", before["action"], after["action"]),
                ("Hosts with a say", len(before["hosts"]), len(after["hosts"])),
                ("Baseline", _baseline_cell(before), _baseline_cell(after)),
            ],
            flex=(1, 2),
        ),
    ]
    out += _why_not_save(after["policy"])
    gained, lost = doc["baseline_gains"], doc["baseline_loses"]
    for verb, features in (("gains", gained), ("loses", lost)):
        if features:
            out.append(wrap(f"The baseline {verb} {len(features)} features: {more(features, 10)}"))
    if doc.get("pinned_baseline"):
        below = after["below_pinned_baseline"]
        out.append(
            wrap(
                f"Pinned baseline ({doc['pinned_baseline']}): below it after the change: "
                + (", ".join(_label(h) for h in below) if below else "no host")
            )
        )
    out.append("")
    vms = doc["vms"]
    if not vms:
        out.append("No VM is registered in this cluster: the cluster's action applies to all.")
    else:
        out.append(
            table(
                ("VM", "BEFORE", "AFTER", "REFUSED BY (AFTER)", "AFTER POWER CYCLE"),
                [
                    (
                        v["vm"],
                        _action_cell(v["before"]),
                        _action_cell(v["after"]),
                        listed(
                            [_label(h) for h in v["after"]["refusing_hosts"]],
                            v["after"]["refusing_hosts_total"],
                        )
                        or "-",
                        f"{_action_cell(v['after_power_cycle'])} ({v['power_cycle_into']})",
                    )
                    for v in vms
                ],
                flex=(3, 4),
            )
        )
        out.append("")
        lose = doc["lose_save"]
        out.append(
            wrap(f"Would lose SAVE: {', '.join(lose)}") if lose else "No VM would lose SAVE."
        )
        regain = doc["regain_save_after_power_cycle"]
        if regain:
            out.append(wrap(f"Would regain SAVE after a power cycle: {', '.join(regain)}"))
            at_once = [v for v in doc["regain_save"] if v in regain]
            if at_once:
                out.append(wrap(f"  of which SAVE without one: {', '.join(at_once)}"))
    if doc["cluster_action_worse"]:
        out.append("The cluster's action would leave SAVE (for VMs nobody registered).")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    from cpucompat.coordinator.convert import whatif_from_proto
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    if not args.add and not args.remove:
        raise CliError("nothing to change: give --add dump:PATH|model:NAME and/or --remove HOST")
    for arg in args.add:
        if not is_offline(arg):
            raise CliError(
                f"--add {arg}: give dump:PATH or model:NAME (a registered host is in a cluster "
                "already; to move one, --remove it from its cluster and --add its dump)"
            )
        check_baseline(arg, args.vendor)
    request = pb.WhatIfRequest(
        cluster=args.cluster,
        add=_proto_refs(args.add, args.vendor),  # dumps read here: progress on a terminal
        remove=args.remove,
        hypervisor=hypervisor_wire(args),
    )
    stub = pb_grpc.DecisionServiceStub(channel_for(args))
    report = whatif_from_proto(call_whatif(args, stub, request))  # every page
    doc = report.to_json()
    if args.json:
        print_json(doc)
    else:
        print(render(doc))
    return EXIT_NO if report.worse else EXIT_OK
