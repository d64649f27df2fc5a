"""Pinned cluster baselines: the EVC idea, exact (`cpucompat cluster baseline pin`).

A pin freezes what VMs registered with ``--baseline cluster`` booted under: the
cluster's common baseline at pin time (`domain.audit`, one decision path) or a
named baseline. Every host is measured against it by `check` itself (the pinned
requirement against the host's target view), so a host that cannot give it is
BELOW_BASELINE, refuses those VMs as a target, and gets an event when it becomes
so (a join, a new profile) or stops being so. The measure is recomputed in the
unit of work of every registry change (`Registry.on_change`), like the policy.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

from cpucompat.agent.errors import NotFoundError

from .domain.audit import HostInput, audit
from .domain.cluster_baseline import (
    ClusterBaseline,
    ClusterBaselineError,
    from_named,
    from_pin_document,
    pin_document,
    pinned_requirement,
)
from .domain.compat import check
from .domain.hosts import EventKind
from .domain.requirement import Requirement, component_names
from .domain.sides import target_of
from .registry import Registry, add_event
from .storage.interface import BaselinePinRow, Storage, UnitOfWork

CURRENT = "current"
PINNED = "cluster"
"""``vm register --baseline cluster``: the VM booted under its cluster's pinned baseline."""
BELOW_BASELINE = "BELOW_BASELINE"


class NoPinError(NotFoundError):
    """A cluster without a pinned baseline; the message names the fix."""


@dataclass(frozen=True)
class HostMeasure:
    """One host against the pin."""

    host_id: str
    below: bool
    missing: tuple[str, ...]
    summary: str


@dataclass(frozen=True)
class Pin:
    """A stored pin with its baseline."""

    cluster: str
    source: str
    baseline: ClusterBaseline
    pinned_at: float
    pinned_by: str

    @property
    def requirement(self) -> Requirement:
        return pinned_requirement(self.baseline)


BASELINE_PIN_TOPIC = "baseline-pin"  # announced with the cluster whose pin or flags changed


class BaselinePins:
    """Stores pins and measures hosts against them."""

    def __init__(self, store: Storage, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self._lock = threading.Lock()
        self._pins: dict[str, Pin] = {}
        self._below: dict[str, frozenset[str]] = {}
        with store.read() as uow:
            for row in uow.baseline_pins.all():
                self._pins[row.cluster] = _pin(row)
        for cluster in self._pins:
            self._below[cluster] = frozenset(m.host_id for m in self.measure(cluster) if m.below)
        registry.on_change.append(self._on_change)

    # ---- reading --------------------------------------------------------------------

    def get(self, cluster: str) -> Pin | None:
        with self._lock:
            return self._pins.get(cluster)

    def require(self, cluster: str) -> Pin:
        pin = self.get(cluster)
        if pin is None:
            raise NoPinError(
                f"cluster {cluster} has no pinned baseline; pin one first: "
                f"`cpucompat cluster baseline pin {cluster}`"
            )
        return pin

    def measure(self, cluster: str) -> list[HostMeasure]:
        """Every host of the cluster against its pin (empty without a pin)."""
        pin = self.get(cluster)
        if pin is None:
            return []
        hosts = self.registry.hosts(cluster)
        return [_measure(pin, h.host_id, h.profile) for h in sorted(hosts, key=lambda h: h.host_id)]

    # ---- writing --------------------------------------------------------------------

    def pin(self, cluster: str, source: str = CURRENT, by: str = "") -> Pin:
        source = source or CURRENT
        if source == CURRENT:
            members = self.registry.hosts(cluster)
            if not members:
                raise ClusterBaselineError(
                    f"cluster {cluster} has no hosts to take a baseline from; start its agents "
                    "or pin a named baseline (--from model:qemu/NAME)"
                )
            report = audit([HostInput(h.host_id, h.profile) for h in members], cluster=cluster)
            baseline = ClusterBaseline.from_audit(report)
        else:
            baseline = from_named(source, cluster)
        now = self.registry.clock()
        row = BaselinePinRow(cluster, source, pin_document(baseline, source), now, by)
        pin = _pin(row)
        with self.store.unit_of_work() as uow:
            uow.announce(BASELINE_PIN_TOPIC, cluster)
            uow.baseline_pins.put(row)
            add_event(
                uow,
                now,
                cluster,
                "",
                EventKind.BASELINE_PINNED,
                f"cluster {cluster}: baseline pinned from {source} "
                f"({len(baseline.features)} features)" + (f" by {by}" if by else ""),
                source=source,
            )
            below = self._flag(uow, cluster, pin, frozenset(), now)
            uow.on_commit(lambda: self._set(cluster, pin, below))
        return pin

    def unpin(self, cluster: str) -> Pin:
        pin = self.require(cluster)
        now = self.registry.clock()
        with self.store.unit_of_work() as uow:
            uow.announce(BASELINE_PIN_TOPIC, cluster)
            uow.baseline_pins.delete(cluster)
            add_event(
                uow,
                now,
                cluster,
                "",
                EventKind.BASELINE_UNPINNED,
                f"cluster {cluster}: baseline unpinned; no host is below it any more",
            )
            uow.on_commit(lambda: self._set(cluster, None, frozenset()))
        return pin

    def refresh(self, cluster: str | None = None) -> None:
        """Another coordinator changed ``cluster``'s pin (None: maybe any): mirror it."""
        with self.store.read() as uow:
            rows = {r.cluster: r for r in uow.baseline_pins.all()}
        with self._lock:
            known = set(self._pins)
        for name in (known | set(rows)) if cluster is None else {cluster}:
            row = rows.get(name)
            if row is None:
                self._set(name, None, frozenset())
                continue
            pin = _pin(row)
            with self._lock:
                self._pins[name] = pin
            self._set(name, pin, frozenset(m.host_id for m in self.measure(name) if m.below))

    # ---- inside the registry's unit of work ------------------------------------------

    def _on_change(self, uow: UnitOfWork, clusters: set[str], now: float) -> None:
        for cluster in sorted(clusters):
            # From the database, not the mirror: a pin committed just before this change
            # is seen even if its own commit hook has not run yet.
            row = uow.baseline_pins.get(cluster)
            if row is None:
                continue
            pin = _pin(row)
            with self._lock:
                before = self._below.get(cluster, frozenset())
            below = self._flag(uow, cluster, pin, before, now, stored=True)
            uow.announce(BASELINE_PIN_TOPIC, cluster)
            uow.on_commit(partial(self._set, cluster, pin, below))

    def _flag(
        self,
        uow: UnitOfWork,
        cluster: str,
        pin: Pin,
        before: frozenset[str],
        now: float,
        *,
        stored: bool = False,
    ) -> frozenset[str]:
        """The hosts below the pin as stored in ``uow``; an event for each that changed."""
        measures = []
        for row in uow.hosts.in_cluster(cluster):
            profile = self.registry.profile_for_version(uow, row.profile_version)
            measures.append(_measure(pin, row.host_id, profile))
        below = frozenset(m.host_id for m in measures if m.below)
        for m in measures:
            if m.below and m.host_id not in before:
                add_event(
                    uow,
                    now,
                    cluster,
                    m.host_id,
                    EventKind.HOST_BELOW_BASELINE,
                    f"host {m.host_id} cannot run cluster {cluster}'s pinned baseline "
                    f"({m.summary}); it is no target for VMs registered under it",
                    missing=list(m.missing),
                )
            elif not m.below and m.host_id in before and stored:
                add_event(
                    uow,
                    now,
                    cluster,
                    m.host_id,
                    EventKind.HOST_BELOW_BASELINE,
                    f"host {m.host_id} runs cluster {cluster}'s pinned baseline again",
                    missing=[],
                )
        return below

    def _set(self, cluster: str, pin: Pin | None, below: frozenset[str]) -> None:
        with self._lock:
            if pin is None:
                self._pins.pop(cluster, None)
                self._below.pop(cluster, None)
            else:
                self._pins[cluster] = pin
                self._below[cluster] = below


def _pin(row: BaselinePinRow) -> Pin:
    return Pin(
        cluster=row.cluster,
        source=row.source,
        baseline=from_pin_document(row.cluster, row.baseline),
        pinned_at=row.pinned_at,
        pinned_by=row.pinned_by,
    )


def measure_host(pin: Pin, host_id: str, source: Any) -> HostMeasure:
    """One host, dump or model against the pin (`cpucompat whatif`): the flag's own rule."""
    return _measure(pin, host_id, source)


def _measure(pin: Pin, host_id: str, profile: Any) -> HostMeasure:
    verdict = check(pin.requirement, target_of(profile, host_id))
    missing: list[str] = []
    for reason in verdict.reasons:
        missing += list(reason.features)
        if not reason.features and reason.code == "XSAVE_STATE_MISSING":
            missing += list(component_names(int(reason.data.get("missing_mask", 0) or 0)))
    summary = "; ".join(r.code for r in verdict.reasons) or "runs the baseline"
    return HostMeasure(host_id, not verdict.compatible, tuple(sorted(set(missing))), summary)
