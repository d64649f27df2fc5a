"""The host's TSC rate and scaling: from the kernel on a live host, from CPUID in a dump."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.host_tsc import KVM_DEVICE, kvm_tsc_khz, vmx_tsc_scaling
from cpucompat.agent.live import probe
from cpucompat.agent.raw import HostTsc, RawDataError, validate_capture
from cpucompat.agent.rawjson import capture_from_json, capture_to_json
from cpucompat.agent.wire import capture_from_proto, capture_to_proto
from tests.support.daemons import run_cli
from tests.support.shared import shared_profile

ZEN4 = "amd-zen4-amd-ryzen-9-7900x-12-core-processor.txt"
K10 = "amd-k10-amd-athlon-ii-x4-620-processor.txt"
HASWELL_EP = "instlatx64-GenuineIntel00306F2_HaswellEP_00_CPUID.txt"
SKYLAKE_SP = "instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt"


def kvm_usable() -> bool:
    return os.access(KVM_DEVICE, os.R_OK | os.W_OK)


def test_live_profile_carries_the_kernels_rate_or_says_why_not(require_x86: None) -> None:
    profile = decode(probe())
    tsc = profile.tsc
    if kvm_usable():
        khz, why = kvm_tsc_khz()
        assert khz is not None, why
        assert tsc.source == "kvm" and tsc.hz == khz * 1000  # the kernel's rate is fixed per boot
        assert 10_000_000 < tsc.hz < 100_000_000_000
        if profile.tsc_hz:  # CPUID states one too (leaf 0x15/0x16, a hypervisor leaf): they agree
            assert abs(tsc.hz - profile.tsc_hz) < profile.tsc_hz // 100
    elif tsc.hz is None:
        assert tsc.source == "" and tsc.missing
    else:
        assert tsc.source == "sysfs"
    shown = run_cli("probe", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)["tsc"]
    assert doc["source"] == (tsc.source or None) and (doc["hz"] is None) == (tsc.hz is None)


def test_kernel_rate_travels_the_wire_and_json_but_a_replayed_dump_drops_it(
    require_x86: None,
) -> None:
    capture = replace(
        probe(),
        host_tsc=HostTsc(khz=2_596_144, source="kvm", scaling=True, scaling_source="vmx-flags"),
    )
    assert capture_from_proto(capture_to_proto(capture)).host_tsc == capture.host_tsc
    assert capture_from_json(capture_to_json(capture)).host_tsc == capture.host_tsc
    live = decode(capture_from_json(capture_to_json(capture)))
    assert (live.tsc.hz, live.tsc.source) == (2_596_144_000, "kvm")
    replayed = decode(replace(capture, source="replay:cpucompat-json"))
    assert replayed.tsc.source in ("cpuid", "")  # a dump keeps only what CPUID tells
    assert replayed.tsc.hz == replayed.tsc_hz


@pytest.mark.parametrize(
    "bad",
    [
        HostTsc(khz=0, source="kvm"),
        HostTsc(khz=-5, source="kvm"),
        HostTsc(khz=2_000_000, source="guess"),
        HostTsc(khz=None, source="kvm"),
        HostTsc(khz=2_000_000, source="kvm", scaling=True, scaling_source=""),
    ],
)
def test_impossible_tsc_reports_are_refused(bad: HostTsc, require_x86: None) -> None:
    with pytest.raises(RawDataError, match="TSC"):
        validate_capture(replace(probe(), host_tsc=bad))


def test_intel_scaling_is_read_from_the_kernels_vmx_flags(tmp_path: Path) -> None:
    flags = "vnmi preemption_timer posted_intr invvpid ept_x_only ept_ad tsc_offset"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nvmx flags\t: {flags} tsc_scaling\n\n" * 2)
    assert vmx_tsc_scaling(str(cpuinfo)) is True
    cpuinfo.write_text(
        f"processor\t: 0\nvmx flags\t: {flags} tsc_scaling\n\nprocessor\t: 1\nvmx flags\t: {flags}\n"
    )
    assert vmx_tsc_scaling(str(cpuinfo)) is False  # a vCPU may land on the CPU that cannot
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu svm\n")
    assert vmx_tsc_scaling(str(cpuinfo)) is None


def test_amd_scaling_comes_from_the_svm_leaf_of_real_dumps() -> None:
    zen4, k10 = shared_profile(ZEN4), shared_profile(K10)
    assert (zen4.tsc.scaling, zen4.tsc.scaling_source) == (True, "cpuid-svm")  # TscRateMsr
    assert (k10.tsc.scaling, k10.tsc.scaling_source) == (False, "cpuid-svm")
    assert zen4.tsc.hz is None and zen4.tsc.missing  # AMD states no rate in CPUID


def test_dumps_say_where_their_rate_came_from() -> None:
    skylake, haswell = shared_profile(SKYLAKE_SP), shared_profile(HASWELL_EP)
    assert (skylake.tsc.hz, skylake.tsc.source) == (3_000_000_000, "cpuid")
    assert skylake.tsc.scaling is None  # Intel keeps it in a VMX MSR a dump does not hold
    assert haswell.tsc.hz is None and "dump" in haswell.tsc.missing


def test_coordinator_keeps_a_new_version_only_when_the_tsc_report_really_moves(
    tmp_path: Path, require_x86: None
) -> None:
    """This host's capture, with the kernel's report set by hand (the edit under test)."""
    from cpucompat.coordinator.registry import Registry
    from cpucompat.coordinator.store import Store

    live = probe()
    registry = Registry(Store(tmp_path / "c.db"))

    def report(khz: int, scaling: bool | None = None) -> int:
        source = "" if scaling is None else "vmx-flags"
        tsc = HostTsc(khz=khz, source="kvm", scaling=scaling, scaling_source=source)
        registry.report("node-1", "prod", replace(live, host_tsc=tsc))
        return len(registry.history("node-1")[1])

    assert report(2_000_000) == 1
    assert registry.host("node-1").profile.tsc.hz == 2_000_000_000
    assert report(2_000_010) == 1  # 5 ppm: the kernel recalibrated at boot, nothing changed
    assert report(2_000_600) == 2  # 300 ppm: an invtsc guest could notice
    assert registry.host("node-1").profile.tsc.hz == 2_000_600_000
    assert report(2_000_600, scaling=True) == 3


@pytest.mark.e2e
def test_live_agent_reports_the_kernels_tsc_to_the_coordinator(
    tmp_path: Path, require_x86: None
) -> None:
    from tests.support.daemons import start_agent, start_coordinator, wait_until

    here = json.loads(run_cli("probe", "--json").stdout)["tsc"]
    coord = start_coordinator(tmp_path)
    agent = start_agent(tmp_path, coord.address, "node-1")
    try:

        def shown() -> dict | None:
            out = run_cli("host", "show", "node-1", "--json", "--coordinator", coord.address)
            return json.loads(out.stdout)["profile"] if out.returncode == 0 else None

        wait_until(lambda: shown() is not None, what="the live host registered")
        profile = shown()
        assert profile is not None
        tsc = profile.get("tsc", {})
        assert tsc.get("source", "") == (here["source"] or "")
        assert int(tsc.get("hz", 0)) == (here["hz"] or 0)
        text = run_cli("host", "show", "node-1", "--coordinator", coord.address).stdout
        line = next(x for x in text.splitlines() if x.startswith("TSC"))
        assert (f"({here['source']})" if here["hz"] else "rate unknown") in line
    finally:
        agent.kill()
        coord.stop()
