"""`cpucompat baseline`: the common baseline of real processors, written out to be applied.

The round trip is the point: the libvirt <cpu> it writes, read back by `check
libvirt:FILE`, is COMPATIBLE with every member; QEMU itself accepts the -cpu
value; the JSON lists exactly the intersection of the members' requirements; and
a cluster of replayed agents behind a real coordinator gives the same baseline as
the same dumps offline.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cpucompat.coordinator.domain.kvm_offerable import NEVER_OFFERED
from cpucompat.coordinator.domain.libvirt_cpu import map_feature
from cpucompat.coordinator.domain.qemu_models import table as qemu_table
from cpucompat.coordinator.domain.sides import requirement_of
from cpucompat.coordinator.qemu_qmp import Qmp, qemu_binary
from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.shared import shared_dump, shared_profile

MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
ZEN4 = "amd-zen4-amd-ryzen-9-7900x-12-core-processor.txt"


def _args(names: tuple[str, ...]) -> list[str]:
    return [f"dump:{shared_dump(n)}" for n in names]


def _baseline(names: tuple[str, ...], fmt: str, *extra: str) -> str:
    result = run_cli("baseline", *_args(names), "--format", fmt, *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("members", [(MILAN, ROME), (MILAN, ROME, ZEN4), (MILAN,)])
def test_json_lists_exactly_the_intersection(members: tuple[str, ...]) -> None:
    doc = json.loads(_baseline(members, "json"))
    required = [requirement_of(shared_profile(n), n).features for n in members]
    assert set(doc["features"]) == set(frozenset.intersection(*required))
    assert doc["vendor"] == "AuthenticAMD"
    assert doc["physical_bits"] == min(
        shared_profile(n).address_sizes.physical_bits for n in members
    )
    assert {"x87", "sse", "avx"} <= set(doc["xsave_components"])
    nearest = doc["qemu_models"][0]
    assert nearest["model"] in qemu_table().names()
    assert doc["microarchitecture"] and doc["x86_64_level"]


def test_milan_and_rome_lose_what_rome_lacks() -> None:
    doc = json.loads(_baseline((MILAN, ROME), "json"))
    # Zen 3 added these over Zen 2 (design notes: Milan -> Rome is refused for them).
    assert not {"erms", "fsrm", "invpcid", "pku", "vaes", "vpclmulqdq"} & set(doc["features"])
    milan_only = json.loads(_baseline((MILAN,), "json"))
    assert {"vaes", "pku"} <= set(milan_only["features"])


@pytest.mark.parametrize("hypervisor", ["generic", "kvm"])
@pytest.mark.parametrize("members", [(MILAN, ROME), (MILAN, ROME, ZEN4)])
def test_libvirt_baseline_round_trips_through_check(
    members: tuple[str, ...], hypervisor: str, tmp_path: Path
) -> None:
    text = _baseline(members, "libvirt", "--hypervisor", hypervisor)
    cpu = ET.fromstring(text)
    assert cpu.tag == "cpu" and cpu.get("mode") == "custom" and cpu.get("match") == "exact"
    model = cpu.find("model")
    assert model is not None and model.get("fallback") == "forbid"
    qemu_table().resolve(model.text or "")  # a model QEMU knows
    for feature in cpu.findall("feature"):
        assert feature.get("policy") in ("require", "disable")
    path = tmp_path / "baseline.xml"
    path.write_text(text)
    for name in members:
        verdict = run_cli(
            "check",
            f"libvirt:{path}",
            f"dump:{shared_dump(name)}",
            "--json",
            "--hypervisor",
            hypervisor,
        )
        assert verdict.returncode == 0, (name, verdict.stdout, verdict.stderr)
        assert json.loads(verdict.stdout)["compatible"] is True


def test_a_baseline_of_milan_alone_is_refused_by_rome(tmp_path: Path) -> None:
    path = tmp_path / "milan.xml"
    path.write_text(_baseline((MILAN,), "libvirt"))
    verdict = run_cli("check", f"libvirt:{path}", f"dump:{shared_dump(ROME)}", "--json")
    assert verdict.returncode == 3, verdict.stderr
    missing = {f for r in json.loads(verdict.stdout)["reasons"] for f in r["features"]}
    assert {"vaes", "pku"} <= missing


def _qemu_props(value: str) -> tuple[str, dict[str, object]]:
    model, *parts = value.split(",")
    props: dict[str, object] = {}
    for part in parts:
        if part.startswith(("+", "-")):
            props[part[1:]] = part[0] == "+"
        else:
            key, _, setting = part.partition("=")
            props[key] = int(setting) if setting.isdigit() else setting
    return model, props


@pytest.mark.parametrize("hypervisor", ["generic", "kvm"])
@pytest.mark.parametrize("members", [(MILAN, ROME), (MILAN, ROME, ZEN4)])
def test_qemu_accepts_the_cpu_value(members: tuple[str, ...], hypervisor: str) -> None:
    value = _baseline(members, "qemu", "--hypervisor", hypervisor).strip()
    assert "\n" not in value and " " not in value
    model, props = _qemu_props(value)
    # Nothing it asks for is a bit no KVM guest sees: QEMU's enforce would refuse to start.
    required = {map_feature(name)[1] for name, wanted in props.items() if wanted is True}
    assert not required & NEVER_OFFERED, value
    if qemu_binary() is None:
        pytest.skip("qemu-system-x86_64 not installed (Debian package qemu-system-x86)")
    # QEMU starts a vCPU with it (a name it does not know makes it exit with an error) ...
    with Qmp(["-machine", "pc", "-accel", "tcg", "-S", "-display", "none", "-cpu", value]) as q:
        path = q.command("query-cpus-fast")[0]["qom-path"]
        assert q.command("qom-get", path=path, property="phys-bits") == props["phys-bits"]
    # ... and its static expansion (no TCG filtering) sets every feature as asked.
    features = {k: v for k, v in props.items() if isinstance(v, bool)}
    with Qmp(["-machine", "none", "-accel", "tcg"]) as q:
        expanded = q.command(
            "query-cpu-model-expansion", type="static", model={"name": model, "props": features}
        )["model"]["props"]
    for name, wanted in features.items():
        assert expanded.get(name) is wanted, name


def test_hyperv_names_both_modes_and_what_is_not_published() -> None:
    text = _baseline((MILAN, ROME), "hyperv")
    assert "-CompatibilityForMigrationEnabled $true" in text
    assert "-CompatibilityForMigrationMode CommonClusterFeatureSet" in text
    assert "MinimumFeatureSet" in text
    assert "does not publish" in text
    doc = json.loads(_baseline((MILAN, ROME), "json"))["hyperv"]
    assert [m["mode"] for m in doc["modes"]] == ["MinimumFeatureSet", "CommonClusterFeatureSet"]
    assert all(m["hides"] is None and m["hides_known"] is False for m in doc["modes"])


def test_mixed_vendors_have_no_baseline_to_apply() -> None:
    result = run_cli(
        "baseline", f"dump:{shared_dump(MILAN)}", "model:icelake", "--format", "libvirt"
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "vendors" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_no_hosts_is_a_usage_error() -> None:
    result = run_cli("baseline", "--format", "qemu")
    assert result.returncode == 2 and "no hosts" in result.stderr


def test_json_and_another_format_is_a_usage_error() -> None:
    result = run_cli("baseline", "model:qemu/EPYC-Rome", "--json", "--format", "libvirt")
    assert result.returncode == 2 and result.stdout == "" and "give one" in result.stderr


def test_applied_baselines_leave_out_and_name_what_no_kvm_guest_sees() -> None:
    """Milan + Rome share tce and mcommit (AMD 0x80000001 ECX[17], 0x80000008 EBX[8]); the
    generic baseline keeps them, but KVM offers neither, so libvirt and QEMU would refuse a
    VM requiring them: the definitions to apply leave them out and say why."""
    doc = json.loads(_baseline((MILAN, ROME), "json"))
    assert {"tce", "mcommit"} <= set(doc["features"])
    nearest = doc["qemu_models"][0]
    assert {"tce", "mcommit"} <= set(nearest["not_offered"])
    assert not set(nearest["require"]) & NEVER_OFFERED
    assert not set(nearest["not_expressible"]) & NEVER_OFFERED
    result = run_cli("baseline", *_args((MILAN, ROME)), "--format", "libvirt")
    assert result.returncode == 0, result.stderr
    cpu = ET.fromstring(result.stdout)
    required = {map_feature(f.get("name") or "")[1] for f in cpu.findall("feature")}
    assert not required & NEVER_OFFERED
    assert "no KVM guest sees them" in result.stdout and "tce" in result.stdout
    assert "no KVM guest sees mcommit tce" in result.stderr


def test_kvm_view_drops_what_no_kvm_guest_sees() -> None:
    generic = json.loads(_baseline((MILAN, ROME), "json"))
    kvm = json.loads(_baseline((MILAN, ROME), "json", "--hypervisor", "kvm"))
    # mcommit and tce: KVM never offers them (kvm_offerable); arch_capabilities: KVM emulates it.
    assert {"mcommit", "tce"} <= set(generic["features"]) - set(kvm["features"])
    assert "arch_capabilities" in set(kvm["features"]) - set(generic["features"])


def test_online_cluster_gives_the_offline_baseline(tmp_path: Path) -> None:
    members = (MILAN, ROME)
    offline = json.loads(_baseline(members, "json"))
    offline_xml = _baseline(members, "libvirt")
    coordinator = start_coordinator(tmp_path, "--allow-replayed")
    agents: list[Daemon] = []
    try:
        address = coordinator.address
        for host, name in zip(("milan-1", "rome-1"), members, strict=True):
            agents.append(
                start_agent(
                    tmp_path, address, host, "--replay-dump", str(shared_dump(name)), cluster="c"
                )
            )

        def registered() -> bool:
            listed = run_cli("hosts", "--json", "--coordinator", address)
            return listed.returncode == 0 and len(json.loads(listed.stdout)) == 2

        wait_until(registered, what="both replayed hosts registered")
        online = run_cli("baseline", "--cluster", "c", "--coordinator", address)
        online_xml = run_cli(
            "baseline", "--cluster", "c", "--format", "libvirt", "--coordinator", address
        )
    finally:
        for agent in agents:
            agent.stop()
        coordinator.stop()
    assert online.returncode == 0, online.stderr
    doc = json.loads(online.stdout)
    assert doc["cluster"] == "c" and sorted(doc["members"]) == ["milan-1", "rome-1"]
    for key in ("features", "xsave_components", "physical_bits", "vendor", "qemu_models"):
        assert doc[key] == offline[key], key
    # The element differs only in its comment line (cluster and member count).
    assert online_xml.stdout.splitlines()[1:] == offline_xml.splitlines()[1:]


def test_every_same_vendor_pair_of_shared_dumps_round_trips() -> None:
    """Each pair's libvirt baseline, read back, is accepted by both members (both views)."""
    from itertools import combinations

    from cpucompat.agent.raw import RawDataError
    from cpucompat.coordinator.domain.audit import HostInput, audit
    from cpucompat.coordinator.domain.cluster_baseline import ClusterBaseline, render_libvirt
    from cpucompat.coordinator.domain.compat import check
    from cpucompat.coordinator.domain.kvm_offerable import Hypervisor
    from cpucompat.coordinator.domain.libvirt_cpu import parse_domain_cpu
    from cpucompat.coordinator.domain.sides import requirement_of_domain, target_of
    from tests.support.shared import manifest_entries, shared_dumps_or_skip

    shared_dumps_or_skip()
    by_vendor: dict[str, list[str]] = {}
    for entry in manifest_entries():
        try:
            profile = shared_profile(entry["file"])
        except RawDataError:
            continue
        by_vendor.setdefault(profile.vendor, []).append(entry["file"])
    checked = 0
    for hypervisor in Hypervisor:
        for vendor in ("GenuineIntel", "AuthenticAMD"):
            for pair in combinations(sorted(by_vendor.get(vendor, [])), 2):
                report = audit(
                    [HostInput(n, shared_profile(n)) for n in pair], hypervisor=hypervisor
                )
                baseline = ClusterBaseline.from_audit(report)
                text = render_libvirt(baseline, baseline.nearest_models(1)[0])
                cpu = parse_domain_cpu(text, "baseline.xml")
                req = requirement_of_domain(cpu, None, "baseline.xml", hypervisor=hypervisor)
                for name in pair:
                    target = target_of(shared_profile(name), name, hypervisor=hypervisor)
                    verdict = check(req, target)
                    assert verdict.compatible, (hypervisor, pair, name, verdict.to_json())
                    checked += 1
    assert checked > 0
