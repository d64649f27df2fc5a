"""The CPUID feature table, as data: which bit means which feature, and how it counts.

Why a table and not code
------------------------
Every decision this project makes about saved state rests on one question per
CPUID bit: *may a guest have come to depend on it?*  The answer is a fact about
the bit (see ``/work/shared/DESIGN.md``: guest-visible, host-only,
hypervisor-emulated, mode-dependent), so it is kept here as one immutable row
per bit, with the reason written beside it, instead of being scattered through
``if`` statements.  That keeps it

* reviewable: a reviewer reads one row and checks it against the Intel SDM,
  the AMD APM and Linux's ``arch/x86/include/asm/cpufeatures.h``;
* diffable: a change of class shows up as a one-line change with its reason;
* shared: the agent's decoder, the coordinator (which re-decodes the raw leaves
  every host reports, so a newer table upgrades every stored profile without a
  newer agent) and the CLI all read the same rows.

Names
-----
Feature names are Linux ``/proc/cpuinfo`` names: the quoted name in the
``cpufeatures.h`` comment when there is one, else the lowercased macro name
after ``X86_FEATURE_``.  Bits Linux defines but does not show (no quoted name in
Linux >= 6.12, ``""`` in older kernels; also the KVM-only macros of
``arch/x86/kvm/reverse_cpuid.h``) keep their lowercased macro name and are
listed in :data:`LINUX_HIDDEN`.  The AMD power-management bits Linux prints
only on the separate "power management" line (``arch/x86/kernel/cpu/powerflags.c``)
carry that line's name with a ``pm_`` prefix (``pm_ts``, ``pm_tm``,
``pm_100mhzsteps``, ...): Linux calls CPUID.80000007h:EDX[4] ``tm`` there, the
name of the CPUID.1:EDX[29] flag, and a profile's feature names must each mean
one bit.  The bare power-line spellings are accepted as aliases except ``tm``,
which stays the flag.  Bits Linux does not name at all get a name in Linux's
style, are listed in :data:`INVENTED_NAMES` and say "name invented" in their
reason.  No two rows that apply to one vendor share a name.  One name has a row
per vendor: ``mba`` (Intel CPUID.10h.0:EBX[3], AMD CPUID.80000008h:EBX[6]), the
one Linux flag ``X86_FEATURE_MBA`` that ``scattered.c`` sets from either; both
rows carry the same class.

Linux's *synthetic* flags (``constant_tsc``, ``rep_good``, ``ibrs``, ``ssbd``,
...) are not CPUID bits and are not rows here.  ``ibrs``, ``ibpb``, ``stibp``
and ``ssbd`` are also spelled differently by QEMU (where they name one specific
bit), so :func:`canonical_name` refuses them as ambiguous and lists the bits to
choose from (:data:`AMBIGUOUS`).

Coverage
--------
Every bit Linux names in the words it reads straight from CPUID: the
``cpufeatures.h`` hardware words, the bits ``scattered.c`` picks from other
leaves, the ``x86_power`` bits ``amd.c``/``hygon.c`` turn into flags, and the
KVM-only words.  On top of that, the architecturally defined bits of the words
the project needs most (leaf 6 EAX, 7.0, 7.1, 0x14.0 EBX, 0x19 EBX, ...), with
invented names.  Left out on purpose: CPUID.7.0:EBX[22] (PCOMMIT, withdrawn by
Intel before it shipped; Linux dropped the name and the bit is reserved),
CPUID.7.0:ECX[21:17] (MAWAU, a number), CPUID.24h.0:EBX[7:0] (the AVX10 version,
a number), and reserved bits.

Leaves without subleaves use subleaf 0 (as :mod:`cpucompat.agent.raw` does).
``vendors`` is None when the bit means the same on every vendor that defines
it; AMD-defined bits in words Intel also uses, and everything in the AMD-only
extended leaves, are restricted to AMD and Hygon so an Intel (or Zhaoxin) dump
can never be read as AMD features.

How to extend
-------------
1. Add a row to the block for its (leaf, subleaf, register), in bit order:
   ``(bit, "name", CLASS, "reason")``; a row may end with its own vendor set.
2. Name it as described above; when Linux has no name, invent one in Linux's
   style, add it to ``_INVENTED`` and say "name invented" in the reason.  When
   Linux defines but hides it, add it to ``_HIDDEN``.
3. Pick the class by the four rules of DESIGN.md; every class other than
   guest-visible needs a short reason, and a surprising guest-visible choice
   deserves one too.
4. Add QEMU/libvirt/compiler spellings to ``_EXPLICIT_ALIASES`` (hyphen forms
   of underscore names are generated).
5. Run ``python -m pytest tests/unit/test_feature_table.py``: it checks positions,
   overlaps, duplicates, reasons and aliases.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import cast

from .errors import NotFoundError

__all__ = [
    "ALIASES",
    "AMBIGUOUS",
    "AMD",
    "AMD_LIKE",
    "FEATURE_BITS",
    "HYGON",
    "INTEL",
    "INVENTED_NAMES",
    "LINUX_HIDDEN",
    "NAMES",
    "AmbiguousFeatureError",
    "FeatureBit",
    "FeatureClass",
    "UnknownFeatureError",
    "bits_for",
    "bits_named",
    "canonical_name",
]


class FeatureClass(StrEnum):
    """How a feature bit counts when deciding where saved state may go (DESIGN.md)."""

    GUEST_VISIBLE = "guest-visible"
    HOST_ONLY = "host-only"
    HYPERVISOR_EMULATED = "hypervisor-emulated"
    MODE_DEPENDENT = "mode-dependent"


INTEL = "GenuineIntel"
AMD = "AuthenticAMD"
HYGON = "HygonGenuine"
AMD_LIKE: frozenset[str] = frozenset({AMD, HYGON})
"""Vendors that implement AMD's definitions of the AMD-defined words."""

REGISTERS = ("eax", "ebx", "ecx", "edx")


@dataclass(frozen=True, slots=True)
class FeatureBit:
    """One named bit of one CPUID register."""

    leaf: int
    subleaf: int
    reg: str  # "eax" / "ebx" / "ecx" / "edx"
    bit: int
    name: str
    cls: FeatureClass
    reason: str  # why this class; required unless the class is guest-visible
    vendors: frozenset[str] | None = None  # None: any vendor; else only these vendor strings

    def applies_to(self, vendor: str | None) -> bool:
        """True when this row describes the bit on processors of ``vendor`` (None: any)."""
        return self.vendors is None or vendor is None or vendor in self.vendors

    @property
    def mask(self) -> int:
        return 1 << self.bit


class UnknownFeatureError(NotFoundError, KeyError):
    """A feature name that is neither a canonical name nor an accepted alias."""

    def __init__(self, message: str, suggestions: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.suggestions: tuple[str, ...] = tuple(suggestions)

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.message


class AmbiguousFeatureError(UnknownFeatureError):
    """A name that means different CPUID bits to different tools (Linux vs QEMU)."""


GV = FeatureClass.GUEST_VISIBLE
HO = FeatureClass.HOST_ONLY
HE = FeatureClass.HYPERVISOR_EMULATED
MD = FeatureClass.MODE_DEPENDENT

# --- reasons shared by many rows ---------------------------------------------------------------

R_THERMAL = "thermal/power management of the physical package; hypervisors keep it for the host"
R_HWP = "hardware P-state (HWP) control belongs to the host's frequency driver; not given to guests"
R_AMD_PM = (
    "AMD power-management capability of the physical part (Linux prints it on the "
    "'power management' line); never handed to guests"
)
R_PMU = "performance-monitoring capability: a vPMU is configured per VM, never passed through as-is"
R_DS = "debug store (BTS/PEBS buffers) is part of the host PMU; hypervisors do not expose it"
R_DEBUG = "debug-register extension the mainstream hypervisors do not virtualise"
R_NESTED = (
    "hardware virtualisation: hidden from guests unless nested virtualisation is "
    "configured, which pins the VM to matching hosts anyway"
)
R_SVM = "SVM sub-feature: used only by a hypervisor (visible to a guest only under nested SVM)"
R_SEV = (
    "memory-encryption capability of the host; an encrypted guest is bound to its "
    "host's keys and is never restored elsewhere from saved state"
)
R_PT = "Intel Processor Trace capability; PT is a host tracing facility, not passed to guests as-is"
R_RDT = "cache/memory-bandwidth monitoring and allocation (RDT/PQOS) is a host resource control"
R_MCA = (
    "machine checks are virtualised: the hypervisor emulates the MCA banks and "
    "injects #MC itself, whatever the host's banks look like"
)
R_TOPOLOGY = "topology flag: the hypervisor derives it from the vCPU topology it builds"
R_MONITOR = (
    "MONITOR/MWAIT: KVM, Hyper-V, Xen and VMware hide it by default (a guest MWAIT "
    "would idle a physical core); exposing it (KVM cpu-pm=on) dedicates cores to the VM"
)
R_MITIGATION = (
    "speculation-control/mitigation bit: the guest chooses its mitigations from it at boot "
    "and keeps using them after a restore, so the target must offer it (or be not affected)"
)
R_NOT_VULNERABLE = (
    "'not vulnerable' bit: a guest that saw it skips a mitigation, so the target must have it too"
)
R_INVENTED = "name invented (Linux has none)"
R_PADLOCK_EN = (
    "firmware's enable state of a PadLock unit; the presence bit beside it decides what a "
    "guest may use"
)
CENTAUR_VENDORS = frozenset({"CentaurHauls", "  Shanghai  "})

Row = tuple[object, ...]  # (bit, name, cls, reason) or (bit, name, cls, reason, vendors)

# (leaf, subleaf, register, default vendors, rows)
_WORDS: tuple[tuple[int, int, str, frozenset[str] | None, tuple[Row, ...]], ...] = (
    # ---- CPUID.1:EDX (Linux word 0) ---------------------------------------------------------
    (
        0x1,
        0,
        "edx",
        None,
        (
            (0, "fpu", GV, ""),
            (1, "vme", GV, ""),
            (2, "de", GV, ""),
            (3, "pse", GV, ""),
            (4, "tsc", GV, ""),
            (5, "msr", GV, ""),
            (6, "pae", GV, ""),
            (7, "mce", HE, R_MCA),
            (8, "cx8", GV, ""),
            (9, "apic", HE, "the local APIC a guest programs is the hypervisor's virtual APIC"),
            (11, "sep", GV, ""),
            (
                12,
                "mtrr",
                HE,
                "guest MTRRs are emulated MSRs; EPT/NPT memory types decide real caching",
            ),
            (13, "pge", GV, ""),
            (14, "mca", HE, R_MCA),
            (15, "cmov", GV, ""),
            (16, "pat", GV, ""),
            (17, "pse36", GV, ""),
            (
                18,
                "pn",
                HO,
                "processor serial number: disabled since the Pentium III, never exposed",
            ),
            (19, "clflush", GV, ""),
            (21, "dts", HO, R_DS),
            (22, "acpi", HO, R_THERMAL),
            (23, "mmx", GV, ""),
            (24, "fxsr", GV, ""),
            (25, "sse", GV, ""),
            (26, "sse2", GV, ""),
            (27, "ss", GV, "self-snoop: passed through by KVM; guests skip cache flushes on it"),
            (28, "ht", HE, R_TOPOLOGY),
            (29, "tm", HO, R_THERMAL),
            (30, "ia64", HO, "IA-64 processor running x86 code; no hypervisor exposes it"),
            (31, "pbe", HO, R_THERMAL),
        ),
    ),
    # ---- CPUID.1:ECX (Linux word 4) ---------------------------------------------------------
    (
        0x1,
        0,
        "ecx",
        None,
        (
            (0, "pni", GV, ""),
            (1, "pclmulqdq", GV, ""),
            (2, "dtes64", HO, R_DS),
            (3, "monitor", HO, R_MONITOR),
            (4, "ds_cpl", HO, R_DS),
            (5, "vmx", HO, R_NESTED),
            (
                6,
                "smx",
                HO,
                "Safer Mode (TXT/GETSEC) measures the physical platform; not virtualised",
            ),
            (7, "est", HO, R_THERMAL),
            (8, "tm2", HO, R_THERMAL),
            (9, "ssse3", GV, ""),
            (10, "cid", HO, "L1 context-ID mode is a host cache-policy control; not exposed"),
            (11, "sdbg", HO, "silicon-debug interface MSR belongs to the platform"),
            (12, "fma", GV, ""),
            (13, "cx16", GV, ""),
            (14, "xtpr", HO, "xTPR update control drives the physical chipset's interrupt routing"),
            (15, "pdcm", HO, R_PMU),
            (
                17,
                "pcid",
                GV,
                "a guest kernel running with CR4.PCIDE cannot resume where PCID is missing "
                "(AMD's own EPYC-Milan QEMU model adds it over EPYC-Rome)",
            ),
            (18, "dca", HO, "Direct Cache Access is a chipset/platform capability"),
            (19, "sse4_1", GV, ""),
            (20, "sse4_2", GV, ""),
            (
                21,
                "x2apic",
                HE,
                "x2APIC is a mode of the hypervisor's virtual APIC, whatever the host uses",
            ),
            (22, "movbe", GV, ""),
            (23, "popcnt", GV, ""),
            (
                24,
                "tsc_deadline_timer",
                HE,
                "the TSC-deadline timer is part of the virtual APIC; KVM emulates it on any host",
            ),
            (25, "aes", GV, ""),
            (26, "xsave", GV, ""),
            (
                27,
                "osxsave",
                MD,
                "mirrors CR4.OSXSAVE of the OS that executed CPUID (a guest sees its own CR4), "
                "so two dumps of one processor can differ",
            ),
            (28, "avx", GV, ""),
            (29, "f16c", GV, ""),
            (30, "rdrand", GV, ""),
            (31, "hypervisor", HE, "set by the hypervisor for its guests; hardware never sets it"),
        ),
    ),
    # ---- CPUID.6:EAX (Linux word 14) --------------------------------------------------------
    (
        0x6,
        0,
        "eax",
        None,
        (
            (0, "dtherm", HO, R_THERMAL),
            (1, "ida", HO, "Turbo Boost (IDA) is the host's frequency policy"),
            (
                2,
                "arat",
                HE,
                "a guest's APIC timer is the virtual APIC's, which runs in every guest C-state",
            ),
            (4, "pln", HO, R_THERMAL),
            (5, "ecmd", HO, f"{R_INVENTED}: extended clock-modulation duty cycle; {R_THERMAL}"),
            (6, "pts", HO, R_THERMAL),
            (7, "hwp", HO, R_HWP),
            (8, "hwp_notify", HO, R_HWP),
            (9, "hwp_act_window", HO, R_HWP),
            (10, "hwp_epp", HO, R_HWP),
            (11, "hwp_pkg_req", HO, R_HWP),
            (13, "hdc", HO, f"{R_INVENTED}: hardware duty cycling; {R_THERMAL}"),
            (14, "turbo_max_3", HO, f"{R_INVENTED}: Turbo Boost Max 3.0 core ranking of the host"),
            (15, "hwp_highest_perf_change", HO, R_HWP),
            (16, "hwp_peci_override", HO, f"{R_INVENTED}: {R_HWP}"),
            (17, "hwp_flexible", HO, f"{R_INVENTED}: {R_HWP}"),
            (18, "hwp_fast_request", HO, f"{R_INVENTED}: fast IA32_HWP_REQUEST access; {R_HWP}"),
            (19, "hfi", HO, "hardware feedback interface steers the host scheduler"),
            (20, "hwp_ignore_idle", HO, f"{R_INVENTED}: {R_HWP}"),
            (23, "itd", HO, f"{R_INVENTED}: Intel Thread Director steers the host scheduler"),
        ),
    ),
    # ---- CPUID.6:ECX (Linux scattered.c) ----------------------------------------------------
    (
        0x6,
        0,
        "ecx",
        None,
        (
            (
                0,
                "aperfmperf",
                HO,
                "APERF/MPERF count the physical core's clocks; hypervisors hide them",
            ),
            (3, "epb", HO, R_THERMAL),
        ),
    ),
    # ---- CPUID.7.0:EBX (Linux word 9); bit 22 (PCOMMIT) withdrawn, left out ----------------
    (
        0x7,
        0,
        "ebx",
        None,
        (
            (0, "fsgsbase", GV, ""),
            (1, "tsc_adjust", HE, "IA32_TSC_ADJUST is emulated by the hypervisor for every guest"),
            (
                2,
                "sgx",
                GV,
                "enclaves depend on it; it counts only for VMs with an enclave page cache "
                "(QEMU gives none by default)",
            ),
            (3, "bmi1", GV, ""),
            (4, "hle", GV, ""),
            (5, "avx2", GV, ""),
            (
                6,
                "fdp_excptn_only",
                HO,
                "marks a removed x87 capability (FDP saved only on exceptions); "
                "no guest relies on its presence, so it must not decide compatibility",
            ),
            (7, "smep", GV, ""),
            (8, "bmi2", GV, ""),
            (9, "erms", GV, ""),
            (10, "invpcid", GV, ""),
            (11, "rtm", GV, ""),
            (12, "cqm", HO, R_RDT),
            (
                13,
                "zero_fcs_fds",
                HO,
                "marks a removed x87 capability (FCS/FDS deprecated to zero); "
                "no guest relies on its presence, so it must not decide compatibility",
            ),
            (14, "mpx", GV, "MPX instructions with XSAVE state (BNDREGS/BNDCSR)"),
            (15, "rdt_a", HO, R_RDT),
            (16, "avx512f", GV, ""),
            (17, "avx512dq", GV, ""),
            (18, "rdseed", GV, ""),
            (19, "adx", GV, ""),
            (20, "smap", GV, ""),
            (21, "avx512ifma", GV, ""),
            (23, "clflushopt", GV, ""),
            (24, "clwb", GV, ""),
            (25, "intel_pt", HO, R_PT),
            (26, "avx512pf", GV, ""),
            (27, "avx512er", GV, ""),
            (28, "avx512cd", GV, ""),
            (29, "sha_ni", GV, ""),
            (30, "avx512bw", GV, ""),
            (31, "avx512vl", GV, ""),
        ),
    ),
    # ---- CPUID.7.0:ECX (Linux word 16); bits 21:17 are MAWAU, a number ----------------------
    (
        0x7,
        0,
        "ecx",
        None,
        (
            (0, "prefetchwt1", GV, R_INVENTED),
            (1, "avx512vbmi", GV, ""),
            (2, "umip", GV, ""),
            (3, "pku", GV, "protection keys with XSAVE state (PKRU)"),
            (
                4,
                "ospke",
                MD,
                "mirrors CR4.PKE of the OS that executed CPUID (a guest sees its own CR4)",
            ),
            (5, "waitpkg", GV, ""),
            (6, "avx512_vbmi2", GV, ""),
            (7, "shstk", GV, "CET shadow stacks with XSAVE state (CET_U/CET_S)"),
            (8, "gfni", GV, ""),
            (9, "vaes", GV, ""),
            (10, "vpclmulqdq", GV, ""),
            (11, "avx512_vnni", GV, ""),
            (12, "avx512_bitalg", GV, ""),
            (13, "tme", HO, "Total Memory Encryption is set up by firmware for all host memory"),
            (14, "avx512_vpopcntdq", GV, ""),
            (16, "la57", GV, ""),
            (22, "rdpid", GV, ""),
            (23, "keylocker", GV, f"{R_INVENTED} upstream; Key Locker AES instructions"),
            (24, "bus_lock_detect", GV, ""),
            (25, "cldemote", GV, ""),
            (27, "movdiri", GV, ""),
            (28, "movdir64b", GV, ""),
            (29, "enqcmd", GV, ""),
            (30, "sgx_lc", GV, ""),
            (31, "pks", GV, f"{R_INVENTED}: protection keys for supervisor pages"),
        ),
    ),
    # ---- CPUID.7.0:EDX (Linux word 18) ------------------------------------------------------
    (
        0x7,
        0,
        "edx",
        None,
        (
            (1, "sgx_keys", HO, f"{R_INVENTED}: SGX attestation services of the physical platform"),
            (2, "avx512_4vnniw", GV, ""),
            (3, "avx512_4fmaps", GV, ""),
            (4, "fsrm", GV, ""),
            (5, "uintr", GV, f"{R_INVENTED}: user interrupts, with XSAVE state"),
            (8, "avx512_vp2intersect", GV, ""),
            (
                9,
                "srbds_ctrl",
                HO,
                "enumerates MSR_MCU_OPT_CTRL, a host-wide microcode control hypervisors do not virtualise",
            ),
            (10, "md_clear", GV, R_MITIGATION),
            (
                11,
                "rtm_always_abort",
                GV,
                "TSX defeatured by microcode: tells the guest RTM never commits",
            ),
            (
                13,
                "tsx_force_abort",
                HO,
                "MSR_TSX_FORCE_ABORT trades TSX for PMU counter 3 on the host; not virtualised",
            ),
            (14, "serialize", GV, ""),
            (
                15,
                "hybrid_cpu",
                HO,
                "the physical package mixes core types; hypervisors present uniform vCPUs "
                "(the profile records each core type and intersects them)",
            ),
            (16, "tsxldtrk", GV, ""),
            (18, "pconfig", HO, "PCONFIG programs host memory-encryption keys (MKTME)"),
            (
                19,
                "arch_lbr",
                HO,
                "architectural LBRs follow the vPMU configuration; where a guest used them, "
                "their supervisor XSAVE component (LBR, IA32_XSS bit 15) is compared when the "
                "host's hypervisor offer shows a guest was given them",
            ),
            (20, "ibt", GV, "CET indirect-branch tracking with XSAVE state"),
            (22, "amx_bf16", GV, ""),
            (23, "avx512_fp16", GV, ""),
            (24, "amx_tile", GV, "AMX tiles with XSAVE state (XTILECFG/XTILEDATA)"),
            (25, "amx_int8", GV, ""),
            (26, "spec_ctrl", GV, R_MITIGATION),
            (27, "intel_stibp", GV, R_MITIGATION),
            (28, "flush_l1d", GV, R_MITIGATION),
            (
                29,
                "arch_capabilities",
                GV,
                f"{R_MITIGATION}; the MSR's *_NO bits describe the host even when KVM emulates it",
            ),
            (
                30,
                "core_capabilities",
                HE,
                "IA32_CORE_CAPABILITIES is emulated by KVM (split-lock reporting), not passed through",
            ),
            (31, "spec_ctrl_ssbd", GV, R_MITIGATION),
        ),
    ),
    # ---- CPUID.7.1:EAX (Linux word 12) ------------------------------------------------------
    (
        0x7,
        1,
        "eax",
        None,
        (
            (0, "sha512", GV, ""),
            (1, "sm3", GV, ""),
            (2, "sm4", GV, ""),
            (3, "rao_int", GV, f"{R_INVENTED}: RAO-INT atomic instructions"),
            (4, "avx_vnni", GV, ""),
            (5, "avx512_bf16", GV, ""),
            (6, "lass", GV, ""),
            (7, "cmpccxadd", GV, ""),
            (8, "arch_perfmon_ext", HO, R_PMU),
            (10, "fzrm", GV, ""),
            (11, "fsrs", GV, ""),
            (12, "fsrc", GV, ""),
            (
                17,
                "fred",
                GV,
                "a guest kernel using FRED event delivery cannot fall back after boot",
            ),
            (18, "lkgs", GV, ""),
            (19, "wrmsrns", GV, ""),
            (21, "amx_fp16", GV, ""),
            (
                22,
                "hreset",
                HO,
                f"{R_INVENTED}: HRESET only resets Thread Director history, a host scheduling aid",
            ),
            (23, "avx_ifma", GV, ""),
            (26, "lam", GV, ""),
            (27, "msrlist", GV, f"{R_INVENTED}: RDMSRLIST/WRMSRLIST"),
            (31, "movrs", GV, ""),
        ),
    ),
    # ---- CPUID.7.1:EBX / ECX (Linux scattered.c) -------------------------------------------
    (
        0x7,
        1,
        "ebx",
        None,
        (
            (
                0,
                "intel_ppin",
                HO,
                "protected processor inventory number identifies the physical chip",
            ),
        ),
    ),
    (0x7, 1, "ecx", None, ((5, "msr_imm", GV, ""),)),
    # ---- CPUID.7.1:EDX (KVM-only words in Linux) --------------------------------------------
    (
        0x7,
        1,
        "edx",
        None,
        (
            (4, "avx_vnni_int8", GV, ""),
            (5, "avx_ne_convert", GV, ""),
            (8, "amx_complex", GV, ""),
            (10, "avx_vnni_int16", GV, ""),
            (14, "prefetchiti", GV, ""),
            (15, "user_msr", GV, f"{R_INVENTED}: URDMSR/UWRMSR"),
            (
                18,
                "cet_sss",
                GV,
                f"{R_INVENTED}: supervisor shadow stacks are safe; a guest kernel enables them on it",
            ),
            (19, "avx10", GV, ""),
            (21, "apx", GV, "APX registers with XSAVE state"),
        ),
    ),
    # ---- CPUID.7.2:EDX (KVM-only word in Linux): all speculation controls ------------------
    (
        0x7,
        2,
        "edx",
        None,
        (
            (0, "intel_psfd", GV, R_MITIGATION),
            (1, "ipred_ctrl", GV, R_MITIGATION),
            (2, "rrsba_ctrl", GV, R_MITIGATION),
            (3, "ddpd_u", GV, R_MITIGATION),
            (4, "bhi_ctrl", GV, R_MITIGATION),
            (5, "mcdt_no", GV, R_NOT_VULNERABLE),
        ),
    ),
    # ---- CPUID.0xD.1:EAX (Linux word 10) ----------------------------------------------------
    (
        0xD,
        1,
        "eax",
        None,
        (
            (0, "xsaveopt", GV, ""),
            (1, "xsavec", GV, ""),
            (2, "xgetbv1", GV, ""),
            (3, "xsaves", GV, ""),
            (4, "xfd", GV, "extended feature disable, needed by AMX guests"),
        ),
    ),
    # ---- CPUID.0xF / 0x10 (RDT; Linux scattered.c) ------------------------------------------
    (0xF, 0, "edx", None, ((1, "cqm_llc", HO, R_RDT),)),
    (
        0xF,
        1,
        "edx",
        None,
        (
            (0, "cqm_occup_llc", HO, R_RDT),
            (1, "cqm_mbm_total", HO, R_RDT),
            (2, "cqm_mbm_local", HO, R_RDT),
        ),
    ),
    (
        0x10,
        0,
        "ebx",
        None,
        (
            (1, "cat_l3", HO, R_RDT),
            (2, "cat_l2", HO, R_RDT),
            (
                3,
                "mba",
                HO,
                f"{R_RDT} (Intel's bit; AMD's is CPUID.80000008h:EBX[6], the same Linux flag)",
                frozenset({INTEL}),
            ),
        ),
    ),
    (0x10, 1, "ecx", None, ((2, "cdp_l3", HO, R_RDT),)),
    (0x10, 2, "ecx", None, ((2, "cdp_l2", HO, R_RDT),)),
    (0x10, 3, "ecx", None, ((0, "per_thread_mba", HO, R_RDT),)),
    # ---- CPUID.0x12.0:EAX (SGX; Linux scattered.c) ------------------------------------------
    (
        0x12,
        0,
        "eax",
        None,
        (
            (0, "sgx1", GV, ""),
            (1, "sgx2", GV, ""),
            (
                10,
                "sgx_eupdatesvn",
                HO,
                "ENCLS[EUPDATESVN] is run by the host kernel after microcode loads",
            ),
            (11, "sgx_edeccssa", GV, ""),
        ),
    ),
    # ---- CPUID.0x14.0:EBX (Intel PT; Linux names these PT_CAP_*, not cpufeatures) ----------
    (
        0x14,
        0,
        "ebx",
        None,
        (
            (0, "pt_cr3_filtering", HO, f"{R_INVENTED}; {R_PT}"),
            (1, "pt_psb_cyc", HO, f"{R_INVENTED}; {R_PT}"),
            (2, "pt_ip_filtering", HO, f"{R_INVENTED}; {R_PT}"),
            (3, "pt_mtc", HO, f"{R_INVENTED}; {R_PT}"),
            (4, "pt_ptwrite", HO, f"{R_INVENTED}; {R_PT}"),
            (5, "pt_power_event_trace", HO, f"{R_INVENTED}; {R_PT}"),
            (6, "pt_psb_pmi_preserve", HO, f"{R_INVENTED}; {R_PT}"),
            (7, "pt_event_trace", HO, f"{R_INVENTED}; {R_PT}"),
            (8, "pt_tnt_disable", HO, f"{R_INVENTED}; {R_PT}"),
        ),
    ),
    # ---- CPUID.0x19:EBX (Key Locker) --------------------------------------------------------
    (
        0x19,
        0,
        "ebx",
        None,
        (
            (
                0,
                "aeskle",
                MD,
                f"{R_INVENTED}: set only while the OS that ran CPUID has CR4.KL enabled, so it "
                "reads differently by OS state",
            ),
            (2, "keylocker_wide", GV, f"{R_INVENTED}: wide Key Locker AES instructions"),
            (
                4,
                "keylocker_backup",
                HO,
                f"{R_INVENTED}: IWKey backup to platform storage is a host platform facility",
            ),
        ),
    ),
    # ---- CPUID.0x24.0:EBX (AVX10; KVM-only word); EBX[7:0] is the version, a number ---------
    (
        0x24,
        0,
        "ebx",
        None,
        (
            (16, "avx10_128", GV, ""),
            (17, "avx10_256", GV, ""),
            (18, "avx10_512", GV, ""),
        ),
    ),
    # ---- CPUID.80000001h:ECX (Linux word 6) -------------------------------------------------
    (
        0x8000_0001,
        0,
        "ecx",
        AMD_LIKE,
        (
            (0, "lahf_lm", GV, "", None),
            (1, "cmp_legacy", HE, R_TOPOLOGY),
            (2, "svm", HO, R_NESTED),
            (
                3,
                "extapic",
                HO,
                "extended APIC register space of the physical APIC; not virtualised",
            ),
            (4, "cr8_legacy", GV, ""),
            (5, "abm", GV, "", None),
            (6, "sse4a", GV, ""),
            (7, "misalignsse", GV, ""),
            (8, "3dnowprefetch", GV, "", None),
            (
                9,
                "osvw",
                HE,
                "OS-visible-workaround MSRs are emulated; the hypervisor picks the errata",
            ),
            (10, "ibs", HO, R_PMU),
            (11, "xop", GV, ""),
            (
                12,
                "skinit",
                HO,
                "SKINIT secure launch measures the physical machine; not virtualised",
            ),
            (13, "wdt", HO, "the watchdog timer is a platform device"),
            (
                15,
                "lwp",
                GV,
                "lightweight profiling with XSAVE state; an ISA dependency where exposed",
            ),
            (16, "fma4", GV, ""),
            (17, "tce", GV, "changes INVLPG semantics once the guest sets EFER.TCE"),
            (19, "nodeid_msr", HO, "the NodeId MSR describes the physical package"),
            (21, "tbm", GV, ""),
            (
                22,
                "topoext",
                HE,
                "announces leaves 0x8000001D/1E, which the hypervisor synthesises for its vCPU topology",
            ),
            (23, "perfctr_core", HO, R_PMU),
            (24, "perfctr_nb", HO, R_PMU),
            (26, "bpext", HO, R_DEBUG),
            (27, "ptsc", HO, R_PMU),
            (28, "perfctr_llc", HO, R_PMU),
            (29, "mwaitx", HO, R_MONITOR),
            (30, "addr_mask_ext", HO, f"{R_INVENTED}: {R_DEBUG}"),
        ),
    ),
    # ---- CPUID.80000001h:EDX (Linux word 1; the copies of CPUID.1:EDX are left out) --------
    (
        0x8000_0001,
        0,
        "edx",
        AMD_LIKE,
        (
            (
                11,
                "syscall",
                MD,
                "Intel reports SYSCALL only when CPUID runs in 64-bit mode, so one processor "
                "gives different dumps by mode; every x86-64 CPU has it",
                None,
            ),
            (
                19,
                "mp",
                HO,
                "Athlon 'MP capable' marker of the physical part; nothing in a guest uses it",
            ),
            (20, "nx", GV, "", None),
            (22, "mmxext", GV, ""),
            (25, "fxsr_opt", GV, ""),
            (26, "pdpe1gb", GV, "", None),
            (27, "rdtscp", GV, "", None),
            (29, "lm", GV, "", None),
            (30, "3dnowext", GV, ""),
            (31, "3dnow", GV, ""),
        ),
    ),
    # ---- CPUID.80000007h:EBX (Linux scattered.c) --------------------------------------------
    (
        0x8000_0007,
        0,
        "ebx",
        AMD_LIKE,
        (
            (0, "overflow_recov", HE, R_MCA),
            (1, "succor", HE, R_MCA),
            (3, "smca", HO, "Scalable MCA bank layout of the host; KVM presents legacy MCA banks"),
        ),
    ),
    # ---- CPUID.80000007h:EDX (AMD power management; powerflags.c, amd.c, scattered.c) ------
    (
        0x8000_0007,
        0,
        "edx",
        AMD_LIKE,
        (
            # Linux prints bits 0-6, 10 and 12 only on the "power management" line, and calls
            # bit 4 "tm" there, the name of the CPUID.1:EDX[29] flag: pm_ keeps them apart.
            (0, "pm_ts", HO, R_AMD_PM),
            (1, "pm_fid", HO, R_AMD_PM),
            (2, "pm_vid", HO, R_AMD_PM),
            (3, "pm_ttp", HO, R_AMD_PM),
            (4, "pm_tm", HO, R_AMD_PM),
            (5, "pm_stc", HO, R_AMD_PM),
            (6, "pm_100mhzsteps", HO, R_AMD_PM),
            (7, "hw_pstate", HO, R_AMD_PM),
            (
                8,
                "invariant_tsc",
                HE,
                f"{R_INVENTED} (Linux turns it into constant_tsc+nonstop_tsc): the hypervisor "
                "chooses to advertise it and keeps the guest TSC steady by offsetting/scaling; "
                "the TSC_NOT_INVARIANT warning covers it",
                None,
            ),
            (9, "cpb", HO, R_AMD_PM),
            (10, "pm_eff_freq_ro", HO, R_AMD_PM),
            (11, "proc_feedback", HO, R_AMD_PM),
            (12, "pm_acc_power", HO, R_AMD_PM),
            (13, "connected_standby", HO, f"{R_INVENTED}; {R_AMD_PM}"),
            (14, "rapl", HO, R_AMD_PM),
            (15, "amd_fast_cppc", HO, R_AMD_PM),
            (16, "cppc_perf_prio", HO, R_AMD_PM),
        ),
    ),
    # ---- CPUID.80000008h:EBX (Linux word 13) ------------------------------------------------
    (
        0x8000_0008,
        0,
        "ebx",
        AMD_LIKE,
        (
            (0, "clzero", GV, ""),
            (1, "irperf", HO, R_PMU),
            (
                2,
                "xsaveerptr",
                GV,
                "FXSAVE/XSAVE always store the x87 error pointers; guests rely on it",
            ),
            (
                3,
                "invlpgb",
                HO,
                "broadcast TLB invalidation reaches other physical cores; not exposed",
            ),
            (4, "rdpru", HO, "hypervisors intercept RDPRU: it would expose the host's APERF/MPERF"),
            (6, "mba", HO, f"{R_RDT} (AMD's bit; Intel's is CPUID.10h.0:EBX[3])"),
            (8, "mcommit", GV, f"{R_INVENTED}: MCOMMIT instruction"),
            (9, "wbnoinvd", GV, "", None),
            (12, "amd_ibpb", GV, R_MITIGATION),
            (
                13,
                "int_wbinvd",
                HO,
                f"{R_INVENTED}: WBINVD is intercepted by hypervisors; its interruptibility is the host's",
            ),
            (14, "amd_ibrs", GV, R_MITIGATION),
            (15, "amd_stibp", GV, R_MITIGATION),
            (16, "amd_ibrs_always_on", GV, f"{R_INVENTED}; {R_MITIGATION}"),
            (17, "amd_stibp_always_on", GV, R_MITIGATION),
            (18, "amd_ibrs_preferred", GV, f"{R_INVENTED}; {R_MITIGATION}"),
            (19, "amd_ibrs_same_mode", GV, R_MITIGATION),
            (
                20,
                "efer_lmsle_mbz",
                HO,
                "negative bit (EFER.LMSLE is gone); LMSLE is usable only by a guest running nested "
                "SVM, which pins the VM anyway, and older targets still allow it",
            ),
            (
                23,
                "amd_ppin",
                HO,
                "protected processor inventory number identifies the physical chip",
            ),
            (24, "amd_ssbd", GV, R_MITIGATION),
            (
                25,
                "virt_ssbd",
                HE,
                "VIRT_SPEC_CTRL is a paravirtual MSR the hypervisor implements (KVM offers it on "
                "any host with an SSBD control); bare-metal parts do not set it",
            ),
            (26, "amd_ssb_no", GV, R_NOT_VULNERABLE),
            (27, "cppc", HO, R_THERMAL),
            (28, "amd_psfd", GV, R_MITIGATION),
            (29, "btc_no", GV, R_NOT_VULNERABLE),
            (30, "amd_ibpb_ret", GV, R_MITIGATION),
            (31, "brs", HO, R_PMU),
        ),
    ),
    # ---- CPUID.8000000Ah:EDX (Linux word 15) / ECX (scattered.c) ----------------------------
    (
        0x8000_000A,
        0,
        "edx",
        AMD_LIKE,
        (
            (0, "npt", HO, R_SVM),
            (1, "lbrv", HO, R_SVM),
            (2, "svm_lock", HO, R_SVM),
            (3, "nrip_save", HO, R_SVM),
            (4, "tsc_scale", HO, R_SVM),
            (5, "vmcb_clean", HO, R_SVM),
            (6, "flushbyasid", HO, R_SVM),
            (7, "decodeassists", HO, R_SVM),
            (10, "pausefilter", HO, R_SVM),
            (12, "pfthreshold", HO, R_SVM),
            (13, "avic", HO, R_SVM),
            (15, "v_vmsave_vmload", HO, R_SVM),
            (16, "vgif", HO, R_SVM),
            (17, "gmet", HO, R_SVM),
            (18, "x2avic", HO, R_SVM),
            (20, "v_spec_ctrl", HO, R_SVM),
            (25, "vnmi", HO, R_SVM),
            (28, "svme_addr_chk", HO, R_SVM),
            (29, "bus_lock_threshold", HO, R_SVM),
            (30, "idle_hlt", HO, R_SVM),
        ),
    ),
    (0x8000_000A, 0, "ecx", AMD_LIKE, ((6, "x2avic_ext", HO, R_SVM),)),
    # ---- CPUID.8000001Fh:EAX (Linux word 19) / EBX (scattered.c) ----------------------------
    (
        0x8000_001F,
        0,
        "eax",
        AMD_LIKE,
        (
            (0, "sme", HO, R_SEV),
            (1, "sev", HO, R_SEV),
            (2, "vm_page_flush", HO, R_SEV),
            (3, "sev_es", HO, R_SEV),
            (4, "sev_snp", HO, R_SEV),
            (8, "snp_secure_tsc", HO, R_SEV),
            (9, "v_tsc_aux", HO, R_SEV),
            (10, "sme_coherent", HO, R_SEV),
            (14, "debug_swap", HO, R_SEV),
            (21, "rmpread", HO, R_SEV),
            (23, "segmented_rmp", HO, R_SEV),
            (27, "allowed_sev_features", HO, R_SEV),
            (28, "svsm", HO, R_SEV),
            (30, "hv_inuse_wr_allowed", HO, R_SEV),
        ),
    ),
    (0x8000_001F, 0, "ebx", AMD_LIKE, ((31, "coherency_sfw_no", HO, R_SEV),)),
    # ---- CPUID.80000020h:EBX (AMD PQOS; scattered.c) ----------------------------------------
    (
        0x8000_0020,
        0,
        "ebx",
        AMD_LIKE,
        (
            (2, "smba", HO, R_RDT),
            (3, "bmec", HO, R_RDT),
            (5, "abmc", HO, R_RDT),
            (6, "sdciae", HO, R_RDT),
        ),
    ),
    # ---- CPUID.80000021h:EAX (Linux word 20) / ECX (scattered.c) ----------------------------
    (
        0x8000_0021,
        0,
        "eax",
        AMD_LIKE,
        (
            (
                0,
                "no_nested_data_bp",
                GV,
                "debug-breakpoint behaviour passed through by KVM that no hypervisor can emulate "
                "(part of QEMU's EPYC-Milan-v2 guest model)",
            ),
            (
                1,
                "wrmsr_xx_base_ns",
                GV,
                "guest kernels drop serialisation around FS/GS base writes",
            ),
            (
                2,
                "lfence_rdtsc",
                HE,
                "KVM synthesises it on every host whose LFENCE serialises (Linux arranges that on "
                "older AMD parts through DE_CFG), so hosts lacking the bit still provide it",
            ),
            (3, "smm_pg_cfg_lock", HO, f"{R_INVENTED}: SMM paging lock protects the host's SMM"),
            (5, "verw_clear", GV, R_MITIGATION),
            (
                6,
                "null_sel_clr_base",
                HE,
                "KVM advertises it on every host without the NULL-segment bug (Zen 2 behaves so "
                "without the bit)",
            ),
            (7, "upper_addr_ignore", GV, f"{R_INVENTED}: a guest may enable EFER.UAIE"),
            (8, "autoibrs", GV, R_MITIGATION),
            (9, "no_smm_ctl_msr", HE, "KVM always sets it: it emulates no SMM_CTL MSR for guests"),
            (10, "amd_fsrs", GV, f"{R_INVENTED}: fast short REP STOSB"),
            (11, "amd_fsrc", GV, f"{R_INVENTED}: fast short REP CMPSB"),
            (
                13,
                "prefetch_ctl_msr",
                HO,
                f"{R_INVENTED}: hardware prefetcher control is the host's",
            ),
            (
                17,
                "gp_on_user_cpuid",
                HO,
                "CPUID faulting control; hypervisors implement guest CPUID faulting in software",
            ),
            (18, "epsf", GV, f"{R_INVENTED}: enhanced predictive store forwarding"),
            (19, "fsrsc", GV, f"{R_INVENTED}: fast short REP SCASB"),
            (20, "prefetchi", GV, ""),
            (22, "amd_workload_class", HO, "workload classification steers the host scheduler"),
            (23, "avx512_bmm", GV, ""),
            (24, "eraps", GV, R_MITIGATION),
            (27, "sbpb", GV, R_MITIGATION),
            (28, "ibpb_brtype", GV, R_MITIGATION),
            (29, "srso_no", GV, R_NOT_VULNERABLE),
            (30, "srso_user_kernel_no", GV, R_NOT_VULNERABLE),
            (
                31,
                "srso_bp_spec_reduce",
                HO,
                "MSR_BP_CFG.BP_SPEC_REDUCE is the host's way to mitigate SRSO for its VMs",
            ),
        ),
    ),
    (
        0x8000_0021,
        0,
        "ecx",
        AMD_LIKE,
        (
            (1, "tsa_sq_no", GV, R_NOT_VULNERABLE),
            (2, "tsa_l1_no", GV, R_NOT_VULNERABLE),
        ),
    ),
    # ---- CPUID.80000022h:EAX / 80000026h:EAX (scattered.c) ----------------------------------
    (
        0x8000_0022,
        0,
        "eax",
        AMD_LIKE,
        (
            (0, "perfmon_v2", HO, R_PMU),
            (1, "amd_lbr_v2", HO, R_PMU),
            (2, "amd_lbr_pmc_freeze", HO, R_PMU),
        ),
    ),
    (
        0x8000_0026,
        0,
        "eax",
        AMD_LIKE,
        ((30, "amd_htr_cores", HO, "heterogeneous core topology of the physical package"),),
    ),
    # ---- CPUID.0xC0000001:EDX (Linux word 5): Centaur/Zhaoxin PadLock -----------------------
    (
        0xC0000001,
        0,
        "edx",
        CENTAUR_VENDORS,
        (
            (2, "rng", GV, "PadLock random number generator (XSTORE); KVM passes it to guests"),
            (3, "rng_en", HO, R_PADLOCK_EN),
            (6, "ace", GV, "PadLock AES engine (XCRYPT); KVM passes it to guests"),
            (7, "ace_en", HO, R_PADLOCK_EN),
            (8, "ace2", GV, "PadLock AES engine v2; KVM passes it to guests"),
            (9, "ace2_en", HO, R_PADLOCK_EN),
            (10, "phe", GV, "PadLock hash engine (SHA); KVM passes it to guests"),
            (11, "phe_en", HO, R_PADLOCK_EN),
            (12, "pmm", GV, "PadLock Montgomery multiplier; KVM passes it to guests"),
            (13, "pmm_en", HO, R_PADLOCK_EN),
        ),
    ),
)

# Linux defines these but /proc/cpuinfo does not show them (no quoted name in cpufeatures.h,
# or a KVM-only macro in arch/x86/kvm/reverse_cpuid.h).
_HIDDEN = frozenset({
    # cpufeatures.h, hardware words
    "osxsave", "fdp_excptn_only", "zero_fcs_fds", "shstk", "srbds_ctrl", "rtm_always_abort",
    "tsx_force_abort", "hybrid_cpu", "spec_ctrl", "intel_stibp", "core_capabilities",
    "spec_ctrl_ssbd", "sha512", "sm3", "sm4", "cmpccxadd", "arch_perfmon_ext", "fzrm", "fsrs",
    "fsrc", "lkgs", "wrmsrns", "amx_fp16", "avx_ifma", "movrs", "xfd", "hwp_highest_perf_change",
    "invlpgb", "amd_ibpb", "amd_ibrs", "amd_stibp", "amd_stibp_always_on", "amd_ibrs_same_mode",
    "efer_lmsle_mbz", "amd_ssbd", "amd_ssb_no", "amd_psfd", "btc_no", "amd_ibpb_ret", "gmet",
    "svme_addr_chk", "bus_lock_threshold", "idle_hlt", "vm_page_flush", "snp_secure_tsc",
    "v_tsc_aux", "sme_coherent", "rmpread", "segmented_rmp", "allowed_sev_features",
    "hv_inuse_wr_allowed", "no_nested_data_bp", "wrmsr_xx_base_ns", "lfence_rdtsc",
    "verw_clear", "null_sel_clr_base", "autoibrs", "no_smm_ctl_msr", "gp_on_user_cpuid",
    "prefetchi", "avx512_bmm", "eraps", "sbpb", "ibpb_brtype", "srso_no", "srso_user_kernel_no",
    "srso_bp_spec_reduce",
    # cpufeatures.h, scattered (Linux-defined words)
    "msr_imm", "apx", "rrsba_ctrl", "bhi_ctrl", "per_thread_mba", "sgx1", "sgx2",
    "sgx_eupdatesvn", "sgx_edeccssa", "amd_fast_cppc", "cppc_perf_prio", "x2avic_ext",
    "coherency_sfw_no", "smba", "bmec", "abmc", "sdciae", "amd_workload_class", "tsa_sq_no",
    "tsa_l1_no", "amd_htr_cores",
    # KVM-only (reverse_cpuid.h)
    "avx_vnni_int8", "avx_ne_convert", "amx_complex", "avx_vnni_int16", "prefetchiti", "avx10",
    "intel_psfd", "ipred_ctrl", "ddpd_u", "mcdt_no", "avx10_128", "avx10_256", "avx10_512",
})  # fmt: skip

# Linux has no name for these; the names follow Linux's style.
_INVENTED = frozenset({
    "ecmd", "hdc", "turbo_max_3", "hwp_peci_override", "hwp_flexible", "hwp_fast_request",
    "hwp_ignore_idle", "itd", "prefetchwt1", "keylocker", "pks", "sgx_keys", "uintr", "rao_int",
    "hreset", "msrlist", "user_msr", "cet_sss", "pt_cr3_filtering", "pt_psb_cyc",
    "pt_ip_filtering", "pt_mtc", "pt_ptwrite", "pt_power_event_trace", "pt_psb_pmi_preserve",
    "pt_event_trace", "pt_tnt_disable", "aeskle", "keylocker_wide", "keylocker_backup",
    "addr_mask_ext", "invariant_tsc", "connected_standby", "mcommit", "int_wbinvd",
    "amd_ibrs_always_on", "amd_ibrs_preferred", "smm_pg_cfg_lock", "upper_addr_ignore",
    "amd_fsrs", "amd_fsrc", "prefetch_ctl_msr", "epsf", "fsrsc",
})  # fmt: skip


def _build(
    words: Iterable[tuple[int, int, str, frozenset[str] | None, tuple[Row, ...]]],
) -> tuple[FeatureBit, ...]:
    out: list[FeatureBit] = []
    for leaf, subleaf, reg, default_vendors, rows in words:
        for row in rows:
            bit, name, cls, reason = cast(tuple[int, str, FeatureClass, str], row[:4])
            vendors = cast(frozenset[str] | None, row[4] if len(row) > 4 else default_vendors)
            out.append(FeatureBit(leaf, subleaf, reg, bit, name, cls, reason, vendors))
    out.sort(key=lambda fb: (fb.leaf, fb.subleaf, REGISTERS.index(fb.reg), fb.bit, fb.name))
    return tuple(out)


FEATURE_BITS: tuple[FeatureBit, ...] = _build(_WORDS)
"""Every named bit, sorted by (leaf, subleaf, register, bit)."""

NAMES: frozenset[str] = frozenset(fb.name for fb in FEATURE_BITS)
LINUX_HIDDEN: frozenset[str] = _HIDDEN
"""Names Linux defines but does not show in /proc/cpuinfo."""
INVENTED_NAMES: frozenset[str] = _INVENTED
"""Names this table made up because Linux has none."""

_BY_WORD: dict[tuple[int, int, str], tuple[FeatureBit, ...]] = {}
_BY_NAME: dict[str, tuple[FeatureBit, ...]] = {}
for _fb in FEATURE_BITS:
    _key = (_fb.leaf, _fb.subleaf, _fb.reg)
    _BY_WORD[_key] = (*_BY_WORD.get(_key, ()), _fb)
    _BY_NAME[_fb.name] = (*_BY_NAME.get(_fb.name, ()), _fb)
del _fb, _key


def bits_for(
    leaf: int, subleaf: int, reg: str, *, vendor: str | None = None
) -> tuple[FeatureBit, ...]:
    """The named bits of one CPUID register, in bit order (empty when the table has none).

    With ``vendor``, only the rows that apply to that vendor string.
    """
    found = _BY_WORD.get((leaf, subleaf, reg.lower()), ())
    if vendor is None:
        return found
    return tuple(fb for fb in found if fb.applies_to(vendor))


def bits_named(name: str) -> tuple[FeatureBit, ...]:
    """Every row carrying a name (any accepted spelling); one row per vendor for `mba`."""
    return _BY_NAME[canonical_name(name)]


# --- spellings -------------------------------------------------------------------------------

_EXPLICIT_ALIASES: dict[str, str] = {
    # QEMU / libvirt spellings that are not just the hyphen form of a Linux name
    "sse3": "pni",
    "pclmuldq": "pclmulqdq",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "ds": "dts",
    "tsc-deadline": "tsc_deadline_timer",
    "cr8legacy": "cr8_legacy",
    "xd": "nx",
    "i64": "lm",
    "ffxsr": "fxsr_opt",
    "pause-filter": "pausefilter",
    "invtsc": "invariant_tsc",
    "avx512vbmi2": "avx512_vbmi2",
    "avx512vnni": "avx512_vnni",
    "avx512bitalg": "avx512_bitalg",
    "sgxlc": "sgx_lc",
    "tsx-ldtrk": "tsxldtrk",
    "core-capability": "core_capabilities",
    "stibp-always-on": "amd_stibp_always_on",
    "amd-no-ssb": "amd_ssb_no",
    "lfence-always-serializing": "lfence_rdtsc",
    "auto-ibrs": "autoibrs",
    "apxf": "apx",
    # py-cpuinfo's own decoder spellings
    "tscdeadline": "tsc_deadline_timer",
    "rdrnd": "rdrand",
    "sha": "sha_ni",
    "pqm": "cqm",
    "pqe": "rdt_a",
    "avx512vpopcntdq": "avx512_vpopcntdq",
    "pdpe1gp": "pdpe1gb",
    "dbx": "bpext",
    "perftsc": "ptsc",
    "pci_l2i": "perfctr_llc",
    "serial": "pn",
    # compiler (-m...) and vendor-manual spellings
    "lzcnt": "abm",
    "bmi": "bmi1",
    "pclmul": "pclmulqdq",
    "prefetchw": "3dnowprefetch",
    "aesni": "aes",
    "cmpxchg16b": "cx16",
    "cmpxchg8b": "cx8",
    "psn": "pn",
    "htt": "ht",
    "eist": "est",
    "page1gb": "pdpe1gb",
    "monitorx": "mwaitx",
    "dbext": "bpext",
    "hwpstate": "hw_pstate",
    # Linux's power-management line spellings (all but "tm", which is the CPUID.1:EDX flag)
    "ts": "pm_ts",
    "fid": "pm_fid",
    "vid": "pm_vid",
    "ttp": "pm_ttp",
    "stc": "pm_stc",
    "100mhzsteps": "pm_100mhzsteps",
    "eff_freq_ro": "pm_eff_freq_ro",
    "acc_power": "pm_acc_power",
    "avx512vp2intersect": "avx512_vp2intersect",
    "avx5124vnniw": "avx512_4vnniw",
    "avx5124fmaps": "avx512_4fmaps",
    "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16",
    "avxvnni": "avx_vnni",
    "avxifma": "avx_ifma",
    "avxvnniint8": "avx_vnni_int8",
    "avxvnniint16": "avx_vnni_int16",
    "avxneconvert": "avx_ne_convert",
    "amxtile": "amx_tile",
    "amxint8": "amx_int8",
    "amxbf16": "amx_bf16",
    "amxfp16": "amx_fp16",
    "amxcomplex": "amx_complex",
    "cet-ss": "shstk",
    "cet_ss": "shstk",
    "cet-ibt": "ibt",
    "cet_ibt": "ibt",
    "kl": "keylocker",
    "raoint": "rao_int",
    "usermsr": "user_msr",
    "rstr-fp-err-ptrs": "xsaveerptr",
}

AMBIGUOUS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    # Linux shows a synthetic flag of this name; QEMU uses it for one specific bit.
    "ibrs": ("spec_ctrl", "amd_ibrs"),
    "ibpb": ("spec_ctrl", "amd_ibpb"),
    "stibp": ("intel_stibp", "amd_stibp"),
    "ssbd": ("spec_ctrl_ssbd", "amd_ssbd", "virt_ssbd"),
    # vendor-neutral names for bits each vendor enumerates separately
    "psfd": ("intel_psfd", "amd_psfd"),
    "ppin": ("intel_ppin", "amd_ppin"),
})  # fmt: skip
"""Names that mean different bits to different tools: refused, with the bits to choose from."""


def _aliases() -> Mapping[str, str]:
    table: dict[str, str] = {}
    for name in sorted(NAMES):
        if "_" in name:
            table[name.replace("_", "-")] = name
    table.update(_EXPLICIT_ALIASES)
    return MappingProxyType(dict(sorted(table.items())))


ALIASES: Mapping[str, str] = _aliases()
"""Accepted input spelling -> canonical (Linux) name."""


def canonical_name(name: str) -> str:
    """The Linux name of a feature given in any accepted spelling (case and spaces ignored).

    Raises :class:`UnknownFeatureError` (a KeyError) naming the closest known
    spellings, or :class:`AmbiguousFeatureError` for names that mean different
    bits to Linux and QEMU.
    """
    if not isinstance(name, str):
        raise TypeError(f"feature name must be a string, not {type(name).__name__}")
    key = name.strip().lower()
    for candidate in dict.fromkeys((key, key.replace("-", "_"), key.replace("_", "-"))):
        if candidate in NAMES:
            return candidate
        target = ALIASES.get(candidate)
        if target is not None:
            return target
    choices = AMBIGUOUS.get(key)
    if choices is not None:
        raise AmbiguousFeatureError(
            f"feature name {name!r} is ambiguous: it means different CPUID bits to Linux "
            f"(a synthetic flag), QEMU or different vendors; name the bit instead: "
            f"{', '.join(choices)}",
            choices,
        )
    vocabulary = sorted(NAMES | ALIASES.keys())
    close = difflib.get_close_matches(key, vocabulary, n=5, cutoff=0.6)
    shown = []
    for match in close:
        target = ALIASES.get(match)
        shown.append(f"{match!r}" if target is None else f"{match!r} (= {target})")
    suggestions = tuple(dict.fromkeys(ALIASES.get(m, m) for m in close))
    if shown:
        hint = f"; did you mean {', '.join(shown)}?"
    else:
        hint = (
            "; names follow Linux /proc/cpuinfo (e.g. 'sse4_2', 'pclmulqdq'), "
            "QEMU spellings (e.g. 'sse4.2') are accepted"
        )
    raise UnknownFeatureError(f"unknown CPU feature {name!r}{hint}", suggestions)
