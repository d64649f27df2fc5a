"""`cpucompat baseline`: the features every host of a cluster (or given hosts) can give, to apply.

The baseline is the audit's common baseline (`domain.audit`), so it comes from the
one decision path: offline for dumps and models, through the coordinator's Audit
RPC for a cluster or registered hosts (the coordinator already sends the whole
report; no second RPC computes the same thing). Writing it out as libvirt, QEMU,
Hyper-V or JSON is `domain.cluster_baseline`, here in the CLI.
"""

from __future__ import annotations

import argparse
from typing import Any

from cpucompat.agent.cli.common import EXIT_OK, CliError, print_json

from .audit_pages import call_audit
from .client import add_client_options, channel_for
from .compat_cmd import HOST_ARG_HELP, add_hypervisor_option, hypervisor_of, hypervisor_wire
from .refs import check_baseline, domain_ref, is_offline, proto_ref

FORMATS = ("json", "libvirt", "qemu", "hyperv")


def add_baseline_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "The guest-visible features every host of --cluster (and/or the given hosts, dumps "
            "and models) can give a VM, written as a libvirt <cpu>, a QEMU -cpu value, Hyper-V "
            "advice or JSON. A VM booted under it can be saved on any member and restored on "
            "any other. Dumps and models alone run offline."
        ),
    )
    p.add_argument("hosts", nargs="*", metavar="SOURCE", help=HOST_ARG_HELP)
    p.add_argument("--cluster", help="every registered host of this cluster")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="json (default): features, XSAVE components, width, nearest models; libvirt: a "
        "<cpu mode='custom'> element; qemu: the -cpu value; hyperv: Set-VMProcessor advice",
    )
    p.add_argument("--vendor", help="vendor for level:/generic model: sources")
    add_hypervisor_option(p)
    add_client_options(p)
    p.set_defaults(run=run_baseline)


def _report(args: argparse.Namespace) -> Any:
    """The audit report the baseline comes from, offline or from the coordinator."""
    hypervisor = hypervisor_of(args)
    if not args.cluster and all(is_offline(a) for a in args.hosts):
        from cpucompat.coordinator.compatibility import audit_offline
        from cpucompat.coordinator.domain.audit import AuditError

        try:
            return audit_offline([domain_ref(a, args.vendor) for a in args.hosts], hypervisor)
        except (AuditError, ValueError) as exc:
            raise CliError(str(exc)) from None
    from cpucompat.coordinator.convert import audit_from_proto
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    stub = pb_grpc.DecisionServiceStub(channel_for(args))
    request = pb.AuditRequest(
        cluster=args.cluster or "",
        extra_hosts=[proto_ref(a, args.vendor) for a in args.hosts],
        hypervisor=hypervisor_wire(args),
    )
    return audit_from_proto(call_audit(args, stub, request))


def run_baseline(args: argparse.Namespace) -> int:
    from cpucompat.coordinator.domain.cluster_baseline import (
        ClusterBaseline,
        ClusterBaselineError,
        hyperv_modes,
        render_hyperv,
        render_libvirt,
        render_qemu,
    )

    if not args.cluster and not args.hosts:
        raise CliError("no hosts: give --cluster C and/or sources (dump:PATH, model:NAME, ids)")
    for arg in args.hosts:
        check_baseline(arg, args.vendor)
    if args.json and args.format not in (None, "json"):
        raise CliError(f"--json and --format {args.format} ask for two outputs; give one")
    fmt = args.format or "json"
    try:
        baseline = ClusterBaseline.from_audit(_report(args))
        if fmt == "json":
            doc = baseline.to_json()
            doc["hyperv"] = hyperv_modes(baseline)
            print_json(doc)
        elif fmt == "hyperv":
            print(render_hyperv(baseline), end="")
        else:
            fit = baseline.nearest_models(limit=1)[0]
            if fmt == "libvirt":
                print(render_libvirt(baseline, fit), end="")
            else:
                print(render_qemu(baseline, fit))
            import sys

            if fit.not_expressible:
                print(
                    f"note: QEMU {_qemu_version()} has no name for "
                    f"{' '.join(sorted(fit.not_expressible))}: left out (the guest sees less)",
                    file=sys.stderr,
                )
            if fit.not_offered:
                print(
                    f"note: no KVM guest sees {' '.join(sorted(fit.not_offered))} (Linux "
                    "kvm_set_cpu_caps): left out, QEMU would refuse to start a VM requiring it",
                    file=sys.stderr,
                )
    except ClusterBaselineError as exc:
        raise CliError(str(exc)) from None
    return EXIT_OK


def _qemu_version() -> str:
    from cpucompat.coordinator.domain.qemu_models import table

    return table().qemu_version
