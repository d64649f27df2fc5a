"""A cluster's distinct processors and the refused pairs between them, kept between changes.

A cluster's policy is recomputed on every change of one of its hosts, and it needs
exactly what the audit's groups reduce to: whether any ordered pair of distinct
profiles is refused (there is one group exactly then, `audit`'s module docstring),
and the refused pairs covering most host pairs first (`AuditReport.ranked_blocking`).
A change of one host rarely changes which distinct profiles the cluster holds, so
this keeps them and the refused pairs between them: a change costs a pass over the
members, plus one row and one column of `check_row` for a profile the cluster did not
hold before (a firmware change rolled across a cluster), not D x D checks and the
audit's tables. The verdicts are `check_row`'s, as the audit's are; a property test
holds the two answers equal (`tests/unit/test_cluster_verdicts.py`).

Not thread-safe: the policy engine keeps one per cluster under its own lock.
"""

from __future__ import annotations

import heapq
from collections.abc import KeysView, Sequence
from typing import Any, NamedTuple, Protocol

from cpucompat.agent.profile import Profile

from .audit import HOST_KINDS, AuditError, ClassSides, class_sides, source_class
from .baselines import Baseline
from .compat import Verdict, check_row
from .kvm_offerable import Hypervisor


class Member(Protocol):
    """What the verdicts read of a member (`HostInput`, the policy's `PolicyInput`)."""

    @property
    def name(self) -> str: ...
    @property
    def source(self) -> Profile | Baseline: ...
    @property
    def kind(self) -> str: ...


class _Refused(NamedTuple):
    verdict: Verdict
    reasons: list[dict[str, Any]]  # the verdict's reasons as the policy lists them


class Blocking(NamedTuple):
    """What a cluster's policy takes from its processors."""

    processors_ok: bool
    """No ordered pair of distinct profiles is refused: one group, SAVE as far as the
    processors go."""
    listed: list[dict[str, Any]]
    """The first refused pairs of distinct profiles, those covering most host pairs
    first, as `AuditReport.ranked_blocking` gives them."""
    total: int
    """How many refused ordered pairs of distinct profiles there are."""


class ClusterVerdicts:
    """The refused pairs between a cluster's distinct profiles, updated change by change."""

    def __init__(self, hypervisor: Hypervisor = Hypervisor.GENERIC) -> None:
        self.hypervisor = hypervisor
        # Per source object met in the last pass: the object (held, so its id stays its
        # own) and its class key.
        self._sources: dict[int, tuple[Profile | Baseline, str]] = {}
        self._sides: dict[str, ClassSides] = {}
        self._refused: dict[tuple[str, str], _Refused] = {}
        self._checked: set[str] = set()  # classes whose rows and columns are in _refused

    def blocking(self, hosts: Sequence[Member], limit: int) -> Blocking:
        """The refused pairs among ``hosts`` (at least one), at most ``limit`` listed."""
        sources: dict[int, tuple[Profile | Baseline, str]] = {}
        counts: dict[str, int] = {}
        examples: dict[str, str] = {}
        names: set[str] = set()
        for h in hosts:
            name, source = h.name, h.source
            if name in names:
                raise AuditError(f"host name {name!r} appears twice; give every host its own name")
            names.add(name)
            if h.kind and h.kind not in HOST_KINDS:
                raise AuditError(f"host {name!r}: kind {h.kind!r} is not one of {HOST_KINDS}")
            known = sources.get(id(source)) or self._sources.get(id(source))
            if known is None or known[0] is not source:
                known = (source, self._key(source, name))
            sources[id(source)] = known
            key = known[1]
            if key in counts:
                counts[key] += 1
            else:
                counts[key] = 1
                examples[key] = name
        if not counts:
            raise AuditError("no hosts to audit; register hosts or pass dump files")
        self._sources = sources
        self._update(counts.keys())
        refused = self._refused
        if not refused:
            return Blocking(True, [], 0)
        # Ties on host pairs are broken by the example hosts' names, as the audit does;
        # two distinct profiles never share an example, so the order is total.
        ranked = heapq.nsmallest(
            limit,
            ((-counts[s] * counts[t], examples[s], examples[t], s, t) for (s, t) in refused),
        )
        listed = [self._pair(s, t, counts, examples) for *_, s, t in ranked]
        return Blocking(False, listed, len(refused))

    def _key(self, source: Profile | Baseline, name: str) -> str:
        """A source object met for the first time: its class key, its sides built (for
        ``name``) when the class is new."""
        key = source_class(source, name, self.hypervisor)
        if key not in self._sides:
            self._sides[key] = class_sides(source, key, name, self.hypervisor)
        return key

    def _update(self, present: KeysView[str]) -> None:
        """Forget the classes no member holds any more; check those new to the cluster
        against every class held, both ways (a pair with itself is never listed, as the
        audit skips its diagonal)."""
        gone = self._sides.keys() - present
        if gone:
            for key in gone:
                del self._sides[key]
            self._checked -= gone
            self._refused = {
                pair: r
                for pair, r in self._refused.items()
                if pair[0] not in gone and pair[1] not in gone
            }
        for key in [k for k in present if k not in self._checked]:
            side = self._sides[key]
            held = list(self._checked)
            row = check_row(side.requirement, [self._sides[t].view for t in held])
            for target, verdict in zip(held, row, strict=True):
                if not verdict.compatible:
                    self._refused[(key, target)] = _Refused(verdict, _rendered(verdict))
            for source in held:
                (verdict,) = check_row(self._sides[source].requirement, [side.view])
                if not verdict.compatible:
                    self._refused[(source, key)] = _Refused(verdict, _rendered(verdict))
            self._checked.add(key)

    def _pair(
        self, s: str, t: str, counts: dict[str, int], examples: dict[str, str]
    ) -> dict[str, Any]:
        """A refused pair as `audit`'s profile pairs give it."""
        r = self._refused[(s, t)]
        return {
            "source": self._sides[s].fingerprint,
            "target": self._sides[t].fingerprint,
            "source_hosts": counts[s],
            "target_hosts": counts[t],
            "source_example": examples[s],
            "target_example": examples[t],
            "compatible": r.verdict.compatible,
            "reasons": r.reasons,
        }


def _rendered(verdict: Verdict) -> list[dict[str, Any]]:
    return [r.to_json() for r in verdict.reasons]
