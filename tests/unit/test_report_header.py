"""An unchanged report is read from its header alone: the capture without its CPUs, its
hypervisor offer converted once per distinct offer (issue 13, item 4: a report whose
profile did not change costs a heartbeat)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cpucompat.agent.decode import _offer_fingerprint, offer_fingerprint
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.raw import RawDataError
from cpucompat.agent.wire import capture_from_proto, capture_to_proto
from cpucompat.coordinator.service.registry_servicer import RecentOffers, capture_header
from cpucompat.v1 import profile_pb2
from tests.support.paths import DEV_DUMP, NESTED_KVM_OFFER


def sent(path, **changes) -> profile_pb2.RawCapture:
    raw = capture_to_proto(load_dump(path), compact=True)
    for name, value in changes.items():
        setattr(raw, name, value)
    return profile_pb2.RawCapture.FromString(raw.SerializeToString())


def without_cpus(raw: profile_pb2.RawCapture) -> profile_pb2.RawCapture:
    header = profile_pb2.RawCapture()
    header.CopyFrom(raw)
    for name in ("cpus", "cpu_classes", "compact_cpus"):
        header.ClearField(name)
    return header


@pytest.mark.parametrize("path", [NESTED_KVM_OFFER, DEV_DUMP], ids=["kvm-offer", "no-offer"])
def test_the_header_is_the_capture_without_its_cpus(path) -> None:
    raw = sent(path)
    whole = capture_from_proto(without_cpus(raw))
    offers = RecentOffers()
    first, again = capture_header(raw, offers), capture_header(sent(path), offers)
    assert first == again == whole == capture_header(raw)
    assert first.cpus == ()
    if whole.offer is not None:
        assert again.offer is first.offer  # converted once
        assert offer_fingerprint(again.offer) == _offer_fingerprint(whole.offer)
    else:
        assert first.offer is None


def test_an_offer_with_a_missing_reason_beside_it_reads_as_before() -> None:
    raw = sent(NESTED_KVM_OFFER, hypervisor_offer_missing="no /dev/kvm")
    header = capture_header(raw, RecentOffers())
    assert header == capture_from_proto(without_cpus(raw))
    assert header.offer is not None and header.offer_missing is None


def test_a_bad_offer_is_refused_every_time_and_never_remembered() -> None:
    raw = sent(NESTED_KVM_OFFER)
    msr = raw.hypervisor_offer.msrs[0]
    raw.hypervisor_offer.msrs.add(index=msr.index, value=msr.value + 1)
    offers = RecentOffers()
    for _ in range(2):
        with pytest.raises(RawDataError, match="given twice with different values"):
            capture_header(raw, offers)
    good = capture_header(sent(NESTED_KVM_OFFER), offers)
    assert good.offer is not None and len(good.offer.msrs) == len(raw.hypervisor_offer.msrs) - 1


def test_a_changed_offer_is_converted_anew_and_old_ones_are_forgotten() -> None:
    offers = RecentOffers(size=1)
    raw = sent(NESTED_KVM_OFFER)
    first = capture_header(raw, offers).offer
    raw.hypervisor_offer.api_version += 1  # a kernel update
    changed = capture_header(raw, offers).offer
    assert changed is not None and first is not None
    assert changed.api_version == first.api_version + 1
    assert offer_fingerprint(changed) != offer_fingerprint(first)
    assert capture_header(sent(NESTED_KVM_OFFER), offers).offer is not first  # evicted
    # the fingerprint of an offer never depends on which object carried it
    assert offer_fingerprint(replace(changed)) == offer_fingerprint(changed)
