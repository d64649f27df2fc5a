"""The baseline of a set of hosts as something to apply: libvirt, QEMU, Hyper-V, JSON.

The baseline itself is the audit's (`audit.CommonBaseline`): the intersection of
every member's requirement, built by `sides.requirement_of` like every other
decision, so `check` of a VM booted under it against any member says COMPATIBLE.
This module only writes it out:

- the nearest QEMU model (`qemu_models`): among the models of the baseline's
  vendor, one whose guest-visible features are a subset of the baseline with the
  fewest features to add; without such a model, the one with the fewest
  differences either way;
- libvirt ``<cpu mode='custom' match='exact'>`` with ``<model fallback='forbid'>``
  and ``require``/``disable`` features in libvirt's spelling, plus the width
  (``<maxphysaddr mode='emulate'>``);
- QEMU ``-cpu MODEL,+feat,-feat,phys-bits=N``;
- Hyper-V: the two compatibility modes Microsoft documents, and that neither
  publishes its exact feature set (docs/design-notes.md, "The cluster baseline").

A baseline feature QEMU has no name for cannot be given to a guest by QEMU or
libvirt; it is left out (the guest sees less, which every member accepts) and
listed as ``not_expressible``. A feature no KVM guest ever sees
(`kvm_offerable.NEVER_OFFERED`, ``tce`` on AMD) is left out of the libvirt and
QEMU definitions likewise and listed as ``not_offered``: the generic view keeps
it in the baseline, but QEMU refuses to start a guest that requires (``enforce``,
libvirt ``check='full'``) a bit KVM does not offer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from cpucompat.agent.errors import InputError

from ..cache import memo
from .audit import AuditReport
from .baselines import (
    MODEL_PREFIX,
    QEMU_PREFIX,
    Baseline,
    nearest_level,
    nearest_microarchitecture,
    resolve_baseline,
)
from .kvm_offerable import NEVER_OFFERED
from .qemu_models import table as qemu_table
from .requirement import Requirement, component_names
from .sides import requirement_of


class ClusterBaselineError(InputError):
    """A set of hosts without a baseline to apply; the message names the fix."""


LIBVIRT_SPELLING: Mapping[str, str] = {
    "pclmulqdq": "pclmuldq",
    "ds-cpl": "ds_cpl",
    "tsc-adjust": "tsc_adjust",
    "fxsr-opt": "fxsr_opt",
    "lahf-lm": "lahf_lm",
    "cmp-legacy": "cmp_legacy",
    "nodeid-msr": "nodeid_msr",
    "perfctr-core": "perfctr_core",
    "perfctr-nb": "perfctr_nb",
}
"""QEMU spellings whose libvirt name differs (libvirt ``src/cpu_map/x86_features.xml``
lists the QEMU spelling as ``<alias source='qemu'>`` of its own name)."""

HYPERV_DOCS = (
    "https://learn.microsoft.com/windows-server/virtualization/hyper-v/"
    "configure-processor-compatibility-mode"
)


@memo("qemu feature spellings", 1)
def _qemu_names() -> dict[str, str]:
    """Project feature name -> QEMU's spelling, from the generated table (QEMU located it)."""
    out: dict[str, str] = {}
    for qemu_name, (kind, value) in sorted(qemu_table().feature_names.items()):
        if kind != "feature":
            continue
        # Prefer the spelling QEMU uses in its models (with '-' where it has both).
        current = out.get(value)
        if current is None or ("_" in current and "_" not in qemu_name):
            out[value] = qemu_name
    return out


def qemu_spelling(feature: str) -> str | None:
    """QEMU's name for a project feature, None when QEMU has none."""
    return _qemu_names().get(feature)


def libvirt_spelling(feature: str) -> str | None:
    """libvirt's name for a project feature, None when QEMU (so libvirt) has none."""
    name = qemu_spelling(feature)
    return None if name is None else LIBVIRT_SPELLING.get(name, name)


@dataclass(frozen=True)
class ModelFit:
    """How one QEMU model reaches the baseline."""

    model: str  # the versioned name
    name: str  # the name to write: an unversioned alias of this version when there is one
    add: frozenset[str]  # baseline features the model lacks (require / +feat)
    remove: frozenset[str]  # model features the baseline lacks (disable / -feat)
    not_expressible: frozenset[str]  # of ``add``: no QEMU name, left out
    subset: bool
    not_offered: frozenset[str] = frozenset()  # of ``add``: no KVM guest sees it, left out

    @property
    def required(self) -> frozenset[str]:
        """What the written definition adds to the model: ``add`` minus what is left out."""
        return self.add - self.not_expressible - self.not_offered

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "version": self.model,
            "subset": self.subset,
            "require": sorted(self.required),
            "disable": sorted(self.remove),
            "not_expressible": sorted(self.not_expressible),
            "not_offered": sorted(self.not_offered),
        }


@dataclass(frozen=True)
class ClusterBaseline:
    """What every member can give a guest, with the members it was computed from."""

    members: tuple[str, ...]
    vendor: str | None
    features: frozenset[str]
    xsave_mask: int
    physical_bits: int | None
    view: str
    cluster: str | None = None

    @classmethod
    def from_audit(cls, report: AuditReport) -> ClusterBaseline:
        """The audit's common baseline (one decision path); refuses mixed vendors."""
        base = report.baseline
        members = tuple(h.name for h in report.hosts)
        if base.vendor is None:
            vendors = sorted(report.vendors)
            raise ClusterBaselineError(
                f"the hosts have processors of {len(vendors)} vendors "
                f"({', '.join(v.strip() for v in vendors)}); saved state never crosses vendors, "
                "so there is no baseline to apply: give the hosts of one vendor"
            )
        return cls(
            members=members,
            vendor=base.vendor,
            features=base.features,
            xsave_mask=base.xsave_mask,
            physical_bits=base.physical_bits,
            view=report.view,
            cluster=report.cluster,
        )

    def nearest_models(self, limit: int = 3) -> list[ModelFit]:
        """QEMU models of the baseline's vendor, nearest first (see the module docstring)."""
        fits = [
            _fit(self, name) for name, m in qemu_table().models.items() if m.vendor == self.vendor
        ]
        if not fits:
            raise ClusterBaselineError(
                f"QEMU {qemu_table().qemu_version} has no CPU model of vendor "
                f"{(self.vendor or '').strip()}; no libvirt or QEMU definition can be written"
            )
        fits.sort(key=lambda f: (not f.subset, len(f.add) + len(f.remove), f.model))
        return fits[:limit]

    def to_json(self) -> dict[str, Any]:
        fits = self.nearest_models()
        return {
            "cluster": self.cluster,
            "members": list(self.members),
            "vendor": self.vendor,
            "features": sorted(self.features),
            "xsave_components": list(component_names(self.xsave_mask)),
            "physical_bits": self.physical_bits,
            "view": self.view,
            "x86_64_level": nearest_level(self.features),
            "microarchitecture": nearest_microarchitecture(self.features, self.vendor),
            "qemu_models": [f.to_json() for f in fits],
            "qemu_version": qemu_table().qemu_version,
        }


def _alias_for(versioned: str) -> str:
    aliases = sorted(a for a, v in qemu_table().aliases.items() if v == versioned)
    plain = [a for a in aliases if not a.split("-")[-1].startswith("v")]
    return (plain or aliases or [versioned])[0]


def _fit(baseline: ClusterBaseline, versioned: str) -> ModelFit:
    model = resolve_baseline(f"{MODEL_PREFIX}{QEMU_PREFIX}{versioned}")
    have = model.features
    add = baseline.features - have
    remove = have - baseline.features
    return ModelFit(
        model=versioned,
        name=_alias_for(versioned),
        add=frozenset(add),
        remove=frozenset(remove),
        not_expressible=frozenset(f for f in add - NEVER_OFFERED if qemu_spelling(f) is None),
        subset=not remove,
        not_offered=frozenset(add & NEVER_OFFERED),
    )


def _sorted_names(features: Sequence[str] | frozenset[str], spell: Any) -> list[str]:
    return sorted(spell(f) for f in features)


def render_libvirt(baseline: ClusterBaseline, fit: ModelFit) -> str:
    """A libvirt ``<cpu>`` element (custom, exact) that every member can run."""
    lines = [
        f"<!-- cpucompat baseline of {len(baseline.members)} host(s)"
        + (f" of cluster {escape(baseline.cluster)}" if baseline.cluster else "")
        + f"; QEMU {qemu_table().qemu_version} model {escape(fit.model)} -->",
    ]
    if fit.not_expressible:
        lines.append(
            "<!-- left out, QEMU has no name for them: "
            + escape(" ".join(sorted(fit.not_expressible)))
            + " -->"
        )
    if fit.not_offered:
        lines.append(
            "<!-- left out, no KVM guest sees them (libvirt would refuse to start): "
            + escape(" ".join(sorted(fit.not_offered)))
            + " -->"
        )
    lines.append("<cpu mode='custom' match='exact'>")
    lines.append(f"  <model fallback='forbid'>{escape(fit.name)}</model>")
    if baseline.physical_bits is not None:
        lines.append(f"  <maxphysaddr mode='emulate' bits='{baseline.physical_bits}'/>")
    for name in _sorted_names(fit.required, libvirt_spelling):
        lines.append(f"  <feature policy='require' name='{_attr(name)}'/>")
    for name in _sorted_names(fit.remove, _libvirt_or_project):
        lines.append(f"  <feature policy='disable' name='{_attr(name)}'/>")
    lines.append("</cpu>")
    return "\n".join(lines) + "\n"


def _attr(text: str) -> str:
    return escape(text, {"'": "&apos;"})


def _libvirt_or_project(feature: str) -> str:
    return libvirt_spelling(feature) or feature


def _qemu_or_project(feature: str) -> str:
    return qemu_spelling(feature) or feature


def render_qemu(baseline: ClusterBaseline, fit: ModelFit) -> str:
    """QEMU's ``-cpu`` value: the model, +features, -features and phys-bits."""
    parts = [fit.name]
    parts += [f"+{n}" for n in _sorted_names(fit.required, qemu_spelling)]
    parts += [f"-{n}" for n in _sorted_names(fit.remove, _qemu_or_project)]
    if baseline.physical_bits is not None:
        parts.append(f"phys-bits={baseline.physical_bits}")
    return ",".join(parts)


def hyperv_modes(baseline: ClusterBaseline) -> dict[str, Any]:
    """What Hyper-V offers for the baseline, and what is and is not known about each mode."""
    return {
        "vendor": baseline.vendor,
        "baseline_features": len(baseline.features),
        "source": HYPERV_DOCS,
        "modes": [
            {
                "mode": "MinimumFeatureSet",
                "powershell": "Set-VMProcessor -VMName <VM> -CompatibilityForMigrationEnabled $true"
                " -CompatibilityForMigrationMode MinimumFeatureSet",
                "windows": "Windows Server 2008 R2 and later (the only mode before 2025; "
                "-CompatibilityForMigrationEnabled $true alone selects it)",
                "covers_cluster": True,
                "hides": None,
                "hides_known": False,
                "note": "a fixed feature set independent of the hosts; Microsoft does not "
                "publish which features it keeps, so what it hides of this baseline cannot be "
                "listed (compare `lscpu` or Coreinfo -f in a guest with this baseline)",
            },
            {
                "mode": "CommonClusterFeatureSet",
                "powershell": "Set-VMProcessor -VMName <VM> -CompatibilityForMigrationEnabled $true"
                " -CompatibilityForMigrationMode CommonClusterFeatureSet",
                "windows": "Windows Server 2025 (and Azure Local), VM configuration version 10.0",
                "covers_cluster": True,
                "hides": None,
                "hides_known": False,
                "note": "Hyper-V computes the features common to the cluster's nodes itself; "
                "Microsoft documents it as the common denominator but publishes no feature "
                "list, so whether it keeps every feature of this baseline cannot be confirmed "
                "here",
            },
        ],
        "recommended": "CommonClusterFeatureSet",
    }


def render_hyperv(baseline: ClusterBaseline) -> str:
    """Readable Hyper-V advice (PowerShell lines as comments and commands)."""
    doc = hyperv_modes(baseline)
    out = [
        f"# cpucompat baseline of {len(baseline.members)} host(s)"
        + (f" of cluster {baseline.cluster}" if baseline.cluster else "")
        + f": {len(baseline.features)} guest-visible features ({(baseline.vendor or '').strip()})",
        "# Hyper-V cannot take an explicit feature list; it offers two processor compatibility",
        f"# modes ({HYPERV_DOCS}). Shut the VM down first.",
        "#",
        "# Windows Server 2025 (VM configuration version 10.0): the cluster's common features.",
        f"# {doc['modes'][1]['note']}.",
        doc["modes"][1]["powershell"],
        "#",
        "# Earlier Windows Server, or VMs leaving the cluster: a fixed minimum set.",
        f"# {doc['modes'][0]['note']}.",
        "# " + doc["modes"][0]["powershell"],
    ]
    return "\n".join(out) + "\n"


# ---- a pinned baseline (cpucompat cluster baseline pin) ----------------------------------


def pin_document(baseline: ClusterBaseline, source: str) -> dict[str, Any]:
    """What is stored for a pin: the decision fields, never re-derived from hosts later."""
    return {
        "source": source,
        "members": list(baseline.members),
        "vendor": baseline.vendor,
        "features": sorted(baseline.features),
        "xsave_mask": baseline.xsave_mask,
        "physical_bits": baseline.physical_bits,
        "view": baseline.view,
    }


def from_pin_document(cluster: str, doc: Mapping[str, Any]) -> ClusterBaseline:
    """The stored pin as a baseline (raises ValueError on a damaged document)."""
    bits = doc.get("physical_bits")
    return ClusterBaseline(
        members=tuple(str(m) for m in doc.get("members", ())),
        vendor=str(doc["vendor"]) if doc.get("vendor") else None,
        features=frozenset(str(f) for f in doc["features"]),
        xsave_mask=int(doc["xsave_mask"]),
        physical_bits=None if bits is None else int(bits),
        view=str(doc.get("view", "")),
        cluster=cluster,
    )


def from_named(name: str, cluster: str) -> ClusterBaseline:
    """A pin taken from a named baseline (``model:qemu/EPYC-Milan``, ``level:...@amd``)."""
    named = resolve_baseline(name)
    if named.vendor is None:
        raise ClusterBaselineError(
            f"{name} names no vendor and saved state never crosses vendors: add one, "
            f"e.g. {name}@amd or {name}@intel"
        )
    req = requirement_of(named, named.name)
    return ClusterBaseline(
        members=(named.name,),
        vendor=named.vendor,
        features=req.features,
        xsave_mask=req.xsave_mask,
        physical_bits=named.physical_bits,
        view="",
        cluster=cluster,
    )


def pinned_requirement(baseline: ClusterBaseline) -> Requirement:
    """What a VM booted under the pinned baseline needs (``vm register --baseline cluster``).

    The pin is a baseline like a named one, so its requirement is built by
    `sides.requirement_of` (the one place that builds sides).
    """
    name = f"cluster:{baseline.cluster}"
    pinned = Baseline(
        name=name,
        kind="pinned",
        vendor=baseline.vendor,
        features=baseline.features,
        xsave_mask=baseline.xsave_mask,
        source=f"cluster {baseline.cluster}'s pinned baseline",
        physical_bits=baseline.physical_bits,
    )
    return requirement_of(pinned, name)
