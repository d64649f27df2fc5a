"""QEMU's x86 CPU models as baselines (model:qemu/NAME): the table, QEMU itself, decisions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cpucompat.coordinator.domain.baselines import BaselineError, resolve_baseline
from cpucompat.coordinator.domain.compat import (
    MISSING_FEATURES,
    PHYS_ADDR_BITS_SMALLER,
    XSAVE_STATE_MISSING,
    TargetView,
    check,
)
from cpucompat.coordinator.domain.qemu_models import TABLE_PATH, QemuModel, table
from cpucompat.coordinator.domain.requirement import decides
from cpucompat.coordinator.qemu_qmp import qemu_binary
from tests.support.daemons import run_cli, start_agent, start_coordinator, wait_until
from tests.support.shared import shared_dump, shared_profile

ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
SKYLAKE_SP = "instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt"
CLIENT_39_BITS = "intel-x86-64-skylake-intel-core-i5-8265u-cpu.txt"
VERSIONED = re.compile(r"-v\d+$")


def model(name: str) -> QemuModel:
    return table().resolve(name)


def guest_features(name: str) -> frozenset[str]:
    return frozenset(f for f in model(name).features if decides(f))


# --- the committed table ---------------------------------------------------------------------


def test_plain_names_are_the_version_qemu_resolves_them_to() -> None:
    t = table()
    assert t.aliases["EPYC-Milan"] == "EPYC-Milan-v1"
    plain = [a for a in t.aliases if f"{a}-v1" in t.models]
    assert len(plain) > 30
    # QEMU's x86_cpu_model_resolve_version: version 1 for every machine type since 4.1.
    assert all(t.aliases[a] == f"{a}-v1" for a in plain)
    # Every alias points at a versioned model the table holds.
    assert set(t.aliases.values()) <= set(t.models)
    assert all(VERSIONED.search(name) for name in t.models)
    milan = resolve_baseline("model:qemu/EPYC-Milan")
    assert milan.features == resolve_baseline("model:qemu/EPYC-Milan-v1").features
    assert "EPYC-Milan-v1" in milan.source and t.qemu_version in milan.source


def test_named_models_default_to_40_physical_address_bits() -> None:
    for m in table().models.values():
        # x86_cpu_realizefn: phys-bits unset -> 40 with long mode; else 36 with PSE36, 32.
        expected = 40 if "lm" in m.features else 36 if "pse36" in m.features else 32
        assert m.phys_bits == expected, m.name
    req = resolve_baseline("model:qemu/Cascadelake-Server-v4").requirement()
    assert req.physical_bits == 40
    assert req.vendor == "GenuineIntel"
    assert req.baseline == "model:qemu/Cascadelake-Server-v4"


def test_xsave_components_follow_the_features() -> None:
    milan = resolve_baseline("model:qemu/EPYC-Milan")
    assert milan.xsave_mask == 0b10_0000_0111  # x87, SSE, AVX, PKRU
    cascade = resolve_baseline("model:qemu/Cascadelake-Server-v4")
    assert cascade.xsave_mask == 0b10_1110_0111  # + opmask, ZMM_Hi256, Hi16_ZMM
    for m in table().models.values():
        assert (2 in m.xsave_components) == ("avx" in m.features), m.name
        assert (5 in m.xsave_components) == ("avx512f" in m.features), m.name
        assert (9 in m.xsave_components) == ("pku" in m.features), m.name


def test_unknown_or_mismatched_models_are_errors_naming_the_fix() -> None:
    with pytest.raises(BaselineError, match=r"model:qemu/EPYC-Milan\b"):
        resolve_baseline("model:qemu/EPYC-Milna")
    with pytest.raises(BaselineError, match="model:qemu/Cascadelake-Server-v4"):
        resolve_baseline("model:qemu/Cascadelake-Server-v9")
    with pytest.raises(BaselineError, match="AuthenticAMD model"):
        resolve_baseline("model:qemu/EPYC-Milan@intel")
    with pytest.raises(BaselineError, match="model:qemu/EPYC-Milan"):
        resolve_baseline("model:EPYC-Milan")  # archspec has no such name; QEMU has
    typo = run_cli("check", "model:qemu/EPYC-Milna", "model:qemu/EPYC-Rome")
    assert typo.returncode == 2
    assert "model:qemu/EPYC-Milan" in typo.stderr


# --- the table against QEMU itself ---------------------------------------------------------


@pytest.fixture(scope="module")
def qemu() -> str:
    path = qemu_binary()
    if path is None:
        pytest.skip(
            "qemu-system-x86_64 not installed (Debian package qemu-system-x86): the QEMU "
            "models table is not checked against QEMU here"
        )
    return path


@pytest.fixture(scope="module")
def from_qemu(qemu: str) -> dict:
    from cpucompat.coordinator.qemu_models_gen import ask_qemu, build_table

    return build_table(ask_qemu(qemu))


def test_table_matches_the_installed_qemu_for_every_model_it_knows(from_qemu: dict) -> None:
    committed = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    assert from_qemu["models"], "QEMU reported no x86 models"
    for name, fresh in from_qemu["models"].items():
        ours = committed["models"].get(name)
        assert ours is not None, (
            f"QEMU {from_qemu['qemu_version']} knows {name}, the table "
            f"(QEMU {committed['qemu_version']}) does not; regenerate it"
        )
        q, t = set(fresh["features"]), set(ours["features"])
        assert q == t, f"{name}: only QEMU has {sorted(q - t)}, only the table has {sorted(t - q)}"
        for key in ("vendor", "family", "model", "stepping", "model_id", "phys_bits"):
            assert fresh[key] == ours[key], f"{name}: {key} is {fresh[key]!r} in QEMU"
        for key in ("msr_features", "hypervisor_features", "xsave_components"):
            assert fresh[key] == ours[key], f"{name}: {key}"
    for alias, target in from_qemu["aliases"].items():
        assert committed["aliases"].get(alias) == target, f"QEMU resolves {alias} to {target}"


def test_qemu_properties_that_are_not_cpuid_bits_are_filtered_by_rule(qemu: str) -> None:
    from cpucompat.coordinator.qemu_models_gen import classify, locate

    names = ["kvmclock", "kvm-pv-eoi", "kvm-hint-dedicated", "vmx", "vmx-secondary-ctls", "vmx-ept"]
    names += ["mds-no"]
    names += ["ibpb", "ibrs", "stibp", "ssbd", "arch-capabilities", "avx512vnni"]
    where = locate(names)
    # KVM's paravirtual leaf: located in the hypervisor range, or by QEMU's kvm namespace.
    assert classify("kvm-hint-dedicated", where.get("kvm-hint-dedicated"), None)[0] == "hypervisor"
    assert classify("kvmclock", where.get("kvmclock"), None)[0] == "hypervisor"
    assert classify("kvm-pv-eoi", where.get("kvm-pv-eoi"), None)[0] == "hypervisor"
    # VMX capabilities and IA32_ARCH_CAPABILITIES are MSRs, not CPUID bits.
    assert classify("vmx-ept", where.get("vmx-ept"), "GenuineIntel") == ("msr", "0x48b")
    assert classify("mds-no", where.get("mds-no"), "GenuineIntel") == ("msr", "0x10a")
    # Names Linux uses for synthetic flags: QEMU's location picks the bit.
    assert classify("ibpb", where.get("ibpb"), "AuthenticAMD") == ("feature", "amd_ibpb")
    assert classify("ibrs", where.get("ibrs"), "AuthenticAMD") == ("feature", "amd_ibrs")
    assert classify("stibp", where.get("stibp"), "GenuineIntel") == ("feature", "intel_stibp")
    assert classify("ssbd", where.get("ssbd"), "GenuineIntel") == ("feature", "spec_ctrl_ssbd")
    assert classify("arch-capabilities", where.get("arch-capabilities"), "GenuineIntel") == (
        "feature",
        "arch_capabilities",
    )
    assert classify("avx512vnni", where.get("avx512vnni"), "GenuineIntel") == (
        "feature",
        "avx512_vnni",
    )


# --- decisions on real dumps -----------------------------------------------------------------


def verdict(baseline: str, dump: str):  # type: ignore[no-untyped-def]
    return check(
        resolve_baseline(baseline).requirement(),
        TargetView.from_profile(shared_profile(dump), dump),
    )


def test_milan_accepts_the_rome_and_milan_models() -> None:
    for name in ("model:qemu/EPYC-Rome", "model:qemu/EPYC-Milan"):
        v = verdict(name, MILAN)
        assert v.compatible, (name, v.summary)


def test_rome_refuses_the_milan_model_naming_what_it_lacks() -> None:
    rome = shared_profile(ROME)
    v = verdict("model:qemu/EPYC-Milan", ROME)
    assert not v.compatible
    missing = v.reason(MISSING_FEATURES)
    assert missing is not None
    assert set(missing.features) == guest_features("EPYC-Milan") - rome.features
    assert "pku" in missing.features  # Zen 3 added protection keys
    xsave = v.reason(XSAVE_STATE_MISSING)
    assert xsave is not None and 9 in xsave.data["indices"]  # PKRU


def test_skylake_xeon_refuses_cascadelake_for_avx512_vnni() -> None:
    skylake = shared_profile(SKYLAKE_SP)
    for name in ("Cascadelake-Server", "Cascadelake-Server-v4"):
        v = verdict(f"model:qemu/{name}", SKYLAKE_SP)
        missing = v.reason(MISSING_FEATURES)
        assert missing is not None, v.summary
        assert "avx512_vnni" in missing.features
        assert set(missing.features) == guest_features(name) - skylake.features


def test_a_target_narrower_than_the_models_phys_bits_refuses() -> None:
    client = shared_profile(CLIENT_39_BITS)
    assert client.address_sizes.physical_bits == 39
    v = verdict("model:qemu/Skylake-Client-v4", CLIENT_39_BITS)
    reason = v.reason(PHYS_ADDR_BITS_SMALLER)
    assert reason is not None, v.summary
    assert reason.data == {"required": 40, "target": 39}


def test_models_as_source_and_target_on_the_command_line() -> None:
    milan, rome = shared_dump(MILAN), shared_dump(ROME)
    ok = run_cli("check", "model:qemu/EPYC-Milan", f"dump:{milan}", "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    refused = run_cli("check", "model:qemu/EPYC-Milan", f"dump:{rome}", "--json")
    assert refused.returncode == 3
    codes = [r["code"] for r in json.loads(refused.stdout)["reasons"]]
    assert codes[0] == MISSING_FEATURES
    # As a target the model offers its features and its 40-bit address width only.
    narrower = run_cli("check", f"dump:{milan}", "model:qemu/EPYC-Milan", "--json")
    assert narrower.returncode == 3
    doc = json.loads(narrower.stdout)
    assert PHYS_ADDR_BITS_SMALLER in [r["code"] for r in doc["reasons"]]
    model_to_model = run_cli("check", "model:qemu/EPYC-Rome", "model:qemu/EPYC-Milan", "--json")
    rome_in_milan = guest_features("EPYC-Rome") <= guest_features("EPYC-Milan")
    assert model_to_model.returncode == (0 if rome_in_milan else 3), model_to_model.stdout
    audit = run_cli("audit", "model:qemu/EPYC-Milan", f"dump:{milan}", f"dump:{rome}", "--json")
    assert audit.returncode == 3, audit.stderr
    doc = json.loads(audit.stdout)
    assert doc["offline_action"] == "SHUTDOWN"
    pair = {(p["source"], p["target"]): p for p in doc["pairs"]}
    assert pair[("model:qemu/EPYC-Milan", f"dump:{milan}")]["compatible"] is True
    to_rome = pair[("model:qemu/EPYC-Milan", f"dump:{rome}")]
    assert to_rome["compatible"] is False
    assert to_rome["reasons"][0]["code"] == MISSING_FEATURES


def test_stamp_of_a_qemu_model_keeps_its_phys_bits(tmp_path: Path) -> None:
    milan = shared_dump(MILAN)
    stamp = tmp_path / "milan-model.stamp"
    made = run_cli(
        "stamp",
        "--out",
        str(stamp),
        "--baseline",
        "model:qemu/EPYC-Milan",
        "--from-dump",
        str(milan),
    )
    assert made.returncode == 0, made.stderr
    req = json.loads(stamp.read_text())["requirement"]
    assert req["mode"] == "baseline" and req["baseline"] == "model:qemu/EPYC-Milan"
    assert req["physical_bits"] == 40  # the model's, not the host's 48
    assert set(req["features"]) == guest_features("EPYC-Milan")
    wrong = run_cli(
        "stamp", "--out", str(stamp), "--baseline", "model:qemu/Cascadelake-Server-v4",
        "--from-dump", str(milan),
    )  # fmt: skip
    assert wrong.returncode == 2 and "GenuineIntel" in wrong.stderr


@pytest.mark.e2e
def test_vm_registered_on_a_qemu_model_restores_only_where_the_model_fits(tmp_path: Path) -> None:
    milan, rome = shared_dump(MILAN), shared_dump(ROME)
    coord = start_coordinator(tmp_path, "--allow-replayed")
    agents = [
        start_agent(tmp_path, coord.address, host, "--replay-dump", str(dump))
        for host, dump in (("milan-1", milan), ("rome-1", rome))
    ]
    try:

        def hosts() -> list:
            out = run_cli("hosts", "--json", "--coordinator", coord.address)
            return json.loads(out.stdout) if out.returncode == 0 else []

        wait_until(lambda: len(hosts()) == 2, what="both hosts registered")
        reg = run_cli(
            "vm", "register", "web-1", "--cluster", "prod", "--baseline",
            "model:qemu/EPYC-Milan", "--json", "--coordinator", coord.address,
        )  # fmt: skip
        assert reg.returncode == 0, reg.stderr
        targets = run_cli("vm", "targets", "web-1", "--json", "--coordinator", coord.address)
        doc = json.loads(targets.stdout)
        assert doc["accepted"] == ["milan-1"]
        rome_row = next(t for t in doc["targets"] if t["host"] == "rome-1")
        missing = next(r for r in rome_row["reasons"] if r["code"] == MISSING_FEATURES)
        assert "pku" in missing["features"]
        typo = run_cli(
            "vm", "register", "web-2", "--cluster", "prod", "--baseline",
            "model:qemu/EPYC-Milna", "--coordinator", coord.address,
        )  # fmt: skip
        assert typo.returncode == 2
        assert "model:qemu/EPYC-Milan" in typo.stderr
    finally:
        for a in agents:
            a.kill()
        coord.stop()
