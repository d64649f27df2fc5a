"""`cpucompat probe`: read this host's processors, or a dump, and show the profile."""

from __future__ import annotations

import argparse
import os
import textwrap
from typing import Any

from .common import EXIT_OK, CliError, file_label, key_values, print_json


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Execute CPUID and XGETBV on every logical CPU this process may run on and decode "
            "the result (or decode a recorded dump with --from-dump)."
        ),
    )
    p.add_argument(
        "--json", action="store_true", help="print the profile as JSON (with raw leaves)"
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="print the raw leaves of every CPU as `cpuid -r` text, re-importable with --from-dump",
    )
    p.add_argument("--from-dump", metavar="FILE", help="decode a dump file instead of this host")
    p.add_argument(
        "--source",
        choices=("instruction", "devcpu"),
        default="instruction",
        help="live source: the CPUID instruction (default) or /dev/cpu/N/cpuid",
    )
    p.set_defaults(run=run)


def capture_for(args: argparse.Namespace) -> Any:
    """The raw capture the options ask for: a dump file or this host."""
    if args.from_dump:
        from ..dumps import load_valid_dump

        return load_valid_dump(args.from_dump)  # a DumpError: exit 2 (agent/errors.py)
    from ..live import probe

    return probe("devcpu" if args.source == "devcpu" else "cpuid-instruction")


def run(args: argparse.Namespace) -> int:
    from ..decode import decode
    from ..raw import RawDataError

    capture = capture_for(args)
    if args.raw:
        from ..dumps.cpuid_r import render_cpuid_r

        print(render_cpuid_r(capture), end="")
        return EXIT_OK
    try:
        profile = decode(capture)
    except RawDataError as exc:
        where = capture.origin or "this host"
        raise CliError(f"{where}: {exc}") from None
    if args.json:
        print_json(profile.to_json())
    else:
        print(render_summary(profile))
    return EXIT_OK


def _cpu_list(cpus: tuple[int, ...]) -> str:
    """Compact ranges: 0-7,16-23."""
    out: list[str] = []
    start = prev = None
    for c in cpus:
        if prev is not None and c == prev + 1:
            prev = c
            continue
        if start is not None:
            out.append(f"{start}" if start == prev else f"{start}-{prev}")
        start = prev = c
    if start is not None:
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ",".join(out)


def render_summary(profile: Any) -> str:
    """A readable page about one profile."""
    xs = profile.xsave
    enabled = "unknown (not read live)" if xs.enabled_mask is None else f"0x{xs.enabled_mask:x}"
    comps = " ".join(c.name for c in xs.components if not c.supervisor) or "none"
    tsc = "invariant" if profile.invariant_tsc else "not invariant"
    t = profile.tsc
    tsc += f", {t.hz / 1e6:.3f} MHz ({t.source})" if t.hz else f", rate unknown ({t.missing})"
    tsc += {True: ", can scale", False: ", cannot scale", None: ", scaling unknown"}[t.scaling]
    rows = [
        ("Processor", f"{profile.brand or '(no brand string)'}"),
        ("Vendor", profile.vendor),
        (
            "Family/model",
            f"family {profile.family} model {profile.model} stepping {profile.stepping}"
            f" (0x{profile.family:x}/0x{profile.model:x}/0x{profile.stepping:x})",
        ),
        ("x86-64 level", profile.x86_64_level or "none (no long mode)"),
        (
            "Source",
            f"{profile.source}"
            + (f" ({file_label(profile.raw.origin)})" if profile.raw.origin else ""),
        ),
        ("Logical CPUs", str(profile.logical_cpu_count)),
        ("Microcode", profile.microcode or "unknown"),
        ("Hypervisor", profile.hypervisor or "none (bare metal)"),
        (
            "Address bits",
            f"{profile.address_sizes.physical_bits} physical, "
            f"{profile.address_sizes.linear_bits} linear"
            + (
                f", {profile.address_sizes.guest_physical_bits} guest-physical"
                if profile.address_sizes.guest_physical_bits
                else ""
            ),
        ),
        ("XSAVE", f"supported 0x{xs.supported_mask:x}, enabled {enabled}, max {xs.max_size} bytes"),
        ("XSAVE state", comps),
        ("TSC", tsc),
        *([("AVX10", f"version {profile.avx10_version}")] if profile.avx10_version else []),
        ("Fingerprint", profile.fingerprint),
    ]
    width = max(len(k) for k, _ in rows)
    lines = key_values(rows).split("\n")
    online = os.cpu_count() or 0
    if profile.source == "cpuid-instruction" and online > profile.logical_cpu_count:
        lines.append(
            f"{'Note'.ljust(width)}  read {profile.logical_cpu_count} of {online} logical CPUs: "
            "this process's CPU affinity excludes the others (run without taskset/cgroup limits)"
        )
    for warning in profile.raw.warnings:
        lines.append(f"{'Warning'.ljust(width)}  {warning}")
    if len(profile.cpu_types) > 1:
        lines.append(f"{'CPU types'.ljust(width)}  {len(profile.cpu_types)} (hybrid or mixed):")
        for t in profile.cpu_types:
            extra = sorted(t.features - profile.features)
            lines.append(
                f"{''.ljust(width)}    CPUs {_cpu_list(t.logical_cpus)}: {t.core_type or 'type'}"
                f", {len(t.features)} features" + (f" (+{' '.join(extra)})" if extra else "")
            )
    feats = " ".join(sorted(profile.features))
    lines.append(f"{'Features'.ljust(width)}  {len(profile.features)} (common to all CPUs):")
    lines.extend(textwrap.wrap(feats, width=96, initial_indent="  ", subsequent_indent="  "))
    lines.extend(render_offer(profile, width))
    return "\n".join(lines)


def render_offer(profile: Any, width: int) -> list[str]:
    """What the host's hypervisor offers a guest, beside what the processor has."""
    from ..profile import FEATURE_MSR_NAMES

    offer = profile.hypervisor_offer
    label = "Offer".ljust(width)
    if offer is None:
        return [f"{label}  none: {profile.hypervisor_offer_missing}"]
    lines = [
        f"{label}  {offer.kind} API {offer.api_version}"
        + (" (replayed)" if offer.replayed else "")
        + f", fingerprint {offer.fingerprint[:16]}, {len(offer.features)} features:"
    ]
    lines.extend(
        textwrap.wrap(
            " ".join(sorted(offer.features)), width=96, initial_indent="  ", subsequent_indent="  "
        )
    )
    withheld = sorted(profile.features - offer.features)
    added = sorted(offer.features - profile.features)
    for title, names in (("Not offered", withheld), ("Offer adds", added)):
        lines.append(f"{title.ljust(width)}  {len(names)}:")
        lines.extend(
            textwrap.wrap(" ".join(names), width=96, initial_indent="  ", subsequent_indent="  ")
        )
    for index, value in offer.msrs:
        name = FEATURE_MSR_NAMES.get(index, f"MSR 0x{index:x}")
        lines.append(f"{'Offer MSR'.ljust(width)}  {name} = 0x{value:x}")
    return lines
