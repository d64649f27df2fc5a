"""The decision commands as a script sees them: JSON contracts and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile
from cpucompat.coordinator.domain.baselines import nearest_level
from cpucompat.coordinator.domain.sides import target_of
from tests.support.daemons import run_cli
from tests.support.paths import DEV_DUMP as DEV
from tests.support.shared import richer_processor, shared_dump

ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
SKYLAKE_SP = "instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt"


def test_identical_hosts_audit_to_save_offline(tmp_path: Path) -> None:
    twin = tmp_path / "twin.txt"
    twin.write_text(DEV.read_text())
    same = run_cli("audit", f"dump:{DEV}", f"dump:{DEV}")
    assert same.returncode == 2 and "appears twice" in same.stderr
    result = run_cli("audit", f"dump:{DEV}", f"dump:{twin}", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["offline_action"] == "SAVE"
    assert len(doc["groups"]) == 1
    assert all(p["compatible"] for p in doc["pairs"])
    assert doc["baseline"]["x86_64_level"] == "x86-64-v3"
    assert {"features", "x86_64_level", "microarchitecture"} <= set(doc["baseline"])


def test_intel_plus_amd_audit_is_shutdown_with_vendor_mismatch() -> None:
    intel = shared_dump(SKYLAKE_SP)
    result = run_cli("audit", f"dump:{DEV}", f"dump:{intel}", "--json")
    assert result.returncode == 3
    doc = json.loads(result.stdout)
    assert doc["offline_action"] == "SHUTDOWN"
    codes = {r["code"] for p in doc["pairs"] for r in p["reasons"]}
    assert "VENDOR_MISMATCH" in codes
    assert all(not p["compatible"] for p in doc["pairs"])


def test_check_is_directional_with_machine_readable_reasons() -> None:
    rome, milan = shared_dump(ROME), shared_dump(MILAN)
    forward = run_cli("check", f"dump:{rome}", f"dump:{milan}", "--json")
    assert forward.returncode == 0, forward.stdout
    assert json.loads(forward.stdout)["compatible"] is True
    backward = run_cli("check", f"dump:{milan}", f"dump:{rome}", "--json")
    assert backward.returncode == 3
    doc = json.loads(backward.stdout)
    assert doc["compatible"] is False
    missing = next(r for r in doc["reasons"] if r["code"] == "MISSING_FEATURES")
    assert {"erms", "fsrm", "invpcid", "pku", "vaes", "vpclmulqdq"} <= set(missing["features"])
    readable = run_cli("check", f"dump:{milan}", f"dump:{rome}")
    assert "INCOMPATIBLE" in readable.stdout and "MISSING_FEATURES" in readable.stdout


def test_models_work_anywhere_a_host_does() -> None:
    result = run_cli("check", "model:icelake", f"dump:{DEV}", "--json")
    assert result.returncode == 3
    codes = [r["code"] for r in json.loads(result.stdout)["reasons"]]
    assert codes[0] == "VENDOR_MISMATCH"
    level = run_cli("check", "level:x86-64-v3@amd", f"dump:{DEV}", "--json")
    assert level.returncode == 0, level.stdout
    typo = run_cli("check", "model:icelak", f"dump:{DEV}")
    assert typo.returncode == 2
    assert "icelake" in typo.stderr  # names the close match


def live_offer_profile(tmp_path: Path) -> Profile:
    """This host as `guard` reads it: `probe --json`, with its hypervisor offer if any."""
    out = run_cli("probe", "--json")
    assert out.returncode == 0, out.stderr
    path = tmp_path / "here.json"
    path.write_text(out.stdout)
    return decode(load_dump(path))


def test_guard_refuses_a_richer_processor_and_accepts_this_one(
    tmp_path: Path, live_host_profile: Profile
) -> None:
    richer, extra = richer_processor(live_host_profile)
    stamp = tmp_path / "richer.stamp"
    assert run_cli("stamp", "--out", str(stamp), "--from-dump", str(richer)).returncode == 0
    refused = run_cli("guard", str(stamp), "--json")
    assert refused.returncode == 3
    reasons = {r["code"]: r for r in json.loads(refused.stdout)["reasons"]}
    if extra:  # same vendor: refused for the features the richer processor has and this lacks
        missing = set(reasons["MISSING_FEATURES"]["features"])
        # Where this host's hypervisor offer decides, it accepts only what the offer gives.
        offered = target_of(live_offer_profile(tmp_path), "here").features
        assert missing and missing <= extra | (live_host_profile.features - offered), (
            missing,
            extra,
        )
    else:
        assert "VENDOR_MISMATCH" in reasons

    mine = tmp_path / "here.stamp"
    assert run_cli("stamp", "--out", str(mine)).returncode == 0
    doc = json.loads(mine.read_text())
    assert doc["requirement"]["mode"] == "host" and doc["requirement"]["features"]
    assert run_cli("guard", str(mine)).returncode == 0

    tampered = tmp_path / "tampered.stamp"
    tampered.write_text(mine.read_text().replace('"sse2"', '"avx512f"'))
    result = run_cli("guard", str(tampered))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    truncated = tmp_path / "truncated.stamp"
    truncated.write_text(mine.read_text()[:100])
    assert run_cli("guard", str(truncated)).returncode == 2


def test_baseline_stamp_for_an_evc_like_vm(tmp_path: Path, live_host_profile: Profile) -> None:
    # This host's own psABI level (of what it offers a guest) and vendor: a baseline it
    # meets by definition.
    level = nearest_level(target_of(live_offer_profile(tmp_path), "here").features)
    assert level is not None
    baseline = f"level:{level}@{live_host_profile.vendor.strip()}"
    stamp = tmp_path / "baseline.stamp"
    made = run_cli("stamp", "--out", str(stamp), "--baseline", baseline)
    assert made.returncode == 0, made.stderr
    assert json.loads(stamp.read_text())["requirement"]["mode"] == "baseline"
    assert run_cli("guard", str(stamp)).returncode == 0


@pytest.mark.parametrize("args", [["audit"], ["check", "dump:/nonexistent", "model:zen3"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stderr.strip()


def test_unreachable_coordinator_exits_1() -> None:
    result = run_cli("targets", "some-host", "--coordinator", "127.0.0.1:9")
    assert result.returncode == 1
    assert "cannot reach the coordinator" in result.stderr
