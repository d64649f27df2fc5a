"""Which CPUID bits a KVM guest can ever see: the offline stand-in for a live offer.

KVM offers a guest only bits its `kvm_set_cpu_caps()` (Linux
arch/x86/kvm/cpuid.c) lists, and QEMU's ``-cpu host`` passes only bits it
names. A dump or a host without a readable `/dev/kvm` has no offer, so
``--hypervisor kvm`` applies this table instead: the guest-visible bits no
KVM guest sees are dropped from requirements and target views, and the bits
KVM emulates on every host are added to both.

The table reflects Linux 6.15 (`kvm_set_cpu_caps`, `__do_cpuid_func`) plus
the later TSA, PREFETCHI and ERAPS patches, as read in the decision-rules
review of 2026-11-30. It lists the bits *left out* of the offer: a bit
wrongly missing here is still required (a refusal, the safe side), whereas
an allow-list that forgot a bit KVM does offer would drop it (a false
COMPATIBLE).
"""

from __future__ import annotations

from enum import StrEnum

KVM_TABLE_KERNEL = "Linux 6.15"
"""The kernel whose `kvm_set_cpu_caps` the table reflects."""


class Hypervisor(StrEnum):
    """Which rules say what a guest sees when there is no live offer."""

    GENERIC = "generic"  # the feature table's classes alone
    KVM = "kvm"  # the classes, then what KVM can ever offer (this table)


GENERIC_VIEW = "feature classes"
KVM_VIEW = f"kvm (table, {KVM_TABLE_KERNEL})"

NEVER_OFFERED: frozenset[str] = frozenset(
    {
        # 0x80000008 EBX[8]: not in KVM's CPUID_8000_0008_EBX list; QEMU has no name for it.
        "mcommit",
        # Key Locker: KVM has no leaf 0x19 and does not pass 7.0 ECX[23].
        "keylocker",
        "keylocker_wide",
        # 7.1 EDX[18] CET supervisor shadow-stack tokens: not in KVM's 7.1 EDX list.
        "cet_sss",
        # AMD 0x80000001 ECX: translation cache extension, lightweight profiling.
        "tce",
        "lwp",
        # Intel 7.0 ECX / EDX bits outside kvm_cpu_cap_init(CPUID_7_ECX / CPUID_7_EDX).
        "prefetchwt1",
        "enqcmd",
        "pks",
        "uintr",
        "rtm_always_abort",
        # 7.1 EAX / ECX bits outside KVM's 7.1 lists.
        "rao_int",
        "lass",
        "msrlist",
        "movrs",
        "msr_imm",
        "user_msr",
        "apx",
        # AMD 0x80000008 EBX bits outside KVM's CPUID_8000_0008_EBX list.
        "amd_ibrs_always_on",
        "amd_ibrs_preferred",
        "amd_ibrs_same_mode",
        "btc_no",
        # AMD 0x80000021 EAX bits outside KVM's CPUID_8000_0021_EAX list.
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


def view_label(hypervisor: Hypervisor) -> str:
    """The name a verdict gives the view that decided."""
    return KVM_VIEW if hypervisor is Hypervisor.KVM else GENERIC_VIEW


def hypervisor_of_view(view: str) -> Hypervisor:
    """The rules a requirement's ``view`` names (a stamp's): its target is judged alike."""
    return Hypervisor.KVM if view.startswith("kvm") else Hypervisor.GENERIC


def guest_sees(features: frozenset[str], hypervisor: Hypervisor) -> frozenset[str]:
    """The processor features ``features`` as a guest under ``hypervisor`` sees them."""
    if hypervisor is Hypervisor.GENERIC:
        return features
    return (features - NEVER_OFFERED) | ALWAYS_OFFERED
