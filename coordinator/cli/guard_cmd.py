"""`cpucompat stamp` and `cpucompat guard`: the restore guard, working with no coordinator.

At save time the source host stamps the VM's requirement beside the saved
state; at restore time the target host refuses a stamp its own processor
does not meet, whatever anyone else said: the last line of defence.
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from cpucompat.agent.cli.common import EXIT_NO, EXIT_OK, CliError, print_json

from .compat_cmd import add_hypervisor_option


def _local_profile(dump: str | None) -> Any:
    from cpucompat.agent.decode import decode
    from cpucompat.agent.live import probe

    if dump:
        from cpucompat.agent.dumps import load_dump_profile

        return load_dump_profile(dump)  # a bad dump or probe: exit 2 (agent/errors.py)
    return decode(probe())


def add_stamp_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Write the requirement of a VM saved on this host: this host's guest-visible features, "
            "XSAVE state and address width (host mode), or a named baseline (--baseline). The stamp "
            "is versioned JSON with an integrity digest; `cpucompat guard` checks it on the target."
        ),
    )
    p.add_argument(
        "--out", required=True, metavar="FILE", help="where to write the stamp ('-' for stdout)"
    )
    p.add_argument(
        "--baseline",
        metavar="NAME",
        help="stamp a baseline (model:NAME, model:qemu/NAME or level:x86-64-vN) instead",
    )
    p.add_argument("--vendor", help="vendor for level:/generic model: baselines")
    p.add_argument(
        "--from-dump", metavar="FILE", help="stamp a recorded processor instead of this host"
    )
    p.add_argument(
        "--host-name", metavar="NAME", help="source host recorded in the stamp (default: hostname)"
    )
    add_guest_flags(p)
    add_hypervisor_option(p)
    p.set_defaults(run=run_stamp)


def add_guest_flags(p: Any) -> None:
    """The VM configuration flags `stamp` and `vm register` share."""
    p.add_argument(
        "--invtsc",
        action="store_true",
        help="the guest has an invariant TSC (QEMU invtsc): targets must keep its TSC rate "
        "within KVM's 250 ppm or scale TSC",
    )
    p.add_argument(
        "--sgx-epc",
        action="store_true",
        help="the VM has an SGX enclave page cache (QEMU sgx-epc): only then do SGX features count",
    )


def guest_config_problem(profile: Any, invtsc: bool, sgx_epc: bool) -> str | None:
    """Why a VM cannot have had this configuration on ``profile``'s processor, or None."""
    if invtsc and not profile.invariant_tsc:
        return (
            "--invtsc: this processor has no invariant TSC (CPUID 0x80000007 EDX bit 8), "
            "so no guest booted here has one; drop --invtsc"
        )
    if sgx_epc and "sgx" not in profile.features:
        return (
            "--sgx-epc: this processor has no SGX (or it is disabled in the firmware), so no VM "
            "here has an enclave page cache; drop --sgx-epc"
        )
    return None


def run_stamp(args: argparse.Namespace) -> int:
    from cpucompat.coordinator.domain.baselines import resolve_baseline
    from cpucompat.coordinator.domain.kvm_offerable import Hypervisor
    from cpucompat.coordinator.domain.sides import requirement_of
    from cpucompat.coordinator.domain.stamp import make_stamp, stamp_text

    source = args.host_name or socket.gethostname()
    here = _local_profile(args.from_dump)
    problem = guest_config_problem(here, args.invtsc, args.sgx_epc)
    if problem:
        raise CliError(problem)
    if args.baseline:
        requirement = requirement_of(
            resolve_baseline(args.baseline, args.vendor),
            source,
            invtsc=args.invtsc,
            sgx_epc=args.sgx_epc,
            hypervisor=Hypervisor(args.hypervisor),
        )
        # Saved state never crosses vendors, and the guest saw this host's address width
        # unless the baseline fixes one (a QEMU model's phys-bits): a baseline stamp
        # carries both from the processor it was saved on.
        if requirement.vendor is not None and requirement.vendor != here.vendor:
            raise CliError(
                f"baseline {args.baseline} is for {requirement.vendor.strip()} but this processor "
                f"is {here.vendor.strip()}; a VM cannot have booted under it here"
            )
        bits = requirement.physical_bits or here.address_sizes.physical_bits
        requirement = replace(
            requirement, vendor=here.vendor, physical_bits=bits, tsc_hz=here.tsc.hz
        )
    else:
        requirement = requirement_of(
            here,
            source,
            invtsc=args.invtsc,
            sgx_epc=args.sgx_epc,
            hypervisor=Hypervisor(args.hypervisor),
        )
    if args.invtsc and not here.tsc.hz:
        print(
            f"note: this host's TSC rate is unknown ({here.tsc.missing}); targets that cannot "
            "scale TSC will refuse this stamp",
            file=sys.stderr,
        )
    text = stamp_text(make_stamp(requirement, time.time(), source))
    if args.out == "-":
        print(text, end="" if text.endswith("\n") else "\n")
        return EXIT_OK
    from cpucompat.agent.atomic_file import atomic_write

    out = Path(args.out)
    try:
        atomic_write(out, text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise CliError(f"cannot write {out}: {exc.strerror}") from None
    print(
        f"stamped {out}: {requirement.mode.value} requirement, {len(requirement.features)} features"
    )
    return EXIT_OK


def add_guard_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Check a stamp against this host's processor before restoring a saved state. Exit 0 when "
            "the processor accepts it, 3 with the reasons when not, 2 for a tampered or unreadable stamp."
        ),
    )
    p.add_argument("stamp", metavar="FILE", help="the stamp written by `cpucompat stamp`")
    p.add_argument(
        "--from-dump",
        metavar="FILE",
        help="judge against a recorded processor instead of this host",
    )
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.set_defaults(run=run_guard)


def run_guard(args: argparse.Namespace) -> int:
    from cpucompat.coordinator.domain.compat import check
    from cpucompat.coordinator.domain.kvm_offerable import hypervisor_of_view
    from cpucompat.coordinator.domain.sides import target_of
    from cpucompat.coordinator.domain.stamp import StampError, load_stamp

    try:
        data = Path(args.stamp).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read stamp {args.stamp}: {exc.strerror}") from None
    try:
        requirement = load_stamp(data)
    except StampError as exc:
        raise CliError(f"{args.stamp}: {exc}") from None
    profile = _local_profile(args.from_dump)
    # A stamp made under `--hypervisor kvm` is judged by the same rules on this side.
    hypervisor = hypervisor_of_view(requirement.view)
    verdict = check(requirement, target_of(profile, "this host", hypervisor=hypervisor))
    if args.json:
        print_json(verdict.to_json())
    else:
        word = "accepted" if verdict.compatible else "REFUSED"
        print(f"{args.stamp}: {word} by this host's processor ({profile.brand or profile.vendor})")
        for r in verdict.reasons:
            print(f"  {r.code}: {r.detail}")
            if r.features:
                print(f"    {' '.join(r.features)}")
        for w in verdict.warnings:
            print(f"  warning {w.code}: {w.detail}")
        print(f"  decided by: {verdict.view}")
    return EXIT_OK if verdict.compatible else EXIT_NO
