"""Which CPUID bits a KVM guest can ever see: the offline stand-in for a live offer.

KVM offers a guest only bits its `kvm_set_cpu_caps()` (Linux
arch/x86/kvm/cpuid.c) lists, and QEMU's ``-cpu host`` passes only bits it
names. A dump or a host without a readable `/dev/kvm` has no offer, so
``--hypervisor kvm`` applies this table instead: the guest-visible bits no
KVM guest sees are dropped from requirements and target views, and the bits
KVM emulates on every host are added to both.

The table was checked entry by entry against `kvm_set_cpu_caps()` and
`__do_cpuid_func()` of Linux 6.15 (arch/x86/kvm/cpuid.c as it stood before
6.16 moved the CPUID helpers to <asm/cpuid/api.h>), and against the KVM
patches posted after it up to August 2025 (TSA, MSR_IMM, MOVRS, APX, LASS,
AMD speculation-control bits). It lists the bits *left out* of the offer: a bit
wrongly missing here is still required (a refusal, the safe side), whereas a
bit listed here that some KVM does offer drops a real requirement (a false
COMPATIBLE). So a bit stays listed only where no KVM version read offers it
and no posted KVM patch adds it; the rest were taken out (docs/design-notes.md,
"What a KVM guest can ever see", has the reading per group).
"""

from __future__ import annotations

from enum import StrEnum

KVM_TABLE_KERNEL = "Linux 6.15, KVM patches to 2025-08"
"""The kernel whose `kvm_set_cpu_caps` the table reflects."""


class Hypervisor(StrEnum):
    """Which rules say what a guest sees when there is no live offer."""

    GENERIC = "generic"  # the feature table's classes alone
    KVM = "kvm"  # the classes, then what KVM can ever offer (this table)


GENERIC_VIEW = "feature classes"
KVM_VIEW = f"kvm (table, {KVM_TABLE_KERNEL})"

NEVER_OFFERED: frozenset[str] = frozenset(
    {
        # 0x80000008 EBX[8] MCOMMIT: not in kvm_cpu_cap_init(CPUID_8000_0008_EBX), and
        # __do_cpuid_func() overrides that whole register with KVM's caps.
        "mcommit",
        # Key Locker: no case 0x19 in __do_cpuid_func() (the default zeroes the leaf), and
        # 7.0 ECX[23] is not in kvm_cpu_cap_init(CPUID_7_ECX).
        "keylocker",
        "keylocker_wide",
        # 7.1 EDX[18] CET supervisor shadow-stack tokens: KVM's CET enabling lists it as
        # "0 /* F(CET_SSS) */" (KVM cannot promise no VM exit during a token update).
        "cet_sss",
        # AMD 0x80000001 ECX[17] TCE, ECX[15] LWP: outside CPUID_8000_0001_ECX ("SKINIT,
        # WDT, LWP" are left out by name).
        "tce",
        "lwp",
        # 7.0 ECX[0] PREFETCHWT1, ECX[29] ENQCMD, ECX[31] PKS and 7.0 EDX[5] UINTR, EDX[11]
        # RTM_ALWAYS_ABORT: outside CPUID_7_ECX / CPUID_7_EDX, no KVM patch adds them.
        "prefetchwt1",
        "enqcmd",
        "pks",
        "uintr",
        "rtm_always_abort",
        # 7.1 EAX[3] RAO-INT, EAX[27] MSRLIST and 7.1 EDX[15] USER_MSR: outside
        # CPUID_7_1_EAX / CPUID_7_1_EDX, no KVM patch adds them.
        "rao_int",
        "msrlist",
        "user_msr",
        # AMD 0x80000021 EAX bits 7, 10, 11, 18, 19: outside CPUID_8000_0021_EAX (bit 7 is
        # left out by name, "UpperAddressIgnore"); __do_cpuid_func() overrides EAX.
        "upper_addr_ignore",
        "amd_fsrs",
        "amd_fsrc",
        "epsf",
        "fsrsc",
    }
)
"""Guest-visible bits (by the feature table) that no KVM guest sees."""

ALWAYS_OFFERED: frozenset[str] = frozenset({"arch_capabilities"})
"""Bits KVM emulates on every host (`EMULATED_F(ARCH_CAPABILITIES)`): every KVM guest sees
them, whatever the processor reports."""


SYNTHESISED_FROM: tuple[tuple[str, frozenset[str]], ...] = (
    # kvm_set_cpu_caps() after kvm_cpu_cap_init(CPUID_7_EDX): SPEC_CTRL when the host has
    # AMD_IBPB_RET, AMD_IBPB and AMD_IBRS (kernels before that test had IBPB && IBRS, a
    # weaker one: every host meeting this one met it); INTEL_STIBP from the kernel's STIBP
    # (common.c init_speculation_control sets it from AMD_STIBP or INTEL_STIBP);
    # SPEC_CTRL_SSBD from AMD_SSBD.
    ("spec_ctrl", frozenset({"amd_ibpb_ret", "amd_ibpb", "amd_ibrs"})),
    ("intel_stibp", frozenset({"amd_stibp"})),
    ("spec_ctrl_ssbd", frozenset({"amd_ssbd"})),
    # After kvm_cpu_cap_init(CPUID_8000_0008_EBX), the other way: AMD_IBPB and AMD_IBRS
    # from the kernel's IBPB and IBRS (init_speculation_control: both from SPEC_CTRL),
    # AMD_STIBP from STIBP, AMD_SSBD from SPEC_CTRL_SSBD.
    ("amd_ibpb", frozenset({"spec_ctrl"})),
    ("amd_ibrs", frozenset({"spec_ctrl"})),
    ("amd_stibp", frozenset({"intel_stibp"})),
    ("amd_ssbd", frozenset({"spec_ctrl_ssbd"})),
)
"""(bit KVM offers, host CPUID bits that make it offer it): the other vendor's name for a
speculation control the host has, which KVM's supported CPUID carries whatever raw CPUID
says (Linux 6.16 arch/x86/kvm/cpuid.c `kvm_set_cpu_caps`)."""


def kvm_synthesises(host: frozenset[str]) -> frozenset[str]:
    """The bits KVM offers a guest on a host whose CPUID has ``host`` though CPUID lacks them.

    Only for a processor's own CPUID (a host-mode guest): a named model gets its bits.
    """
    return frozenset(bit for bit, needs in SYNTHESISED_FROM if needs <= host) - host


def view_label(hypervisor: Hypervisor) -> str:
    """The name a verdict gives the view that decided."""
    return KVM_VIEW if hypervisor is Hypervisor.KVM else GENERIC_VIEW


def hypervisor_of_view(view: str) -> Hypervisor:
    """The rules a requirement's ``view`` names (a stamp's): its target is judged alike."""
    return Hypervisor.KVM if view.startswith("kvm") else Hypervisor.GENERIC


def guest_sees(features: frozenset[str], hypervisor: Hypervisor) -> frozenset[str]:
    """The processor features ``features`` as a guest under ``hypervisor`` sees them.

    Also for named baselines, so it adds no `kvm_synthesises` bits: callers holding a
    processor's CPUID add those themselves.
    """
    if hypervisor is Hypervisor.GENERIC:
        return features
    return (features - NEVER_OFFERED) | ALWAYS_OFFERED
