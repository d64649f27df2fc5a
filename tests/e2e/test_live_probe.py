"""The live probe reads the real processor: it must agree with the Debian `cpuid` tool."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys

import pytest

from cpucompat.agent import cpuid_exec, live
from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump, parse_dump
from cpucompat.agent.raw import LeafKey, LogicalCpu, RawCapture, Regs
from tests.support.daemons import run_cli
from tests.support.paths import DEV_DUMP, FIXTURES

pytestmark = pytest.mark.usefixtures("require_x86")

# Fields that legitimately differ between two reads of the same logical CPU. Both tools pin
# to the same CPU, so APIC IDs match; what may move is live sensor data and the per-read
# counters some hypervisors expose. Listed as (leaf, register index) -> mask of bits compared.
PER_READ_FIELDS = {
    (0xC000_0004, 1): 0x0000_0000,  # Centaur/Zhaoxin: current temperature and frequency
}
STANDARD_RANGES = (0x0, 0x4000_0000, 0x8000_0000)
_CPU = re.compile(r"^CPU(?: (\d+))?:\s*$")
_ROW = re.compile(
    r"^\s*0x([0-9a-f]{8}) 0x([0-9a-f]{2,8}): eax=0x([0-9a-f]{8}) ebx=0x([0-9a-f]{8})"
    r" ecx=0x([0-9a-f]{8}) edx=0x([0-9a-f]{8})\s*$",
    re.IGNORECASE,
)


def cpuid_tool() -> str:
    tool = shutil.which("cpuid")
    if tool is None:
        pytest.fail(
            "the Debian package `cpuid` is missing; .ci/run installs it (apt-get install cpuid)"
        )
    return tool


def cpuid_tool_capture() -> RawCapture:
    text = subprocess.run([cpuid_tool(), "-r"], capture_output=True, text=True, check=True).stdout
    return parse_dump(text, origin="cpuid -r")


def cpuid_tool_read(leaf: int, subleaf: int) -> dict[int, Regs]:
    """One leaf and subleaf on every CPU, asked of the tool by number (`cpuid -r -l -s`)."""
    text = subprocess.run(
        [cpuid_tool(), "-r", "-l", f"0x{leaf:x}", "-s", str(subleaf)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    out: dict[int, Regs] = {}
    cpu = 0
    for line in text.splitlines():
        if (head := _CPU.match(line)) is not None:
            cpu = int(head[1] or 0)
        elif (row := _ROW.match(line)) is not None:
            assert (int(row[1], 16), int(row[2], 16)) == (leaf, subleaf), line
            out[cpu] = (int(row[3], 16), int(row[4], 16), int(row[5], 16), int(row[6], 16))
    return out


def same_read(key: LeafKey, got: Regs, want: Regs) -> bool:
    return all(
        got[i] & PER_READ_FIELDS.get((key[0], i), 0xFFFF_FFFF)
        == want[i] & PER_READ_FIELDS.get((key[0], i), 0xFFFF_FFFF)
        for i in range(4)
    )


def test_live_probe_equals_cpuid_tool_leaf_by_leaf_on_every_cpu() -> None:
    """Every value the probe records, `cpuid` reads too; everything the processor reports, we have.

    The two tools walk subleaves differently, and who is right is settled by the manuals:
    - `cpuid -r` also prints the invalid subleaf that ends a type-terminated list (SGX leaf
      0x12 from subleaf 2, PCONFIG leaf 0x1B), even on processors without SGX or PCONFIG.
      The SDM defines such a subleaf as returning 0 in EAX, EBX, ECX and EDX ("All invalid
      sub-leaves of CPUID leaf 12H return EAX/EBX/ECX/EDX with 0", vol. 3D 37.7.2; the same
      for invalid subleaf indices of leaves 7, 0xD, ...): it carries no information, and the
      probe, like Linux, stops before it. So a subleaf only the tool read must be such an
      all-zero subleaf above 0, never data the probe missed.
    - A tool older than the processor walks fewer subleaves than the manuals define (new
      leaves are added every year). A subleaf only the probe read is asked of the tool by
      number and must read the same, so every recorded value is confirmed independently.
    `cpuid -r` also pokes range heads the vendor does not implement (0x20000000, 0xC0000000
    on AMD, the next hypervisor block): only the standard, extended and first hypervisor
    ranges the processor reports are compared for the tool's extra reads.
    """
    ours = live.probe()
    theirs = {c.index: c for c in cpuid_tool_capture().cpus}
    assert {c.index for c in ours.cpus} <= set(theirs)  # the tool ignores our affinity mask
    only_ours: set[LeafKey] = set()
    for mine in ours.cpus:
        other = theirs[mine.index]

        def reported(key: LeafKey, cpu: LogicalCpu = mine) -> bool:
            for base in STANDARD_RANGES:
                top = cpu.max_leaf(base)
                if top is not None and base <= key[0] <= top:
                    return True
            return False

        for key in mine.leaves.keys() & other.leaves.keys():
            got, want = mine.leaves[key], other.leaves[key]
            assert same_read(key, got, want), (
                f"CPU {mine.index} leaf 0x{key[0]:08x}.{key[1]}: probe "
                f"{' '.join(f'{r:08x}' for r in got)}, cpuid -r {' '.join(f'{r:08x}' for r in want)}"
            )
        missed = {
            f"0x{k[0]:08x}.{k[1]}"
            for k in other.leaves.keys() - mine.leaves.keys()
            if reported(k) and (k[1] == 0 or any(other.leaves[k]))
        }
        assert not missed, f"CPU {mine.index}: the probe misses reported leaves {sorted(missed)}"
        only_ours |= mine.leaves.keys() - other.leaves.keys()
    for key in sorted(only_ours):
        confirmed = cpuid_tool_read(*key)
        for mine in ours.cpus:
            if key in mine.leaves:
                assert mine.index in confirmed, (key, mine.index)
                assert same_read(key, mine.leaves[key], confirmed[mine.index]), (
                    f"CPU {mine.index} leaf 0x{key[0]:08x}.{key[1]}: probe {mine.leaves[key]}, "
                    f"cpuid -r -l -s {confirmed[mine.index]}"
                )


def test_live_probe_reads_xcr0_and_every_allowed_cpu() -> None:
    capture = live.probe()
    assert [c.index for c in capture.cpus] == live.allowed_cpus()
    profile = decode(capture)
    assert profile.source == "cpuid-instruction"
    assert not profile.replayed
    if "osxsave" in profile.features:
        assert profile.xsave.enabled_mask is not None
        assert profile.xsave.enabled_mask & 0b11 == 0b11  # x87 and SSE are always enabled
        assert profile.xsave.enabled_mask & ~profile.xsave.supported_mask == 0


def test_fingerprint_is_stable_across_runs_and_matches_a_replay_of_the_same_host(tmp_path) -> None:
    first = decode(live.probe())
    second = decode(live.probe())
    assert first.fingerprint == second.fingerprint
    raw = run_cli("probe", "--raw")
    assert raw.returncode == 0, raw.stderr
    dump = tmp_path / "here.txt"
    dump.write_text(raw.stdout)
    replay = decode(load_dump(dump))
    assert replay.source == "replay:cpuid-r"
    assert replay.fingerprint == first.fingerprint
    assert replay.features == first.features


def test_probe_json_contract_keys() -> None:
    result = run_cli("probe", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    for key in (
        "vendor",
        "brand",
        "family",
        "model",
        "stepping",
        "x86_64_level",
        "features",
        "cpu_types",
        "xsave",
        "address_sizes",
        "hypervisor",
        "source",
        "fingerprint",
        "raw",
    ):
        assert key in doc, key
    assert doc["features"] == sorted(doc["features"])
    assert doc["source"] == "cpuid-instruction"
    xsave = doc["xsave"]
    assert isinstance(xsave["supported_mask"], int) and isinstance(xsave["enabled_mask"], int)
    assert xsave["supported_mask"] & 0b11 == 0b11  # x87 and SSE
    assert xsave["enabled_mask"] & ~xsave["supported_mask"] == 0
    assert {"physical_bits", "linear_bits"} <= set(doc["address_sizes"])
    cpus = [c for t in doc["cpu_types"] for c in t["logical_cpus"]]
    assert sorted(cpus) == live.allowed_cpus()
    assert all(set(doc["features"]) <= set(t["features"]) for t in doc["cpu_types"])
    assert len(doc["raw"]["cpus"]) == len(cpus)


def test_probe_json_reimports_with_the_same_identity(tmp_path) -> None:
    result = run_cli("probe", "--json")
    path = tmp_path / "probe.json"
    path.write_text(result.stdout)
    again = run_cli("probe", "--from-dump", str(path), "--json")
    assert again.returncode == 0, again.stderr
    a, b = json.loads(result.stdout), json.loads(again.stdout)
    assert b["source"] == "replay:json"
    assert (a["fingerprint"], a["features"], a["x86_64_level"]) == (
        b["fingerprint"],
        b["features"],
        b["x86_64_level"],
    )


def test_probe_never_loads_grpc() -> None:
    code = (
        "import sys; from cpucompat.agent.cli.main import main; rc = main(['probe', '--json']);"
        "sys.stderr.write(repr(sorted(m for m in sys.modules if m.startswith(('grpc', 'google.protobuf')))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stderr.strip() == "[]"


def test_probe_never_loads_the_coordinator() -> None:
    """`cpucompat probe --json` reads processors; nothing of the deciding side is loaded."""
    code = (
        "import sys; from cpucompat.agent.cli.main import main; rc = main(['probe', '--json']);"
        "sys.stderr.write(repr(sorted(m for m in sys.modules if m.startswith('cpucompat')))); "
        "sys.exit(rc)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = ast.literal_eval(result.stderr.strip().splitlines()[-1])
    assert "cpucompat.agent.decode" in loaded  # it did probe and decode
    assert [m for m in loaded if m.startswith(("cpucompat.coordinator", "cpucompat.v1"))] == []
    assert json.loads(result.stdout)["fingerprint"]


def test_readable_summary_names_the_processor() -> None:
    result = run_cli("probe")
    assert result.returncode == 0
    profile = decode(live.probe())
    assert profile.vendor in result.stdout
    assert (profile.x86_64_level or "none") in result.stdout
    assert profile.fingerprint in result.stdout


def test_malformed_dump_is_one_line_naming_file_and_line(tmp_path) -> None:
    bad = FIXTURES / "dumps" / "bad-aida-leaf.txt"
    result = run_cli("probe", "--from-dump", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bad-aida-leaf.txt:" in lines[0]
    missing = run_cli("probe", "--from-dump", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2
    assert "nope.txt" in missing.stderr


def test_non_x86_machine_gets_a_clear_refusal(monkeypatch) -> None:
    cpuid_exec.executor.cache_clear()
    monkeypatch.setattr(cpuid_exec.platform, "machine", lambda: "aarch64")
    try:
        with pytest.raises(live.ProbeError, match="aarch64"):
            live.probe()
    finally:
        cpuid_exec.executor.cache_clear()


def test_devcpu_source_reads_the_same_or_names_the_fix() -> None:
    """Same leaves through /dev/cpu/N/cpuid when it is there and readable (root), else the fix."""
    import os

    device = live.DEVCPU_PATTERN.format(cpu=live.allowed_cpus()[0])
    if os.access(device, os.R_OK):
        assert live.probe("devcpu").cpus[0].leaves == live.probe().cpus[0].leaves
        return
    result = run_cli("probe", "--source", "devcpu")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    fix = "permission denied" if os.path.exists(device) else "modprobe cpuid"
    assert fix in result.stderr


def test_project_fixture_of_the_development_machine_decodes() -> None:
    profile = decode(load_dump(DEV_DUMP))
    assert (profile.vendor, profile.family, profile.model, profile.stepping) == (
        "AuthenticAMD",
        25,
        1,
        1,
    )
    assert profile.x86_64_level == "x86-64-v3"
    assert profile.hypervisor == "KVMKVMKVM"
    assert {"avx2", "sha_ni", "vaes", "pku"} <= profile.features


def test_agent_capture_carries_the_os_view_from_py_cpuinfo() -> None:
    """py-cpuinfo supplies what CPUID does not (the kernel's view); it never decides."""
    from cpucompat.agent.daemon.agent import AgentConfig, capture_fn
    from cpucompat.agent.osinfo import os_details

    read = capture_fn(AgentConfig(coordinator="127.0.0.1:7443", cluster="prod"))
    details = os_details(wait=120)
    assert details.get("os.arch") == "X86_64"
    assert int(details["os.count"]) >= len(live.allowed_cpus())
    capture = read()
    assert capture.extra["os.arch"] == "X86_64"
    assert decode(capture).fingerprint == decode(live.probe()).fingerprint  # informational only
