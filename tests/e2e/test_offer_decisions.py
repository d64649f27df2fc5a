"""CompatibilityService from the hypervisor's offer: a host-mode VM needs what the offer gave it.

Uses the recorded offer tests/fixtures/processors/dev-amd-epyc-nested-kvm-offer.json
(`probe --json` on a nested KVM development machine whose KVM offers no SSE3 and no
AVX) and, as "the same host without an offer", that recording with its
`hypervisor_offer` removed. Edited offers clear one bit in memory and say which.
Nothing here needs /dev/kvm.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import RawCapture
from cpucompat.coordinator.domain.compat import MISSING_FEATURES, check
from cpucompat.coordinator.domain.requirement import FEATURE_CLASSES_VIEW
from cpucompat.coordinator.domain.sides import requirement_of, target_of
from tests.support.daemons import run_cli
from tests.support.paths import NESTED_KVM_OFFER as RECORDED

OFFER = "offer: kvm"
AVX_COMPONENT = 1 << 2  # XSAVE component 2, YMM_Hi128 (Intel SDM vol. 1, 13.1)
LEAF7_EBX_CLFLUSHOPT = 1 << 23  # CPUID.7.0:EBX[23]


def with_offer() -> Profile:
    return decode(load_dump(RECORDED))


def without_offer() -> Profile:
    return decode(dataclasses.replace(load_dump(RECORDED), offer=None))


def offer_without_clflushopt() -> Profile:
    """The recording with CLFLUSHOPT cleared in the offer's leaf 7 EBX (not in CPUID)."""
    capture: RawCapture = load_dump(RECORDED)
    assert capture.offer is not None
    leaves = dict(capture.offer.leaves)
    a, b, c, d = leaves[(7, 0)]
    leaves[(7, 0)] = (a, b & ~LEAF7_EBX_CLFLUSHOPT, c, d)
    offer = dataclasses.replace(capture.offer, leaves=leaves)
    return decode(dataclasses.replace(capture, offer=offer))


def test_a_host_with_an_offer_requires_only_what_the_offer_gave() -> None:
    host = with_offer()
    req = requirement_of(host, "dev")
    assert req.view == OFFER
    # The processor has SSE3 and AVX; its KVM offers neither, so no guest saw them.
    assert {"pni", "avx"} <= host.features
    assert not {"pni", "avx"} & req.features
    assert req.features <= host.features & host.hypervisor_offer.features  # type: ignore[union-attr]
    # AVX state goes with AVX: the guest could not enable it.
    assert host.xsave.supported_mask & AVX_COMPONENT
    assert not req.xsave_mask & AVX_COMPONENT
    # The same host without its offer: the classes' view keeps both.
    raw = requirement_of(without_offer(), "dev")
    assert raw.view == FEATURE_CLASSES_VIEW
    assert {"pni", "avx"} <= raw.features
    assert raw.xsave_mask & AVX_COMPONENT


def test_an_edited_offer_drops_the_bit_from_the_requirement() -> None:
    assert "clflushopt" in requirement_of(with_offer(), "dev").features
    assert "clflushopt" not in requirement_of(offer_without_clflushopt(), "dev").features


def test_a_target_with_an_offer_accepts_only_what_it_offers() -> None:
    offered, raw = with_offer(), without_offer()
    # The raw requirement (SSE3, AVX, ...) is refused by the offer, and the verdict says so.
    refused = check(requirement_of(raw, "raw"), target_of(offered, "dev"))
    assert not refused.compatible
    missing = refused.reason(MISSING_FEATURES)
    assert missing is not None and {"pni", "avx"} <= set(missing.features)
    assert refused.view == OFFER
    assert refused.to_json()["view"] == OFFER
    # The offer's requirement is accepted by the raw view of the same processor.
    accepted = check(requirement_of(offered, "dev"), target_of(raw, "raw"))
    assert accepted.compatible, accepted.summary
    assert accepted.view == OFFER
    # Neither side with an offer: the classes decided.
    plain = check(requirement_of(raw, "raw"), target_of(raw, "raw"))
    assert plain.compatible and plain.view == FEATURE_CLASSES_VIEW


def test_a_target_whose_offer_lost_a_bit_refuses_it() -> None:
    verdict = check(requirement_of(with_offer(), "dev"), target_of(offer_without_clflushopt(), "t"))
    assert not verdict.compatible
    missing = verdict.reason(MISSING_FEATURES)
    assert missing is not None and missing.features == ("clflushopt",)


def test_check_names_the_view_that_decided(tmp_path: Path) -> None:
    doc = json.loads(RECORDED.read_text())
    del doc["hypervisor_offer"]
    raw = tmp_path / "no-offer.json"
    raw.write_text(json.dumps(doc))
    out = run_cli("check", f"dump:{raw}", f"dump:{RECORDED}")
    assert out.returncode == 3, out.stderr
    assert "decided by: offer: kvm" in out.stdout
    out = run_cli("check", "--json", f"dump:{RECORDED}", f"dump:{raw}")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["view"] == OFFER
    out = run_cli("check", "--json", f"dump:{raw}", f"dump:{raw}")
    assert json.loads(out.stdout)["view"] == FEATURE_CLASSES_VIEW
