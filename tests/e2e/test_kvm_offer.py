"""The hypervisor's offer: read from /dev/kvm, carried by JSON dumps and the wire, versioned.

Offline tests use a recorded offer (tests/fixtures/processors/
dev-amd-epyc-nested-kvm-offer.json, recorded unedited with `probe --json` on a
nested KVM development machine whose KVM offers no SSE3); where a test needs a
changed offer it edits a copy of that recording in memory and says which bit.
Tests that need the live /dev/kvm skip cleanly without it (tests/e2e/test_kvm_offer_live.py
holds the QEMU cross-check).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cpucompat.agent import kvm_offer, live
from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.feature_table import NAMES
from cpucompat.agent.raw import RawCapture, RawDataError, RawOffer, validate_capture
from cpucompat.agent.wire import capture_from_proto, capture_to_proto, profile_to_proto
from cpucompat.coordinator.domain.hosts import EventKind
from cpucompat.coordinator.registry import Registry
from cpucompat.coordinator.store import Store
from tests.support.daemons import run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import NESTED_KVM_OFFER as RECORDED

LEAF7_EBX_CLFLUSHOPT = 1 << 23  # CPUID.7.0:EBX[23], Intel SDM vol. 2A, CPUID


def recorded() -> RawCapture:
    return load_dump(RECORDED)


def offer_of(capture: RawCapture) -> RawOffer:
    assert capture.offer is not None
    return capture.offer


def with_leaf_edit(capture: RawCapture, key: tuple[int, int], reg: int, mask: int) -> RawCapture:
    """A copy of the capture whose offer has ``mask`` cleared in one register of one leaf."""
    offer = offer_of(capture)
    leaves = dict(offer.leaves)
    regs = list(leaves[key])
    regs[reg] &= ~mask
    leaves[key] = (regs[0], regs[1], regs[2], regs[3])
    return dataclasses.replace(capture, offer=dataclasses.replace(offer, leaves=leaves))


# ---- without /dev/kvm: the reason is in the profile -------------------------------


def test_no_device_means_no_offer_with_the_reason(tmp_path: Path) -> None:
    capture = live.with_offer(recorded(), device=str(tmp_path / "kvm"))
    profile = decode(capture)
    assert profile.hypervisor_offer is None
    assert profile.hypervisor_offer_missing is not None
    assert "does not exist" in profile.hypervisor_offer_missing
    doc = profile.to_json(include_raw=False)
    assert doc["hypervisor_offer"] is None
    assert "does not exist" in doc["hypervisor_offer_missing"]


def test_a_device_that_is_not_kvm_is_named() -> None:
    with pytest.raises(kvm_offer.OfferUnavailable, match="is not KVM"):
        kvm_offer.read_offer("/dev/null")


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens any file; needs an unprivileged user")
def test_permission_denied_names_the_fix(tmp_path: Path) -> None:
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    device.chmod(0)
    with pytest.raises(kvm_offer.OfferUnavailable, match=r"permission denied.*kvm group"):
        kvm_offer.read_offer(str(device))


# ---- a recorded offer replays -----------------------------------------------------


def test_recorded_offer_decodes_with_the_project_names() -> None:
    result = run_cli("probe", "--from-dump", str(RECORDED), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    offer = doc["hypervisor_offer"]
    assert offer["kind"] == "kvm" and offer["api_version"] == 12 and offer["replayed"] is True
    assert set(offer["features"]) <= NAMES
    # This nested KVM offers a guest SSE2 but not SSE3, although the processor has both.
    assert "sse2" in offer["features"] and "pni" not in offer["features"]
    assert "pni" in doc["features"]
    arch_caps = [m for m in offer["msrs"] if m["index"] == "0x10a"]
    assert arch_caps and arch_caps[0]["name"] == "IA32_ARCH_CAPABILITIES"
    assert doc["hypervisor_offer_missing"] is None

    readable = run_cli("probe", "--from-dump", str(RECORDED))
    assert readable.returncode == 0, readable.stderr
    assert "kvm API 12 (replayed)" in readable.stdout
    assert "IA32_ARCH_CAPABILITIES = 0x" in readable.stdout


def test_probe_json_carries_the_offer_and_cpuid_r_text_does_not(tmp_path: Path) -> None:
    first = run_cli("probe", "--from-dump", str(RECORDED), "--json")
    again_path = tmp_path / "again.json"
    again_path.write_text(first.stdout)
    again = run_cli("probe", "--from-dump", str(again_path), "--json")
    assert again.returncode == 0, again.stderr
    a, b = (
        json.loads(first.stdout)["hypervisor_offer"],
        json.loads(again.stdout)["hypervisor_offer"],
    )
    assert a["fingerprint"] == b["fingerprint"] and a["features"] == b["features"]
    assert a["msrs"] == b["msrs"]

    text = run_cli("probe", "--from-dump", str(RECORDED), "--raw")
    text_path = tmp_path / "host.txt"
    text_path.write_text(text.stdout)
    replay = run_cli("probe", "--from-dump", str(text_path), "--json")
    doc = json.loads(replay.stdout)
    assert doc["hypervisor_offer"] is None
    assert "records no hypervisor offer" in doc["hypervisor_offer_missing"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda o: o.update(kind="xen"), "offer kind 'xen' is unknown"),
        (lambda o: o.update(leaves=[]), "hypervisor_offer.leaves: expected a non-empty list"),
        (lambda o: o.update(msrs=[["0x10a", "0x1"], ["0x10a", "0x2"]]), "MSR 0x10a given twice"),
        (lambda o: o.update(leaves=o["leaves"][1:]), "leaf 0 (vendor string) is missing"),
    ],
)
def test_a_corrupt_recorded_offer_is_refused(tmp_path: Path, edit: object, message: str) -> None:
    doc = json.loads(RECORDED.read_text())
    edit(doc["hypervisor_offer"])  # type: ignore[operator]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = run_cli("probe", "--from-dump", str(bad))
    assert result.returncode == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_offer_crosses_the_wire_unchanged() -> None:
    capture = recorded()
    back = capture_from_proto(capture_to_proto(capture))
    assert back.offer == capture.offer
    profile = decode(back)
    assert profile.hypervisor_offer == decode(capture).hypervisor_offer
    msg = profile_to_proto(profile)
    assert msg.HasField("hypervisor_offer")
    assert list(msg.hypervisor_offer.features) == sorted(profile.hypervisor_offer.features)  # type: ignore[union-attr]
    assert any(m.name == "IA32_ARCH_CAPABILITIES" for m in msg.hypervisor_offer.msrs)

    missing = dataclasses.replace(capture, offer=None, offer_missing="/dev/kvm: permission denied")
    again = capture_from_proto(capture_to_proto(missing))
    assert again.offer is None and again.offer_missing == "/dev/kvm: permission denied"
    assert profile_to_proto(decode(again)).hypervisor_offer_missing == "/dev/kvm: permission denied"


def test_offer_fingerprint_ignores_which_cpu_answered() -> None:
    """KVM copies the answering CPU's APIC ID into leaf 1 EBX[31:24] and leaf 0xB EDX."""
    capture = recorded()
    base = decode(capture).hypervisor_offer
    assert base is not None
    moved = with_leaf_edit(capture, (1, 0), 1, 0xFF00_0000)
    moved = with_leaf_edit(moved, (0xB, 0), 3, 0xFFFF_FFFF)
    assert decode(moved).hypervisor_offer.fingerprint == base.fingerprint  # type: ignore[union-attr]
    less = with_leaf_edit(capture, (7, 0), 1, LEAF7_EBX_CLFLUSHOPT)
    fewer = decode(less).hypervisor_offer
    assert fewer is not None and fewer.fingerprint != base.fingerprint
    assert base.features - fewer.features == {"clflushopt"}
    # The processor itself did not change: its fingerprint stays.
    assert decode(less).fingerprint == decode(capture).fingerprint


def test_validate_refuses_an_impossible_offer() -> None:
    capture = recorded()
    offer = offer_of(capture)
    huge = dataclasses.replace(offer, msrs={0x10A: 2**64})
    with pytest.raises(RawDataError, match="MSR 0x10a"):
        validate_capture(dataclasses.replace(capture, offer=huge))


# ---- the coordinator keeps the offer in history ------------------------------------


def test_changed_offer_is_a_new_version_and_an_event(tmp_path: Path) -> None:
    store = Store(tmp_path / "coordinator.db")
    try:
        registry = Registry(store, allow_replayed=True)
        capture = recorded()
        first = registry.report("node-1", "prod", capture)
        assert first.profile.hypervisor_offer is not None
        registry.report("node-1", "prod", capture)  # same offer: nothing new
        # Same offer read on another CPU (different APIC ID): still nothing new.
        registry.report("node-1", "prod", with_leaf_edit(capture, (1, 0), 1, 0xFF00_0000))
        assert len(registry.history("node-1")[1]) == 1

        # A kernel update stops offering CLFLUSHOPT; CPUID itself is unchanged.
        after = registry.report(
            "node-1", "prod", with_leaf_edit(capture, (7, 0), 1, LEAF7_EBX_CLFLUSHOPT)
        )
        assert after.fingerprint == first.fingerprint
        assert after.profile_version != first.profile_version
        versions = registry.history("node-1")[1]
        assert len(versions) == 2
        offer_summary = versions[1].summary["hypervisor_offer"]
        assert offer_summary["features_lost"] == ["clflushopt"]
        assert (
            offer_summary["fingerprint"] != versions[0].summary["hypervisor_offer"]["fingerprint"]
        )
        changed = [e for e in registry.events() if e.kind == EventKind.PROFILE_CHANGED]
        assert len(changed) == 1
        assert "hypervisor offer (kvm) changed: lost clflushopt" in changed[0].message
        assert changed[0].details["offer_features_lost"] == ["clflushopt"]
        assert changed[0].details["features_lost"] == []

        # The offer goes away (say /dev/kvm became unreadable): a version naming why.
        gone = dataclasses.replace(capture, offer=None, offer_missing="/dev/kvm: permission denied")
        registry.report("node-1", "prod", gone)
        assert len(registry.history("node-1")[1]) == 3
        last = [e for e in registry.events() if e.kind == EventKind.PROFILE_CHANGED][-1]
        assert "hypervisor offer disappeared (/dev/kvm: permission denied)" in last.message

        # A restarted coordinator decodes the stored offer again.
        store.close()
        store = Store(tmp_path / "coordinator.db")
        reopened = Registry(store, allow_replayed=True).host("node-1")
        assert reopened.profile.hypervisor_offer is None
        assert reopened.profile.hypervisor_offer_missing == "/dev/kvm: permission denied"
    finally:
        store.close()


@pytest.mark.e2e
def test_agent_reports_offer_changes_to_history_and_host_show(tmp_path: Path) -> None:
    """A replaying agent whose recorded offer loses CLFLUSHOPT (leaf 7.0 EBX[23] cleared in
    a copy of the recording), as after a kernel update: new version, event, `host show`."""
    coord = start_coordinator(tmp_path, "--allow-replayed")
    swap = tmp_path / "host.json"
    shutil.copy(RECORDED, swap)
    node = start_agent(
        tmp_path, coord.address, "node-1", "--interval", "0.3", "--replay-dump", str(swap)
    )
    try:
        where = ("--coordinator", coord.address)

        def versions() -> list[dict]:
            r = run_cli("host", "history", "node-1", *where, "--json")
            return json.loads(r.stdout)["versions"] if r.returncode == 0 else []

        wait_until(lambda: len(versions()) == 1, what="the first version")
        shown = run_cli("host", "show", "node-1", *where)
        assert shown.returncode == 0, shown.stderr
        assert "Hypervisor offer  kvm API 12 (replayed)" in shown.stdout
        assert "clflushopt" in shown.stdout.split("Offer features", 1)[1]

        doc = json.loads(RECORDED.read_text())
        for row in doc["hypervisor_offer"]["leaves"]:
            if int(row[0], 16) == 7 and int(row[1], 16) == 0:
                row[3] = f"0x{int(row[3], 16) & ~LEAF7_EBX_CLFLUSHOPT:08x}"
        edited = tmp_path / "host.new"
        edited.write_text(json.dumps(doc))
        edited.replace(swap)

        history = wait_until(lambda: (v := versions()) and len(v) == 2 and v, what="2 versions")
        assert isinstance(history, list)
        assert history[1]["offer_features_lost"] == ["clflushopt"]
        assert history[1]["fingerprint"] == history[0]["fingerprint"]
        assert history[1]["offer_fingerprint"] != history[0]["offer_fingerprint"]
        table = run_cli("host", "history", "node-1", *where)
        assert "-clflushopt" in table.stdout
        events = json.loads(run_cli("events", *where, "--json").stdout)["events"]
        changed = [e for e in events if e["kind"] == "profile_changed"]
        assert len(changed) == 1 and "hypervisor offer (kvm) changed" in changed[0]["message"]
        shown = run_cli("host", "show", "node-1", *where, "--json")
        offer = json.loads(shown.stdout)["profile"]["hypervisor_offer"]
        assert "clflushopt" not in offer["features"]
    finally:
        node.kill()
        assert coord.stop() == 0


def test_ioctl_numbers_match_the_kernel_headers(tmp_path: Path) -> None:
    """The numbers computed from _IO/_IOWR equal what the C preprocessor makes of kvm.h."""
    compiler = shutil.which("cc")
    if compiler is None or not Path("/usr/include/linux/kvm.h").is_file():
        pytest.skip("needs a C compiler and the kernel headers (linux-libc-dev)")
    names = [
        "KVM_GET_API_VERSION",
        "KVM_CHECK_EXTENSION",
        "KVM_GET_SUPPORTED_CPUID",
        "KVM_GET_MSR_FEATURE_INDEX_LIST",
        "KVM_GET_MSRS",
        "KVM_CAP_GET_MSR_FEATURES",
        "KVM_API_VERSION",
    ]
    source = tmp_path / "numbers.c"
    source.write_text(
        "#include <stdio.h>\n#include <linux/kvm.h>\nint main(void) {\n"
        + "".join(f'    printf("%lu\\n", (unsigned long)({n}));\n' for n in names)
        + "    return 0;\n}\n"
    )
    binary = tmp_path / "numbers"
    subprocess.run([compiler, str(source), "-o", str(binary)], check=True)
    printed = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    assert [int(v) for v in printed.split()] == [getattr(kvm_offer, n) for n in names]
