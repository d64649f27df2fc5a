"""Cluster audits over real dumps: verdict, groups, baseline, best removal, scale shape."""

from __future__ import annotations

import json

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile
from cpucompat.coordinator.domain.audit import (
    HOST_STALE,
    SAVE,
    SHUTDOWN,
    AuditError,
    HostInput,
    audit,
)
from cpucompat.coordinator.domain.baselines import resolve_baseline
from cpucompat.coordinator.domain.compat import (
    MISSING_FEATURES,
    VENDOR_MISMATCH,
    TargetView,
    check,
)
from cpucompat.coordinator.domain.requirement import Requirement
from tests.support.paths import SHARED_DUMPS as DUMPS
from tests.support.shared import shared_profile as profile

ROME = "instlatx64-AuthenticAMD0830F10_K17_Rome_CPUID.txt"
MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"
SKYLAKE_SP = "instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt"
SAPPHIRE_RAPIDS = "instlatx64-GenuineIntel00806F8_SapphireRapids_05_CPUID.txt"
HASWELL_EP = "instlatx64-GenuineIntel00306F2_HaswellEP_00_CPUID.txt"


def hosts(*names: str) -> list[HostInput]:
    return [HostInput(f"h{i}-{n.split('_')[0]}", profile(n)) for i, n in enumerate(names)]


def test_intel_plus_amd_cluster_must_shut_down() -> None:
    report = audit(hosts(SKYLAKE_SP, ROME))
    assert report.offline_action == SHUTDOWN
    doc = report.to_json()
    assert VENDOR_MISMATCH in [r["code"] for r in doc["reasons"]]
    assert {v["vendor"] for v in doc["vendors"]} == {"GenuineIntel", "AuthenticAMD"}
    assert len(doc["groups"]) == 2
    assert len(doc["blocking_pairs"]) == 2  # both directions
    for pair in doc["blocking_pairs"]:
        assert pair["reasons"][0]["code"] == VENDOR_MISMATCH
    assert doc["baseline"]["vendor"] is None


def test_identical_hosts_may_save() -> None:
    p = profile(ROME)
    report = audit([HostInput("a", p), HostInput("b", decode(load_dump(DUMPS / ROME)))])
    assert report.offline_action == SAVE
    doc = report.to_json()
    assert doc["reasons"] == []
    assert [w["code"] for w in doc["warnings"]] == ["REPLAYED_PROFILE"]
    assert len(doc["distinct_profiles"]) == 1 and doc["distinct_profiles"][0]["hosts"] == 2
    assert [g["hosts"] for g in doc["groups"]] == [["a", "b"]]
    assert doc["pairs"] == [
        {"source": "a", "target": "b", "compatible": True, "reasons": []},
        {"source": "b", "target": "a", "compatible": True, "reasons": []},
    ]
    assert doc["blocking_pairs"] == []
    assert all(h["loses"] == [] and h["replayed"] for h in doc["hosts"])
    assert doc["best_removal"]["host"] is None


def test_stale_host_forces_shutdown_with_a_reason() -> None:
    p = profile(MILAN)
    report = audit([HostInput("a", p), HostInput("b", p, stale=True)])
    assert report.offline_action == SHUTDOWN
    assert [r.code for r in report.reasons] == [HOST_STALE]
    assert report.reasons[0].data["hosts"] == ["b"]
    assert "b" in report.summary


def test_mixed_set_groups_baseline_and_best_removal() -> None:
    names = (ROME, ROME, MILAN, SKYLAKE_SP, SAPPHIRE_RAPIDS, HASWELL_EP)
    members = hosts(*names)
    report = audit(members)
    doc = report.to_json()
    json.dumps(doc)  # serializable as is
    assert doc["offline_action"] == SHUTDOWN
    assert doc["host_count"] == 6 and len(doc["distinct_profiles"]) == 5
    assert doc["pairs_mode"] == "hosts" and len(doc["pairs"]) == 6 * 5

    # Groups are exactly the classes of mutual compatibility.
    group_of = {h["name"]: h["group"] for h in doc["hosts"]}
    for a in members:
        for b in members:
            ra = Requirement.from_profile(profile_of(a), a.name)
            rb = Requirement.from_profile(profile_of(b), b.name)
            mutual = check(ra, view_of(b)).compatible and check(rb, view_of(a)).compatible
            assert mutual == (group_of[a.name] == group_of[b.name]), (a.name, b.name)
    assert sorted(len(g["hosts"]) for g in doc["groups"]) == [1, 1, 1, 1, 2]

    # The pair list agrees with check(), host by host.
    for pair in doc["pairs"]:
        a = next(m for m in members if m.name == pair["source"])
        b = next(m for m in members if m.name == pair["target"])
        assert (
            pair["compatible"]
            == check(Requirement.from_profile(profile_of(a), a.name), view_of(b)).compatible
        )
    assert doc["blocking_pairs"] == [p for p in doc["pairs"] if not p["compatible"]]
    codes = [r["code"] for r in doc["reasons"]]
    assert codes[0] == "NO_COMMON_GROUP"
    assert codes[1:3] == [VENDOR_MISMATCH, MISSING_FEATURES]  # DESIGN's order

    # The common baseline is the intersection of guest-visible features.
    reqs = [Requirement.from_profile(profile_of(m), m.name) for m in members]
    common = frozenset.intersection(*(r.features for r in reqs))
    assert doc["baseline"]["features"] == sorted(common)
    for h, r in zip(doc["hosts"], reqs, strict=True):
        assert h["loses"] == sorted(r.features - common)
    assert doc["baseline"]["x86_64_level"] in ("x86-64-v2", "x86-64-v3")
    micro = doc["baseline"]["microarchitecture"]
    assert micro is not None and resolve_baseline(f"model:{micro}").vendor is None

    # Best removal: no single host gains more features than the one named.
    best = doc["best_removal"]
    assert best["host"] is not None and best["gained"]
    for m in members:
        rest = [r for r, o in zip(reqs, members, strict=True) if o.name != m.name]
        gained = frozenset.intersection(*(r.features for r in rest)) - common
        assert len(gained) <= len(best["gained"]), m.name
        if m.name == best["host"]:
            assert sorted(gained) == best["gained"]


def profile_of(h: HostInput) -> Profile:
    assert isinstance(h.source, Profile)
    return h.source


def view_of(h: HostInput) -> TargetView:
    return TargetView.from_profile(profile_of(h), h.name)


def test_removing_the_one_amd_host_restores_save() -> None:
    report = audit(hosts(SKYLAKE_SP, SKYLAKE_SP, ROME))
    assert report.offline_action == SHUTDOWN
    best = report.best_removal
    assert best.host is not None and best.host.endswith(ROME.split("_")[0])
    assert best.offline_action_after == SAVE


def test_above_the_pair_limit_pairs_are_listed_per_profile() -> None:
    base = [profile(n) for n in (ROME, MILAN, SKYLAKE_SP)]
    many = [HostInput(f"node{i:04d}", base[i % 3]) for i in range(30)]
    report = audit(many, pair_limit=10)
    doc = report.to_json()
    assert doc["pairs_mode"] == "profiles"
    assert len(doc["pairs"]) == 3 * 2
    assert {p["source_hosts"] for p in doc["pairs"]} == {10}
    assert len(doc["hosts"]) == 30
    assert len(doc["matrix"]["compatible"]) == 3
    rome, milan = base[0].fingerprint, base[1].fingerprint
    rome_to_milan = next(p for p in doc["pairs"] if (p["source"], p["target"]) == (rome, milan))
    assert rome_to_milan["compatible"]
    assert len(doc["blocking_pairs"]) == 5  # everything but Rome -> Milan


def test_models_audit_beside_processors_and_bad_input() -> None:
    icelake = resolve_baseline("model:icelake")
    models = [HostInput(n, icelake) for n in ("x", "y")]
    report = audit(models)
    assert report.offline_action == SAVE
    assert [h["kind"] for h in report.to_json()["hosts"]] == ["model", "model"]
    mixed = audit([*models, HostInput("milan", profile(MILAN))])
    assert mixed.offline_action == SHUTDOWN  # an Intel model beside an AMD processor
    with pytest.raises(AuditError, match="source must be"):
        audit([HostInput("v", TargetView.from_profile(profile(MILAN), "v"))])  # type: ignore[arg-type]
    with pytest.raises(AuditError, match="appears twice"):
        audit([HostInput("x", profile(MILAN)), HostInput("x", profile(ROME))])
    with pytest.raises(AuditError, match="no hosts"):
        audit([])
    with pytest.raises(AuditError, match="cannot audit"):
        audit([object()])  # type: ignore[list-item]
