"""An audit's matrix row gives exactly the verdicts `check` gives pair by pair."""

from __future__ import annotations

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.domain.baselines import resolve_baseline
from cpucompat.coordinator.domain.compat import check, check_row
from cpucompat.coordinator.domain.kvm_offerable import Hypervisor
from cpucompat.coordinator.domain.sides import requirement_of, target_of
from tests.support.paths import FIXTURES, PROCESSORS

DUMPS = FIXTURES / "dumps"

MODELS = ("model:qemu/EPYC", "model:qemu/Cascadelake-Server", "level:x86-64-v2")


def sides() -> list[object]:
    dumps = sorted(p for p in PROCESSORS.iterdir() if p.suffix in (".txt", ".json"))
    dumps.append(DUMPS / "libcpuid-multi.txt")  # a format that cannot tell some bits
    return [decode(load_dump(p)) for p in dumps] + [resolve_baseline(m) for m in MODELS]


def test_every_row_equals_check_pair_by_pair_under_both_rules() -> None:
    all_sides = sides()
    for hypervisor in Hypervisor:
        views = [target_of(s, f"t{n}", hypervisor=hypervisor) for n, s in enumerate(all_sides)]
        # Dumps that cannot tell some bits make targets that warn: the row keeps the warning.
        assert any(v.unknown_features for v in views)
        for n, source in enumerate(all_sides):
            req = requirement_of(source, f"s{n}", hypervisor=hypervisor)
            assert check_row(req, views) == [check(req, v) for v in views]
