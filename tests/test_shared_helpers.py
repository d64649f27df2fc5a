"""The helpers several modules share (one copy each): vendor string, dump loading, file writes."""

from __future__ import annotations

import pytest

from cpucompat.agent.dumps import load_dump
from cpucompat.agent.raw import vendor_string

from .conftest import FIXTURES


@pytest.mark.parametrize(
    ("fixture", "vendor"),
    [
        ("processors/dev-amd-epyc-kvm.cpuid-r.txt", "AuthenticAMD"),
        ("processors/intel-skylake-leaf2-edited.cpuid-r.txt", "GenuineIntel"),
        ("dumps/aida-repeated-tags.txt", "CentaurHauls"),
        ("dumps/libcpuid-single.txt", "GenuineIntel"),
    ],
)
def test_vendor_string_reads_ebx_edx_ecx_of_real_leaf_0(fixture: str, vendor: str) -> None:
    capture = load_dump(FIXTURES / fixture)
    for cpu in capture.cpus:
        assert vendor_string(cpu.leaves[(0, 0)]) == vendor


def test_vendor_string_keeps_every_byte_of_a_damaged_leaf() -> None:
    # GenuineIntel's leaf 0 with the "e" of ECX's "ntel" replaced by 0xFF: the validator
    # must see 12 characters to say what is wrong, not a shorter or undecodable string.
    damaged = (0xD, 0x756E6547, 0x6CFF746E, 0x49656E69)
    assert vendor_string(damaged) == "GenuineInt\xffl"
