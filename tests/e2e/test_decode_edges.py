"""Decoding corners found in review: XCR0, dumps with missing leaves, PadLock, TSC, VMs."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.raw import LogicalCpu, RawCapture
from tests.support.daemons import run_cli
from tests.support.paths import DEV_DUMP as DEV
from tests.support.shared import shared_dump, shared_profile


def with_xcr0(capture: RawCapture, xcr0: int) -> RawCapture:
    return replace(capture, cpus=tuple(replace(c, xcr0=xcr0) for c in capture.cpus))


def test_hosts_whose_os_enables_less_xsave_state_are_not_alike(tmp_path: Path) -> None:
    base = load_dump(DEV)
    full, partial = decode(with_xcr0(base, 0x207)), decode(with_xcr0(base, 0x7))
    assert full.fingerprint == decode(base).fingerprint  # the OS enables all it supports
    assert partial.fingerprint != full.fingerprint  # PKRU state not enabled: another host
    from cpucompat.agent.rawjson import capture_to_json

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(capture_to_json(with_xcr0(base, 0x207))))
    b.write_text(json.dumps(capture_to_json(with_xcr0(base, 0x7))))
    result = run_cli("audit", f"dump:{a}", f"dump:{b}", "--json")
    assert result.returncode == 3
    doc = json.loads(result.stdout)
    assert doc["offline_action"] == "SHUTDOWN"
    refused = [p for p in doc["pairs"] if not p["compatible"]]
    assert [(p["source"], p["target"]) for p in refused] == [(f"dump:{a}", f"dump:{b}")]
    assert refused[0]["reasons"][0]["code"] == "XSAVE_STATE_MISSING"


def test_hypervisor_leaves_do_not_split_cpu_types() -> None:
    base = load_dump(DEV)
    cpus = []
    for cpu in base.cpus:  # Xen-style: the vCPU id in a hypervisor leaf
        leaves = dict(cpu.leaves)
        leaves[(0x4000_0001, 0)] = (cpu.index, cpu.index, 0, 0)
        cpus.append(LogicalCpu(cpu.index, leaves, cpu.xcr0))
    assert len(decode(replace(base, cpus=tuple(cpus))).cpu_types) == 1


def test_features_a_dump_cannot_tell_are_unknown_not_missing() -> None:
    carrizo = shared_profile("amd-bulldozer-amd-a8-7680-radeon-r7-10-compute-cores-4c+6g.txt")
    assert "xsaveopt" in carrizo.unknown_features  # libcpuid has no leaf 0xD subleaf 1
    assert "xsaveopt" not in carrizo.features
    godavari = shared_dump("amd-bulldozer-amd-a10-8750-radeon-r7-12-compute-cores-4c+8g.txt")
    carrizo_file = shared_dump("amd-bulldozer-amd-a8-7680-radeon-r7-10-compute-cores-4c+6g.txt")
    result = run_cli("check", f"dump:{godavari}", f"dump:{carrizo_file}", "--json")
    doc = json.loads(result.stdout)
    assert doc["compatible"] is True, doc
    unknown = [w for w in doc["warnings"] if w["code"] == "FEATURES_UNKNOWN"]
    assert unknown and unknown[0]["features"] == ["xsaveopt"]
    live_like = decode(load_dump(DEV))
    assert live_like.unknown_features == frozenset()  # a full capture knows every bit


def test_padlock_features_of_zhaoxin() -> None:
    zhaoxin = shared_profile("zhaoxin-lujiazui-zhaoxin-kaixian-kx-6640ma.txt")
    assert {"rng", "ace", "ace2", "phe", "pmm"} <= zhaoxin.features
    from cpucompat.coordinator.domain.requirement import guest_visible

    assert {"ace", "phe"} <= guest_visible(zhaoxin.features)
    assert "ace_en" not in guest_visible(zhaoxin.features)


def test_tsc_frequency_from_leaf_0x16_when_the_crystal_is_not_given() -> None:
    skylake_sp = shared_profile("instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt")
    assert skylake_sp.tsc_hz == 3_000_000_000


def test_vendorless_baseline_stamp_takes_this_processors_vendor(
    tmp_path: Path, require_x86: None
) -> None:
    stamp = tmp_path / "b.json"
    assert run_cli("stamp", "--baseline", "level:x86-64-v2", "--out", str(stamp)).returncode == 0
    vendor = json.loads(run_cli("probe", "--json").stdout)["vendor"]
    assert json.loads(stamp.read_text())["requirement"]["vendor"] == vendor
    other = (
        "intel-x86-64-nehalem-intel-core-i5-cpu-650.txt"
        if vendor != "GenuineIntel"
        else "amd-zen-amd-ryzen-5-1500x-quad-core-processor.txt"
    )
    refused = run_cli("guard", str(stamp), "--from-dump", str(shared_dump(other)), "--json")
    assert refused.returncode == 3
    assert json.loads(refused.stdout)["reasons"][0]["code"] == "VENDOR_MISMATCH"


def test_probe_refuses_a_dump_that_cannot_be_a_processor(tmp_path: Path) -> None:
    bad = tmp_path / "nul-vendor.txt"
    bad.write_text(
        "CPU 0:\n   0x00000000 0x00: eax=0x00000000 ebx=0x00000000 ecx=0x00000000 edx=0x00000000\n"
    )
    result = run_cli("probe", "--from-dump", str(bad))
    assert result.returncode == 2
    assert "vendor string" in result.stderr
