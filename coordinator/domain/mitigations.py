"""Mitigation bits as a guest sees them: what satisfies one, and which the kernel makes up.

A guest picks its mitigations from the mitigation and "not affected" bits it
saw at boot. On the target, a mitigation the guest uses is needed only where
the target is affected: the bit itself or the matching "not affected" bits
satisfy it (`SATISFIED_BY`).

Some of these bits are not the processor's: the host kernel synthesises them
and KVM passes its view on. Linux `tsa_init()` (arch/x86/kernel/cpu/amd.c)
sets TSA_SQ_NO/TSA_L1_NO on every AMD family but 0x19, and KVM's
`kvm_set_cpu_caps()` (arch/x86/kvm/cpuid.c) offers VERW_CLEAR, SBPB,
IBPB_BRTYPE, SRSO_NO and the TSA bits from the kernel's feature words
(`SYNTHESIZED_F`/`SCATTERED_F`), not from raw CPUID. These bits are judged
from the hypervisor's offer where there is one. Without an offer, the bits
the host kernel may set (`kernel_may_set`, by vendor and family) are added
to both sides in a second reading; where that reading changes which of these
bits are missing, the verdict depends on the kernels and warns
(`MITIGATIONS_FROM_KERNEL`, `kernel_dependent`). A pair whose kernels set the
same bits (one family, say) gets no warning.
"""

from __future__ import annotations

from collections.abc import Mapping

from cpucompat.agent.profile import HypervisorOffer, Profile

KERNEL_SYNTHESISED: frozenset[str] = frozenset(
    {"tsa_sq_no", "tsa_l1_no", "verw_clear", "sbpb", "ibpb_brtype", "srso_no"}
)
"""Bits a KVM guest sees as the host kernel sets them (Linux amd.c `tsa_init`, bugs.c,
KVM cpuid.c `kvm_set_cpu_caps`), whatever raw CPUID says."""

KERNEL_VENDORS: frozenset[str] = frozenset({"AuthenticAMD", "HygonGenuine"})
"""Vendors whose guests can see `KERNEL_SYNTHESISED` bits (all AMD CPUID 0x80000021 EAX)."""

SATISFIED_BY: Mapping[str, tuple[frozenset[str], ...]] = {
    # AMD 0x80000021 EAX[5] VERW_CLEAR: VERW clears the buffers TSA leaks from. A target
    # reporting TSA_SQ_NO (ECX[1]) and TSA_L1_NO (ECX[2]) is not affected (AMD
    # "Transient Scheduler Attacks", 2025; Linux bugs.c tsa_select_mitigation).
    "verw_clear": (frozenset({"tsa_sq_no", "tsa_l1_no"}),),
    # Intel 7.0 EDX[10] MD_CLEAR: VERW clears buffers MDS and TAA leak from; a target with
    # IA32_ARCH_CAPABILITIES MDS_NO and TAA_NO is affected by neither (Intel SDM vol. 4,
    # MSR 10AH; Linux bugs.c mds_select_mitigation / taa_select_mitigation).
    "md_clear": (frozenset({"mds_no", "taa_no"}),),
}
"""Mitigation -> alternative sets of "not affected" bits, any one of which satisfies it."""

ARCH_CAPABILITIES_MSR = 0x10A
ARCH_CAPABILITIES_NO_BITS: Mapping[str, int] = {
    "rdcl_no": 0,
    "mds_no": 5,
    "taa_no": 8,
    "sbdr_ssdp_no": 13,
    "fbsdp_no": 14,
    "psdp_no": 15,
    "bhi_no": 20,
    "gds_no": 26,
    "rfds_no": 27,
}
"""IA32_ARCH_CAPABILITIES "not affected" bits (Intel SDM vol. 4, MSR 10AH; Linux
msr-index.h ARCH_CAP_*)."""


def arch_capabilities_no(offer: HypervisorOffer | None) -> frozenset[str]:
    """The "not affected" bits the offer's IA32_ARCH_CAPABILITIES gives a guest (empty: none)."""
    value = None if offer is None else offer.msr(ARCH_CAPABILITIES_MSR)
    if value is None:
        return frozenset()
    return frozenset(name for name, bit in ARCH_CAPABILITIES_NO_BITS.items() if value >> bit & 1)


def satisfied(features: frozenset[str], not_affected: frozenset[str]) -> frozenset[str]:
    """Mitigations a target without their bit still satisfies through "not affected" bits."""
    have = features | not_affected
    return frozenset(
        mitigation
        for mitigation, alternatives in SATISFIED_BY.items()
        if mitigation not in features and any(alt <= have for alt in alternatives)
    )


def as_guest_sees(profile: Profile, features: frozenset[str]) -> frozenset[str]:
    """``features`` with the kernel-synthesised bits taken from the offer where there is one."""
    offer = profile.hypervisor_offer
    if offer is None:
        return features
    return (features - KERNEL_SYNTHESISED) | (offer.features & KERNEL_SYNTHESISED)


def kernel_may_set(vendor: str | None, family: int | None) -> frozenset[str]:
    """The `KERNEL_SYNTHESISED` bits a Linux host kernel may set for this processor.

    AMD (arch/x86/kernel/cpu/amd.c): ``tsa_init`` forces TSA_SQ_NO and TSA_L1_NO on
    every family but 0x19 and VERW_CLEAR on family 0x19 (with TSA microcode);
    ``early_init_amd`` forces IBPB_BRTYPE on family 0x17 (with IBPB) and IBPB_BRTYPE
    and SBPB on families from 0x19 (where the SBPB write succeeds). bugs.c
    ``srso_select_mitigation`` forces SRSO_NO below family 0x19 with SMT disabled, also
    on Hygon (family 0x18), whose hygon.c runs neither amd.c function. "May": the
    conditions (microcode, SMT) are host state a dump does not show.
    """
    if family is None or vendor not in KERNEL_VENDORS:
        return frozenset()
    bits: set[str] = set()
    if family < 0x19:
        bits.add("srso_no")
    if vendor == "AuthenticAMD":
        bits |= {"verw_clear"} if family == 0x19 else {"tsa_sq_no", "tsa_l1_no"}
        if family == 0x17 or family >= 0x19:
            bits.add("ibpb_brtype")
        if family >= 0x19:
            bits.add("sbpb")
    return frozenset(bits)


def missing_synthesised(need: frozenset[str], have: frozenset[str]) -> frozenset[str]:
    """The `KERNEL_SYNTHESISED` bits of ``need`` that ``have`` neither holds nor satisfies."""
    return frozenset(
        bit
        for bit in need & KERNEL_SYNTHESISED
        if bit not in have and not any(alt <= have for alt in SATISFIED_BY.get(bit, ()))
    )


def kernel_dependent(
    need: frozenset[str],
    need_kernel: frozenset[str],
    have: frozenset[str],
    have_kernel: frozenset[str],
) -> frozenset[str]:
    """Bits whose verdict changes when both host kernels set what they may (empty: none).

    ``need``/``have`` are the requirement's and the target's features as read (raw
    CPUID or an offer); ``need_kernel``/``have_kernel`` what each side's kernel may add
    (`kernel_may_set`; empty for a side with an offer, whose bits are the kernel's
    already). Rome -> Milan: Rome's kernel tells its guests TSA_SQ_NO/TSA_L1_NO, which
    Milan's (family 0x19) never does, so raw CPUID's "compatible" may be wrong.
    """
    if not need_kernel and not have_kernel:
        return frozenset()
    as_read = missing_synthesised(need, have)
    with_kernels = missing_synthesised(need | need_kernel, have | have_kernel)
    return as_read ^ with_kernels


def kernel_decides(profile: Profile) -> bool:
    """True when a guest's view of the kernel-synthesised bits is unknown (no offer)."""
    return profile.hypervisor_offer is None and profile.vendor in KERNEL_VENDORS
