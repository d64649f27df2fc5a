"""Answering "can this saved state restore there?" over registered hosts, dumps and models.

A reference names a registered host, a dump's raw capture (hardware not
racked yet) or a named baseline; this module turns references into
requirements and target views and asks the domain engine. No protobuf.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from cpucompat.agent.decode import decode
from cpucompat.agent.errors import InputError
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import RawCapture, RawDataError, validate_capture

from .audit_key import InputState, audit_key, member_state
from .cache import AnswerCache, Region
from .domain.audit import AuditReport, HostInput, audit
from .domain.baselines import Baseline, nearest_microarchitecture, resolve_baseline
from .domain.compat import TargetView, Verdict, check, eligible_targets, unknown_host
from .domain.hosts import HostRecord, HostStatus
from .domain.kvm_offerable import Hypervisor
from .domain.requirement import Requirement
from .domain.sides import requirement_of, target_of
from .domain.vm_action import in_maintenance
from .registry import Registry, UnknownHostError

T = TypeVar("T")


@dataclass(frozen=True)
class Ref:
    """One side of a question: a host id, a dump's capture, or a model/level spec."""

    kind: str  # "host", "dump", "model"
    label: str
    capture: RawCapture | None = None
    vendor: str | None = None
    content: str | None = None
    """A dump's digest of its capture as sent (`convert.ref_from_proto`): what a cached
    audit's key holds for it. None: the dump is audited afresh each time."""

    @classmethod
    def host(cls, host_id: str) -> Ref:
        return cls("host", host_id)

    @classmethod
    def dump(cls, name: str, capture: RawCapture, content: str | None = None) -> Ref:
        return cls("dump", f"dump:{name}", capture, content=content)

    @classmethod
    def model(cls, spec: str, vendor: str | None = None) -> Ref:
        spec = spec if spec.startswith(("model:", "level:")) else f"model:{spec}"
        return cls("model", spec, vendor=vendor or None)


def _dump_profile(ref: Ref) -> Profile:
    assert ref.capture is not None
    try:
        validate_capture(ref.capture)
        return decode(ref.capture)
    except RawDataError as exc:
        raise InputError(f"{ref.label}: {exc}") from None


def host_view(record: HostRecord, hypervisor: Hypervisor = Hypervisor.GENERIC) -> TargetView:
    return target_of(
        record.profile,
        record.host_id,
        stale=record.status != HostStatus.ONLINE,
        replayed=record.replayed,
        hypervisor=hypervisor,
    )


def domain_side(ref: Ref) -> Profile | Baseline:
    """A dump's processor or a model, as a libvirt domain's boot host (offline)."""
    return _side(ref)


def _side(ref: Ref) -> Profile | Baseline:
    """The processor or baseline a dump or model reference names."""
    if ref.kind == "dump":
        return _dump_profile(ref)
    return resolve_baseline(ref.label, ref.vendor)


class CompatibilityService:
    """The coordinator's query side over its registry.

    Every question takes the rules for sides without a hypervisor offer
    (``hypervisor``, default the instance's): a registered host with an offer is
    decided by its offer either way, one without by the feature classes or, under
    KVM, by what KVM can ever offer (`kvm_offerable`).
    """

    def __init__(self, registry: Registry, hypervisor: Hypervisor = Hypervisor.GENERIC) -> None:
        self.registry = registry
        self.hypervisor = hypervisor

    @property
    def cache(self) -> AnswerCache:
        return self.registry.cache

    def _remember(
        self, region: Region, key: Hashable, make: Callable[[], T], records: list[HostRecord]
    ) -> T:
        """The cached answer about ``records`` (keyed by what makes it valid), made once.

        An answer made from a record the registry has replaced meanwhile is dropped again:
        the registry forgets a host's answers after it changes the mirror, this checks the
        mirror after storing, so no answer about a changed or removed host survives."""
        cache = self.registry.cache
        value: T | None = cache.get(region, key)
        if value is None:
            value = cache.put(region, key, make(), [r.host_id for r in records])
            for r in records:
                if self.registry.find(r.host_id) is not r:
                    cache.forget_host(r.host_id)
        return value

    def _rules(self, hypervisor: Hypervisor | None) -> Hypervisor:
        return self.hypervisor if hypervisor is None else hypervisor

    def host_requirement(
        self, record: HostRecord, hypervisor: Hypervisor | None = None
    ) -> Requirement:
        # A host's requirement changes only with its profile version; generic and KVM
        # answers never share an entry.
        rules = self._rules(hypervisor)
        return self._remember(
            Region.REQUIREMENT,
            (record.host_id, record.profile_version, rules),
            lambda: requirement_of(record.profile, record.host_id, hypervisor=rules),
            [record],
        )

    def host_microarchitecture(self, record: HostRecord) -> str | None:
        """The newest archspec microarchitecture the host's guest-visible features meet.

        The same rule the audit applies to a cluster's common features (under the
        feature classes, as an audit without --hypervisor), so a one-host audit's
        baseline names the same microarchitecture.
        """
        req = self.host_requirement(record, Hypervisor.GENERIC)
        return nearest_microarchitecture(req.features, req.vendor)

    def host_view(self, record: HostRecord, hypervisor: Hypervisor | None = None) -> TargetView:
        rules = self._rules(hypervisor)
        return self._remember(
            Region.VIEW,
            (record.host_id, record.profile_version, record.status, record.replayed, rules),
            lambda: host_view(record, rules),
            [record],
        )

    def requirement(self, ref: Ref, hypervisor: Hypervisor | None = None) -> Requirement:
        if ref.kind == "host":
            return self.host_requirement(self.registry.host(ref.label), hypervisor)
        return requirement_of(_side(ref), ref.label, hypervisor=self._rules(hypervisor))

    def target(self, ref: Ref, hypervisor: Hypervisor | None = None) -> TargetView:
        if ref.kind == "host":
            return self.host_view(self.registry.host(ref.label), hypervisor)
        return target_of(_side(ref), ref.label, hypervisor=self._rules(hypervisor))

    def check(self, source: Ref, target: Ref, hypervisor: Hypervisor | None = None) -> Verdict:
        """Directional: may a VM booted on ``source`` be restored on ``target``?

        Host-to-host answers are cached: fail-over tooling asks the same pairs again and
        again, and an answer changes only with the source's profile version, the target's
        version, status or replayed flag, or the rules (all in the key)."""
        pair = self._host_pair(source, target, hypervisor)
        if pair is not None:
            key, src, tgt = pair
            rules = self._rules(hypervisor)
            return self._remember(
                Region.CHECK,
                key,
                lambda: check(self.host_requirement(src, rules), self.host_view(tgt, rules)),
                [src, tgt],
            )
        requirement = self.requirement(source, hypervisor)  # an unknown source is a usage error
        try:
            view = self.target(target, hypervisor)
        except UnknownHostError:
            return unknown_host(target.label)
        return check(requirement, view)

    def _host_pair(
        self, source: Ref, target: Ref, hypervisor: Hypervisor | None
    ) -> tuple[tuple[object, ...], HostRecord, HostRecord] | None:
        if source.kind != "host" or target.kind != "host":
            return None
        src = self.registry.find(source.label)
        tgt = self.registry.find(target.label)
        if src is None or tgt is None:
            return None
        key = (
            src.host_id,
            src.profile_version,
            tgt.host_id,
            tgt.profile_version,
            tgt.status,
            tgt.replayed,
            self._rules(hypervisor),
        )
        return key, src, tgt

    def check_key(
        self, source: Ref, target: Ref, hypervisor: Hypervisor | None = None
    ) -> tuple[object, ...] | None:
        """The cache key of a host-to-host `check` (None for other questions), for
        `AnswerCache.form`."""
        pair = self._host_pair(source, target, hypervisor)
        return None if pair is None else pair[0]

    def targets(
        self, source: Ref, cluster: str | None, hypervisor: Hypervisor | None = None
    ) -> list[tuple[HostRecord, Verdict]]:
        """Every registered host (of ``cluster``) with its verdict, accepting hosts first."""
        requirement = self.requirement(source, hypervisor)
        records = [
            r
            for r in self.registry.hosts(cluster)
            if not (source.kind == "host" and r.host_id == source.label)
        ]
        views = [self.host_view(r, hypervisor) for r in records]
        by_name = {r.host_id: r for r in records}
        accepted = {v.name: verdict for v, verdict in eligible_targets(requirement, views)}
        out: list[tuple[HostRecord, Verdict]] = []
        for view in views:
            verdict = accepted.get(view.name) or check(requirement, view)
            record = by_name[view.name]
            if record.in_maintenance:
                verdict = in_maintenance(verdict, record.host_id, record.maintenance_reason)
            out.append((record, verdict))
        out.sort(key=lambda item: (not item[1].compatible, item[0].host_id))
        return out

    def audit(
        self, cluster: str | None, extra: list[Ref], hypervisor: Hypervisor | None = None
    ) -> AuditReport:
        """Registered hosts of ``cluster`` (if given) plus dumps and models, all mixed.

        Cached (`Region.AUDIT`) under everything it depends on (`audit_key`), tagged with
        every registered member: the pages of one listing, and an audit asked again while
        no member changed, share one computed report."""
        rules = self._rules(hypervisor)
        records: list[HostRecord] = []
        if cluster:
            records = self.registry.hosts(cluster)
            if not records and not extra:
                raise UnknownHostError(
                    f"no host has joined cluster {cluster!r}; see `cpucompat hosts`"
                )
        sides: list[HostRecord | Ref] = [*records]
        for ref in extra:
            sides.append(self.registry.host(ref.label) if ref.kind == "host" else ref)
        if not sides:
            raise InputError("nothing to audit: name a --cluster, hosts, dump:PATH or model:NAME")
        members = [s for s in sides if isinstance(s, HostRecord)]

        def make() -> AuditReport:
            inputs = [
                _host_input(s)
                if isinstance(s, HostRecord)
                else HostInput(s.label, _side(s), kind=s.kind)
                for s in sides
            ]
            return audit(inputs, cluster=cluster or None, hypervisor=rules)

        states: list[InputState] = []
        for side in sides:
            if isinstance(side, HostRecord):
                states.append(("host", *member_state(side)))
            elif side.kind == "model":
                states.append(("model", side.label, side.vendor))
            elif side.content is not None:
                states.append(("dump", side.label, side.content))
            else:
                return make()  # a dump known by no digest of its content
        key = audit_key(cluster or None, rules, states)
        cache = self.registry.cache
        report: AuditReport | None = cache.get(Region.AUDIT, key)
        if report is None:
            report = cache.put(Region.AUDIT, key, make(), [r.host_id for r in members])
            # A member changed while the audit ran: the registry may have dropped its
            # answers before this one was stored. The key keeps this audit from ever
            # answering for the new state; dropping it keeps it from taking the room.
            for record in members:
                now = self.registry.find(record.host_id)
                if now is None or member_state(now) != member_state(record):
                    cache.forget_host(record.host_id)
                    break
        return report


def _host_input(record: HostRecord) -> HostInput:
    return HostInput(
        record.host_id,
        record.profile,
        stale=record.status != HostStatus.ONLINE,
        replayed=record.replayed,
        kind="host",
    )


def audit_offline(
    refs: list[Ref],
    hypervisor: Hypervisor = Hypervisor.GENERIC,
    on_input: Callable[[], object] | None = None,
) -> AuditReport:
    """An audit of dumps and models only: no coordinator involved.

    ``on_input`` is called after each input is decoded (the CLI's progress).
    """
    inputs: list[HostInput] = []
    for ref in refs:
        if ref.kind == "host":
            raise InputError(f"{ref.label}: registered hosts need a coordinator")
        inputs.append(HostInput(ref.label, _side(ref), kind=ref.kind))
        if on_input is not None:
            on_input()
    return audit(inputs, hypervisor=hypervisor)
