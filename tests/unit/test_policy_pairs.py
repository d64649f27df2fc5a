"""What a cluster's policy lists as blocking pairs: per distinct profile, capped, counted.

A mixed cluster's policy row is read and written on every change of the cluster, so it
lists one pair per ordered pair of distinct profiles (an example host and a host count
per side) and at most POLICY_PAIRS_LISTED of them, those covering most host pairs first,
with the total beside; `cpucompat audit --cluster` lists every pair.
"""

from __future__ import annotations

import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.domain.audit import HostInput, audit
from cpucompat.coordinator.domain.baselines import resolve_baseline
from cpucompat.coordinator.domain.policy import OfflineAction, PolicyRefusedError, check_pin
from cpucompat.coordinator.policy import POLICY_PAIRS_LISTED, PolicyInput, decide
from tests.support.paths import PROCESSORS

ZEN3 = PROCESSORS / "amd-zen3-x3d-l3-edited.cpuid-r.txt"
SKYLAKE = PROCESSORS / "intel-skylake-leaf2-edited.cpuid-r.txt"

MODELS = [
    "model:qemu/EPYC",
    "model:qemu/EPYC-Rome",
    "model:qemu/EPYC-Milan",
    "model:qemu/Broadwell",
    "model:qemu/Cascadelake-Server",
    "model:qemu/Cooperlake",
    "model:qemu/Denverton",
    "model:qemu/Conroe",
]


def test_hosts_alike_share_one_pair_with_their_counts() -> None:
    zen3, skylake = decode(load_dump(ZEN3)), decode(load_dump(SKYLAKE))
    members = [PolicyInput(f"zen3-{n}", zen3) for n in range(3)] + [
        PolicyInput(f"sky-{n}", skylake) for n in range(2)
    ]
    decision = decide("lab", members, None)
    assert decision.action == OfflineAction.SHUTDOWN
    # Six refused host pairs each way, one line each way.
    pairs = {(p["source"], p["target"]): p for p in decision.blocking_pairs}
    assert set(pairs) == {("zen3-0", "sky-0"), ("sky-0", "zen3-0")}
    forward = pairs[("zen3-0", "sky-0")]
    assert (forward["source_hosts"], forward["target_hosts"]) == (3, 2)
    assert forward["source_profile"] == zen3.fingerprint
    assert forward["target_profile"] == skylake.fingerprint
    assert forward["reasons"] and not forward["compatible"]
    assert decision.blocking_total == 2
    assert "zen3-0 (+2 alike) -> sky-0 (+1 alike)" in decision.reason
    # The audit of the same hosts refuses exactly these profile pairs.
    report = audit([HostInput(m.name, m.source) for m in members], pair_limit=0)
    refused = {(p["source_example"], p["target_example"]) for p in report.pairs(True)}
    assert refused == set(pairs)


def test_a_policy_lists_at_most_the_cap_most_hosts_first_and_counts_all() -> None:
    members = [
        PolicyInput(f"{spec}#{n}", resolve_baseline(spec), kind="model")
        for i, spec in enumerate(MODELS)
        for n in range(i + 1)  # a different number of hosts per model
    ]
    decision = decide("lab", members, None)
    full = audit([HostInput(m.name, m.source, kind="model") for m in members], pair_limit=0)
    every = full.pairs(blocking_only=True)
    assert len(every) > POLICY_PAIRS_LISTED  # the cap is exercised
    assert decision.blocking_total == len(every)
    listed = decision.blocking_pairs
    assert len(listed) == POLICY_PAIRS_LISTED
    weights = [p["source_hosts"] * p["target_hosts"] for p in listed]
    assert weights == sorted(weights, reverse=True)
    # No pair left out covers more host pairs than the last one listed.
    shown = {(p["source"], p["target"]) for p in listed}
    left_out = [
        p["source_hosts"] * p["target_hosts"]
        for p in every
        if (p["source_example"], p["target_example"]) not in shown
    ]
    assert max(left_out) <= weights[-1]
    assert f"and {len(every) - 3} more" in decision.reason
    # Pinning SAVE is refused naming the first pairs and how many more there are.
    with pytest.raises(PolicyRefusedError) as refused:
        check_pin(decision, OfflineAction.SAVE)
    assert f"and {len(every) - 5} more" in str(refused.value)


def test_the_policys_audit_without_advice_keeps_every_verdict_and_group() -> None:
    members = [
        HostInput(f"{spec}#{n}", resolve_baseline(spec), kind="model")
        for i, spec in enumerate(MODELS)
        for n in range(i % 3 + 1)
    ]
    full = audit(members, pair_limit=0)
    light = audit(members, pair_limit=0, advice=False)
    assert light.matrix == full.matrix and light.groups == full.groups
    assert light.offline_action == full.offline_action and light.reasons == full.reasons
    assert light.ranked_blocking(50) == full.ranked_blocking(50)
    # What is left out is what only a person reads.
    amd = [
        HostInput(path.name, decode(load_dump(path)))
        for path in (ZEN3, PROCESSORS / "amd-zen5-zen5c-edited.cpuid-r.txt")
    ]
    full, light = audit(amd), audit(amd, advice=False)
    assert full.baseline.microarchitecture is not None and full.best_removal.host is not None
    assert light.baseline.microarchitecture is None and light.best_removal.host is None
    assert light.baseline.x86_64_level is None and not any(p.loses for p in light.profiles)
    assert full.baseline.x86_64_level is not None and any(p.loses for p in full.profiles)
    assert light.matrix == full.matrix and light.groups == full.groups
