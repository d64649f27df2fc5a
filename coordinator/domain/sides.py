"""The two sides of every question, built one way: a source's requirement, a target's view.

`check`, `targets`, the audit, the policy engine, fail-over plans and stamps
all ask the same engine (`compat.check`) and must never disagree, so each
side is built here and nowhere else. A side is a decoded processor
(`Profile`: a registered host, a dump, this host) or a named `Baseline`.

The rule for bits a capture cannot tell (``Profile.unknown_features``):

- as a source they never add requirements (`Requirement.from_profile` keeps
  only features the capture shows present);
- as a target they count as present, and `check` names the ones a
  requirement needs in a FEATURES_UNKNOWN warning.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import TYPE_CHECKING, TypeVar

from cpucompat.agent.profile import Profile

from ..cache import Memo
from .compat import TargetView
from .kvm_offerable import Hypervisor, guest_sees, kvm_synthesises
from .mitigations import arch_capabilities_no, as_guest_sees, satisfied
from .requirement import (
    SUPERVISOR_XSAVE_FEATURES,
    XSAVE_FEATURE,
    Requirement,
    guest_visible,
    usable_xsave_mask_of,
)

if TYPE_CHECKING:
    from .baselines import Baseline
    from .libvirt_cpu import DomainCpu


T = TypeVar("T")

SIDE_ENTRIES = 20_000
"""Sides kept (`_SIDES`): a requirement and a target view or two per distinct profile
of a 10,000-host fleet, with room to spare."""

_SIDES: Memo[tuple[Hashable, ...], tuple[Profile, object]] = Memo("profile sides", SIDE_ENTRIES)
"""Sides already built from a decoded `Profile` object, keyed by its identity.

Profiles are immutable and the registry shares one object per distinct content, so a
policy recompute, an audit or a check builds each side of a profile once, not once per
call (a changed report's recompute would otherwise rebuild every member's). An entry
holds its profile, so the identity cannot be reused while the entry lives."""


def _kept(profile: Profile, key: tuple[Hashable, ...], build: Callable[[], T]) -> T:
    full = (id(profile), *key)
    held = _SIDES.get(full)
    if held is not None and held[0] is profile:
        return held[1]  # type: ignore[return-value]
    value = build()
    _SIDES.discard(full)
    return _SIDES.put(full, (profile, value))[1]  # type: ignore[return-value]


def requirement_of(
    side: Profile | Baseline,
    name: str,
    *,
    invtsc: bool = False,
    sgx_epc: bool = False,
    hypervisor: Hypervisor = Hypervisor.GENERIC,
) -> Requirement:
    """What a VM booted on ``side`` needs from its restore target.

    ``name`` labels a processor's requirement; a baseline's requirement
    carries the baseline's resolved name (``level:x86-64-v3@intel``).
    ``invtsc`` and ``sgx_epc`` are the VM's own configuration (an invariant
    TSC, an SGX enclave page cache); without them, the defaults of QEMU and
    libvirt: no invtsc, no EPC, so SGX features do not count. ``hypervisor``
    says which rules tell what the guest saw (`kvm_offerable`); the requirement
    names them in ``view``.
    """
    if isinstance(side, Profile):
        profile = side
        return _kept(
            profile,
            ("requirement", name, invtsc, sgx_epc, hypervisor),
            lambda: _guest(Requirement.from_profile(profile, name, hypervisor), invtsc, sgx_epc),
        )
    return _guest(side.requirement().under(hypervisor), invtsc, sgx_epc)


def _guest(req: Requirement, invtsc: bool, sgx_epc: bool) -> Requirement:
    return req.with_guest(invtsc=invtsc, sgx_epc=sgx_epc) if invtsc or sgx_epc else req


def target_of(
    side: Profile | Baseline,
    name: str,
    *,
    stale: bool = False,
    replayed: bool | None = None,
    hypervisor: Hypervisor = Hypervisor.GENERIC,
) -> TargetView:
    """What ``side`` offers a restore (``replayed`` None: a profile's own flag).

    Under ``hypervisor`` KVM a target without a hypervisor offer offers only what
    KVM can ever offer a guest there, plus what KVM emulates everywhere and the
    other vendor's names for its speculation controls (`kvm_offerable`); a target
    with an offer is judged by its offer alone (the real answer takes precedence
    over the table).
    """
    if isinstance(side, Profile):
        profile = side
        return _kept(
            profile,
            ("target", name, stale, replayed, hypervisor),
            lambda: _profile_target(profile, name, stale, replayed, hypervisor),
        )
    # A Baseline object exists, so its module is loaded already: no import cost here.
    from .baselines import nearest_level

    # Exactly the baseline's features and its address width if it fixes one (a QEMU
    # model's phys-bits); no family or TSC to compare.
    features = guest_sees(side.features, hypervisor)
    return TargetView(
        name=name,
        vendor=side.vendor or "",
        features=features,
        xsave_mask=usable_xsave_mask_of(side.xsave_mask, features),
        physical_bits=side.physical_bits,
        stale=stale,
        replayed=bool(replayed),
        x86_64_level=nearest_level(features),
    )


def _profile_target(
    side: Profile, name: str, stale: bool, replayed: bool | None, hypervisor: Hypervisor
) -> TargetView:
    """`target_of` a processor, built (`_SIDES` keeps it while the profile lives)."""
    view = TargetView.from_profile(side, name, stale=stale, replayed=replayed)
    # Kernel-synthesised bits from the offer where there is one; a mitigation the
    # target lacks but is not affected by counts as satisfied (`mitigations`).
    seen = as_guest_sees(side, view.features)
    if side.hypervisor_offer is None:
        seen = guest_sees(seen, hypervisor)
        if hypervisor is Hypervisor.KVM:
            # KVM offers the other vendor's names for the host's speculation controls.
            seen |= kvm_synthesises(side.features)
    seen |= satisfied(seen, arch_capabilities_no(side.hypervisor_offer))
    if seen == view.features:
        return view
    return replace(view, features=seen, xsave_mask=usable_xsave_mask_of(view.xsave_mask, seen))


def requirement_of_domain(
    cpu: DomainCpu,
    boot: Profile | Baseline | None,
    name: str,
    *,
    hypervisor: Hypervisor = Hypervisor.GENERIC,
) -> Requirement:
    """What a VM defined by a libvirt ``<cpu>`` (`libvirt_cpu`) needs from its restore target.

    Host modes start from the boot host's requirement (its hypervisor offer where known,
    else ``hypervisor``'s rules); a custom CPU from its QEMU model. Then the domain's
    features: require/force add, disable/forbid remove, optional adds what the boot host
    offers (every optional one without a boot host: the stricter side). invtsc and an SGX
    EPC are the domain's own configuration. Raises LibvirtCpuError when a host mode lacks
    its boot host.
    """
    from .baselines import XSAVE_FOR_FEATURE, resolve_baseline
    from .libvirt_cpu import CUSTOM, HOST_MODEL, QEMU_PREFIX_MODEL, UNMIGRATABLE, LibvirtCpuError

    if cpu.needs_boot_host and boot is None:
        raise LibvirtCpuError(
            f"{cpu.source}: <cpu mode='{cpu.mode}'> is the boot host's CPU: name the host the "
            "VM booted on (--boot-host)"
        )
    if cpu.mode == CUSTOM:
        assert cpu.model is not None
        base = resolve_baseline(QEMU_PREFIX_MODEL + cpu.model, cpu.vendor).requirement()
        req = replace(base.under(hypervisor), name=name)
        if isinstance(boot, Profile):
            # The guest's TSC runs at its boot host's rate (QEMU without tsc-frequency).
            req = replace(req, tsc_hz=boot.tsc.hz)
    else:
        assert boot is not None
        req = replace(requirement_of(boot, name, hypervisor=hypervisor), baseline=cpu.summary())
    every = req.features | req.sgx_features
    offered = every
    if isinstance(boot, Profile):
        offer = boot.hypervisor_offer
        made_up = kvm_synthesises(boot.features) if hypervisor is Hypervisor.KVM else frozenset()
        own = boot.features | made_up
        offered = own if offer is None else own & offer.features
    elif boot is not None:
        offered = boot.features
    optional = cpu.optional if boot is None else cpu.optional & offered
    added = (cpu.added | optional) - UNMIGRATABLE
    removed = cpu.removed | (UNMIGRATABLE if cpu.mode == HOST_MODEL else frozenset())
    features = guest_visible((every | added) - removed)
    mask = req.xsave_mask
    for feature in added:
        for index in XSAVE_FOR_FEATURE.get(feature, ()):
            mask |= 1 << index
    mask = _without_components_of(mask, removed)
    # An optional invtsc the boot host has (or may have: no boot host) reaches the guest.
    invtsc = cpu.invtsc or "invariant_tsc" in optional
    boot_invtsc = boot.invariant_tsc if isinstance(boot, Profile) else False
    if invtsc and boot is not None and not boot_invtsc:
        if "invariant_tsc" in cpu.added:
            raise LibvirtCpuError(
                f"{cpu.source}: the domain requires invtsc, but its boot host has no invariant "
                "TSC (CPUID 0x80000007 EDX bit 8), so it cannot have booted there"
            )
        invtsc = False  # migratable='off' passes invtsc only where the host has it
    physical_bits = req.physical_bits
    if cpu.phys_bits is not None:
        physical_bits = cpu.phys_bits
    elif cpu.host_phys_bits and isinstance(boot, Profile):
        physical_bits = boot.address_sizes.physical_bits
    elif cpu.host_phys_bits and boot is not None:
        physical_bits = boot.physical_bits
    req = replace(
        req,
        features=features,
        sgx_features=frozenset(),
        xsave_mask=mask,
        physical_bits=physical_bits,
        baseline=cpu.summary(),
    )
    if cpu.tsc_hz is not None:
        # A fixed TSC rate (tsc-frequency) is the guest's wherever it runs.
        req = replace(req, tsc_hz=cpu.tsc_hz, tsc_fixed=True)
    return req.with_guest(invtsc=invtsc, sgx_epc=cpu.sgx_epc)


def _without_components_of(mask: int, removed: frozenset[str]) -> int:
    """``mask`` without the XSAVE components whose only users a domain disabled."""
    for index, feature in XSAVE_FEATURE.items():
        if feature in removed:
            mask &= ~(1 << index)
    for index, users in SUPERVISOR_XSAVE_FEATURES.items():
        if users <= removed:
            mask &= ~(1 << index)
    return mask
