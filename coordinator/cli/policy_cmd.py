"""`cpucompat policy ...`, `cpucompat vm ...`, `cpucompat failover plan`: enforcement from the CLI."""

from __future__ import annotations

import argparse
from typing import Any

from cpucompat.agent.cli.common import (
    EXIT_NO,
    EXIT_OK,
    CliError,
    print_json,
    safe,
    table,
    wrap,
)

from .client import add_client_options, call, call_paged, call_pages, channel_for, to_doc
from .guard_cmd import add_guest_flags
from .refs import read_libvirt_xml, verdict_doc

ACTIONS = ("TURN_OFF", "SAVE", "SHUTDOWN", "SHUTDOWN_FORCED")


def _policy_doc(policy: Any) -> dict[str, Any]:
    doc = to_doc(policy)
    doc["pinned_action"] = (
        None if doc.get("pinned_action") == "UNSPECIFIED" else doc.get("pinned_action")
    )
    return doc


# ---- policy ---------------------------------------------------------------------------------


def add_policy_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Each cluster's planned fail-over action (Hyper-V OfflineAction: TURN_OFF=0, SAVE=1, "
            "SHUTDOWN=2, SHUTDOWN_FORCED=3), computed from the processors and kept right by the "
            "coordinator. SAVE only while every host can restore every other host's saved state "
            "and every profile is fresh."
        ),
    )
    ps = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    show = ps.add_parser("show", help="the current policy (exit 3 when it is not SAVE)")
    show.add_argument("--cluster", help="one cluster (default: all)")
    add_client_options(show)
    show.set_defaults(run=run_show)
    pin = ps.add_parser(
        "pin", help="pin a colder action; pinning SAVE on a mixed cluster is refused (exit 3)"
    )
    pin.add_argument("--cluster", required=True)
    pin.add_argument(
        "action", choices=ACTIONS, type=str.upper, metavar="ACTION", help=" | ".join(ACTIONS)
    )
    pin.add_argument("--reason", default="", help="why, recorded in the event log")
    add_client_options(pin)
    pin.set_defaults(run=run_pin)
    unpin = ps.add_parser("unpin", help="return the cluster to the computed action")
    unpin.add_argument("--cluster", required=True)
    add_client_options(unpin)
    unpin.set_defaults(run=run_unpin)
    export = ps.add_parser(
        "export",
        help="print the Hyper-V commands that apply the policy to the cluster's VM resources",
    )
    export.add_argument("--cluster", required=True)
    export.add_argument(
        "--format",
        choices=("powershell", "pacemaker"),
        default="powershell",
        help="powershell: Set-ClusterParameter OfflineAction per VM resource (Hyper-V); "
        "pacemaker: crm_resource sets or deletes each VirtualDomain's snapshot parameter",
    )
    export.add_argument(
        "--snapshot-dir",
        metavar="DIR",
        help="pacemaker: where VirtualDomain saves a VM's state on stop (its snapshot parameter)",
    )
    add_client_options(export)
    export.set_defaults(run=run_export)


def _stub(args: argparse.Namespace) -> Any:
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    return pb_grpc.PolicyServiceStub(channel_for(args))


def _render_policies(policies: list[Any]) -> str:
    from cpucompat.agent.wire import enum_name
    from cpucompat.v1 import coordinator_service_pb2 as pb

    rows = [
        (
            p.cluster,
            enum_name(pb.OfflineAction, p.action),
            p.hyperv_offline_action,
            "yes" if p.pinned_action else "",
            p.host_count,
            p.reason,
        )
        for p in policies
    ]
    return table(("CLUSTER", "ACTION", "HYPER-V", "PINNED", "HOSTS", "REASON"), rows)


def run_show(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    stub = _stub(args)
    if args.cluster:
        policies = [call(args, stub.GetPolicy, pb.GetPolicyRequest(cluster=args.cluster)).policy]
    else:
        policies = call_pages(args, stub.ListPolicies, pb.ListPoliciesRequest(), "policies")
    if args.json:
        docs = [_policy_doc(p) for p in policies]
        print_json(docs[0] if args.cluster else docs)
    elif not policies:
        print("no cluster has a policy yet: no host has joined any cluster")
    else:
        print(_render_policies(policies))
    all_save = all(p.action == pb.OFFLINE_ACTION_SAVE for p in policies)
    return EXIT_OK if all_save else EXIT_NO


def run_pin(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    action = getattr(pb, f"OFFLINE_ACTION_{args.action}")
    response = call(
        args,
        _stub(args).PinPolicy,
        pb.PinPolicyRequest(cluster=args.cluster, action=action, reason=args.reason),
    )
    if args.json:
        print_json(_policy_doc(response.policy))
    else:
        print(_render_policies([response.policy]))
    return EXIT_OK


def run_unpin(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    response = call(args, _stub(args).UnpinPolicy, pb.UnpinPolicyRequest(cluster=args.cluster))
    if args.json:
        print_json(_policy_doc(response.policy))
    else:
        print(_render_policies([response.policy]))
    return EXIT_OK


def _ps_quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _vm_actions(vms: list[Any], policy: Any) -> list[tuple[Any, int, str, list[str], int]]:
    """(vm, Hyper-V number, action name, first refusing hosts, how many refuse): each VM's own
    action, the cluster's for a VM whose own is not computed yet."""
    from cpucompat.agent.wire import enum_name
    from cpucompat.v1 import coordinator_service_pb2 as pb

    out = []
    for vm in vms:
        if vm.HasField("action"):
            out.append(
                (
                    vm,
                    vm.action.hyperv_offline_action,
                    enum_name(pb.OfflineAction, vm.action.action),
                    list(vm.action.refusing_hosts),
                    _refusing_total(vm.action),
                )
            )
        else:
            out.append(
                (
                    vm,
                    policy.hyperv_offline_action,
                    enum_name(pb.OfflineAction, policy.action),
                    [],
                    0,
                )
            )
    return out


def _refusing_total(action: Any) -> int:
    """How many hosts refuse (a coordinator from before the bound listed all, with no count)."""
    return max(action.refusing_hosts_total, len(action.refusing_hosts))


def _sh_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def run_export(args: argparse.Namespace) -> int:
    """Commands for the operator to review and run on a cluster node: printed, never run."""
    from cpucompat.agent.wire import enum_name
    from cpucompat.coordinator.domain.vm_action import listed
    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    pacemaker = args.format == "pacemaker"
    if pacemaker and not args.snapshot_dir:
        raise CliError(
            "--format pacemaker needs --snapshot-dir DIR: where VirtualDomain saves a VM's state"
        )
    if not pacemaker and args.snapshot_dir:
        raise CliError("--snapshot-dir is for --format pacemaker only")
    channel = channel_for(args)
    policy = call(
        args,
        pb_grpc.PolicyServiceStub(channel).GetPolicy,
        pb.GetPolicyRequest(cluster=args.cluster),
    ).policy
    vms = call_pages(
        args, pb_grpc.VmServiceStub(channel).ListVms, pb.ListVmsRequest(cluster=args.cluster), "vms"
    )
    action = enum_name(pb.OfflineAction, policy.action)
    actions = _vm_actions(vms, policy)
    if args.json:
        print_json(
            {
                "cluster": args.cluster,
                "format": args.format,
                "action": action,
                "hyperv_offline_action": policy.hyperv_offline_action,
                "reason": policy.reason,
                "policy_version": policy.version,
                "resources": [
                    {
                        "vm": vm.name,
                        "resource": vm.name if pacemaker else f"Virtual Machine {vm.name}",
                        "offline_action": number,  # the VM's own, Hyper-V's number
                        "action": name,
                        "refusing_hosts": refusing,
                        "refusing_hosts_total": total,
                        **(
                            {"snapshot": args.snapshot_dir if name == "SAVE" else None}
                            if pacemaker
                            else {}
                        ),
                    }
                    for vm, number, name, refusing, total in actions
                ],
            }
        )
        return EXIT_OK
    lines = [
        f"# cpucompat policy for cluster {args.cluster}: OfflineAction "
        f"{policy.hyperv_offline_action} ({action})",
        "# Each registered VM gets its own action (see `cpucompat vm list`).",
        wrap(f"Reason: {policy.reason}", indent="# "),
        f"# Policy version {policy.version}; review, then run on a node of the "
        + ("Pacemaker cluster." if pacemaker else "failover cluster."),
    ]
    if not vms:
        lines.append(
            "# No VMs are registered for this cluster: register them with `cpucompat vm register`."
        )
    for vm, number, name, refusing, total in actions:
        why = f"{vm.name}: {name}" + (f" (refused by {listed(refusing, total)})" if total else "")
        lines.append(wrap(why, indent="# "))
        if pacemaker:
            # VirtualDomain saves the domain to `snapshot` on stop and restores it on start.
            if name == "SAVE":
                lines.append(
                    f"crm_resource --resource {_sh_quote(vm.name)} --set-parameter snapshot "
                    f"--parameter-value {_sh_quote(args.snapshot_dir)}"
                )
            else:
                lines.append(
                    f"crm_resource --resource {_sh_quote(vm.name)} --delete-parameter snapshot"
                )
            continue
        resource = f"Virtual Machine {vm.name}"
        # A pipe at the end of a line continues the command in PowerShell: two short lines.
        lines.append(f"Get-ClusterResource -Name {_ps_quote(resource)} |")
        lines.append(f"    Set-ClusterParameter -Name OfflineAction -Value {number}")
    print("\n".join(lines))
    return EXIT_OK


# ---- VMs and fail-over plans ------------------------------------------------------------------


def add_vm_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name, help=help_text, description="VMs whose fail-over the coordinator plans."
    )
    vs = p.add_subparsers(dest="vm_command", metavar="ACTION", required=True)
    reg = vs.add_parser(
        "register",
        help="register a VM with the requirement it booted with",
        description=(
            "A VM's requirement is fixed at boot: registering it again after a move keeps its "
            "boot host's requirement unless --rebooted says the guest was restarted."
        ),
    )
    reg.add_argument("vm", metavar="VM")
    reg.add_argument("--cluster", required=True)
    group = reg.add_mutually_exclusive_group()
    group.add_argument("--boot-host", metavar="HOST", help="the registered host the VM booted on")
    group.add_argument(
        "--baseline",
        metavar="NAME",
        help="a named baseline (model:NAME, model:qemu/NAME, level:x86-64-vN), or cluster: "
        "the cluster's pinned baseline (cluster baseline pin)",
    )
    reg.add_argument(
        "--libvirt-xml",
        metavar="FILE",
        help="the domain's `virsh dumpxml`: its <cpu> defines the requirement (host-passthrough "
        "and host-model need --boot-host; custom names a QEMU model), its invtsc and SGX EPC too",
    )
    reg.add_argument("--vendor", help="vendor for level:/generic model: baselines")
    reg.add_argument(
        "--rebooted", action="store_true", help="the guest restarted: capture its requirement anew"
    )
    add_guest_flags(reg)
    add_client_options(reg)
    reg.set_defaults(run=run_vm_register)
    ls = vs.add_parser("list", help="registered VMs with each one's own offline action")
    ls.add_argument("--cluster")
    add_client_options(ls)
    ls.set_defaults(run=run_vm_list)
    tg = vs.add_parser(
        "targets", help="the hosts of the VM's cluster that can restore its saved state"
    )
    tg.add_argument("vm", metavar="VM")
    add_client_options(tg)
    tg.set_defaults(run=run_vm_targets)
    rm = vs.add_parser("remove", help="forget a VM")
    rm.add_argument("vm", metavar="VM")
    add_client_options(rm)
    rm.set_defaults(run=run_vm_remove)


def _vm_stub(args: argparse.Namespace) -> Any:
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    return pb_grpc.VmServiceStub(channel_for(args))


def run_vm_register(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    if not (args.boot_host or args.baseline or args.libvirt_xml):
        raise CliError("give --boot-host HOST, --baseline NAME or --libvirt-xml FILE")
    xml = read_libvirt_xml(args.libvirt_xml) if args.libvirt_xml else ""
    request = pb.RegisterVmRequest(
        vm_name=args.vm,
        cluster=args.cluster,
        vendor=args.vendor or "",
        rebooted=args.rebooted,
        invtsc=args.invtsc,
        sgx_epc=args.sgx_epc,
        libvirt_xml=xml,
    )
    if args.boot_host:
        request.boot_host = args.boot_host
    elif args.baseline:
        request.baseline = args.baseline
    response = call(args, _vm_stub(args).RegisterVm, request)
    if args.json:
        print_json(to_doc(response))
    else:
        vm = response.vm
        kept = (
            ""
            if response.requirement_updated
            else " (requirement kept from its boot: pass --rebooted after a restart)"
        )
        print(
            wrap(
                f"VM {vm.name} in {vm.cluster}: requirement of "
                f"{vm.cpu_definition or vm.boot_host or vm.baseline}, "
                f"{len(vm.requirement.features)} features{_pinned_tsc(vm.requirement)}{kept}"
            )
        )
    return EXIT_OK


def _pinned_tsc(requirement: Any) -> str:
    """The TSC rate a VM's requirement holds it to, if any: its own fixed rate (libvirt's
    `<timer name='tsc' frequency>`) or, with invtsc, the boot host's."""
    rate = f"{requirement.tsc_hz} Hz" if requirement.tsc_hz else "a rate not known"
    if requirement.tsc_fixed:
        return f", TSC fixed at {rate}"
    if requirement.invariant_tsc:
        return f", invariant TSC at {rate}"
    return ""


def _vm_doc(vm: Any) -> dict[str, Any]:
    """A VM as JSON, its own offline action at the top level."""
    from cpucompat.agent.wire import enum_name
    from cpucompat.v1 import coordinator_service_pb2 as pb

    doc = to_doc(vm)
    doc.pop("action", None)
    has = vm.HasField("action")
    doc["offline_action"] = enum_name(pb.OfflineAction, vm.action.action) if has else None
    doc["hyperv_offline_action"] = vm.action.hyperv_offline_action if has else None
    doc["refusing_hosts"] = list(vm.action.refusing_hosts)
    doc["refusing_hosts_total"] = _refusing_total(vm.action)
    doc["action_reason"] = vm.action.reason
    doc["current_host"] = vm.action.current_host or None
    return doc


def run_vm_list(args: argparse.Namespace) -> int:
    from cpucompat.coordinator.domain.vm_action import listed
    from cpucompat.v1 import coordinator_service_pb2 as pb

    vms = call_pages(
        args, _vm_stub(args).ListVms, pb.ListVmsRequest(cluster=args.cluster or ""), "vms"
    )
    docs = [_vm_doc(v) for v in vms]
    if args.json:
        print_json(docs)
    else:
        print(
            table(
                ("VM", "CLUSTER", "REQUIREMENT OF", "LEVEL", "ACTION", "HYPER-V", "REFUSED BY"),
                [
                    (
                        v.name,
                        v.cluster,
                        v.cpu_definition or v.boot_host or v.baseline,
                        v.requirement.x86_64_level or "-",
                        d["offline_action"] or "-",
                        "-" if d["hyperv_offline_action"] is None else d["hyperv_offline_action"],
                        listed(d["refusing_hosts"], d["refusing_hosts_total"]) or "-",
                    )
                    for v, d in zip(vms, docs, strict=True)
                ],
                flex=(2, 6),
            )
        )
    return EXIT_OK


def run_vm_targets(args: argparse.Namespace) -> int:
    from cpucompat.agent.wire import enum_name
    from cpucompat.v1 import coordinator_service_pb2 as pb

    _, targets = call_paged(
        args, _vm_stub(args).GetVmTargets, pb.GetVmTargetsRequest(vm_name=args.vm), "targets"
    )
    rows = [
        {
            "host": t.host_id,
            "status": enum_name(pb.HostStatus, t.status).lower(),
            **verdict_doc(t.verdict),
        }
        for t in sorted(targets, key=lambda t: (not t.verdict.compatible, t.host_id))
    ]
    accepted = [r["host"] for r in rows if r["compatible"]]
    if args.json:
        print_json({"vm": args.vm, "accepted": accepted, "targets": rows})
    else:
        print(
            wrap(f"Hosts that can restore {args.vm}'s saved state: {len(accepted)} of {len(rows)}")
        )
        print(
            table(
                ("HOST", "STATUS", "VERDICT", "WHY NOT"),
                [
                    (
                        r["host"],
                        r["status"],
                        "accepts" if r["compatible"] else "refuses",
                        "; ".join(x["code"] for x in r["reasons"]),
                    )
                    for r in rows
                ],
            )
        )
    return EXIT_OK if accepted else EXIT_NO


def run_vm_remove(args: argparse.Namespace) -> int:
    from cpucompat.v1 import coordinator_service_pb2 as pb

    response = call(args, _vm_stub(args).RemoveVm, pb.RemoveVmRequest(vm_name=args.vm))
    if args.json:
        print_json(to_doc(response))
    else:
        print(f"removed VM {safe(response.vm.name)}")
    return EXIT_OK


def add_failover_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description="Plan a VM's planned fail-over.")
    fs = p.add_subparsers(dest="failover_command", metavar="ACTION", required=True)
    plan = fs.add_parser(
        "plan",
        help="SAVE only when the target accepts the VM's requirement, else SHUTDOWN (exit 3)",
    )
    plan.add_argument("vm", metavar="VM")
    plan.add_argument("--to", required=True, metavar="HOST", help="the target host")
    add_client_options(plan)
    plan.set_defaults(run=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    from cpucompat.agent.wire import enum_name
    from cpucompat.v1 import coordinator_service_pb2 as pb

    plan = call(
        args, _vm_stub(args).PlanFailover, pb.PlanFailoverRequest(vm_name=args.vm, to_host=args.to)
    ).plan
    action = enum_name(pb.OfflineAction, plan.action)
    doc = {
        "vm": plan.vm_name,
        "to_host": plan.to_host,
        "action": action,
        "hyperv_offline_action": plan.hyperv_offline_action,
        "reason": plan.reason,
        "cluster_action": None
        if not plan.cluster_action
        else enum_name(pb.OfflineAction, plan.cluster_action),
        "verdict": verdict_doc(plan.verdict),
    }
    if args.json:
        print_json(doc)
    else:
        print(
            wrap(
                f"{plan.vm_name} -> {plan.to_host}: {action} "
                f"(OfflineAction {plan.hyperv_offline_action})"
            )
        )
        print(wrap(plan.reason, indent="  "))
        for r in doc["verdict"]["reasons"]:
            print(wrap(f"{r['code']}: {' '.join(r['features']) or r['detail']}", indent="  "))
    return EXIT_OK if action == "SAVE" else EXIT_NO
