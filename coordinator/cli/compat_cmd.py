"""`cpucompat check`, `cpucompat targets`, `cpucompat audit`: the compatibility questions.

Dumps and models are resolved right here; registered hosts go to the
coordinator. `check` and `audit` with only dumps and models run offline.
"""

from __future__ import annotations

import argparse
from typing import Any

from cpucompat.agent.cli.common import (
    EXIT_NO,
    EXIT_OK,
    MORE,
    CliError,
    Progress,
    file_label,
    more,
    print_json,
    table,
    wrap,
)

from .audit_pages import call_audit
from .client import add_client_options, call, call_paged, channel_for
from .refs import (
    check_baseline,
    domain_ref,
    is_offline,
    proto_ref,
    read_libvirt_xml,
    verdict_doc,
)

LIBVIRT_PREFIX = "libvirt:"

HOST_ARG_HELP = (
    "a registered host id, dump:PATH (a CPUID dump file) or model:NAME / level:x86-64-vN[@vendor]"
)


def _vendor_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--vendor",
        help="vendor for level:/generic model: baselines (GenuineIntel, AuthenticAMD, or intel/amd)",
    )


def add_hypervisor_option(p: argparse.ArgumentParser) -> None:
    """``--hypervisor``: which rules say what a guest sees when there is no live offer."""
    p.add_argument(
        "--hypervisor",
        choices=("generic", "kvm"),
        default="generic",
        help="generic (default): the feature classes; kvm: also drop the bits no KVM guest "
        "ever sees and add the ones KVM emulates everywhere (a table from Linux's "
        "kvm_set_cpu_caps). Applies to sides without a hypervisor offer: a registered host "
        "or a recorded dump with an offer is decided by its offer",
    )


def hypervisor_of(args: argparse.Namespace) -> Any:
    """The `Hypervisor` the arguments ask for."""
    from cpucompat.coordinator.domain.kvm_offerable import Hypervisor

    return Hypervisor(args.hypervisor)


def hypervisor_wire(args: argparse.Namespace) -> int:
    """The request's ``hypervisor`` field for the arguments."""
    from cpucompat.coordinator.convert import hypervisor_to_proto

    return hypervisor_to_proto(hypervisor_of(args))


# ---- check --------------------------------------------------------------------------------


def add_check_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "May a VM booted on SOURCE have its saved state restored on TARGET? Directional. "
            "Exit 0 when compatible, 3 when refused."
        ),
    )
    p.add_argument(
        "source",
        metavar="SOURCE",
        help=HOST_ARG_HELP + ", or libvirt:FILE (a domain's virsh dumpxml; offline)",
    )
    p.add_argument("target", metavar="TARGET", help=HOST_ARG_HELP)
    p.add_argument(
        "--boot-host",
        metavar="HOST",
        help="for libvirt:FILE with <cpu mode='host-passthrough'> or 'host-model': the host it "
        "booted on, dump:PATH or model:NAME",
    )
    _vendor_option(p)
    add_hypervisor_option(p)
    add_client_options(p)
    p.set_defaults(run=run_check)


def render_verdict(source: str, target: str, doc: dict[str, Any]) -> str:
    verdict = "COMPATIBLE" if doc["compatible"] else "INCOMPATIBLE"
    lines = [wrap(f"{file_label(source)} -> {file_label(target)}: {verdict}")]
    for r in doc["reasons"]:
        lines.append(wrap(f"{r['code']}: {r['detail']}", indent="  "))
        if r.get("features"):
            lines.append(wrap(" ".join(r["features"]), indent="    "))
    for w in doc["warnings"]:
        lines.append(wrap(f"warning {w['code']}: {w['detail']}", indent="  "))
    lines.append(f"  decided by: {doc.get('view') or 'feature classes'}")
    return "\n".join(lines)


def _check_domain(args: argparse.Namespace, hypervisor: Any) -> dict[str, Any]:
    """``check libvirt:FILE TARGET``: the domain's <cpu> against a dump or model, offline."""
    from cpucompat.coordinator.compatibility import CompatibilityService, domain_side
    from cpucompat.coordinator.domain.compat import check
    from cpucompat.coordinator.domain.libvirt_cpu import parse_domain_cpu
    from cpucompat.coordinator.domain.sides import requirement_of_domain

    path = args.source.removeprefix(LIBVIRT_PREFIX)
    if not path:
        raise CliError("libvirt: needs a file path, e.g. libvirt:/tmp/vm.xml (virsh dumpxml VM)")
    if not is_offline(args.target):
        raise CliError(
            f"{args.target!r} is a registered host id: libvirt:FILE is checked offline against "
            "dump:PATH or model:NAME (register the VM with `vm register --libvirt-xml` to check "
            "it against registered hosts)"
        )
    if args.boot_host is not None and not is_offline(args.boot_host):
        raise CliError(
            f"--boot-host {args.boot_host!r}: offline, the boot host is dump:PATH or model:NAME"
        )
    if args.boot_host is not None:
        check_baseline(args.boot_host, args.vendor)
    # a LibvirtCpuError or a bad dump is an input error: exit 2 (agent/errors.py)
    cpu = parse_domain_cpu(read_libvirt_xml(path), path)
    boot = None
    if args.boot_host is not None:
        boot = domain_side(domain_ref(args.boot_host, args.vendor))
    label = f"{LIBVIRT_PREFIX}{path}"
    requirement = requirement_of_domain(cpu, boot, label, hypervisor=hypervisor)
    decisions = CompatibilityService(registry=None, hypervisor=hypervisor)  # type: ignore[arg-type]
    return check(requirement, decisions.target(domain_ref(args.target, args.vendor))).to_json()


def run_check(args: argparse.Namespace) -> int:
    if args.source.startswith(LIBVIRT_PREFIX):
        check_baseline(args.target, args.vendor)
        doc = _check_domain(args, hypervisor_of(args))
        if args.json:
            print_json(doc)
        else:
            print(render_verdict(args.source, args.target, doc))
        return EXIT_OK if doc["compatible"] else EXIT_NO
    if args.boot_host is not None:
        raise CliError("--boot-host applies to a libvirt:FILE source only")
    for arg in (args.source, args.target):
        check_baseline(arg, args.vendor)
    offline = is_offline(args.source) and is_offline(args.target)
    hypervisor = hypervisor_of(args)
    if offline:
        from cpucompat.coordinator.compatibility import CompatibilityService

        decisions = CompatibilityService(registry=None, hypervisor=hypervisor)  # type: ignore[arg-type]
        doc = decisions.check(
            domain_ref(args.source, args.vendor), domain_ref(args.target, args.vendor)
        ).to_json()
    else:
        from cpucompat.v1 import coordinator_service_pb2 as pb
        from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

        stub = pb_grpc.DecisionServiceStub(channel_for(args))
        request = pb.CheckRequest(
            source=proto_ref(args.source, args.vendor),
            target=proto_ref(args.target, args.vendor),
            hypervisor=hypervisor_wire(args),
        )
        doc = verdict_doc(call(args, stub.Check, request).verdict)
    if args.json:
        print_json(doc)
    else:
        print(render_verdict(args.source, args.target, doc))
    return EXIT_OK if doc["compatible"] else EXIT_NO


# ---- targets ------------------------------------------------------------------------------


def add_targets_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Which registered hosts can take a VM booted on SOURCE, and why the others cannot. "
            "Exit 0 when at least one host accepts, 3 when none does."
        ),
    )
    p.add_argument("source", metavar="SOURCE", help=HOST_ARG_HELP)
    p.add_argument("--cluster", help="only hosts of this cluster")
    _vendor_option(p)
    add_hypervisor_option(p)
    add_client_options(p)
    p.set_defaults(run=run_targets)


def run_targets(args: argparse.Namespace) -> int:
    from cpucompat.agent.wire import enum_name
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    check_baseline(args.source, args.vendor)
    stub = pb_grpc.DecisionServiceStub(channel_for(args))
    request = pb.TargetsRequest(
        source=proto_ref(args.source, args.vendor),
        cluster=args.cluster or "",
        hypervisor=hypervisor_wire(args),
    )
    response, targets = call_paged(args, stub.Targets, request, "targets")
    rows = [
        {
            "host": t.host_id,
            "status": enum_name(pb.HostStatus, t.status).lower(),
            **verdict_doc(t.verdict),
        }
        for t in sorted(targets, key=lambda t: (not t.verdict.compatible, t.host_id))
    ]
    accepted = [r for r in rows if r["compatible"]]
    if args.json:
        print_json(
            {
                "source": response.source_label,
                "accepted": [r["host"] for r in accepted],
                "targets": rows,
            }
        )
    else:
        label = file_label(response.source_label)
        print(
            wrap(f"Hosts that can restore a VM booted on {label}: {len(accepted)} of {len(rows)}")
        )
        print(
            table(
                ("HOST", "STATUS", "VERDICT", "WHY NOT / WARNINGS"),
                [
                    (
                        r["host"],
                        r["status"],
                        "accepts" if r["compatible"] else "refuses",
                        "; ".join(
                            f"{x['code']} {more(x['features'], 8)}".strip() for x in r["reasons"]
                        )
                        or "; ".join(w["code"] for w in r["warnings"]),
                    )
                    for r in rows
                ],
            )
        )
        views = sorted({r.get("view") or "feature classes" for r in rows})
        if views:
            print(f"Decided by: {', '.join(views)}")
    return EXIT_OK if accepted else EXIT_NO


# ---- audit --------------------------------------------------------------------------------


def add_audit_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Audit a set of hosts: registered ones (--cluster, host ids), dumps of hardware not "
            "racked yet (dump:PATH) and named models (model:NAME) mixed. With only dumps and models "
            "it runs offline. Exit 0 for SAVE (every host can restore every other host's VMs), "
            "3 for SHUTDOWN."
        ),
    )
    p.add_argument("hosts", nargs="*", metavar="HOST", help=HOST_ARG_HELP)
    p.add_argument("--cluster", help="include every registered host of this cluster")
    p.add_argument(
        "--html",
        metavar="FILE",
        help="also write the report as one self-contained HTML page (verdict, matrix, groups, "
        "baseline, best removal, per-host feature loss); written for SHUTDOWN too",
    )
    p.add_argument("--svg", metavar="FILE", help="also write the compatibility matrix as SVG")
    _vendor_option(p)
    add_hypervisor_option(p)
    add_client_options(p)
    p.set_defaults(run=run_audit)


def render_audit(doc: dict[str, Any]) -> str:
    out = [
        wrap(f"Offline action: {doc['offline_action']}  ({doc['summary']})"),
        f"Decided by: {doc.get('view') or 'feature classes'}",
        "",
    ]
    group_of = {name: g["index"] for g in doc["groups"] for name in g["hosts"]}
    # Beside a cluster, dumps and models are what-if hosts: audited, never joined. A dump's
    # name already says it is replayed; only registered hosts need saying so.
    what_if = doc.get("cluster") is not None
    rows = [
        (
            file_label(h["name"])
            + (
                " (what-if)"
                if what_if and h.get("kind") in ("dump", "model")
                else (" (replayed)" if h.get("replayed") and h.get("kind") == "host" else "")
            )
            + (" (stale)" if h.get("stale") else ""),
            h.get("vendor") or "-",
            h.get("level") or "-",
            group_of.get(h["name"], "-"),
            len(h.get("loses", [])),
            h.get("brand") or "",
        )
        for h in doc["hosts"]
    ]
    out.append(table(("HOST", "VENDOR", "LEVEL", "GROUP", "LOSES", "PROCESSOR"), rows))
    base = doc["baseline"]
    out += [
        "",
        f"Groups of mutually compatible hosts: {len(doc['groups'])}",
        f"Common baseline: {len(base['features'])} guest-visible features, level {base.get('x86_64_level') or 'none'}, "
        f"nearest microarchitecture {base.get('microarchitecture') or 'none'}",
    ]
    removal = doc.get("best_removal") or {}
    if removal.get("host"):
        gained = removal.get("gained") or []
        out.append(
            wrap(
                f"Removing {file_label(removal['host'])} gains most: {len(gained)} features "
                f"({more(gained, 12)})"
            )
        )
    blocking = doc.get("blocking_pairs") or []
    if blocking:
        out.append(f"Pairs that force SHUTDOWN: {len(blocking)}")
        for pair in blocking[:15]:
            codes = ", ".join(
                r["code"] + (f" ({more(r['features'], 6)})" if r.get("features") else "")
                for r in pair.get("reasons", [])
            )
            source, target = file_label(pair["source"]), file_label(pair["target"])
            out.append(wrap(f"{source} -> {target}: {codes}", indent="  "))
        if len(blocking) > 15:
            out.append(f"  {MORE.format(n=len(blocking) - 15)} (see --json)")
    return "\n".join(out)


def run_audit(args: argparse.Namespace) -> int:
    for arg in args.hosts:
        check_baseline(arg, args.vendor)
    if not args.cluster and not args.hosts:
        raise CliError(
            "nothing to audit: give --cluster C and/or hosts (ids, dump:PATH, model:NAME)"
        )
    offline = not args.cluster and all(is_offline(a) for a in args.hosts)
    hypervisor = hypervisor_of(args)
    if offline:
        from cpucompat.coordinator.compatibility import audit_offline

        refs = []
        with Progress("reading", len(args.hosts)) as reading:
            for arg in args.hosts:
                refs.append(domain_ref(arg, args.vendor))
                reading.advance()
        with Progress("decoding", len(refs)) as decoding:
            report = audit_offline(refs, hypervisor, on_input=decoding.advance)
        doc = report.to_json()
    else:
        from cpucompat.v1 import coordinator_service_pb2 as pb
        from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

        stub = pb_grpc.DecisionServiceStub(channel_for(args))
        request = pb.AuditRequest(
            cluster=args.cluster or "",
            extra_hosts=_proto_refs(args.hosts, args.vendor),
            hypervisor=hypervisor_wire(args),
        )
        from cpucompat.coordinator.convert import audit_from_proto

        # The same document as offline: the domain report, rebuilt from the wire.
        doc = audit_from_proto(call_audit(args, stub, request)).to_json()
    write_report_files(args, doc)
    if args.json:
        print_json(doc)
    else:
        print(render_audit(doc))
    return EXIT_OK if doc["offline_action"] == "SAVE" else EXIT_NO


def _proto_refs(args: list[str], vendor: str | None) -> list[Any]:
    """Each argument as a HostRef; reading many dumps shows progress on a terminal."""
    refs = []
    with Progress("reading", len(args)) as reading:
        for arg in args:
            refs.append(proto_ref(arg, vendor))
            reading.advance()
    return refs


def write_report_files(args: argparse.Namespace, doc: dict[str, Any]) -> None:
    """``--html`` / ``--svg``: each file replaced whole (readers never see half a report)."""
    from cpucompat.agent.atomic_file import atomic_write

    outputs = []
    if getattr(args, "html", None):
        from cpucompat.coordinator.report.html import render_html

        outputs.append(("--html", args.html, render_html))
    if getattr(args, "svg", None):
        from cpucompat.coordinator.report.svg import render_svg

        outputs.append(("--svg", args.svg, render_svg))
    for flag, path, render in outputs:
        try:
            atomic_write(path, render(doc))
        except OSError as exc:
            raise CliError(
                f"{flag} {path}: cannot write ({exc.strerror or exc}); "
                "choose a path in an existing, writable folder"
            ) from exc
