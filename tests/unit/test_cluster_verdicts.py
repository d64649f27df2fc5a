"""A cluster's kept verdicts answer exactly what a fresh audit of its members answers.

The policy engine keeps each cluster's distinct profiles and refused pairs between
changes (`ClusterVerdicts`) instead of auditing the cluster on every report. Whatever
sequence of member sets a cluster goes through (hosts joining, leaving, changing
profile, in any order), each answer must equal the audit's: SAVE as far as the
processors go exactly when the audit finds one group, and the same refused pairs
listed, in the same order, with the same total.
"""

from __future__ import annotations

from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.profile import Profile
from cpucompat.coordinator.domain.audit import HostInput, audit
from cpucompat.coordinator.domain.baselines import Baseline, resolve_baseline
from cpucompat.coordinator.domain.cluster_verdicts import ClusterVerdicts
from cpucompat.coordinator.domain.kvm_offerable import Hypervisor
from cpucompat.coordinator.policy import PolicyInput, decide
from tests.support.paths import FIXTURES, PROCESSORS

MODELS = ("model:qemu/EPYC", "model:qemu/EPYC-Rome", "model:qemu/Cascadelake-Server")


@cache
def sources() -> tuple[Profile | Baseline, ...]:
    """Project fixtures of both vendors, a dump format that cannot tell some bits, and
    named models; each profile twice as separate objects (the registry may hold two
    objects of one content: they must count as one processor)."""
    dumps = sorted(p for p in PROCESSORS.iterdir() if p.suffix in (".txt", ".json"))
    dumps.append(FIXTURES / "dumps" / "libcpuid-multi.txt")
    out: list[Profile | Baseline] = []
    for path in dumps:
        out += [decode(load_dump(path)), decode(load_dump(path))]
    return (*out, *(resolve_baseline(m) for m in MODELS))


# A cluster's life: each step assigns some hosts (of 12 names) a source, or removes them.
steps = st.lists(
    st.dictionaries(st.integers(0, 11), st.one_of(st.none(), st.integers(0, 10_000)), min_size=1),
    min_size=1,
    max_size=8,
)


def _inputs(members: dict[int, int], pool: tuple[Profile | Baseline, ...]) -> list[HostInput]:
    return [
        HostInput(f"h{n:02d}", pool[s % len(pool)], stale=n % 5 == 0)
        for n, s in sorted(members.items())
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps, st.sampled_from(list(Hypervisor)), st.integers(1, 25))
def test_kept_verdicts_answer_as_a_fresh_audit_after_every_change(
    life: list[dict[int, int | None]], hypervisor: Hypervisor, limit: int
) -> None:
    pool = sources()
    kept = ClusterVerdicts(hypervisor)
    members: dict[int, int] = {}
    for step in life:
        for host, source in step.items():
            if source is None:
                members.pop(host, None)
            else:
                members[host] = source
        if not members:
            continue
        hosts = _inputs(members, pool)
        found = kept.blocking(hosts, limit)
        report = audit(hosts, pair_limit=0, hypervisor=hypervisor, advice=False)
        assert found.processors_ok == (len(report.groups) <= 1)
        listed, total = report.ranked_blocking(limit)
        assert (found.listed, found.total) == (listed, total)


def test_a_policy_kept_between_changes_equals_one_decided_afresh() -> None:
    """The engine's path (one kept `ClusterVerdicts` per cluster) against a fresh decision
    at each step of a mixed cluster that changes host by host."""
    pool = sources()
    kept = ClusterVerdicts()
    members = {n: n % 3 for n in range(9)}
    for step in range(12):
        members[step % 9] = (members[step % 9] + 5 * step + 1) % len(pool)
        inputs = [PolicyInput(f"h{n}", pool[s]) for n, s in sorted(members.items())]
        incremental = decide("lab", inputs, None, verdicts=kept)
        fresh = decide("lab", inputs, None)
        assert incremental.same_as(fresh)
        assert incremental.to_json() == fresh.to_json()


def test_a_profile_that_leaves_takes_its_refused_pairs_with_it() -> None:
    """A cluster mixed by one host becomes uniform when that host changes to the others'
    processor: nothing of the departed profile may be left blocking."""
    pool = sources()
    kept = ClusterVerdicts()
    a = pool[0]
    b = next(s for s in pool if isinstance(s, Profile) and s.vendor != getattr(a, "vendor", ""))
    mixed = [HostInput("h1", a), HostInput("h2", a), HostInput("h3", b)]
    assert not kept.blocking(mixed, 20).processors_ok
    uniform = [HostInput("h1", a), HostInput("h2", a), HostInput("h3", a)]
    found = kept.blocking(uniform, 20)
    assert found.processors_ok and found.total == 0 and found.listed == []
