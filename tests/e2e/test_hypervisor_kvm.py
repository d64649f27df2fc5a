"""`--hypervisor kvm`: bits no KVM guest sees never decide; every verdict names its view."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cpucompat.agent.feature_table import FEATURE_BITS, FeatureClass
from cpucompat.coordinator.domain.kvm_offerable import (
    ALWAYS_OFFERED,
    KVM_TABLE_KERNEL,
    NEVER_OFFERED,
    SYNTHESISED_FROM,
    Hypervisor,
    kvm_synthesises,
)
from cpucompat.coordinator.domain.requirement import decides
from cpucompat.coordinator.domain.sides import requirement_of, target_of
from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import FIXTURES
from tests.support.shared import shared_dump, shared_profile

ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
ZEN4 = "amd-zen4-amd-ryzen-9-7900x-12-core-processor.txt"  # stand-in for Genoa (Zen 4)
ZEN1 = "amd-zen-amd-ryzen-5-1500x-quad-core-processor.txt"  # no AMD STIBP/SSBD bits
ZEN5 = "amd-zen5-amd-ryzen-9-9950x-16-core-processor.txt"  # AMD IBPB_RET: KVM offers SPEC_CTRL
MILAN_HOST_MODEL = FIXTURES / "libvirt" / "epyc-milan-host-model-expanded.xml"
MILAN_LACKS_ON_ROME = {"erms", "fsrm", "invpcid", "pku", "vaes", "vpclmulqdq"}


def _check(*args: str) -> tuple[int, dict]:
    result = run_cli("check", *args, "--json")
    assert result.returncode in (0, 3), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_rome_to_zen4_is_refused_on_mcommit_alone_generic_and_accepted_under_kvm() -> None:
    rome, zen4 = f"dump:{shared_dump(ROME)}", f"dump:{shared_dump(ZEN4)}"
    rc, doc = _check(rome, zen4)
    assert rc == 3 and doc["view"] == "feature classes"
    assert doc["reasons"][0]["features"] == ["mcommit"]
    rc, doc = _check(rome, zen4, "--hypervisor", "kvm")
    assert rc == 0, doc
    assert doc["compatible"] and doc["view"] == f"kvm (table, {KVM_TABLE_KERNEL})"
    human = run_cli("check", rome, zen4, "--hypervisor", "kvm")
    assert human.returncode == 0 and f"decided by: kvm (table, {KVM_TABLE_KERNEL})" in human.stdout


def test_milan_to_rome_stays_refused_under_kvm_for_the_features_rome_lacks() -> None:
    milan, rome = f"dump:{shared_dump(MILAN)}", f"dump:{shared_dump(ROME)}"
    rc, doc = _check(milan, rome, "--hypervisor", "kvm")
    assert rc == 3 and doc["view"].startswith("kvm")
    missing = {f for r in doc["reasons"] for f in r.get("features", [])}
    assert missing >= MILAN_LACKS_ON_ROME


def test_kvm_requirement_drops_never_offered_bits_and_adds_arch_capabilities() -> None:
    milan = shared_profile(MILAN)
    generic = requirement_of(milan, "milan")
    kvm = requirement_of(milan, "milan", hypervisor=Hypervisor.KVM)
    assert "mcommit" in generic.features and "mcommit" not in kvm.features
    assert not kvm.features & NEVER_OFFERED
    assert kvm.features >= ALWAYS_OFFERED
    # The target under kvm offers arch_capabilities too: a KVM guest sees it on AMD as well.
    assert (
        target_of(shared_profile(ROME), "rome", hypervisor=Hypervisor.KVM).features
        >= ALWAYS_OFFERED
    )


def test_table_names_only_bits_that_decide() -> None:
    # A name the feature table does not class as guest-visible would change nothing here.
    assert all(decides(name) for name in NEVER_OFFERED | ALWAYS_OFFERED)


def test_every_table_name_is_a_guest_visible_row_of_the_feature_table() -> None:
    # A misspelt name would silently drop nothing; a name of another class decides nothing.
    rows = {fb.name: fb.cls for fb in FEATURE_BITS}
    for name in NEVER_OFFERED | ALWAYS_OFFERED:
        assert rows.get(name) is FeatureClass.GUEST_VISIBLE, name
    for bit, needs in SYNTHESISED_FROM:
        for name in needs | {bit}:
            assert rows.get(name) is FeatureClass.GUEST_VISIBLE, name


def test_bits_some_kvm_offers_are_never_dropped() -> None:
    # KVM offers these (MSR_IMM since the CPUID_7_1_ECX word, the TSA bits as synthesised),
    # or a posted KVM patch adds them (MOVRS, APX, LASS, the AMD speculation-control bits of
    # 0x80000008 EBX): listing them would drop a real requirement, a false COMPATIBLE.
    offered = {
        "msr_imm",
        "movrs",
        "apx",
        "lass",
        "amd_ibrs_always_on",
        "amd_ibrs_preferred",
        "amd_ibrs_same_mode",
        "btc_no",
        "verw_clear",
        "tsa_sq_no",
        "tsa_l1_no",
        "prefetchi",
        "eraps",
        "shstk",
        "ibt",
    }
    assert not offered & NEVER_OFFERED


def test_audit_and_stamp_take_the_kvm_view(tmp_path) -> None:
    rome, zen4 = f"dump:{shared_dump(ROME)}", f"dump:{shared_dump(ZEN4)}"
    generic = json.loads(run_cli("audit", rome, zen4, "--json").stdout)
    kvm = run_cli("audit", rome, zen4, "--hypervisor", "kvm", "--json")
    doc = json.loads(kvm.stdout)
    assert generic["view"] == "feature classes" and doc["view"].startswith("kvm")
    rome_to_zen4 = [p for p in doc["pairs"] if "Rome" in p["source"] and "zen4" in p["target"]]
    assert rome_to_zen4 and all(p["compatible"] for p in rome_to_zen4)
    stamp = tmp_path / "s.json"
    made = run_cli(
        "stamp", "--from-dump", str(shared_dump(ROME)), "--out", str(stamp), "--hypervisor", "kvm"
    )
    assert made.returncode == 0, made.stderr
    req = json.loads(stamp.read_text())["requirement"]
    assert "mcommit" not in req["features"] and req["view"].startswith("kvm")
    # The guard judges the Zen 4 target by the stamp's rules: accepted, and it says why.
    zen4_dump = str(shared_dump(ZEN4))
    guard = run_cli("guard", str(stamp), "--from-dump", zen4_dump)
    assert guard.returncode == 0, guard.stdout + guard.stderr
    assert f"decided by: kvm (table, {KVM_TABLE_KERNEL})" in guard.stdout
    plain = tmp_path / "plain.json"
    assert (
        run_cli("stamp", "--from-dump", str(shared_dump(ROME)), "--out", str(plain)).returncode == 0
    )
    assert run_cli("guard", str(plain), "--from-dump", zen4_dump).returncode == 3  # mcommit


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A coordinator daemon with Rome, Milan and Zen 4 registered by replaying agents."""
    dumps = {"rome": shared_dump(ROME), "milan": shared_dump(MILAN), "zen4": shared_dump(ZEN4)}
    folder = tmp_path_factory.mktemp("kvm-online")
    coordinator = start_coordinator(folder, "--allow-replayed")
    agents: list[Daemon] = []
    try:
        address = coordinator.address
        for host, dump in dumps.items():
            agents.append(
                start_agent(folder, address, host, "--replay-dump", str(dump), cluster="amd")
            )

        def all_registered() -> bool:
            listed = run_cli("hosts", "--json", "--coordinator", address)
            return listed.returncode == 0 and len(json.loads(listed.stdout)) == len(dumps)

        wait_until(all_registered, what="three replayed hosts registered")
        yield address
    finally:
        for agent in agents:
            agent.stop()
        coordinator.stop()


def _online(address: str, *args: str) -> tuple[int, dict]:
    result = run_cli(*args, "--json", "--coordinator", address)
    assert result.returncode in (0, 3), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_registered_rome_to_zen4_is_decided_by_the_coordinator_under_each_view(
    registered: str,
) -> None:
    rc, generic = _online(registered, "check", "rome", "zen4")
    assert rc == 3 and generic["view"] == "feature classes"
    assert generic["reasons"][0]["features"] == ["mcommit"]
    rc, kvm = _online(registered, "check", "rome", "zen4", "--hypervisor", "kvm")
    assert rc == 0 and kvm["compatible"], kvm
    assert kvm["view"] == f"kvm (table, {KVM_TABLE_KERNEL})"
    # Asked again (the coordinator's answer cache), each view keeps its own answer.
    assert _online(registered, "check", "rome", "zen4")[0] == 3
    assert _online(registered, "check", "rome", "zen4", "--hypervisor", "kvm")[0] == 0
    human = run_cli("check", "rome", "zen4", "--hypervisor", "kvm", "--coordinator", registered)
    assert human.returncode == 0 and f"decided by: kvm (table, {KVM_TABLE_KERNEL})" in human.stdout


def test_registered_milan_to_rome_stays_refused_under_kvm(registered: str) -> None:
    rc, doc = _online(registered, "check", "milan", "rome", "--hypervisor", "kvm")
    assert rc == 3 and doc["view"].startswith("kvm")
    missing = {f for r in doc["reasons"] for f in r.get("features", [])}
    assert missing >= MILAN_LACKS_ON_ROME


def test_targets_lists_exactly_the_hosts_check_accepts_under_each_view(registered: str) -> None:
    hosts = ("rome", "milan", "zen4")
    for view in ("generic", "kvm"):
        for source in hosts:
            _, listed = _online(registered, "targets", source, "--hypervisor", view)
            accepted = {
                target
                for target in hosts
                if target != source
                and _online(registered, "check", source, target, "--hypervisor", view)[1][
                    "compatible"
                ]
            }
            assert set(listed["accepted"]) == accepted, (view, source)
            # No replayed dump here records an offer: every verdict names the rules asked for.
            want = "feature classes" if view == "generic" else f"kvm (table, {KVM_TABLE_KERNEL})"
            assert {t["view"] for t in listed["targets"]} == {want}, (view, source)
    _, rome_kvm = _online(registered, "targets", "rome", "--hypervisor", "kvm")
    assert "zen4" in rome_kvm["accepted"]
    _, rome_generic = _online(registered, "targets", "rome")
    assert "zen4" not in rome_generic["accepted"]
    human = run_cli("targets", "rome", "--hypervisor", "kvm", "--coordinator", registered)
    assert human.returncode == 0 and f"Decided by: kvm (table, {KVM_TABLE_KERNEL})" in human.stdout


def test_online_audit_takes_the_kvm_view(registered: str) -> None:
    _, generic = _online(registered, "audit", "--cluster", "amd")
    _, kvm = _online(registered, "audit", "--cluster", "amd", "--hypervisor", "kvm")
    assert generic["view"] == "feature classes" and kvm["view"].startswith("kvm")
    pair = [p for p in kvm["pairs"] if (p["source"], p["target"]) == ("rome", "zen4")]
    assert pair and pair[0]["compatible"]
    pair = [p for p in generic["pairs"] if (p["source"], p["target"]) == ("rome", "zen4")]
    assert pair and not pair[0]["compatible"]


def test_the_wire_field_unset_means_generic_and_an_unknown_value_is_refused(
    registered: str,
) -> None:
    import grpc

    from cpucompat.v1 import coordinator_service_pb2 as pb
    from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

    with grpc.insecure_channel(registered) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        pair = {"source": pb.HostRef(host_id="rome"), "target": pb.HostRef(host_id="zen4")}
        unset = stub.Check(pb.CheckRequest(**pair)).verdict
        assert not unset.compatible and unset.view == "feature classes"
        kvm = stub.Check(pb.CheckRequest(**pair, hypervisor=pb.HYPERVISOR_KVM)).verdict
        assert kvm.compatible and kvm.view.startswith("kvm")
        with pytest.raises(grpc.RpcError) as refused:
            stub.Targets(pb.TargetsRequest(source=pair["source"], hypervisor=7))  # type: ignore[arg-type]
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "HYPERVISOR_KVM" in (refused.value.details() or "")


def test_a_recorded_offer_decides_under_either_view_as_source_and_as_target() -> None:
    from cpucompat.agent.decode import decode
    from cpucompat.agent.dumps import load_dump
    from tests.support.paths import NESTED_KVM_OFFER

    recorded = decode(load_dump(NESTED_KVM_OFFER))
    assert recorded.hypervisor_offer is not None
    generic_req = requirement_of(recorded, "dev")
    kvm_req = requirement_of(recorded, "dev", hypervisor=Hypervisor.KVM)
    assert kvm_req.features == generic_req.features and kvm_req.view == "offer: kvm"
    generic_view = target_of(recorded, "dev")
    kvm_view = target_of(recorded, "dev", hypervisor=Hypervisor.KVM)
    assert kvm_view.features == generic_view.features and kvm_view.view == "offer: kvm"


# --- speculation controls KVM makes up from the other vendor's bits ------------------------------


@pytest.mark.parametrize("dump", [ROME, MILAN, ZEN4, ZEN5])
def test_an_amd_kvm_target_offers_the_intel_names_of_its_speculation_controls(dump: str) -> None:
    host = shared_profile(dump)
    assert {"amd_stibp", "amd_ssbd"} <= host.features  # the AMD bits, as raw CPUID has them
    assert not {"intel_stibp", "spec_ctrl_ssbd"} & host.features
    kvm = target_of(host, "t", hypervisor=Hypervisor.KVM).features
    assert {"intel_stibp", "spec_ctrl_ssbd"} <= kvm
    generic = target_of(host, "t").features
    assert not {"intel_stibp", "spec_ctrl_ssbd"} & generic
    # SPEC_CTRL only where KVM sets it: with AMD IBPB_RET (Zen 5), not on Rome/Milan/Zen 4.
    assert ("spec_ctrl" in kvm) == ("amd_ibpb_ret" in host.features)
    # A guest on that host saw them: the requirement holds them too.
    assert {"intel_stibp", "spec_ctrl_ssbd"} <= requirement_of(
        host, "s", hypervisor=Hypervisor.KVM
    ).features


def test_no_speculation_control_is_made_up_for_a_host_without_the_amd_bits() -> None:
    zen1 = shared_profile(ZEN1)
    assert not kvm_synthesises(zen1.features)
    assert not {"intel_stibp", "spec_ctrl_ssbd", "spec_ctrl"} & (
        target_of(zen1, "zen1", hypervisor=Hypervisor.KVM).features
    )


def test_a_milan_guest_that_saw_stibp_and_ssbd_restores_on_milan_under_kvm_only() -> None:
    """libvirt's host-model on a Milan KVM host requires stibp and ssbd (7.0 EDX[27], [31]),
    which KVM makes up from AMD_STIBP/AMD_SSBD: refused before, accepted now under kvm."""
    source, milan = f"libvirt:{MILAN_HOST_MODEL}", f"dump:{shared_dump(MILAN)}"
    rc, doc = _check(source, milan, "--hypervisor", "kvm")
    assert rc == 0 and doc["compatible"], doc
    # The feature classes alone know nothing of KVM: still refused, for exactly those bits.
    rc, doc = _check(source, milan)
    assert rc == 3
    assert {f for r in doc["reasons"] for f in r.get("features", [])} == {
        "intel_stibp",
        "spec_ctrl_ssbd",
    }


def test_a_target_without_the_amd_bits_still_refuses_the_made_up_ones() -> None:
    source, zen1 = f"libvirt:{MILAN_HOST_MODEL}", f"dump:{shared_dump(ZEN1)}"
    rc, doc = _check(source, zen1, "--hypervisor", "kvm")
    assert rc == 3
    missing = {f for r in doc["reasons"] for f in r.get("features", [])}
    assert {"intel_stibp", "spec_ctrl_ssbd", "amd_stibp", "amd_ssbd"} <= missing


def test_a_zen5_guest_saw_spec_ctrl_and_a_zen4_target_does_not_offer_it() -> None:
    rc, doc = _check(
        f"dump:{shared_dump(ZEN5)}", f"dump:{shared_dump(ZEN4)}", "--hypervisor", "kvm"
    )
    assert rc == 3
    assert "spec_ctrl" in {f for r in doc["reasons"] for f in r.get("features", [])}
