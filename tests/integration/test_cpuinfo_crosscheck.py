"""Cross-check the feature table against py-cpuinfo and live CPUID on this machine.

py-cpuinfo reports the union of Linux's /proc/cpuinfo flags and its own CPUID
decoding.  Every flag it reports must either be a table name (directly or via
an alias), or be on one of the documented lists below (Linux flags that are
not one CPUID bit).  Every flag that is a table name must then have its bit
set in CPUID as executed right now, read with the Debian ``cpuid`` tool
(``cpuid -r -1``); a later change swaps that tool for the project's decoder.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping

import pytest

if platform.machine().lower() not in {"x86_64", "amd64", "x64", "i386", "i486", "i586", "i686"}:
    pytest.skip("CPUID cross-check needs an x86 processor", allow_module_level=True)

cpuinfo = pytest.importorskip("cpuinfo")

from cpucompat.agent.feature_table import (  # noqa: E402  (after the module-level skip)
    ALIASES,
    AMD_LIKE,
    FEATURE_BITS,
    INTEL,
    NAMES,
    FeatureBit,
    UnknownFeatureError,
    canonical_name,
)

Regs = tuple[int, int, int, int]
Dump = dict[tuple[int, int], Regs]
REG_INDEX = {"eax": 0, "ebx": 1, "ecx": 2, "edx": 3}

# Linux flags that are not one CPUID bit: software decisions, MSR probes, numbers read
# from CPUID and turned into a yes/no, family/model tables.  Each says why.
LINUX_SYNTHETIC: Mapping[str, str] = {
    "cpuid": "set whenever the CPUID instruction exists (every x86-64 CPU); no bit",
    "rep_good": "kernel's verdict that REP MOVS/STOS microcode is fast, from vendor/family",
    "nopl": "assumed on every x86-64 CPU (NOPL 0F 1F); no CPUID bit",
    "xtopology": "set when leaf 0xB/0x1F enumerates topology levels (counts, not a bit)",
    "tsc_known_freq": "TSC frequency came from CPUID 0x15/0x16 numbers or the hypervisor",
    "tsc_reliable": "the kernel trusts this platform's TSC (hypervisor or model quirk)",
    "nonstop_tsc_s3": "Intel family/model table",
    "extd_apicid": "AMD/Hygon family rule: the APIC ID is 8 bits wide",
    "amd_dcm": "multi-node AMD package, derived from the topology leaves",
    "vmmcall": "kernel prefers VMMCALL to VMCALL on AMD/Hygon; not a CPUID bit",
    "arch_perfmon": "leaf 0xA reports a non-zero PMU version (a number)",
    "pebs": "from IA32_MISC_ENABLE (an MSR)",
    "bts": "from IA32_MISC_ENABLE (an MSR)",
    "art": "derived from the TSC/crystal ratio numbers of leaf 0x15",
    "pti": "kernel page-table isolation is on (a kernel decision)",
    "ibrs_enhanced": "from IA32_ARCH_CAPABILITIES (an MSR)",
    "split_lock_detect": "probed through MSR_TEST_CTRL / IA32_CORE_CAPABILITIES (MSRs)",
    "user_shstk": "user shadow stacks enabled by the kernel (shstk plus kernel support)",
    "cpuid_fault": "probed through MSR_PLATFORM_INFO (an MSR)",
    "ring3mwait": "Intel Xeon Phi family/model quirk",
    "tdx_guest": "the TDX signature in leaf 0x21 (a string)",
    "tdx_host_platform": "probed through a SEAMCALL/MSR",
    "tpr_shadow": "VMX capability MSRs (newer kernels print it under 'vmx flags')",
    "flexpriority": "VMX capability MSRs (newer kernels print it under 'vmx flags')",
    "ept": "VMX capability MSRs (newer kernels print it under 'vmx flags')",
    "vpid": "VMX capability MSRs (newer kernels print it under 'vmx flags')",
    "ept_ad": "VMX capability MSRs (newer kernels print it under 'vmx flags')",
}

# Linux flags computed from one of several CPUID bits (which one depends on the vendor),
# so they are not table names; the live check wants at least one source bit set.
DERIVED: Mapping[str, tuple[str, ...]] = {
    "ibrs": ("spec_ctrl", "amd_ibrs"),
    "ibpb": ("spec_ctrl", "amd_ibpb"),
    "stibp": ("intel_stibp", "amd_stibp"),
    "ssbd": ("spec_ctrl_ssbd", "virt_ssbd", "amd_ssbd"),
    "constant_tsc": ("invariant_tsc",),
    "nonstop_tsc": ("invariant_tsc",),
}


def _amd_ls_cfg_family(vendor: str, family: int) -> bool:
    return vendor in AMD_LIKE and 0x15 <= family <= 0x18


def _intel(vendor: str, family: int) -> bool:
    return vendor == INTEL


# When Linux sets a flag without its CPUID bit.  name -> (predicate(vendor, family), why)
WITHOUT_BIT: Mapping[str, tuple[Callable[[str, int], bool], str]] = {
    "ssbd": (_amd_ls_cfg_family, "AMD families 15h-18h: SSBD through the LS_CFG MSR"),
    "constant_tsc": (_intel, "Intel: set from family/model tables, not only invariant TSC"),
    "nonstop_tsc": (_intel, "Intel: set from family/model tables, not only invariant TSC"),
    "intel_ppin": (_intel, "older Intel servers: family/model list plus an MSR probe"),
    "vnmi": (_intel, "older kernels also set it on Intel from the VMX capability MSRs"),
}

# py-cpuinfo 9.0.0 decodes CPUID 0x80000001 from EBX instead of EDX (cpuinfo.py,
# CPUID.get_flags).  EBX there is BrandId/PkgType, so these names can appear for bits
# that are not features.  bit -> name, copied from that table.
PYCPUINFO_80000001_EBX: Mapping[int, str] = {
    0: "fpu", 1: "vme", 2: "de", 3: "pse", 4: "tsc", 5: "msr", 6: "pae", 7: "mce",
    8: "cx8", 9: "apic", 11: "syscall", 12: "mtrr", 13: "pge", 14: "mca", 15: "cmov",
    16: "pat", 17: "pse36", 19: "mp", 20: "nx", 22: "mmxext", 23: "mmx", 24: "fxsr",
    25: "fxsr_opt", 26: "pdpe1gp", 27: "rdtscp", 29: "lm", 30: "3dnowext", 31: "3dnow",
}  # fmt: skip

# Spellings py-cpuinfo still decodes for bits no longer defined.
PYCPUINFO_OBSOLETE: Mapping[str, str] = {
    "pcommit": "CPUID.7.0:EBX[22]: PCOMMIT was withdrawn before shipping; the bit is reserved",
}

_LINE = re.compile(
    r"^\s*0x(?P<leaf>[0-9a-fA-F]{8})\s+0x(?P<sub>[0-9a-fA-F]{2,8}):"
    r"\s+eax=0x(?P<eax>[0-9a-fA-F]{8})\s+ebx=0x(?P<ebx>[0-9a-fA-F]{8})"
    r"\s+ecx=0x(?P<ecx>[0-9a-fA-F]{8})\s+edx=0x(?P<edx>[0-9a-fA-F]{8})\s*$"
)


def parse_cpuid_r(text: str) -> Dump:
    """Leaves of the first CPU in ``cpuid -r`` output: {(leaf, subleaf): (eax, ebx, ecx, edx)}."""
    dump: Dump = {}
    cpus = 0
    for line in text.splitlines():
        if re.match(r"^CPU( \d+)?:\s*$", line):
            cpus += 1
            if cpus > 1:
                break
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        key = (int(m["leaf"], 16), int(m["sub"], 16))
        dump[key] = (int(m["eax"], 16), int(m["ebx"], 16), int(m["ecx"], 16), int(m["edx"], 16))
    return dump


def cpuid_tool() -> str | None:
    if shutil.which("cpuid"):
        return shutil.which("cpuid")
    return "/usr/bin/cpuid" if os.access("/usr/bin/cpuid", os.X_OK) else None


def read_live_cpuid(tool: str) -> Dump:
    """CPUID as executed now on one CPU, through ``cpuid -r -1`` (raw hex, no decoding)."""
    out = subprocess.run([tool, "-r", "-1"], capture_output=True, text=True, check=True, timeout=60)
    return parse_cpuid_r(out.stdout)


def vendor_of(dump: Dump) -> str:
    _, ebx, ecx, edx = dump[(0, 0)]
    return b"".join(r.to_bytes(4, "little") for r in (ebx, edx, ecx)).decode("latin-1")


def family_of(dump: Dump) -> int:
    eax = dump.get((1, 0), (0, 0, 0, 0))[0]
    family = eax >> 8 & 0xF
    return family + (eax >> 20 & 0xFF) if family == 0xF else family


def bit_is_set(dump: Dump, fb: FeatureBit) -> bool:
    regs = dump.get((fb.leaf, fb.subleaf), (0, 0, 0, 0))
    return bool(regs[REG_INDEX[fb.reg]] >> fb.bit & 1)


def rows_for(name: str, vendor: str) -> list[FeatureBit]:
    return [fb for fb in FEATURE_BITS if fb.name == name and fb.applies_to(vendor)]


def named_bit_set(dump: Dump, name: str, vendor: str) -> bool:
    return any(bit_is_set(dump, fb) for fb in rows_for(name, vendor))


def pycpuinfo_misreads(dump: Dump) -> set[str]:
    """Names py-cpuinfo derives from CPUID.80000001h:EBX on this CPU (its register mix-up)."""
    ebx = dump.get((0x8000_0001, 0), (0, 0, 0, 0))[1]
    return {name for bit, name in PYCPUINFO_80000001_EBX.items() if ebx >> bit & 1}


def resolve(flag: str) -> str | None:
    try:
        return canonical_name(flag)
    except UnknownFeatureError:  # includes the ambiguous spellings
        return None


@pytest.fixture(scope="module")
def flags() -> list[str]:
    return list(cpuinfo.get_cpu_info().get("flags", []))


@pytest.fixture(scope="module")
def live() -> Dump:
    tool = cpuid_tool()
    if tool is None:
        pytest.skip("the Debian 'cpuid' tool is not installed")
    dump = read_live_cpuid(tool)
    assert (0, 0) in dump and (1, 0) in dump, "cpuid -r -1 printed no leaf 0/1"
    return dump


# --- the helper itself -------------------------------------------------------------------------

SAMPLE = """\
CPU:
   0x00000000 0x00: eax=0x00000010 ebx=0x68747541 ecx=0x444d4163 edx=0x69746e65
   0x00000001 0x00: eax=0x00a00f11 ebx=0x01020800 ecx=0xfffa3203 edx=0x178bfbff
   0x00000007 0x00: eax=0x00000000 ebx=0x219c07ab ecx=0x0040069c edx=0x88000010
   0x0000000d 0x01: eax=0x0000000f ebx=0x00000370 ecx=0x00001800 edx=0x00000000
   0x80000001 0x00: eax=0x00a00f11 ebx=0x40000000 ecx=0x004003f3 edx=0x2fd3fbff
   0x80000008 0x00: eax=0x00303030 ebx=0x130ad205 ecx=0x00007001 edx=0x00000000
CPU 1:
   0x00000000 0x00: eax=0x00000016 ebx=0x756e6547 ecx=0x6c65746e edx=0x49656e69
"""


def test_parse_cpuid_r_reads_the_first_cpu() -> None:
    dump = parse_cpuid_r(SAMPLE)
    assert len(dump) == 6
    assert dump[(0xD, 1)] == (0xF, 0x370, 0x1800, 0)
    assert vendor_of(dump) == "AuthenticAMD"
    assert family_of(dump) == 0x19
    by_name = {fb.name: fb for fb in FEATURE_BITS if fb.applies_to("AuthenticAMD")}
    assert bit_is_set(dump, by_name["avx2"]) and bit_is_set(dump, by_name["xsaves"])
    assert not bit_is_set(dump, by_name["avx512f"])
    assert bit_is_set(dump, by_name["amd_ibpb"]) and not bit_is_set(dump, by_name["3dnowext"])
    assert pycpuinfo_misreads(dump) == {"3dnowext"}


def test_parse_cpuid_r_ignores_noise() -> None:
    assert parse_cpuid_r("garbage\n   0x00000001 0x00: eax=0x1\n") == {}


# --- the documented lists are sound ------------------------------------------------------------


def test_documented_lists_do_not_hide_table_names() -> None:
    for flag in (*LINUX_SYNTHETIC, *DERIVED, *PYCPUINFO_OBSOLETE):
        assert flag not in NAMES and flag not in ALIASES, flag
    for sources in DERIVED.values():
        assert set(sources) <= NAMES, sources
    for flag in WITHOUT_BIT:
        assert flag in NAMES or flag in DERIVED, flag
    assert set(PYCPUINFO_80000001_EBX.values()) <= NAMES | ALIASES.keys()


# --- the live machine ----------------------------------------------------------------------


def test_every_cpuid_flag_maps_to_the_table(flags: list[str]) -> None:
    assert flags, "py-cpuinfo reported no flags"
    unmapped = sorted(
        f
        for f in flags
        if resolve(f) is None
        and f not in LINUX_SYNTHETIC
        and f not in DERIVED
        and f not in PYCPUINFO_OBSOLETE
    )
    assert not unmapped, f"flags neither in the table nor documented as synthetic: {unmapped}"


def test_reported_flags_are_set_in_live_cpuid(flags: list[str], live: Dump) -> None:
    vendor, family = vendor_of(live), family_of(live)
    misreads = pycpuinfo_misreads(live)
    checked, problems = 0, []
    for flag in flags:
        name = resolve(flag)
        if name is None:
            continue
        checked += 1
        if named_bit_set(live, name, vendor):
            continue
        if flag in misreads:
            continue  # py-cpuinfo read CPUID.80000001h:EBX; EDX does not have it
        exempt = WITHOUT_BIT.get(name)
        if exempt is not None and exempt[0](vendor, family):
            continue
        where = [(hex(fb.leaf), fb.subleaf, fb.reg, fb.bit) for fb in rows_for(name, vendor)]
        problems.append(f"{flag} (-> {name}) not set at {where or 'no row for ' + vendor}")
    assert checked, "no flag resolved to a table name"
    assert not problems, problems


def test_derived_flags_have_a_source_bit(flags: list[str], live: Dump) -> None:
    vendor, family = vendor_of(live), family_of(live)
    problems = []
    for flag in flags:
        sources = DERIVED.get(flag)
        if sources is None:
            continue
        if any(named_bit_set(live, s, vendor) for s in sources):
            continue
        exempt = WITHOUT_BIT.get(flag)
        if exempt is not None and exempt[0](vendor, family):
            continue
        problems.append(f"{flag}: none of {sources} is set")
    assert not problems, problems


def test_live_vendor_is_known_to_the_table(live: Dump) -> None:
    vendor = vendor_of(live)
    assert len(vendor) == 12
    assert rows_for("sse2", vendor), vendor
