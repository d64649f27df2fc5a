"""The live offer of this host's KVM, checked against QEMU itself.

Every test here needs a readable /dev/kvm and skips cleanly without it. No test
assumes a rich offer: the development machines are nested guests whose KVM
offers no SSE3. QEMU is the reference (Debian `qemu-system-x86`, installed by
.ci/run): ``qemu-system-x86_64 -machine none -accel kvm -qmp stdio`` answering
``query-cpu-model-expansion`` for model ``host``, type ``full``.

How the comparison is made, and why it is not a copy of this machine:

1. Only features both sides name are compared: each boolean property QEMU
   returns is mapped to the project's name with the feature table's own
   aliases (``sse4.2`` -> ``sse4_2``, ``lahf-lm`` -> ``lahf_lm``, ``xd`` -> ``nx``,
   ...). Names the table calls ambiguous (QEMU's ``ibpb``, ``ssbd``, ...) and
   properties that are not features (``pmu``, ``l3-cache``, ...) map to nothing
   and are left out, as are bits one side does not know (QEMU 7.2 has no name for
   ``tsa_sq_no``; the table has none for ``kvm-pv-eoi``).
2. The host model is expanded with ``migratable=false``: otherwise QEMU drops
   the bits it marks unmigratable (``invtsc``; target/i386/cpu.c,
   ``feature_word_info[].unmigratable_flags``), which KVM does offer.
3. QEMU edits KVM's answer in known, sourced ways; those bits may differ in
   the direction QEMU edits them and only there (``QEMU_ADDS`` / ``QEMU_DROPS``
   below, each with its place in QEMU). Everything else must be equal both ways.
4. MSR features: QEMU names bits of IA32_ARCH_CAPABILITIES, which it reads
   with the same KVM_GET_MSRS on /dev/kvm (target/i386/kvm/kvm.c,
   ``kvm_arch_get_supported_msr_feature``); every bit QEMU names must match
   the offer's MSR value.
5. Vendor, family/model/stepping and the lowest maximum leaves QEMU accepts
   (``min-level``/``min-xlevel``, set from KVM's leaf 0 and 0x80000000 in
   target/i386/host-cpu.c, ``host_cpu_max_instance_init``) match the offer's leaves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cpucompat.agent import kvm_offer
from cpucompat.agent.decode import decode_offer, family_model_stepping, vendor_of
from cpucompat.agent.feature_table import NAMES, UnknownFeatureError, canonical_name
from cpucompat.agent.live import probe_instruction
from cpucompat.agent.raw import RawOffer
from cpucompat.coordinator.qemu_qmp import QEMU_BINARY, Qmp, qemu_binary
from tests.support.daemons import run_cli, start_agent, start_coordinator, wait_until

QEMU = QEMU_BINARY

QEMU_ADDS: dict[str, str] = {
    # target/i386/kvm/kvm.c, kvm_arch_get_supported_cpuid: bits QEMU sets on top of KVM's answer.
    "hypervisor": "set unconditionally (leaf 1 ECX[31])",
    "tsc_deadline_timer": "set when KVM_CAP_TSC_DEADLINE_TIMER and the in-kernel irqchip exist",
    "arat": "set unconditionally: safe with the emulated APIC (leaf 6 EAX[2])",
    "mtrr": "set unconditionally: KVM before 2.6.30 misreported it",
    "pat": "set unconditionally: KVM before 2.6.30 misreported it",
    "mce": "set unconditionally: KVM before 2.6.30 misreported it",
    "mca": "set unconditionally: KVM before 2.6.30 misreported it",
    "monitor": "set with -overcommit cpu-pm=on when KVM can disable MWAIT exits",
    "x2apic": "older KVM left the emulated x2APIC out of its answer; QEMU keys it to the irqchip",
}
QEMU_DROPS: dict[str, str] = {
    # target/i386/cpu.c feature_word_info[FEAT_8000_0001_ECX].no_autoenable_flags:
    "topoext": "never auto-enabled by -cpu host: it needs consistent cache topology",
    # target/i386/kvm/kvm.c, kvm_arch_get_supported_cpuid:
    "x2apic": "cleared without the in-kernel irqchip",
    "rtm": "cleared on hosts with the TSX erratum (host_tsx_broken)",
    "hle": "cleared on hosts with the TSX erratum (host_tsx_broken)",
    "arch_capabilities": "cleared when KVM lists no IA32_ARCH_CAPABILITIES MSR (Linux 4.17-4.20)",
    "waitpkg": "kept only with -overcommit cpu-pm=on",
    "monitor": "kept only with -overcommit cpu-pm=on",
    # target/i386/cpu.c, x86_cpu_filter_features: PT only with the capabilities QEMU can migrate.
    "intel_pt": "kept only when leaf 0x14 matches what QEMU supports",
}
# target/i386/cpu.c feature_word_info[FEAT_ARCH_CAPABILITIES].feat_names: QEMU name -> bit.
QEMU_ARCH_CAPABILITIES_BITS: dict[str, int] = {
    "rdctl-no": 0,
    "ibrs-all": 1,
    "rsba": 2,
    "skip-l1dfl-vmentry": 3,
    "ssb-no": 4,
    "mds-no": 5,
    "pschange-mc-no": 6,
    "tsx-ctrl": 7,
    "taa-no": 8,
    "sbdr-ssdp-no": 13,
    "fbsdp-no": 14,
    "psdp-no": 15,
    "fb-clear": 17,
    "pbrsb-no": 24,
}
IA32_ARCH_CAPABILITIES = 0x10A


def live_offer() -> RawOffer:
    try:
        return kvm_offer.read_offer()
    except kvm_offer.OfferUnavailable as exc:
        pytest.skip(f"no live KVM offer here: {exc}")


@pytest.fixture
def offer() -> RawOffer:
    return live_offer()


def test_offer_speaks_for_this_processor(offer: RawOffer) -> None:
    assert offer.kind == "kvm" and offer.api_version == kvm_offer.KVM_API_VERSION
    cpu = probe_instruction(cpus=[os.sched_getaffinity(0).copy().pop()]).cpus[0]
    assert vendor_of(offer.as_cpu()) == vendor_of(cpu)
    # KVM reports the host's family/model/stepping in its leaf 1 (cpuid.c, do_host_cpuid).
    assert family_model_stepping(offer.leaves[(1, 0)][0]) == family_model_stepping(
        cpu.leaves[(1, 0)][0]
    )
    assert decode_offer(offer, replayed=False).features <= NAMES


def test_offer_is_the_same_whichever_cpu_reads_it() -> None:
    original = os.sched_getaffinity(0)
    fingerprints = {}
    try:
        for cpu in sorted(original):
            os.sched_setaffinity(0, {cpu})
            fingerprints[cpu] = decode_offer(live_offer(), replayed=False).fingerprint
    finally:
        os.sched_setaffinity(0, original)
    assert len(set(fingerprints.values())) == 1, fingerprints


def test_probe_shows_the_live_offer(offer: RawOffer) -> None:
    result = run_cli("probe", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    shown = doc["hypervisor_offer"]
    assert shown["kind"] == "kvm" and shown["replayed"] is False
    assert shown["fingerprint"] == decode_offer(offer, replayed=False).fingerprint
    assert doc["hypervisor_offer_missing"] is None
    assert doc["raw"]["hypervisor_offer"]["api_version"] == offer.api_version
    readable = run_cli("probe")
    assert f"kvm API {offer.api_version}, fingerprint {shown['fingerprint'][:16]}" in (
        readable.stdout
    )


def qemu_host_model() -> dict[str, Any]:
    """QEMU's full expansion of the `host` model on this KVM (migratable=false, see above)."""
    if qemu_binary() is None:
        pytest.fail(f"{QEMU} is missing; .ci/run installs it (apt-get install qemu-system-x86)")
    with Qmp(["-machine", "none", "-accel", "kvm", "-display", "none"]) as qmp:
        answer = qmp.command(
            "query-cpu-model-expansion",
            type="full",
            model={"name": "host", "props": {"migratable": False}},
        )
    props: dict[str, Any] = answer["model"]["props"]
    return props


def qemu_features(props: dict[str, Any]) -> dict[str, bool]:
    """QEMU's boolean properties that name a feature of the table, under the table's name."""
    named: dict[str, set[bool]] = {}
    for key, value in props.items():
        if not isinstance(value, bool):
            continue
        try:
            name = canonical_name(key)
        except UnknownFeatureError:
            continue
        named.setdefault(name, set()).add(value)
    conflicting = {n: v for n, v in named.items() if len(v) > 1}
    assert not conflicting, f"QEMU spellings of one feature disagree: {conflicting}"
    return {name: values.pop() for name, values in named.items()}


def test_qemu_host_model_agrees_with_the_offer(offer: RawOffer) -> None:
    props = qemu_host_model()
    ours = decode_offer(offer, replayed=False).features
    theirs = qemu_features(props)
    assert len(theirs) > 50, "the alias mapping found too few QEMU features to compare"

    qemu_only = {n for n, on in theirs.items() if on and n not in ours}
    offer_only = {n for n, on in theirs.items() if not on and n in ours}
    assert qemu_only <= QEMU_ADDS.keys(), (
        f"QEMU's host model has {sorted(qemu_only - QEMU_ADDS.keys())} that KVM's offer lacks"
    )
    assert offer_only <= QEMU_DROPS.keys(), (
        f"KVM's offer has {sorted(offer_only - QEMU_DROPS.keys())} that QEMU's host model lacks"
    )

    arch_caps = offer.msrs.get(IA32_ARCH_CAPABILITIES)
    for qemu_name, bit in QEMU_ARCH_CAPABILITIES_BITS.items():
        if qemu_name not in props:
            continue  # an older QEMU without this name
        offered = arch_caps is not None and bool(arch_caps >> bit & 1)
        assert props[qemu_name] is offered, f"IA32_ARCH_CAPABILITIES[{bit}] ({qemu_name})"

    vendor = vendor_of(offer.as_cpu())
    assert props["vendor"] == vendor
    family, model, stepping = family_model_stepping(offer.leaves[(1, 0)][0])
    assert (props["family"], props["model"], props["stepping"]) == (family, model, stepping)
    assert props["min-level"] == offer.leaves[(0, 0)][0]
    assert props["min-xlevel"] == offer.leaves[(0x8000_0000, 0)][0]


@pytest.mark.e2e
def test_live_agent_reports_its_offer(offer: RawOffer, tmp_path: Path) -> None:
    coord = start_coordinator(tmp_path)
    node = start_agent(tmp_path, coord.address, "live-1", "--interval", "0.5")
    try:
        where = ("--coordinator", coord.address)
        shown = wait_until(
            lambda: (
                (r := run_cli("host", "show", "live-1", *where, "--json")).returncode == 0
                and json.loads(r.stdout)
            ),
            what="live-1 registered",
        )
        assert isinstance(shown, dict)
        reported = shown["profile"]["hypervisor_offer"]
        expected = decode_offer(offer, replayed=False)
        assert reported["kind"] == "kvm" and not reported.get("replayed", False)
        assert reported["fingerprint"] == expected.fingerprint
        assert set(reported.get("features", [])) == expected.features
        readable = run_cli("host", "show", "live-1", *where)
        assert f"Hypervisor offer  kvm API {offer.api_version}, fingerprint" in readable.stdout
    finally:
        node.kill()
        assert coord.stop() == 0


def test_offer_carries_the_speculation_controls_the_kvm_table_says_it_makes_up(
    offer: RawOffer,
) -> None:
    """Where this host's KVM offers the bits a rule needs, it offers the bit the rule adds
    (`kvm_offerable.SYNTHESISED_FROM`, Linux kvm_set_cpu_caps): the table never claims a
    made-up bit this KVM does not give. Vacuous on a host whose CPUID has none of them."""
    from cpucompat.coordinator.domain.kvm_offerable import SYNTHESISED_FROM

    offered = decode_offer(offer, replayed=False).features
    for bit, needs in SYNTHESISED_FROM:
        if needs <= offered:
            assert bit in offered, (bit, sorted(needs))
