"""The nearest named microarchitecture (archspec) a processor's guest-visible features meet.

One rule for every place that names one: the agent's own `GetProfile`, and the
coordinator's hosts, audit and baselines (`coordinator/domain/baselines.py` builds
on these functions and keeps its cache around them). archspec's feature spellings
are mapped to the feature table's names; only guest-visible features count, and
every x86-64 target gets the architectural basics archspec leaves implicit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import archspec.cpu

from .decode import FEATURE_CLASS
from .feature_table import FeatureClass, UnknownFeatureError, canonical_name
from .profile import Profile

ARCHSPEC_FAMILY = "x86_64"

# What every x86-64 (AMD64) processor has, beyond the psABI lists: archspec and the levels
# leave these implicit, yet a named baseline used as a target must offer them.
X86_64_ARCHITECTURAL = frozenset(
    {
        "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr",
        "pge", "mca", "cmov", "pat", "pse36", "clflush", "mmx", "fxsr", "sse", "sse2", "nx", "lm",
    }
)  # fmt: skip

Mapped = tuple[frozenset[str], tuple[tuple[str, str], ...], tuple[str, ...]]
Parts = tuple[str | None, frozenset[str], tuple[tuple[str, str], ...], tuple[str, ...]]


def decides(name: str) -> bool:
    """True when a feature takes part in compatibility decisions.

    Guest-visible features decide; so do names the table does not know (a
    stamp written by a newer table, say): refusing on them is the safe side.
    """
    cls = FEATURE_CLASS.get(name)
    return cls is None or cls is FeatureClass.GUEST_VISIBLE


def map_feature_names(names: Iterable[str]) -> Mapped:
    """Split names (any spelling) into (guest-visible canonical, ignored with class, unmapped)."""
    kept: set[str] = set()
    ignored: set[tuple[str, str]] = set()
    unmapped: set[str] = set()
    for raw in names:
        try:
            name = canonical_name(raw)
        except UnknownFeatureError:
            unmapped.add(raw)
            continue
        if decides(name):
            kept.add(name)
        else:
            cls = FEATURE_CLASS.get(name)
            ignored.add((name, cls.value if cls is not None else "unknown"))
    return frozenset(kept), tuple(sorted(ignored)), tuple(sorted(unmapped))


def archspec_targets() -> dict[str, Any]:
    """archspec's x86-64 targets by name (uncached: callers keep their own cache)."""
    return {
        name: target
        for name, target in archspec.cpu.TARGETS.items()
        if target.family.name == ARCHSPEC_FAMILY
    }


def target_parts(target: Any) -> Parts:
    """(vendor or None for generic, guest-visible features, ignored, unmapped) of a target."""
    vendor = None if target.vendor == "generic" else str(target.vendor)
    features, ignored, unmapped = map_feature_names(target.features)
    # archspec's x86_64 root lists no features, yet every x86-64 target has the
    # architectural basics (lm, cmov, cx8, fpu, fxsr, sse2, nx, ...): add them, or no model
    # would reach a psABI level or accept a real host's VMs.
    base, _, _ = map_feature_names(X86_64_ARCHITECTURAL)
    return vendor, features | base, ignored, unmapped


def nearest(
    features: Iterable[str],
    vendor: str | None,
    targets: Mapping[str, tuple[str | None, frozenset[str]]],
) -> str | None:
    """The most specific of ``targets`` (name -> (vendor, features)) ``features`` cover.

    Most specific means most guest-visible features; ties prefer the vendor's
    own target over a generic one, then the name. ``vendor`` is a CPUID vendor string.
    """
    have = frozenset(features)
    best: tuple[int, int, str] | None = None
    for name in sorted(targets):
        arch_vendor, needed = targets[name]
        if arch_vendor is not None and arch_vendor != vendor:
            continue
        if not needed <= have:
            continue
        rank = (len(needed), 0 if arch_vendor is None else 1, name)
        if best is None or rank[:2] > best[:2] or (rank[:2] == best[:2] and name < best[2]):
            best = rank
    return None if best is None else best[2]


@cache
def _targets() -> dict[str, tuple[str | None, frozenset[str]]]:
    return {name: target_parts(t)[:2] for name, t in archspec_targets().items()}


def of_profile(profile: Profile) -> str | None:
    """The nearest microarchitecture of a host, as the coordinator's `hosts` names it.

    The features a guest there sees under the feature classes: the processor's
    guest-visible ones, and only those the hypervisor offers where its offer is known.
    """
    offer = profile.hypervisor_offer
    seen = profile.features if offer is None else profile.features & offer.features
    return nearest((f for f in seen if decides(f)), profile.vendor, _targets())
