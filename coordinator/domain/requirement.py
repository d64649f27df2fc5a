"""What a VM's saved state needs from the processor it is restored on.

A requirement is what the guest could see when it booted: either a real
host's guest-visible features (``host`` mode) or a named feature set
(``baseline`` mode, EVC-like). Only guest-visible features are kept: the
agent's feature table says which those are, so this module holds no list of
its own and a newer table changes every decision at once.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

from cpucompat.agent.decode import FEATURE_CLASS, XSAVE_COMPONENT_NAMES
from cpucompat.agent.feature_table import FEATURE_BITS, FeatureClass
from cpucompat.agent.microarchitecture import decides  # one rule for agent and coordinator
from cpucompat.agent.profile import Profile, Xsave

from .kvm_offerable import GENERIC_VIEW, Hypervisor, guest_sees, kvm_synthesises, view_label
from .mitigations import as_guest_sees, kernel_decides

LEGACY_XSAVE_MASK = 0b11
"""x87 and SSE state (components 0, 1) live in the legacy FXSAVE area every x86-64 CPU has."""


FEATURE_CLASSES_VIEW = GENERIC_VIEW
"""The view of a side without a hypervisor offer: its CPUID filtered by the table's classes."""


def offer_view(kind: str) -> str:
    """The view of a side whose hypervisor offer decided (``offer: kvm``)."""
    return f"offer: {kind}"


NESTED_FEATURES = frozenset({"vmx", "svm"})
"""Nested virtualisation: a guest that was offered these may run its own guests."""


def offers_nested(profile: Profile) -> bool:
    """Whether a host gives its guests nested virtualisation: its offer where known."""
    offer = profile.hypervisor_offer
    features = profile.features if offer is None else offer.features
    return bool(NESTED_FEATURES & features)


class Mode(StrEnum):
    """How the guest's CPUID was chosen when it booted."""

    HOST = "host"  # passthrough: the boot host's own guest-visible features
    BASELINE = "baseline"  # a named feature set (EVC-like compatibility mode)


def feature_class(name: str) -> FeatureClass | None:
    """The table's class for a canonical feature name; None when the table does not know it."""
    return FEATURE_CLASS.get(name)


def guest_visible(names: Iterable[str]) -> frozenset[str]:
    """The names among ``names`` that decide compatibility."""
    return frozenset(n for n in names if decides(n))


SGX_LEAF = 0x12
SGX_FEATURES: frozenset[str] = frozenset(
    {"sgx", "sgx_lc"} | {fb.name for fb in FEATURE_BITS if fb.leaf == SGX_LEAF}
)
"""SGX and what the SGX leaf reports. A guest can use SGX only with an enclave page
cache, which QEMU assigns only when configured (``-object memory-backend-epc``,
``sgx-epc``; QEMU docs system/i386/sgx): these count only for such VMs."""


def split_sgx(features: frozenset[str], sgx_epc: bool) -> tuple[frozenset[str], frozenset[str]]:
    """(features that decide, SGX features kept aside) for a VM with or without EPC."""
    sgx = features & SGX_FEATURES
    return (features if sgx_epc else features - sgx), sgx


XSAVE_FEATURE: Mapping[int, str] = {
    2: "avx",
    3: "mpx",
    4: "mpx",
    5: "avx512f",
    6: "avx512f",
    7: "avx512f",
    9: "pku",
    17: "amx_tile",
    18: "amx_tile",
    19: "apx",
    62: "lwp",
}
"""User XSAVE component -> the feature without which no OS enables it (Linux's
xsave_cpuid_features); components not listed are taken as enumerated."""


SUPERVISOR_XSAVE_FEATURES: Mapping[int, frozenset[str]] = {
    8: frozenset({"intel_pt"}),
    10: frozenset({"enqcmd"}),
    11: frozenset({"shstk", "ibt"}),
    12: frozenset({"shstk", "ibt"}),
    14: frozenset({"uintr"}),
    15: frozenset({"arch_lbr"}),
}
"""Supervisor XSAVE component (IA32_XSS, CPUID 0xD.1 ECX:EDX) -> the features that use it
(Intel SDM vol. 1, 13.1; Linux xsave_cpuid_features). Components not listed (HDC, HWP)
are host state no hypervisor hands a guest, and never count."""


def usable_xsave_mask(
    xsave: Xsave, features: Collection[str], supervisor_users: Collection[str] | None = None
) -> int:
    """User and supervisor XSAVE components a guest may enable on this processor.

    The supported user mask, narrowed to XCR0 when the probe read it (a
    hypervisor only hands guests state the host kernel enabled) and to the
    components whose feature the processor reports: EPYC Rome enumerates the
    PKRU component without reporting PKU, and no guest can use that state.
    Supervisor components (CET, arch LBR, PT) count where the processor lists them
    in 0xD.1 ECX:EDX and one of their features is in ``supervisor_users`` (default
    ``features``): a guest that
    used CET keeps its shadow-stack state in them, and a target without them
    cannot restore it (KVM's ``kvm_caps.supported_xss``).
    """
    mask = xsave.supported_mask
    if xsave.enabled_mask is not None:
        mask &= xsave.enabled_mask
    mask = usable_xsave_mask_of(mask, features)
    used = set(features if supervisor_users is None else supervisor_users)
    for index, users in SUPERVISOR_XSAVE_FEATURES.items():
        if xsave.supervisor_mask >> index & 1 and users & used:
            mask |= 1 << index
    return mask


def usable_xsave_mask_of(mask: int, features: Collection[str]) -> int:
    """``mask`` without the components whose feature is not in ``features``."""
    for index, feature in XSAVE_FEATURE.items():
        if mask >> index & 1 and feature not in features:
            mask &= ~(1 << index)
    for index, users in SUPERVISOR_XSAVE_FEATURES.items():
        if mask >> index & 1 and not users & set(features):
            mask &= ~(1 << index)
    return mask


def component_names(mask: int) -> tuple[str, ...]:
    """Readable names of the XSAVE components set in ``mask``, lowest index first."""
    return tuple(XSAVE_COMPONENT_NAMES.get(i, f"component{i}") for i in mask_indices(mask))


def mask_indices(mask: int) -> tuple[int, ...]:
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


@dataclass(frozen=True)
class Requirement:
    """What a saved state needs from the processor it is restored on.

    ``vendor`` None means a vendorless baseline (an x86-64 level): the vendor
    check is then skipped and the verdict says so in a warning. ``family`` and
    ``model`` only ever produce warnings.

    The VM's own configuration counts too: ``invariant_tsc`` says the guest was
    given an invariant TSC (QEMU ``invtsc``), which pins it to ``tsc_hz`` (the
    boot host's rate); ``sgx_epc`` says it has an enclave page cache, without
    which the source's SGX features (``sgx_features``) are kept aside and do
    not decide. ``guest_physical_bits`` is the guest-physical width the guest
    saw when the source stated one (None: the physical width);
    ``avx10_version`` the AVX10 version it saw.
    """

    mode: Mode
    name: str
    vendor: str | None
    features: frozenset[str]
    xsave_mask: int
    physical_bits: int | None = None
    family: int | None = None
    model: int | None = None
    invariant_tsc: bool = False
    tsc_hz: int | None = None
    baseline: str | None = None
    fingerprint: str | None = None
    sgx_epc: bool = False
    sgx_features: frozenset[str] = frozenset()
    guest_physical_bits: int | None = None
    avx10_version: int | None = None
    view: str = GENERIC_VIEW
    """The rules that said what the guest sees (`kvm_offerable.view_label`)."""
    kernel_mitigations: bool = False
    """The guest's view of the kernel-synthesised mitigation bits is unknown (an AMD source
    without a hypervisor offer, `mitigations.kernel_decides`): verdicts warn."""
    stepping: int | None = None
    nested: bool = False
    """The boot host offered nested virtualisation (``vmx``/``svm``); only ever warns."""
    tsc_fixed: bool = False
    """The VM's TSC rate is its own configuration (libvirt ``<timer name='tsc'
    frequency>``, QEMU ``tsc-frequency``), held in ``tsc_hz``: it pins the guest to that
    rate as invtsc pins it to the boot host's."""

    @classmethod
    def from_profile(
        cls, profile: Profile, name: str, hypervisor: Hypervisor = Hypervisor.GENERIC
    ) -> Requirement:
        """The requirement of a VM that booted on the host ``profile`` describes.

        Only features the capture shows present count: ``profile.features``
        never holds the bits a dump cannot tell (``profile.unknown_features``),
        so unknown bits never add requirements, and the XSAVE components they
        gate are dropped with them. Callers go through `sides.requirement_of`.
        Without guest configuration: no invariant TSC (QEMU's ``-cpu host`` does not
        expose it by default) and no enclave page cache; see `with_guest`.
        ``hypervisor`` KVM keeps only what KVM can ever offer (`kvm_offerable`), plus
        the speculation-control bits KVM makes up from the host's (`kvm_synthesises`).

        Where the host's hypervisor offer is known, it decides instead: the guest saw
        only what both the processor and the offer give (KVM_GET_SUPPORTED_CPUID is
        what QEMU's ``-cpu host`` passes on), and only the XSAVE components whose
        features survive that intersection.
        """
        offer = profile.hypervisor_offer
        seen = as_guest_sees(profile, profile.features)
        # Under KVM the guest also saw the other vendor's names for the speculation
        # controls the host has (`kvm_synthesises`): by the table without an offer, as the
        # offer says with one.
        made_up = kvm_synthesises(profile.features) if hypervisor is Hypervisor.KVM else frozenset()
        if offer is None:
            seen = guest_sees(seen, hypervisor) | made_up
        else:
            seen = (seen & offer.features) | (made_up & offer.features)
        view = view_label(hypervisor) if offer is None else offer_view(offer.kind)
        features, sgx = split_sgx(guest_visible(seen), sgx_epc=False)
        return cls(
            mode=Mode.HOST,
            name=name,
            vendor=profile.vendor,
            features=features,
            # Supervisor state counts for features the guest saw: the offer's where
            # there is one, else the guest-visible ones.
            xsave_mask=usable_xsave_mask(
                profile.xsave, seen, seen if offer is not None else guest_visible(seen)
            ),
            physical_bits=profile.address_sizes.physical_bits,
            family=profile.family,
            model=profile.model,
            invariant_tsc=False,
            tsc_hz=profile.tsc.hz,
            fingerprint=profile.fingerprint,
            sgx_features=sgx,
            guest_physical_bits=profile.address_sizes.guest_physical_bits,
            avx10_version=profile.avx10_version,
            view=view,
            stepping=profile.stepping,
            nested=offers_nested(profile),
            kernel_mitigations=kernel_decides(profile),
        )

    def under(self, hypervisor: Hypervisor) -> Requirement:
        """This (baseline) requirement as a guest under ``hypervisor`` sees it."""
        if hypervisor is Hypervisor.GENERIC:
            return self
        seen = guest_sees(self.features, hypervisor)
        return replace(
            self,
            features=seen,
            xsave_mask=usable_xsave_mask_of(self.xsave_mask, seen),
            view=view_label(hypervisor),
        )

    def with_guest(self, *, invtsc: bool, sgx_epc: bool) -> Requirement:
        """This requirement for a VM configured with or without invtsc and an EPC."""
        every = self.features | self.sgx_features
        features, sgx = split_sgx(every, sgx_epc)
        return replace(
            self, invariant_tsc=invtsc, sgx_epc=sgx_epc, features=features, sgx_features=sgx
        )

    @property
    def xsave_components(self) -> tuple[int, ...]:
        return mask_indices(self.xsave_mask)

    @property
    def xsave_component_names(self) -> tuple[str, ...]:
        return component_names(self.xsave_mask)

    @cached_property
    def decision_key(self) -> tuple[Any, ...]:
        """Everything a verdict depends on, hashable; equal keys give equal verdicts."""
        return (
            self.mode,
            self.vendor,
            self.features,
            self.xsave_mask,
            self.physical_bits,
            self.family,
            self.model,
            self.invariant_tsc,
            self.tsc_hz if self.invariant_tsc or self.tsc_fixed else None,
            self.tsc_fixed,
            self.guest_physical_bits,
            self.avx10_version,
            self.view,
            self.kernel_mitigations,
            self.stepping,
            self.nested,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "name": self.name,
            "baseline": self.baseline,
            "vendor": self.vendor,
            "features": sorted(self.features),
            "xsave_components": [
                {"index": i, "name": n}
                for i, n in zip(self.xsave_components, self.xsave_component_names, strict=True)
            ],
            "physical_bits": self.physical_bits,
            "family": self.family,
            "model": self.model,
            "invariant_tsc": self.invariant_tsc,
            "tsc_hz": self.tsc_hz,
            "sgx_epc": self.sgx_epc,
            "sgx_features": sorted(self.sgx_features),
            "guest_physical_bits": self.guest_physical_bits,
            "avx10_version": self.avx10_version,
            "fingerprint": self.fingerprint,
            "view": self.view,
            "kernel_mitigations": self.kernel_mitigations,
            "stepping": self.stepping,
            "nested": self.nested,
            "tsc_fixed": self.tsc_fixed,
        }
