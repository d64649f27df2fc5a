"""What used to go unchecked: supervisor XSAVE state, nested virtualisation, stepping.

Real shared dumps where a pair exists (i5-8265U stepping 12 vs i5-8350U stepping 10,
both family 6 model 0x8e; Ryzen 7 5700U with SVM vs an EPYC KVM guest without it);
where none does, an edited copy of a decoded dump, each edit named in its test.
"""

from __future__ import annotations

import dataclasses

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.feature_table import bits_named
from cpucompat.coordinator.domain.compat import (
    FAMILY_MODEL_CHANGED,
    NESTED_VIRT_DIFFERS,
    STEPPING_CHANGED,
    XSAVE_STATE_MISSING,
    check,
)
from cpucompat.coordinator.domain.sides import requirement_of, target_of
from tests.support.paths import NESTED_KVM_OFFER
from tests.support.shared import shared_profile as profile

WHISKEY_LAKE = "intel-x86-64-skylake-intel-core-i5-8265u-cpu.txt"  # 6/0x8e stepping 12
KABY_LAKE_R = "intel-x86-64-skylake-intel-core-i5-8350u-cpu.txt"  # 6/0x8e stepping 10
KABY_LAKE_S = "intel-x86-64-skylake-intel-core-i7-7740x-cpu.txt"  # 6/0x9e
ZEN4 = "amd-zen4-amd-ryzen-9-7900x-12-core-processor.txt"  # shstk, XSS CET_U|CET_S
ZEN2_SVM = "amd-zen2-amd-ryzen-7-5700u-with-radeon-graphics.txt"
EPYC_GUEST = "cpuid-r-amd-epyc-kvm-guest.txt"  # a KVM guest: no svm
CET = (1 << 11) | (1 << 12)  # CET_U, CET_S in 0xD.1 ECX (Intel SDM vol. 1, 13.1)


def test_a_stepping_change_within_one_model_warns() -> None:
    a, b = profile(WHISKEY_LAKE), profile(KABY_LAKE_R)
    assert (a.family, a.model) == (b.family, b.model) and a.stepping != b.stepping
    verdict = check(requirement_of(a, "a"), target_of(b, "b"))
    warning = verdict.reason(STEPPING_CHANGED)
    assert warning is not None
    assert warning.data == {"required": a.stepping, "target": b.stepping}
    assert FAMILY_MODEL_CHANGED not in {w.code for w in verdict.warnings}
    same = check(requirement_of(a, "a"), target_of(a, "a"))
    assert same.reason(STEPPING_CHANGED) is None
    # Another model: the family/model warning says it, not the stepping one.
    other = check(requirement_of(a, "a"), target_of(profile(KABY_LAKE_S), "c"))
    codes = {w.code for w in other.warnings}
    assert FAMILY_MODEL_CHANGED in codes and STEPPING_CHANGED not in codes


def test_nested_virtualisation_lost_on_the_target_warns() -> None:
    host, guest = profile(ZEN2_SVM), profile(EPYC_GUEST)
    assert "svm" in host.features and "svm" not in guest.features
    lost = check(requirement_of(host, "h"), target_of(guest, "g"))
    assert lost.reason(NESTED_VIRT_DIFFERS) is not None
    gained = check(requirement_of(guest, "g"), target_of(host, "h"))
    assert gained.reason(NESTED_VIRT_DIFFERS) is None


def test_nested_follows_the_offer_where_there_is_one() -> None:
    # The recorded nested development host: its KVM offers no svm to its guests.
    dev = decode(load_dump(NESTED_KVM_OFFER))
    assert dev.hypervisor_offer is not None and "svm" not in dev.hypervisor_offer.features
    verdict = check(requirement_of(profile(ZEN2_SVM), "h"), target_of(dev, "dev"))
    assert verdict.reason(NESTED_VIRT_DIFFERS) is not None


def test_supervisor_xsave_state_the_guest_used_must_be_on_the_target() -> None:
    zen4 = profile(ZEN4)
    assert "shstk" in zen4.features and zen4.xsave.supervisor_mask & CET == CET
    req = requirement_of(zen4, "zen4")
    assert req.xsave_mask & CET == CET
    # Edit: the same processor with CET_U/CET_S cleared from 0xD.1 ECX (as a kernel
    # or firmware that does not enumerate CET state would report it); shstk kept.
    xsave = dataclasses.replace(zen4.xsave, supervisor_mask=zen4.xsave.supervisor_mask & ~CET)
    without = dataclasses.replace(zen4, xsave=xsave)
    verdict = check(req, target_of(without, "no-cet-state"))
    assert not verdict.compatible
    missing = verdict.reason(XSAVE_STATE_MISSING)
    assert missing is not None and missing.data["components"] == ["cet_u", "cet_s"]
    assert check(req, target_of(zen4, "zen4")).compatible


def test_supervisor_state_only_counts_for_features_the_guest_saw() -> None:
    # Edit: shstk and ibt removed from the source's features; its CET state then
    # cannot have been used and is not required.
    zen4 = profile(ZEN4)
    plain = dataclasses.replace(zen4, features=zen4.features - {"shstk", "ibt"})
    assert not requirement_of(plain, "p").xsave_mask & CET


def test_arch_lbr_reason_says_what_is_compared() -> None:
    reason = bits_named("arch_lbr")[0].reason
    assert "checked on its own" not in reason
    assert "supervisor XSAVE" in reason
