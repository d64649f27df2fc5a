"""One decision path: check, targets, audit and fail-over plans never disagree on a pair.

Every real processor the tests can reach (the shared dumps when present, the
project's fixtures always) is registered in an in-process coordinator (real
SQLite, replayed captures), then every ordered pair is asked through each
door. Each file is decoded once and the engine caches per distinct profile,
so the cost follows distinct profiles.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cpucompat.agent.dumps import load_valid_dump
from cpucompat.agent.raw import RawCapture, RawDataError
from cpucompat.coordinator.compatibility import Ref, audit_offline
from cpucompat.coordinator.domain.compat import Verdict
from cpucompat.coordinator.domain.kvm_offerable import Hypervisor
from cpucompat.coordinator.domain.policy import OfflineAction
from cpucompat.coordinator.server import Coordinator, CoordinatorConfig
from tests.support.daemons import run_cli
from tests.support.paths import FIXTURES, SHARED_DUMPS
from tests.support.shared import shared_dump

CLUSTER = "every"
MODELS = ("model:zen3", "model:icelake", "level:x86-64-v3@amd", "model:qemu/EPYC-Milan")
RYZEN_5700U = "amd-zen2-amd-ryzen-7-5700u-with-radeon-graphics.txt"
MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"


@dataclass(frozen=True)
class Processor:
    host: str
    path: Path
    capture: RawCapture


def _processors() -> list[Processor]:
    """Every dump that imports: shared dumps (if present) and the project's fixtures."""
    paths = sorted(FIXTURES.rglob("*.*"))
    if SHARED_DUMPS.is_dir():
        paths += sorted(p for p in SHARED_DUMPS.iterdir() if p.suffix in (".txt", ".json"))
    out = []
    for path in paths:
        if path.name == "MANIFEST.json":
            continue
        try:
            capture = load_valid_dump(path)
        except (RawDataError, OSError, ValueError):
            continue  # fixtures of refused input (bad-*, empty, unknown format)
        out.append(Processor(f"p{len(out):02d}", path, capture))
    return out


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Coordinator, list[Processor]]]:
    processors = _processors()
    assert len(processors) >= 5, "the project's fixtures alone hold several processors"
    folder = tmp_path_factory.mktemp("one-path")
    coordinator = Coordinator(
        CoordinatorConfig(db_path=folder / "c.db", allow_replayed=True, durable=False)
    )
    for p in processors:
        coordinator.registry.report(p.host, CLUSTER, p.capture, heartbeat_interval=3600)
        coordinator.vms.register(f"vm-{p.host}", CLUSTER, boot_host=p.host)
    yield coordinator, processors
    coordinator.close()


def _reasons(verdict: Verdict) -> list[dict[str, Any]]:
    return [r.to_json() for r in verdict.reasons]


def _check_all(coordinator: Coordinator, sources: list[Ref], targets: list[Ref]) -> dict:
    decisions = coordinator.decisions
    return {
        (s.label, t.label): decisions.check(s, t)
        for s in sources
        for t in targets
        if s.label != t.label
    }


def test_audit_targets_and_plans_agree_with_check_on_every_pair(
    world: tuple[Coordinator, list[Processor]],
) -> None:
    coordinator, processors = world
    decisions = coordinator.decisions
    hosts = [Ref.host(p.host) for p in processors]
    models = [Ref.model(m) for m in MODELS]
    verdicts = _check_all(coordinator, hosts + models, hosts + models)

    # The audit's pair verdicts (registered hosts and models mixed) are check's, reasons too.
    report = decisions.audit(CLUSTER, models)
    doc = report.to_json()
    assert doc["pairs_mode"] == "hosts"
    assert len(doc["pairs"]) == len(verdicts)
    for pair in doc["pairs"]:
        verdict = verdicts[(pair["source"], pair["target"])]
        assert pair["compatible"] == verdict.compatible, (pair["source"], pair["target"])
        assert pair["reasons"] == _reasons(verdict), (pair["source"], pair["target"])
    assert (report.offline_action == "SAVE") == all(v.compatible for v in verdicts.values())
    # Groups hold only hosts that accept each other's VMs, both ways.
    for group in doc["groups"]:
        for a in group["hosts"]:
            for b in group["hosts"]:
                assert a == b or verdicts[(a, b)].compatible, (a, b)

    # `targets` lists exactly the hosts check accepts, for hosts and models as sources.
    for source in hosts + models:
        listed = decisions.targets(source, CLUSTER)
        accepted = {record.host_id for record, v in listed if v.compatible}
        expected = {
            h.label
            for h in hosts
            if h.label != source.label and verdicts[(source.label, h.label)].compatible
        }
        assert accepted == expected, source.label
        for record, v in listed:
            assert _reasons(v) == _reasons(verdicts[(source.label, record.host_id)])

    # A fail-over plan saves exactly when check accepts the VM's boot host -> target.
    policy = coordinator.policies.get(CLUSTER).decision
    assert policy.pinned is None
    assert (policy.computed == OfflineAction.SAVE) == (report.offline_action == "SAVE")
    for a in hosts:
        for b in hosts:
            if a.label == b.label:
                continue
            plan = coordinator.vms.plan(f"vm-{a.label}", b.label)
            verdict = verdicts[(a.label, b.label)]
            assert plan.verdict.compatible == verdict.compatible, (a.label, b.label)
            assert _reasons(plan.verdict) == _reasons(verdict)
            want = OfflineAction.SAVE if verdict.compatible else OfflineAction.SHUTDOWN
            assert plan.action == want, (a.label, b.label)


def test_under_kvm_targets_and_audit_agree_with_check_and_differ_from_generic(
    world: tuple[Coordinator, list[Processor]],
) -> None:
    coordinator, processors = world
    decisions = coordinator.decisions
    hosts = [Ref.host(p.host) for p in processors]
    kvm = {
        (s.label, t.label): decisions.check(s, t, Hypervisor.KVM)
        for s in hosts
        for t in hosts
        if s.label != t.label
    }
    for source in hosts:
        listed = decisions.targets(source, CLUSTER, Hypervisor.KVM)
        accepted = {record.host_id for record, v in listed if v.compatible}
        assert accepted == {
            t.label
            for t in hosts
            if t.label != source.label and kvm[(source.label, t.label)].compatible
        }, source.label
    report = decisions.audit(CLUSTER, [], Hypervisor.KVM)
    assert report.view.startswith("kvm")
    for pair in report.to_json()["pairs"]:
        verdict = kvm[(pair["source"], pair["target"])]
        assert pair["compatible"] == verdict.compatible, (pair["source"], pair["target"])
        assert pair["reasons"] == _reasons(verdict)
    # The generic answers are still the classes' (the caches never mix the two views).
    generic = _check_all(coordinator, hosts, hosts)
    assert all(v.view != kvm[k].view or v.view.startswith("offer") for k, v in generic.items())
    assert all(not v.view.startswith("kvm") for v in generic.values())


def test_offline_audit_of_the_dumps_agrees_with_check(
    world: tuple[Coordinator, list[Processor]],
) -> None:
    coordinator, processors = world
    refs = [Ref.dump(str(p.path), p.capture) for p in processors]
    report = audit_offline(refs)
    by_label = {f"dump:{p.path}": p.host for p in processors}
    verdicts = _check_all(
        coordinator, [Ref.host(p.host) for p in processors], [Ref.host(p.host) for p in processors]
    )
    for pair in report.to_json()["pairs"]:
        verdict = verdicts[(by_label[pair["source"]], by_label[pair["target"]])]
        assert pair["compatible"] == verdict.compatible, (pair["source"], pair["target"])
        assert pair["reasons"] == _reasons(verdict)


def test_ryzen_5700u_to_milan_is_compatible_through_check_and_audit() -> None:
    """Regression: the audit required bits the Ryzen dump cannot tell (xfd) and refused."""
    ryzen, milan = shared_dump(RYZEN_5700U), shared_dump(MILAN)
    check = run_cli("check", f"dump:{ryzen}", f"dump:{milan}", "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    assert json.loads(check.stdout)["compatible"] is True
    back = run_cli("check", f"dump:{milan}", f"dump:{ryzen}", "--json")
    assert back.returncode == 3  # Milan has erms, fsrm, invpcid, ... the Ryzen lacks

    audit = run_cli("audit", f"dump:{ryzen}", f"dump:{milan}", "--json")
    assert audit.returncode == 3, audit.stderr  # one direction still refuses
    doc = json.loads(audit.stdout)
    pairs = {(p["source"], p["target"]): p for p in doc["pairs"]}
    forward = pairs[(f"dump:{ryzen}", f"dump:{milan}")]
    assert forward["compatible"] is True and forward["reasons"] == []
    assert [(p["source"], p["target"]) for p in doc["blocking_pairs"]] == [
        (f"dump:{milan}", f"dump:{ryzen}")
    ]
    readable = run_cli("audit", f"dump:{ryzen}", f"dump:{milan}")
    assert "xfd" not in readable.stdout
    # The Ryzen alone with a copy of itself audits to SAVE.
    assert run_cli("check", f"dump:{ryzen}", f"dump:{ryzen}").returncode == 0
