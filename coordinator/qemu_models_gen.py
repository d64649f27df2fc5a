"""Build the QEMU x86 CPU models table (``domain/qemu_models.json``) by asking a real QEMU.

Run ``python -m cpucompat.coordinator.qemu_models_gen`` (needs the Debian
package ``qemu-system-x86``) to rewrite the table; ``--check`` compares the
committed table with the installed QEMU instead and exits 1 on a difference.

What QEMU is asked, and why (docs/design-notes.md, "QEMU CPU models"):

1. ``query-cpu-definitions`` under ``-machine none -accel tcg``: every model
   name and, for unversioned names and named versions, the version QEMU's
   alias resolves to (``alias-of``).
2. ``query-cpu-model-expansion`` type ``static`` per versioned model: the
   model as ``base`` plus properties, i.e. its vendor, family, model,
   stepping, model-id and every named feature bit (target/i386/cpu.c,
   ``x86_cpu_to_dict``); ``full`` for the model's ``phys-bits`` setting.
3. One realised vCPU per model (``-machine pc -S -cpu MODEL``) and
   ``qom-get phys-bits``: the physical address width the guest is given when
   nothing is configured (``x86_cpu_realizefn``: 40, 32 without long mode).
4. Where each feature name lives: a vCPU with every name switched on and
   ``check`` makes TCG name the CPUID leaf/register/bit, or the MSR, of every
   feature TCG does not implement (``mark_unavailable_features``). That
   location, not the spelling, maps a QEMU name to the project's feature
   table; names TCG implements (and so never locates) map by spelling.

The mapping rules (``classify``) are principled, not a list of this QEMU
version's oddities: a property QEMU locates in an MSR (VMX capabilities,
IA32_ARCH_CAPABILITIES, ...) is an ``msr`` feature; one in the hypervisor
CPUID range 0x40000000-0x4FFFFFFF, or named in QEMU's ``kvm`` paravirtual
namespace, is a ``hypervisor`` feature; the rest are CPUID features and must
map to exactly one row of the agent's feature table, or the generator stops.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cpucompat.agent.feature_table import (
    AmbiguousFeatureError,
    UnknownFeatureError,
    bits_for,
    canonical_name,
)

from .domain.baselines import xsave_mask_for
from .domain.qemu_models import TABLE_PATH
from .domain.requirement import mask_indices
from .qemu_qmp import Qmp, QmpError

EXPANSION_MACHINE = ["-machine", "none", "-accel", "tcg"]
REALIZE_MACHINE = ["-machine", "pc", "-accel", "tcg", "-S", "-display", "none"]
HYPERVISOR_LEAVES = range(0x40000000, 0x50000000)
"""CPUID leaves reserved for hypervisors (Intel SDM vol. 2A, CPUID: 40000000H-4FFFFFFFH)."""
KVM_NAMESPACE = "kvm"
"""QEMU names the bits of its KVM paravirtual leaves (FEAT_KVM, FEAT_KVM_HINTS) kvm*."""

_REPORT = re.compile(
    r"feature: (?:CPUID\.(?P<leaf>[0-9A-F]+)H:(?P<reg>E[A-D]X)|MSR\((?P<msr>[0-9A-F]+)H\))"
    r"\.(?P<name>\S+) \[bit (?P<bit>\d+)\]"
)


class GenerationError(RuntimeError):
    """QEMU said something the table cannot represent; the message names the feature."""


@dataclass(frozen=True)
class Location:
    """Where QEMU says a feature bit lives: a CPUID register or an MSR."""

    kind: str  # "cpuid" or "msr"
    index: int  # CPUID leaf or MSR number
    reg: str  # "eax".."edx" for CPUID, "" for an MSR
    bit: int


def locations_from_report(text: str) -> dict[str, Location]:
    """Parse QEMU's ``check`` warnings ("... CPUID.07H:EBX.avx512f [bit 16]")."""
    out: dict[str, Location] = {}
    for match in _REPORT.finditer(text):
        bit = int(match["bit"])
        if match["msr"] is not None:
            out[match["name"]] = Location("msr", int(match["msr"], 16), "", bit)
        else:
            out[match["name"]] = Location(
                "cpuid", int(match["leaf"], 16), match["reg"].lower(), bit
            )
    return out


def _cpuid_rows(loc: Location, vendor: str | None) -> list[str]:
    """Names of the agent-table rows at a CPUID location (QEMU's report omits the subleaf)."""
    names: list[str] = []
    for subleaf in range(0, 8):
        names += [
            fb.name
            for fb in bits_for(loc.index, subleaf, loc.reg, vendor=vendor)
            if fb.bit == loc.bit
        ]
    return list(dict.fromkeys(names))


def _spelled(name: str, located: bool) -> str | None:
    """The table's name for a QEMU spelling; None when unknown (or ambiguous but located)."""
    try:
        return canonical_name(name)
    except AmbiguousFeatureError as exc:
        if located:
            return None  # the location decides which bit QEMU means
        raise GenerationError(
            f"QEMU feature {name!r} is not located by QEMU and its spelling is ambiguous "
            f"({exc}); teach qemu_models_gen where QEMU puts it"
        ) from None
    except UnknownFeatureError:
        return None


def classify(name: str, loc: Location | None, vendor: str | None) -> tuple[str, str]:
    """A QEMU feature property -> (kind, value): ("feature", project name), ("msr", "0x10a"),
    ("hypervisor", "0x40000001" or "kvm"), or ("unmapped", why)."""
    if loc is not None and loc.kind == "msr":
        return "msr", f"0x{loc.index:x}"
    if loc is not None and loc.index in HYPERVISOR_LEAVES:
        return "hypervisor", f"0x{loc.index:x}"
    if loc is None and name.startswith(KVM_NAMESPACE):
        return "hypervisor", KVM_NAMESPACE
    spelled = _spelled(name, loc is not None)
    if loc is None:
        if spelled is None:
            return "unmapped", "QEMU does not locate it and the feature table has no such name"
        return "feature", spelled
    rows = _cpuid_rows(loc, vendor)
    where = f"CPUID 0x{loc.index:x} {loc.reg.upper()}[{loc.bit}]"
    if spelled is not None and spelled in rows:
        return "feature", spelled
    if len(rows) == 1 and spelled is None:
        return "feature", rows[0]
    if not rows:
        return "unmapped", f"QEMU puts it at {where}; the feature table has no row there"
    raise GenerationError(
        f"QEMU feature {name!r} sits at {where}, where the feature table has {', '.join(rows)}, "
        f"but its spelling reads as {spelled!r}; fix the table's aliases"
    )


@dataclass(frozen=True)
class QemuAnswers:
    """Everything the table is built from, as QEMU said it."""

    version: str
    package: str
    aliases: dict[str, str]
    props: dict[str, dict[str, Any]]  # versioned model -> static expansion props
    phys_bits_setting: dict[str, int]  # versioned model -> full expansion "phys-bits"
    realized_phys_bits: dict[str, int]
    locations: dict[str, Location]


def _models(qmp: Qmp) -> tuple[dict[str, str], list[str]]:
    """(alias -> versioned name, versioned names) from query-cpu-definitions.

    Kept: migration-safe, non-static definitions (drops ``host`` and ``max``,
    which depend on the machine, and ``base``, the empty model expansions
    are relative to).
    """
    aliases: dict[str, str] = {}
    models: list[str] = []
    for d in qmp.command("query-cpu-definitions"):
        if not d.get("migration-safe") or d.get("static"):
            continue
        if d.get("alias-of"):
            aliases[d["name"]] = d["alias-of"]
        else:
            models.append(d["name"])
    return dict(sorted(aliases.items())), sorted(models)


def ask_qemu(binary: str | None = None) -> QemuAnswers:
    """Ask the installed QEMU everything the table holds (a few seconds: one vCPU per model)."""
    with Qmp(EXPANSION_MACHINE, binary) as qmp:
        version = qmp.command("query-version")
        aliases, models = _models(qmp)
        props: dict[str, dict[str, Any]] = {}
        setting: dict[str, int] = {}
        for model in models:
            static = qmp.command("query-cpu-model-expansion", type="static", model={"name": model})
            props[model] = static["model"]["props"]
            full = qmp.command("query-cpu-model-expansion", type="full", model={"name": model})
            setting[model] = int(full["model"]["props"].get("phys-bits", 0))
    realized = {model: _realized_phys_bits(model, binary) for model in models}
    names = sorted({k for p in props.values() for k, v in p.items() if isinstance(v, bool)})
    qv = version["qemu"]
    return QemuAnswers(
        version=f"{qv['major']}.{qv['minor']}.{qv['micro']}",
        package=str(version.get("package", "")).strip(),
        aliases=aliases,
        props=props,
        phys_bits_setting=setting,
        realized_phys_bits=realized,
        locations=locate(names, binary),
    )


def _realized_phys_bits(model: str, binary: str | None) -> int:
    with Qmp([*REALIZE_MACHINE, "-cpu", model], binary) as qmp:
        path = qmp.command("query-cpus-fast")[0]["qom-path"]
        return int(qmp.command("qom-get", path=path, property="phys-bits"))


def locate(names: Iterable[str], binary: str | None = None) -> dict[str, Location]:
    """Where QEMU puts each feature name TCG does not implement (see the module docstring)."""
    switches = ",".join(f"{n}=on" for n in sorted(names))
    with Qmp([*REALIZE_MACHINE, "-cpu", f"base,{switches},check"], binary) as qmp:
        pass
    return locations_from_report(qmp.stderr())


def _quiet_spelling(name: str) -> str | None:
    """The table's name for a spelling, None when unknown or ambiguous."""
    try:
        return canonical_name(name)
    except (AmbiguousFeatureError, UnknownFeatureError):
        return None


NAMED_KINDS = ("feature", "msr", "hypervisor")
"""Kinds of names recorded in the table's ``feature_names``."""


def build_table(answers: QemuAnswers) -> dict[str, Any]:
    """The table document from QEMU's answers; raises GenerationError on unmappable bits."""
    models: dict[str, Any] = {}
    names: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for model, props in answers.props.items():
        vendor = str(props.get("vendor") or "") or None
        features: set[str] = set()
        msr: set[str] = set()
        hypervisor: set[str] = set()
        for prop, value in sorted(props.items()):
            if not isinstance(value, bool):
                continue
            if not value:
                # Every name QEMU knows, set in this model or not, so a feature can be
                # written back in QEMU's (and libvirt's) spelling (`cpu_render`).
                if prop not in names:
                    try:
                        kind, what = classify(prop, answers.locations.get(prop), vendor)
                    except GenerationError:
                        continue  # a contradiction stops the generator only where it is used
                    # QEMU's report omits the subleaf: a name no model sets is kept only
                    # when its spelling agrees with the location (``sgx-debug`` sits at
                    # 0x12.1 EAX[1], which would read as 0x12.0's ``sgx2``).
                    agrees = kind != "feature" or _quiet_spelling(prop) == what
                    if kind in NAMED_KINDS and agrees:
                        names[prop] = {"kind": kind, "value": what}
                continue
            kind, what = classify(prop, answers.locations.get(prop), vendor)
            names[prop] = {"kind": kind, "value": what}
            if kind == "feature":
                features.add(what)
            elif kind == "msr":
                msr.add(prop)
            elif kind == "hypervisor":
                hypervisor.add(prop)
            else:
                problems.append(f"{model}: {prop} ({what})")
        setting = answers.phys_bits_setting[model]
        models[model] = {
            "vendor": vendor,
            "family": props.get("family"),
            "model": props.get("model"),
            "stepping": props.get("stepping"),
            "model_id": props.get("model-id"),
            "phys_bits": setting or answers.realized_phys_bits[model],
            "phys_bits_configured": bool(setting),
            "features": sorted(features),
            "msr_features": sorted(msr),
            "hypervisor_features": sorted(hypervisor),
            "xsave_components": list(mask_indices(xsave_mask_for(features))),
        }
    if problems:
        raise GenerationError(
            "QEMU models have CPUID features the feature table cannot name (add rows to "
            "agent/feature_table.py): " + "; ".join(problems)
        )
    return {
        "qemu_version": answers.version,
        "qemu_package": answers.package,
        "source": (
            "QEMU query-cpu-definitions and query-cpu-model-expansion (static, full) under "
            "-machine none -accel tcg; phys-bits from a realised vCPU (-machine pc); feature "
            "locations from -cpu base,...,check under TCG"
        ),
        "regenerate": "python -m cpucompat.coordinator.qemu_models_gen",
        "aliases": answers.aliases,
        "models": models,
        "feature_names": dict(sorted(names.items())),
    }


def render(table: Mapping[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cpucompat.coordinator.qemu_models_gen", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--output", type=Path, default=TABLE_PATH, help="where to write the table")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the table with the installed QEMU; write nothing",
    )
    parser.add_argument("--qemu", help="the qemu-system-x86_64 binary (default: from PATH)")
    args = parser.parse_args(argv)
    try:
        table = build_table(ask_qemu(args.qemu))
    except (QmpError, GenerationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = render(table)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} differs from QEMU {table['qemu_version']}; regenerate it")
            return 1
        print(f"{args.output} matches QEMU {table['qemu_version']}")
        return 0
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {len(table['models'])} models from QEMU {table['qemu_version']} to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
