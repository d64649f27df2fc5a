"""Mitigations as a guest sees them: "not affected" satisfies, the kernel's bits from the offer.

Real data: the shared AMD EPYC KVM-guest dump (what a Milan guest saw: verw_clear,
tsa_*_no, sbpb, ibpb_brtype), the shared raw Rome/Milan dumps, and the project's
recorded offer (tests/fixtures/processors/dev-amd-epyc-nested-kvm-offer.json,
unedited; IA32_ARCH_CAPABILITIES 0x400000000c000069: MDS_NO set, TAA_NO clear). One
test sets TAA_NO (bit 8) in an in-memory copy of that MSR value, and says so.
"""

from __future__ import annotations

import dataclasses
import json

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.domain.compat import MISSING_FEATURES, MITIGATIONS_FROM_KERNEL, check
from cpucompat.coordinator.domain.mitigations import (
    ARCH_CAPABILITIES_MSR,
    KERNEL_SYNTHESISED,
    arch_capabilities_no,
    satisfied,
)
from cpucompat.coordinator.domain.sides import requirement_of, target_of
from tests.support.daemons import run_cli
from tests.support.paths import NESTED_KVM_OFFER as RECORDED
from tests.support.shared import shared_dump, shared_profile

KVM_GUEST = "cpuid-r-amd-epyc-kvm-guest.txt"
ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
ZEN4 = "amd-zen4-amd-ryzen-9-7900x-12-core-processor.txt"
RYZEN_ZEN2 = "amd-zen2-amd-ryzen-7-5700u-with-radeon-graphics.txt"
TAA_NO = 1 << 8


def test_verw_clear_is_satisfied_by_a_target_not_affected_by_tsa() -> None:
    guest = requirement_of(shared_profile(KVM_GUEST), "milan-guest")
    assert "verw_clear" in guest.features
    target = decode(load_dump(RECORDED))
    assert target.hypervisor_offer is not None
    offered = target.hypervisor_offer.features
    assert "verw_clear" not in offered and {"tsa_sq_no", "tsa_l1_no"} <= offered
    verdict = check(guest, target_of(target, "dev"))
    missing = verdict.reason(MISSING_FEATURES)
    assert missing is not None  # the nested offer lacks much else
    assert "verw_clear" not in missing.features
    # Without the "not affected" bits the same mitigation is missing.
    assert "verw_clear" in satisfied(frozenset({"tsa_sq_no", "tsa_l1_no"}), frozenset())
    assert not satisfied(frozenset({"tsa_sq_no"}), frozenset())


def test_md_clear_needs_both_mds_no_and_taa_no_from_the_offer_msr() -> None:
    target = decode(load_dump(RECORDED))
    offer = target.hypervisor_offer
    assert offer is not None
    no_bits = arch_capabilities_no(offer)
    assert "mds_no" in no_bits and "taa_no" not in no_bits  # the recording, unedited
    assert "md_clear" not in satisfied(frozenset(), no_bits)
    value = offer.msr(ARCH_CAPABILITIES_MSR)
    assert value is not None
    msrs = tuple(
        (i, v | TAA_NO if i == ARCH_CAPABILITIES_MSR else v) for i, v in offer.msrs
    )  # edited: TAA_NO set
    edited = dataclasses.replace(offer, msrs=msrs)
    assert "md_clear" in satisfied(frozenset(), arch_capabilities_no(edited))
    assert not arch_capabilities_no(None)


def test_kernel_bits_come_from_the_offer_where_there_is_one() -> None:
    profile = decode(load_dump(RECORDED))
    offer = profile.hypervisor_offer
    assert offer is not None
    req = requirement_of(profile, "dev")
    assert req.features & KERNEL_SYNTHESISED == offer.features & KERNEL_SYNTHESISED
    assert not req.kernel_mitigations
    assert check(req, target_of(profile, "dev")).reason(MITIGATIONS_FROM_KERNEL) is None
    # The same processor's offer without the TSA bits: the requirement follows the offer.
    bare = dataclasses.replace(offer, features=offer.features - {"tsa_sq_no", "tsa_l1_no"})
    req2 = requirement_of(dataclasses.replace(profile, hypervisor_offer=bare), "dev")
    assert not req2.features & {"tsa_sq_no", "tsa_l1_no"}


def _warning(source: str, target: str) -> dict | None:
    result = run_cli(
        "check", f"dump:{shared_dump(source)}", f"dump:{shared_dump(target)}", "--json"
    )
    assert result.returncode in (0, 3), result.stderr
    found = [
        w for w in json.loads(result.stdout)["warnings"] if w["code"] == MITIGATIONS_FROM_KERNEL
    ]
    return found[0] if found else None


def test_the_kernel_warning_appears_where_the_verdict_depends_on_kernel_bits() -> None:
    # Rome (family 0x17) -> Milan (0x19): raw CPUID says compatible, but Linux's tsa_init
    # tells Rome's guests TSA_SQ_NO/TSA_L1_NO and never Milan's (SRSO_NO likewise).
    rome, milan = f"dump:{shared_dump(ROME)}", f"dump:{shared_dump(MILAN)}"
    result = run_cli("check", rome, milan, "--json")
    assert result.returncode == 0, result.stderr
    warning = _warning(ROME, MILAN)
    assert warning is not None
    assert {"tsa_sq_no", "tsa_l1_no"} <= set(warning["features"])
    assert "source and target" in warning["detail"]
    human = run_cli("check", rome, milan)
    assert "MITIGATIONS_FROM_KERNEL" in human.stdout and "tsa_sq_no" in human.stdout


def test_no_kernel_warning_where_both_kernels_set_the_same_bits() -> None:
    # Same family on both sides (0x19 -> 0x19, 0x17 -> 0x17): whatever the kernels set,
    # they set it on both, so the verdict does not depend on it.
    assert _warning(MILAN, ZEN4) is None
    assert _warning(ZEN4, MILAN) is None
    assert _warning(ROME, RYZEN_ZEN2) is None
    assert _warning(ROME, ROME) is None
