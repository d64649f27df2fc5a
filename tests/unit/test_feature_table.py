"""The feature table is data; these tests check the data against independent facts.

Positions below are transcribed from the Intel SDM (vol. 2A, CPUID), the AMD
APM (vol. 3, appendix E) and Linux's arch/x86/include/asm/cpufeatures.h, not
from the table itself, so a wrong bit, register or leaf in the table fails here.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter, defaultdict

import pytest

from cpucompat.agent.feature_table import (
    ALIASES,
    AMBIGUOUS,
    AMD,
    AMD_LIKE,
    FEATURE_BITS,
    HYGON,
    INTEL,
    INVENTED_NAMES,
    LINUX_HIDDEN,
    NAMES,
    AmbiguousFeatureError,
    FeatureBit,
    FeatureClass,
    UnknownFeatureError,
    bits_for,
    bits_named,
    canonical_name,
)

GV = FeatureClass.GUEST_VISIBLE
HO = FeatureClass.HOST_ONLY
HE = FeatureClass.HYPERVISOR_EMULATED
MD = FeatureClass.MODE_DEPENDENT

Word = tuple[int, int, str]

# The words the table must cover (the brief; DESIGN.md's decisions read them).
REQUIRED_WORDS: tuple[Word, ...] = (
    (0x1, 0, "ecx"),
    (0x1, 0, "edx"),
    (0x6, 0, "eax"),
    (0x7, 0, "ebx"),
    (0x7, 0, "ecx"),
    (0x7, 0, "edx"),
    (0x7, 1, "eax"),
    (0x7, 1, "edx"),
    (0x7, 2, "edx"),
    (0xD, 1, "eax"),
    (0x14, 0, "ebx"),
    (0x19, 0, "ebx"),
    (0x24, 0, "ebx"),
    (0x8000_0001, 0, "ecx"),
    (0x8000_0001, 0, "edx"),
    (0x8000_0007, 0, "edx"),
    (0x8000_0008, 0, "ebx"),
    (0x8000_000A, 0, "edx"),
    (0x8000_001F, 0, "eax"),
    (0x8000_0021, 0, "eax"),
)

# One Linux flag with a CPUID bit per vendor (never both rows for one vendor).
DOCUMENTED_DUPLICATES = {
    "mba": "Intel CPUID.10h.0:EBX[3] and AMD CPUID.80000008h:EBX[6] (scattered.c lists both)",
}

# Vendor strings a profile can carry (Zhaoxin and VIA/Centaur, and one the table does not know).
PROFILE_VENDORS = (INTEL, AMD, HYGON, "CentaurHauls", "  Shanghai  ", "GenuineTMx86")

# name -> (leaf, subleaf, register, bit), from the SDM / APM / cpufeatures.h.
KNOWN_POSITIONS: dict[str, tuple[int, int, str, int]] = {
    "fpu": (0x1, 0, "edx", 0),
    "tsc": (0x1, 0, "edx", 4),
    "cx8": (0x1, 0, "edx", 8),
    "apic": (0x1, 0, "edx", 9),
    "sep": (0x1, 0, "edx", 11),
    "cmov": (0x1, 0, "edx", 15),
    "clflush": (0x1, 0, "edx", 19),
    "dts": (0x1, 0, "edx", 21),
    "sse2": (0x1, 0, "edx", 26),
    "ht": (0x1, 0, "edx", 28),
    "pni": (0x1, 0, "ecx", 0),
    "monitor": (0x1, 0, "ecx", 3),
    "vmx": (0x1, 0, "ecx", 5),
    "ssse3": (0x1, 0, "ecx", 9),
    "fma": (0x1, 0, "ecx", 12),
    "cx16": (0x1, 0, "ecx", 13),
    "pcid": (0x1, 0, "ecx", 17),
    "sse4_1": (0x1, 0, "ecx", 19),
    "sse4_2": (0x1, 0, "ecx", 20),
    "x2apic": (0x1, 0, "ecx", 21),
    "movbe": (0x1, 0, "ecx", 22),
    "popcnt": (0x1, 0, "ecx", 23),
    "tsc_deadline_timer": (0x1, 0, "ecx", 24),
    "aes": (0x1, 0, "ecx", 25),
    "xsave": (0x1, 0, "ecx", 26),
    "osxsave": (0x1, 0, "ecx", 27),
    "avx": (0x1, 0, "ecx", 28),
    "f16c": (0x1, 0, "ecx", 29),
    "rdrand": (0x1, 0, "ecx", 30),
    "hypervisor": (0x1, 0, "ecx", 31),
    "arat": (0x6, 0, "eax", 2),
    "hwp": (0x6, 0, "eax", 7),
    "epb": (0x6, 0, "ecx", 3),
    "fsgsbase": (0x7, 0, "ebx", 0),
    "tsc_adjust": (0x7, 0, "ebx", 1),
    "bmi1": (0x7, 0, "ebx", 3),
    "hle": (0x7, 0, "ebx", 4),
    "avx2": (0x7, 0, "ebx", 5),
    "smep": (0x7, 0, "ebx", 7),
    "bmi2": (0x7, 0, "ebx", 8),
    "erms": (0x7, 0, "ebx", 9),
    "rtm": (0x7, 0, "ebx", 11),
    "mpx": (0x7, 0, "ebx", 14),
    "avx512f": (0x7, 0, "ebx", 16),
    "avx512dq": (0x7, 0, "ebx", 17),
    "rdseed": (0x7, 0, "ebx", 18),
    "adx": (0x7, 0, "ebx", 19),
    "smap": (0x7, 0, "ebx", 20),
    "clflushopt": (0x7, 0, "ebx", 23),
    "clwb": (0x7, 0, "ebx", 24),
    "intel_pt": (0x7, 0, "ebx", 25),
    "avx512cd": (0x7, 0, "ebx", 28),
    "sha_ni": (0x7, 0, "ebx", 29),
    "avx512bw": (0x7, 0, "ebx", 30),
    "avx512vl": (0x7, 0, "ebx", 31),
    "avx512vbmi": (0x7, 0, "ecx", 1),
    "umip": (0x7, 0, "ecx", 2),
    "pku": (0x7, 0, "ecx", 3),
    "ospke": (0x7, 0, "ecx", 4),
    "avx512_vbmi2": (0x7, 0, "ecx", 6),
    "shstk": (0x7, 0, "ecx", 7),
    "gfni": (0x7, 0, "ecx", 8),
    "vaes": (0x7, 0, "ecx", 9),
    "vpclmulqdq": (0x7, 0, "ecx", 10),
    "avx512_vnni": (0x7, 0, "ecx", 11),
    "avx512_bitalg": (0x7, 0, "ecx", 12),
    "avx512_vpopcntdq": (0x7, 0, "ecx", 14),
    "la57": (0x7, 0, "ecx", 16),
    "rdpid": (0x7, 0, "ecx", 22),
    "movdiri": (0x7, 0, "ecx", 27),
    "movdir64b": (0x7, 0, "ecx", 28),
    "fsrm": (0x7, 0, "edx", 4),
    "avx512_vp2intersect": (0x7, 0, "edx", 8),
    "md_clear": (0x7, 0, "edx", 10),
    "serialize": (0x7, 0, "edx", 14),
    "ibt": (0x7, 0, "edx", 20),
    "amx_bf16": (0x7, 0, "edx", 22),
    "avx512_fp16": (0x7, 0, "edx", 23),
    "amx_tile": (0x7, 0, "edx", 24),
    "amx_int8": (0x7, 0, "edx", 25),
    "spec_ctrl": (0x7, 0, "edx", 26),
    "intel_stibp": (0x7, 0, "edx", 27),
    "flush_l1d": (0x7, 0, "edx", 28),
    "arch_capabilities": (0x7, 0, "edx", 29),
    "spec_ctrl_ssbd": (0x7, 0, "edx", 31),
    "avx_vnni": (0x7, 1, "eax", 4),
    "avx512_bf16": (0x7, 1, "eax", 5),
    "fred": (0x7, 1, "eax", 17),
    "amx_fp16": (0x7, 1, "eax", 21),
    "lam": (0x7, 1, "eax", 26),
    "avx_vnni_int8": (0x7, 1, "edx", 4),
    "prefetchiti": (0x7, 1, "edx", 14),
    "avx10": (0x7, 1, "edx", 19),
    "apx": (0x7, 1, "edx", 21),
    "intel_psfd": (0x7, 2, "edx", 0),
    "bhi_ctrl": (0x7, 2, "edx", 4),
    "xsaveopt": (0xD, 1, "eax", 0),
    "xsavec": (0xD, 1, "eax", 1),
    "xgetbv1": (0xD, 1, "eax", 2),
    "xsaves": (0xD, 1, "eax", 3),
    "xfd": (0xD, 1, "eax", 4),
    "sgx1": (0x12, 0, "eax", 0),
    "pt_ptwrite": (0x14, 0, "ebx", 4),
    "avx10_256": (0x24, 0, "ebx", 17),
    "avx10_512": (0x24, 0, "ebx", 18),
    "lahf_lm": (0x8000_0001, 0, "ecx", 0),
    "cmp_legacy": (0x8000_0001, 0, "ecx", 1),
    "svm": (0x8000_0001, 0, "ecx", 2),
    "abm": (0x8000_0001, 0, "ecx", 5),
    "sse4a": (0x8000_0001, 0, "ecx", 6),
    "3dnowprefetch": (0x8000_0001, 0, "ecx", 8),
    "xop": (0x8000_0001, 0, "ecx", 11),
    "fma4": (0x8000_0001, 0, "ecx", 16),
    "tbm": (0x8000_0001, 0, "ecx", 21),
    "topoext": (0x8000_0001, 0, "ecx", 22),
    "mwaitx": (0x8000_0001, 0, "ecx", 29),
    "syscall": (0x8000_0001, 0, "edx", 11),
    "nx": (0x8000_0001, 0, "edx", 20),
    "mmxext": (0x8000_0001, 0, "edx", 22),
    "pdpe1gb": (0x8000_0001, 0, "edx", 26),
    "rdtscp": (0x8000_0001, 0, "edx", 27),
    "lm": (0x8000_0001, 0, "edx", 29),
    "3dnow": (0x8000_0001, 0, "edx", 31),
    "invariant_tsc": (0x8000_0007, 0, "edx", 8),
    "cpb": (0x8000_0007, 0, "edx", 9),
    "rapl": (0x8000_0007, 0, "edx", 14),
    "clzero": (0x8000_0008, 0, "ebx", 0),
    "xsaveerptr": (0x8000_0008, 0, "ebx", 2),
    "wbnoinvd": (0x8000_0008, 0, "ebx", 9),
    "amd_ibpb": (0x8000_0008, 0, "ebx", 12),
    "amd_ibrs": (0x8000_0008, 0, "ebx", 14),
    "amd_stibp": (0x8000_0008, 0, "ebx", 15),
    "amd_ssbd": (0x8000_0008, 0, "ebx", 24),
    "virt_ssbd": (0x8000_0008, 0, "ebx", 25),
    "npt": (0x8000_000A, 0, "edx", 0),
    "nrip_save": (0x8000_000A, 0, "edx", 3),
    "tsc_scale": (0x8000_000A, 0, "edx", 4),
    "avic": (0x8000_000A, 0, "edx", 13),
    "vnmi": (0x8000_000A, 0, "edx", 25),
    "sme": (0x8000_001F, 0, "eax", 0),
    "sev": (0x8000_001F, 0, "eax", 1),
    "sev_es": (0x8000_001F, 0, "eax", 3),
    "sev_snp": (0x8000_001F, 0, "eax", 4),
    "lfence_rdtsc": (0x8000_0021, 0, "eax", 2),
    "autoibrs": (0x8000_0021, 0, "eax", 8),
    "sbpb": (0x8000_0021, 0, "eax", 27),
    "srso_no": (0x8000_0021, 0, "eax", 29),
}

# Words where every defined bit has a Linux name: the table must match Linux exactly.
LINUX_WORDS: dict[Word, dict[int, str]] = {
    (0x1, 0, "edx"): {
        0: "fpu", 1: "vme", 2: "de", 3: "pse", 4: "tsc", 5: "msr", 6: "pae", 7: "mce",
        8: "cx8", 9: "apic", 11: "sep", 12: "mtrr", 13: "pge", 14: "mca", 15: "cmov",
        16: "pat", 17: "pse36", 18: "pn", 19: "clflush", 21: "dts", 22: "acpi", 23: "mmx",
        24: "fxsr", 25: "sse", 26: "sse2", 27: "ss", 28: "ht", 29: "tm", 30: "ia64", 31: "pbe",
    },
    (0x1, 0, "ecx"): {
        0: "pni", 1: "pclmulqdq", 2: "dtes64", 3: "monitor", 4: "ds_cpl", 5: "vmx", 6: "smx",
        7: "est", 8: "tm2", 9: "ssse3", 10: "cid", 11: "sdbg", 12: "fma", 13: "cx16",
        14: "xtpr", 15: "pdcm", 17: "pcid", 18: "dca", 19: "sse4_1", 20: "sse4_2",
        21: "x2apic", 22: "movbe", 23: "popcnt", 24: "tsc_deadline_timer", 25: "aes",
        26: "xsave", 27: "osxsave", 28: "avx", 29: "f16c", 30: "rdrand", 31: "hypervisor",
    },
    # Linux names only the bits that are not copies of CPUID.1:EDX; so must the table.
    (0x8000_0001, 0, "edx"): {
        11: "syscall", 19: "mp", 20: "nx", 22: "mmxext", 25: "fxsr_opt", 26: "pdpe1gb",
        27: "rdtscp", 29: "lm", 30: "3dnowext", 31: "3dnow",
    },
    (0xD, 1, "eax"): {0: "xsaveopt", 1: "xsavec", 2: "xgetbv1", 3: "xsaves", 4: "xfd"},
    (0x8000_000A, 0, "edx"): {
        0: "npt", 1: "lbrv", 2: "svm_lock", 3: "nrip_save", 4: "tsc_scale", 5: "vmcb_clean",
        6: "flushbyasid", 7: "decodeassists", 10: "pausefilter", 12: "pfthreshold",
        13: "avic", 15: "v_vmsave_vmload", 16: "vgif", 17: "gmet", 18: "x2avic",
        20: "v_spec_ctrl", 25: "vnmi", 28: "svme_addr_chk", 29: "bus_lock_threshold",
        30: "idle_hlt",
    },
}  # fmt: skip

KNOWN_VENDORS = frozenset({INTEL, AMD, HYGON, "CentaurHauls", "  Shanghai  "})
INTEL_MAX_EXTENDED_LEAF = 0x8000_0008


def _word(fb: FeatureBit) -> Word:
    return (fb.leaf, fb.subleaf, fb.reg)


def _rows(name: str) -> list[FeatureBit]:
    return [fb for fb in FEATURE_BITS if fb.name == name]


def _cls(name: str) -> FeatureClass:
    classes = {fb.cls for fb in _rows(name)}
    assert len(classes) == 1, f"{name}: rows disagree on the class: {classes}"
    return classes.pop()


# --- shape of every row ------------------------------------------------------------------------


def test_feature_class_values_match_design() -> None:
    assert {c.value for c in FeatureClass} == {
        "guest-visible",
        "host-only",
        "hypervisor-emulated",
        "mode-dependent",
    }


@pytest.mark.parametrize("fb", FEATURE_BITS, ids=lambda fb: fb.name)
def test_row_is_well_formed(fb: FeatureBit) -> None:
    assert isinstance(fb.leaf, int) and 0 <= fb.leaf <= 0xFFFF_FFFF
    assert isinstance(fb.subleaf, int) and 0 <= fb.subleaf <= 0xFFFF_FFFF
    assert fb.reg in ("eax", "ebx", "ecx", "edx")
    assert isinstance(fb.bit, int) and 0 <= fb.bit <= 31
    assert re.fullmatch(r"[a-z0-9_]+", fb.name), "Linux-style: lowercase, digits, underscores"
    assert isinstance(fb.cls, FeatureClass)
    assert isinstance(fb.reason, str) and len(fb.reason) <= 300
    if fb.cls is not FeatureClass.GUEST_VISIBLE:
        assert fb.reason.strip(), f"{fb.name} is {fb.cls} and must say why"
    if fb.vendors is not None:
        assert isinstance(fb.vendors, frozenset) and fb.vendors
        assert fb.vendors <= KNOWN_VENDORS, fb.vendors
        assert all(len(v) == 12 for v in fb.vendors), "CPUID vendor strings are 12 bytes"


def test_rows_are_immutable() -> None:
    fb = FEATURE_BITS[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        fb.bit = 3  # type: ignore[misc]
    assert not hasattr(fb, "__dict__"), "slots dataclass"


def test_table_is_sorted_by_position() -> None:
    order = ("eax", "ebx", "ecx", "edx")
    keys = [(fb.leaf, fb.subleaf, order.index(fb.reg), fb.bit) for fb in FEATURE_BITS]
    assert keys == sorted(keys)


# --- positions -----------------------------------------------------------------------------


def test_no_two_rows_claim_one_bit_for_the_same_vendor() -> None:
    by_bit: dict[tuple[int, int, str, int], list[FeatureBit]] = defaultdict(list)
    for fb in FEATURE_BITS:
        by_bit[(fb.leaf, fb.subleaf, fb.reg, fb.bit)].append(fb)
    clashes = []
    for pos, rows in by_bit.items():
        for i, a in enumerate(rows):
            for b in rows[i + 1 :]:
                if a.vendors is None or b.vendors is None or a.vendors & b.vendors:
                    clashes.append((pos, a.name, b.name))
    assert not clashes, clashes


@pytest.mark.parametrize("name", sorted(KNOWN_POSITIONS))
def test_known_position(name: str) -> None:
    leaf, subleaf, reg, bit = KNOWN_POSITIONS[name]
    rows = _rows(name)
    assert rows, f"{name} is missing from the table"
    assert any((fb.leaf, fb.subleaf, fb.reg, fb.bit) == (leaf, subleaf, reg, bit) for fb in rows), [
        (hex(fb.leaf), fb.subleaf, fb.reg, fb.bit) for fb in rows
    ]


@pytest.mark.parametrize("word", sorted(LINUX_WORDS), ids=lambda w: f"{w[0]:#x}.{w[1]}.{w[2]}")
def test_fully_named_words_match_linux(word: Word) -> None:
    got = {fb.bit: fb.name for fb in FEATURE_BITS if _word(fb) == word}
    assert got == LINUX_WORDS[word]


@pytest.mark.parametrize("word", REQUIRED_WORDS, ids=lambda w: f"{w[0]:#x}.{w[1]}.{w[2]}")
def test_required_word_is_covered(word: Word) -> None:
    assert any(_word(fb) == word for fb in FEATURE_BITS)


def test_extended_leaf_copies_of_leaf1_are_skipped() -> None:
    leaf1_edx = {fb.name for fb in FEATURE_BITS if _word(fb) == (0x1, 0, "edx")}
    ext_edx = {fb.name for fb in FEATURE_BITS if _word(fb) == (0x8000_0001, 0, "edx")}
    assert not leaf1_edx & ext_edx


def test_amd_only_leaves_are_restricted_to_amd_like_vendors() -> None:
    # Intel answers leaves above its maximum with the highest basic leaf: never read them as AMD.
    loose = [
        fb.name
        for fb in FEATURE_BITS
        if INTEL_MAX_EXTENDED_LEAF < fb.leaf < 0x9000_0000
        and (fb.vendors is None or not fb.vendors <= AMD_LIKE)
    ]
    assert not loose, loose


def test_bits_intel_defines_in_amd_words_apply_to_every_vendor() -> None:
    for name in ("lahf_lm", "abm", "3dnowprefetch", "syscall", "nx", "pdpe1gb", "rdtscp", "lm"):
        assert all(fb.vendors is None for fb in _rows(name)), name
    for name in ("sse4a", "xop", "mmxext", "3dnow", "svm", "amd_ssbd"):
        assert all(fb.vendors == AMD_LIKE for fb in _rows(name)), name


# --- names -----------------------------------------------------------------------------------


def test_duplicate_names_are_only_one_flag_per_vendor() -> None:
    counts = Counter(fb.name for fb in FEATURE_BITS)
    duplicated = {name for name, n in counts.items() if n > 1}
    assert duplicated == set(DOCUMENTED_DUPLICATES)
    for name in duplicated:
        _cls(name)  # rows sharing a name must share the class (decode keys classes by name)


@pytest.mark.parametrize("vendor", PROFILE_VENDORS)
def test_names_in_one_profile_are_unique(vendor: str) -> None:
    # A profile's features come from the rows of its own vendor: each name must mean one bit.
    counts = Counter(fb.name for fb in FEATURE_BITS if fb.applies_to(vendor))
    assert [name for name, n in counts.items() if n > 1] == []


def test_power_management_bits_do_not_take_flag_names() -> None:
    (flag,) = bits_named("tm")
    assert (flag.leaf, flag.reg, flag.bit) == (0x1, "edx", 29)
    (pm_tm,) = bits_named("pm_tm")
    assert (pm_tm.leaf, pm_tm.reg, pm_tm.bit) == (0x8000_0007, "edx", 4)
    # Linux's power-management line spellings still resolve, to the pm_ rows.
    for spelling, bit in (("ts", 0), ("100mhzsteps", 6), ("eff_freq_ro", 10), ("acc_power", 12)):
        (fb,) = bits_named(spelling)
        assert (fb.leaf, fb.reg, fb.bit) == (0x8000_0007, "edx", bit), spelling
        assert fb.name == f"pm_{spelling}"
    # Bits that are /proc/cpuinfo flags keep their flag names.
    assert {fb.name for fb in bits_for(0x8000_0007, 0, "edx")} >= {"hw_pstate", "cpb", "rapl"}


def test_hidden_and_invented_names_are_table_names() -> None:
    assert LINUX_HIDDEN <= NAMES
    assert INVENTED_NAMES <= NAMES
    assert not LINUX_HIDDEN & INVENTED_NAMES
    assert {fb.name for fb in FEATURE_BITS} == NAMES


@pytest.mark.parametrize("name", sorted(INVENTED_NAMES))
def test_invented_names_say_so(name: str) -> None:
    assert all("invented" in fb.reason for fb in _rows(name)), name


def test_linux_hidden_examples() -> None:
    # macro comments without a quoted name in cpufeatures.h / KVM-only macros
    for name in ("osxsave", "spec_ctrl", "intel_stibp", "spec_ctrl_ssbd", "amd_ssbd", "avx10"):
        assert name in LINUX_HIDDEN, name
    # shown in /proc/cpuinfo, so not hidden
    for name in ("md_clear", "flush_l1d", "arch_capabilities", "virt_ssbd", "avx512f", "pni"):
        assert name not in LINUX_HIDDEN, name


# --- classes ---------------------------------------------------------------------------------


def test_mode_dependent_bits_are_exactly_the_decided_ones() -> None:
    md = {fb.name for fb in FEATURE_BITS if fb.cls is MD}
    assert md == {"syscall", "osxsave", "ospke", "aeskle"}
    assert _cls("lahf_lm") is GV  # about 64-bit mode, but reads the same in every mode


@pytest.mark.parametrize(
    "name",
    [
        "md_clear", "arch_capabilities", "spec_ctrl", "intel_stibp", "spec_ctrl_ssbd",
        "flush_l1d", "amd_ibpb", "amd_ibrs", "amd_stibp", "amd_ssbd", "intel_psfd", "bhi_ctrl",
        "verw_clear", "srso_no", "sse4_2", "avx2", "avx512f", "sha_ni", "xsave", "xsaves",
        "pku", "mpx", "amx_tile", "shstk", "ibt", "apx", "rtm", "hle", "lm", "nx", "pdpe1gb",
    ],
)  # fmt: skip
def test_guest_visible(name: str) -> None:
    assert _cls(name) is GV


@pytest.mark.parametrize(
    "name",
    [
        "vmx", "svm", "monitor", "mwaitx", "acpi", "tm", "tm2", "est", "pbe", "dtherm", "hwp",
        "dts", "ds_cpl", "dtes64", "pdcm", "smx", "intel_pt", "perfctr_core", "ibs", "sme",
        "sev", "sev_es", "sev_snp", "npt", "tsc_scale", "cqm", "rdt_a", "mba",
    ],
)  # fmt: skip
def test_host_only(name: str) -> None:
    assert _cls(name) is HO


@pytest.mark.parametrize(
    "name",
    [
        "x2apic", "tsc_deadline_timer", "arat", "hypervisor", "apic", "tsc_adjust",
        "lfence_rdtsc", "null_sel_clr_base", "virt_ssbd", "invariant_tsc",
    ],
)  # fmt: skip
def test_hypervisor_emulated(name: str) -> None:
    assert _cls(name) is HE


@pytest.mark.parametrize(
    "word",
    [(0x8000_000A, 0, "edx"), (0x14, 0, "ebx"), (0x8000_001F, 0, "eax")],
    ids=["svm", "intel-pt", "sev"],
)
def test_whole_words_are_host_only(word: Word) -> None:
    rows = [fb for fb in FEATURE_BITS if _word(fb) == word]
    assert rows and all(fb.cls is HO for fb in rows), [fb.name for fb in rows if fb.cls is not HO]


def test_thermal_leaf_is_host_only_except_arat() -> None:
    rows = [fb for fb in FEATURE_BITS if _word(fb) == (0x6, 0, "eax")]
    assert {fb.name for fb in rows if fb.cls is not HO} == {"arat"}


def test_ambiguous_choices_are_guest_visible_mitigations_or_documented() -> None:
    for spelling, choices in AMBIGUOUS.items():
        assert spelling not in NAMES and spelling not in ALIASES, spelling
        assert choices and set(choices) <= NAMES, (spelling, choices)
    for spelling in ("ibrs", "ibpb", "stibp"):
        assert all(_cls(c) is GV for c in AMBIGUOUS[spelling])


# --- aliases and canonical_name ---------------------------------------------------------------


def test_every_alias_points_at_a_real_name() -> None:
    bad = {alias: target for alias, target in ALIASES.items() if target not in NAMES}
    assert not bad, bad


def test_no_alias_shadows_a_canonical_name() -> None:
    assert not set(ALIASES) & NAMES


def test_alias_keys_are_normalised() -> None:
    assert all(key == key.strip().lower() for key in ALIASES)


def test_hyphen_forms_of_underscore_names_are_aliases() -> None:
    missing = [n for n in NAMES if "_" in n and ALIASES.get(n.replace("_", "-")) != n]
    assert not missing, missing


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("sse4.1", "sse4_1"),
        ("sse4.2", "sse4_2"),
        ("pclmuldq", "pclmulqdq"),
        ("lahf-lm", "lahf_lm"),
        ("sse3", "pni"),
        ("sha-ni", "sha_ni"),
        ("avx512-vp2intersect", "avx512_vp2intersect"),
        ("avx512-vpopcntdq", "avx512_vpopcntdq"),
        ("avx512vnni", "avx512_vnni"),
        ("tsc-deadline", "tsc_deadline_timer"),
        ("tsc-adjust", "tsc_adjust"),
        ("lzcnt", "abm"),
        ("bmi", "bmi1"),
        ("bmi1", "bmi1"),
        ("fxsr-opt", "fxsr_opt"),
        ("cr8legacy", "cr8_legacy"),
        ("spec-ctrl", "spec_ctrl"),
        ("md-clear", "md_clear"),
        ("arch-capabilities", "arch_capabilities"),
        ("amd-ssbd", "amd_ssbd"),
        ("virt-ssbd", "virt_ssbd"),
        ("invtsc", "invariant_tsc"),
        ("ds", "dts"),
        ("svm-lock", "svm_lock"),
        ("nrip-save", "nrip_save"),
        ("avx10-512", "avx10_512"),
        # py-cpuinfo's own spellings
        ("tscdeadline", "tsc_deadline_timer"),
        ("rdrnd", "rdrand"),
        ("sha", "sha_ni"),
        ("pdpe1gp", "pdpe1gb"),
        # case, surrounding space, underscore-for-hyphen
        (" SSE4.2 ", "sse4_2"),
        ("AVX512F", "avx512f"),
        ("tsc_deadline", "tsc_deadline_timer"),
    ],
)
def test_canonical_name_accepts_spellings(spelling: str, name: str) -> None:
    assert canonical_name(spelling) == name


def test_canonical_name_is_identity_on_names_and_resolves_every_alias() -> None:
    for name in NAMES:
        assert canonical_name(name) == name
    for alias, target in ALIASES.items():
        assert canonical_name(alias) == target


def test_unknown_name_error_suggests_close_matches() -> None:
    with pytest.raises(UnknownFeatureError) as info:
        canonical_name("avx521f")
    err = info.value
    assert isinstance(err, KeyError)
    assert "avx512f" in str(err) and "avx512f" in err.suggestions
    assert str(err).startswith("unknown CPU feature 'avx521f'")


def test_unknown_name_error_suggests_aliases_by_their_target() -> None:
    with pytest.raises(UnknownFeatureError) as info:
        canonical_name("sse4.3")
    assert "sse4_2" in info.value.suggestions or "sse4_1" in info.value.suggestions
    assert "(= sse4_" in str(info.value)


def test_unknown_name_without_close_match_explains_the_naming() -> None:
    with pytest.raises(UnknownFeatureError) as info:
        canonical_name("qqqqqqqqqq")
    assert "/proc/cpuinfo" in str(info.value)
    assert info.value.suggestions == ()


@pytest.mark.parametrize("spelling", sorted(AMBIGUOUS))
def test_ambiguous_names_are_refused_with_the_choices(spelling: str) -> None:
    with pytest.raises(AmbiguousFeatureError) as info:
        canonical_name(spelling.upper())
    assert isinstance(info.value, UnknownFeatureError)
    assert info.value.suggestions == AMBIGUOUS[spelling]
    for choice in AMBIGUOUS[spelling]:
        assert choice in str(info.value)


def test_linux_synthetic_flags_are_not_names() -> None:
    for flag in ("constant_tsc", "rep_good", "nopl", "cpuid", "xtopology", "tsc_known_freq"):
        with pytest.raises(UnknownFeatureError):
            canonical_name(flag)


def test_canonical_name_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        canonical_name(42)  # type: ignore[arg-type]


# --- lookups ---------------------------------------------------------------------------------


def test_bits_for_matches_the_table_for_every_word() -> None:
    words: dict[Word, list[FeatureBit]] = defaultdict(list)
    for fb in FEATURE_BITS:
        words[_word(fb)].append(fb)
    for (leaf, subleaf, reg), rows in words.items():
        got = bits_for(leaf, subleaf, reg)
        assert list(got) == sorted(rows, key=lambda fb: fb.bit)
        assert bits_for(leaf, subleaf, reg.upper()) == got


def test_bits_for_unknown_word_is_empty() -> None:
    assert bits_for(0x2, 0, "eax") == ()
    assert bits_for(0x7, 5, "ebx") == ()


def test_bits_for_filters_by_vendor() -> None:
    intel = {fb.name for fb in bits_for(0x8000_0001, 0, "edx", vendor=INTEL)}
    amd = {fb.name for fb in bits_for(0x8000_0001, 0, "edx", vendor=AMD)}
    assert intel == {"syscall", "nx", "pdpe1gb", "rdtscp", "lm"}
    assert amd == set(LINUX_WORDS[(0x8000_0001, 0, "edx")].values())
    assert bits_for(0x8000_001F, 0, "eax", vendor=INTEL) == ()
    assert bits_for(0x8000_001F, 0, "eax", vendor=HYGON)


def test_bits_named_returns_every_row_of_a_reused_name() -> None:
    mba = bits_named("mba")
    assert {(fb.leaf, fb.reg, fb.bit) for fb in mba} == {(0x10, "ebx", 3), (0x8000_0008, "ebx", 6)}
    assert {fb.vendors for fb in mba} == {frozenset({INTEL}), AMD_LIKE}
    (sse42,) = bits_named("sse4.2")
    assert (sse42.leaf, sse42.reg, sse42.bit) == (0x1, "ecx", 20)
    assert sse42.mask == 1 << 20
    assert sse42.applies_to(INTEL) and sse42.applies_to(AMD)
    (sse4a,) = bits_named("sse4a")
    assert not sse4a.applies_to(INTEL) and sse4a.applies_to(HYGON)
