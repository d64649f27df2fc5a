"""What a guest really gets: invariant TSC, AVX10 version, SGX with an EPC, guest-physical width.

Real dumps where they exist; edited copies (their headers say what changed) where no real
processor shows the case.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile
from cpucompat.coordinator.domain.baselines import resolve_baseline
from cpucompat.coordinator.domain.compat import (
    AVX10_VERSION_LOWER,
    GUEST_PHYS_ADDR_BITS_SMALLER,
    MISSING_FEATURES,
    PHYS_ADDR_BITS_SMALLER,
    TSC_FREQUENCY_DIFFERS,
    TSC_FREQUENCY_UNKNOWN,
    TargetView,
    check,
)
from cpucompat.coordinator.domain.requirement import SGX_FEATURES, Requirement
from cpucompat.coordinator.domain.stamp import load_stamp, make_stamp, stamp_text
from tests.support.daemons import run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import DEV_DUMP as KVM_GUEST
from tests.support.paths import FIXTURES
from tests.support.shared import shared_dump, shared_profile

SUNNY_COVE = "intel-x86-64-sunny-cove-intel-core-i5-1035g4-cpu.txt"  # Ice Lake client, SGX
SAPPHIRE_RAPIDS = "instlatx64-GenuineIntel00806F8_SapphireRapids_05_CPUID.txt"  # no SGX leaf
SKYLAKE_SP = "instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt"  # leaf 0x15: 3.0 GHz
HASWELL_EP = "instlatx64-GenuineIntel00306F2_HaswellEP_00_CPUID.txt"  # no rate in CPUID
ZEN4 = "amd-zen4-amd-ryzen-9-7900x-12-core-processor.txt"
ZEN5 = "amd-zen5-amd-ryzen-9-9950x-16-core-processor.txt"
ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
AVX10_1 = FIXTURES / "dumps" / "spr-avx10_1-edited.txt"
AVX10_2 = FIXTURES / "dumps" / "spr-avx10_2-edited.txt"
GUEST_PHYS_40 = FIXTURES / "processors" / "dev-amd-epyc-kvm-guest-phys-40-edited.json"


def fixture(path: Path) -> Profile:
    return decode(load_dump(path))


def verdict(
    source: Profile, target: Profile, *, invtsc: bool = False, sgx_epc: bool = False
) -> tuple[str, ...]:
    req = Requirement.from_profile(source, "source").with_guest(invtsc=invtsc, sgx_epc=sgx_epc)
    return check(req, TargetView.from_profile(target, "target")).codes


# --- TSC ------------------------------------------------------------------------------------


def test_invtsc_guest_is_refused_where_the_rate_differs_and_the_target_cannot_scale() -> None:
    # Ice Lake client (1.4976 GHz by leaf 0x15) -> Sapphire Rapids (2.592 GHz), Intel: a dump
    # cannot tell VMX TSC scaling, which counts as none for an invtsc guest.
    sunny, spr = shared_profile(SUNNY_COVE), shared_profile(SAPPHIRE_RAPIDS)
    assert verdict(sunny, spr) == ()
    codes = verdict(sunny, spr, invtsc=True)
    assert codes == (TSC_FREQUENCY_DIFFERS,)


def test_invtsc_guest_restores_on_an_amd_target_that_scales_tsc() -> None:
    # Zen 4 -> Zen 5: neither dump states a rate, but Zen 5 reports TscRateMsr (0x8000000A).
    assert verdict(shared_profile(ZEN4), shared_profile(ZEN5), invtsc=True) == ()


def test_unknown_rate_refuses_an_invtsc_guest_where_scaling_is_not_known() -> None:
    haswell = shared_profile(HASWELL_EP)  # Haswell-EP states no TSC rate in CPUID
    assert verdict(haswell, haswell) == ()
    assert verdict(haswell, haswell, invtsc=True) == (TSC_FREQUENCY_UNKNOWN,)


def test_kvm_tolerance_is_250_ppm_of_the_targets_rate() -> None:
    skylake = shared_profile(SKYLAKE_SP)  # 3,000,000,000 Hz from leaf 0x15
    req = Requirement.from_profile(skylake, "s").with_guest(invtsc=True, sgx_epc=False)
    view = TargetView.from_profile(skylake, "t")
    assert view.tsc_hz == 3_000_000_000 and view.tsc_scaling is None
    # The target's rate edited by hand. KVM's window is 250 ppm around the host's own rate
    # (adjust_tsc_khz(tsc_khz, +-250)): 3 GHz fits a 3.00075 GHz or a 2.999251 GHz host, not a
    # 2.99925 GHz one (its window ends 188 Hz short).
    assert check(req, replace(view, tsc_hz=3_000_750_000)).compatible
    assert check(req, replace(view, tsc_hz=2_999_251_000)).compatible
    assert check(req, replace(view, tsc_hz=2_999_250_000)).codes == (TSC_FREQUENCY_DIFFERS,)
    assert check(req, replace(view, tsc_hz=3_000_751_000)).codes == (TSC_FREQUENCY_DIFFERS,)
    assert check(req, replace(view, tsc_hz=3_000_751_000, tsc_scaling=True)).compatible


# --- AVX10 ----------------------------------------------------------------------------------


def test_avx10_2_guest_is_refused_on_an_avx10_1_target() -> None:
    v1, v2 = fixture(AVX10_1), fixture(AVX10_2)
    assert (v1.avx10_version, v2.avx10_version) == (1, 2)
    assert v1.fingerprint != v2.fingerprint
    assert verdict(v2, v1) == (AVX10_VERSION_LOWER,)
    assert verdict(v1, v2) == ()
    req = Requirement.from_profile(v2, "v2")
    assert req.decision_key != Requirement.from_profile(v1, "v1").decision_key
    assert load_stamp(stamp_text(make_stamp(req, 0, "v2"))).avx10_version == 2


def test_guard_refuses_an_avx10_2_stamp_on_avx10_1(tmp_path: Path) -> None:
    stamp = tmp_path / "vm.stamp"
    made = run_cli("stamp", "--out", str(stamp), "--from-dump", str(AVX10_2))
    assert made.returncode == 0, made.stderr
    guard = run_cli("guard", str(stamp), "--from-dump", str(AVX10_1), "--json")
    assert guard.returncode == 3
    assert [r["code"] for r in json.loads(guard.stdout)["reasons"]] == [AVX10_VERSION_LOWER]
    assert run_cli("guard", str(stamp), "--from-dump", str(AVX10_2)).returncode == 0


# --- SGX ------------------------------------------------------------------------------------


def test_sgx_counts_only_for_a_vm_with_an_enclave_page_cache() -> None:
    sunny, spr = shared_profile(SUNNY_COVE), shared_profile(SAPPHIRE_RAPIDS)
    assert {"sgx", "sgx_lc", "sgx1", "sgx2"} <= sunny.features
    plain = Requirement.from_profile(sunny, "icl")
    assert not plain.features & SGX_FEATURES and plain.sgx_features >= {"sgx", "sgx_lc"}
    assert check(plain, TargetView.from_profile(spr, "spr")).compatible
    with_epc = check(
        plain.with_guest(invtsc=False, sgx_epc=True), TargetView.from_profile(spr, "spr")
    )
    assert with_epc.codes == (MISSING_FEATURES,)
    assert set(with_epc.reasons[0].features) == {"sgx", "sgx_lc", "sgx1", "sgx2"}


def test_stamp_flags_are_checked_against_the_processor(tmp_path: Path) -> None:
    stamp = tmp_path / "vm.stamp"
    spr = shared_dump(SAPPHIRE_RAPIDS)
    no_sgx = run_cli("stamp", "--out", str(stamp), "--from-dump", str(spr), "--sgx-epc")
    assert no_sgx.returncode == 2 and "--sgx-epc" in no_sgx.stderr and not stamp.exists()
    sunny = shared_dump(SUNNY_COVE)
    ok = run_cli("stamp", "--out", str(stamp), "--from-dump", str(sunny), "--sgx-epc", "--invtsc")
    assert ok.returncode == 0, ok.stderr
    guard = run_cli("guard", str(stamp), "--from-dump", str(spr), "--json")
    assert guard.returncode == 3
    codes = [r["code"] for r in json.loads(guard.stdout)["reasons"]]
    assert codes == [MISSING_FEATURES, TSC_FREQUENCY_DIFFERS]


# --- guest-physical width -------------------------------------------------------------------


def test_smaller_guest_physical_width_is_its_own_refusal() -> None:
    kvm, narrow = fixture(KVM_GUEST), fixture(GUEST_PHYS_40)
    assert kvm.address_sizes.guest_physical_bits == 48  # KVM states it for its guests
    assert narrow.address_sizes.physical_bits == 48
    assert narrow.address_sizes.guest_physical_bits == 40
    assert kvm.fingerprint != narrow.fingerprint
    assert verdict(kvm, narrow) == (GUEST_PHYS_ADDR_BITS_SMALLER,)
    assert verdict(narrow, kvm) == ()
    # A bare-metal source states none: the guest-physical width is its physical width.
    rome = shared_profile(ROME)
    assert rome.address_sizes.guest_physical_bits is None
    assert GUEST_PHYS_ADDR_BITS_SMALLER in verdict(rome, narrow)


def test_qemu_model_vm_needs_the_models_width_not_its_hosts() -> None:
    req = resolve_baseline("model:qemu/EPYC-Rome", None).requirement()
    assert req.physical_bits == 40 and req.guest_physical_bits is None
    narrow = TargetView.from_profile(fixture(GUEST_PHYS_40), "narrow")
    assert check(req, narrow).compatible  # 40 guest-physical bits suffice for phys-bits=40
    smaller = replace(narrow, physical_bits=39, guest_physical_bits=None)
    assert check(req, smaller).codes == (PHYS_ADDR_BITS_SMALLER,)


# --- registered VMs -------------------------------------------------------------------------


@pytest.mark.e2e
def test_registered_vm_keeps_its_invtsc_and_epc_configuration(tmp_path: Path) -> None:
    sunny, spr = shared_dump(SUNNY_COVE), shared_dump(SAPPHIRE_RAPIDS)
    coord = start_coordinator(tmp_path, "--allow-replayed")
    agents = [
        start_agent(tmp_path, coord.address, host, "--replay-dump", str(dump))
        for host, dump in (("icl-1", sunny), ("spr-1", spr))
    ]
    at = ("--coordinator", coord.address)
    try:

        def hosts() -> list:
            out = run_cli("hosts", "--json", *at)
            return json.loads(out.stdout) if out.returncode == 0 else []

        wait_until(lambda: len(hosts()) == 2, what="both hosts registered")

        def register(*flags: str) -> object:
            return run_cli("vm", "register", "web-1", "--cluster", "prod", "--boot-host", "icl-1",
                           "--json", *flags, *at)  # fmt: skip

        def spr_codes() -> list[str]:
            doc = json.loads(run_cli("vm", "targets", "web-1", "--json", *at).stdout)
            row = next(t for t in doc["targets"] if t["host"] == "spr-1")
            return [r["code"] for r in row["reasons"]]

        first = register()
        assert first.returncode == 0, first.stderr
        assert spr_codes() == []  # no EPC, no invtsc: Ice Lake -> Sapphire Rapids is fine
        changed = register("--sgx-epc", "--invtsc")
        assert changed.returncode == 2 and "--rebooted" in changed.stderr
        rebooted = register("--sgx-epc", "--invtsc", "--rebooted")
        assert rebooted.returncode == 0, rebooted.stderr
        requirement = json.loads(rebooted.stdout)["vm"]["requirement"]
        assert requirement["invariant_tsc"] is True and requirement["sgx_epc"] is True
        assert spr_codes() == [MISSING_FEATURES, TSC_FREQUENCY_DIFFERS]
        wrong = run_cli("vm", "register", "web-2", "--cluster", "prod", "--boot-host", "spr-1",
                        "--sgx-epc", *at)  # fmt: skip
        assert wrong.returncode == 2 and "no SGX" in wrong.stderr
    finally:
        for a in agents:
            a.kill()
        coord.stop()


def test_stamps_written_before_these_fields_still_load() -> None:
    import hashlib

    from cpucompat.coordinator.domain.stamp import canonical_json

    sunny = shared_profile(SUNNY_COVE)
    doc = make_stamp(Requirement.from_profile(sunny, "icl"), 0, "icl")
    for key in ("sgx_epc", "sgx_features", "guest_physical_bits", "avx10_version"):
        del doc["requirement"][key]
    doc["requirement"]["invariant_tsc"] = True  # older stamps held the boot host's bit here
    body = {k: v for k, v in doc.items() if k != "integrity"}
    doc["integrity"]["digest"] = hashlib.sha256(canonical_json(body)).hexdigest()
    old = load_stamp(json.dumps(doc))
    assert (old.sgx_epc, old.sgx_features, old.avx10_version) == (False, frozenset(), None)
    assert old.invariant_tsc is False  # not an invtsc guest: no TSC refusal on upgrade
    assert not old.features & SGX_FEATURES  # the features list was already without SGX
