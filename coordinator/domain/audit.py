"""Cluster audit: may a planned fail-over save state, or must it shut VMs down?

Hosts are grouped by distinct profile first, so the cost follows the number
of distinct profiles (D): one requirement and one target view per profile,
built by `sides` exactly as `check` builds them, D x D cached checks for the
directed matrix, and O(hosts) work to list the hosts. Every pair verdict is
the verdict `check` gives for the same two processors (only the target's
stale/replayed warnings, which are host state, are left out of the matrix).

Groups: hosts whose VMs may be restored on each other in every direction.
Without unknown bits mutual compatibility is an equivalence (same vendor,
guest-visible features, usable XSAVE components and address width) and the
groups are its classes. A dump that cannot tell some bits counts them as
present as a target but never requires them as a source, which can make it
mutually compatible with two hosts that are not with each other; the groups
are then built greedily (largest profiles first, each joins the first group
all of whose members it is mutually compatible with). Either way every group
is internally compatible, and there is one group exactly when every pair is
compatible. SAVE is allowed exactly then, with no host stale.

Pairs: up to PAIR_HOST_LIMIT hosts, `pairs` lists every ordered pair of
distinct hosts. Above it (100,000 hosts would mean 10^10 pairs) `pairs`
lists ordered pairs of distinct profiles with their host counts and an
example host each (`pairs_mode` says which); `blocking_pairs` follows the
same mode.

`AuditReport` holds plain data only, so the coordinator's wire form
(`convert.audit_to_proto` / `audit_from_proto`) rebuilds it whole and the CLI
prints the same `to_json` document offline and through a coordinator.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from cpucompat.agent.errors import InputError
from cpucompat.agent.profile import Profile

from .baselines import Baseline, nearest_level, nearest_microarchitecture
from .compat import REFUSAL_ORDER, REPLAYED_PROFILE, Reason, TargetView, Verdict, check_row
from .kvm_offerable import GENERIC_VIEW, Hypervisor, view_label
from .requirement import Requirement, component_names
from .sides import requirement_of, target_of

SAVE = "SAVE"
SHUTDOWN = "SHUTDOWN"
HOST_STALE = "HOST_STALE"
NO_COMMON_GROUP = "NO_COMMON_GROUP"

HOST_KINDS = ("host", "dump", "model")
"""Where an audited host comes from: a registered host, a dump file, a named model/level."""

PAIR_HOST_LIMIT = 200
"""Up to this many hosts, pairs are listed host by host; above, profile by profile."""


class AuditError(InputError):
    """Input the audit cannot work with; the message names the fix."""


class HostInput(NamedTuple):
    """One host to audit: a decoded profile or a named baseline, with its flags.

    ``replayed`` None takes the profile's own flag (a dump is always
    replayed); ``kind`` empty means "model" for a baseline, "host" otherwise. A named
    tuple: a cluster's policy makes one per member on every change of the cluster.
    """

    name: str
    source: Profile | Baseline
    stale: bool = False
    replayed: bool | None = None
    kind: str = ""


HostLike = HostInput | tuple[str, Profile]


@dataclass
class _ProfileClass:
    """One distinct processor while the audit runs: both sides built once."""

    index: int
    key: str
    fingerprint: str
    view: TargetView  # flags cleared: the processor, not a host's state
    requirement: Requirement
    hosts: list[int]


@dataclass(frozen=True)
class ProfileRow:
    """One distinct profile of the audited hosts, as reported."""

    index: int
    fingerprint: str
    vendor: str
    brand: str
    family: int | None
    model: int | None
    level: str | None
    hosts: tuple[int, ...]
    group: int
    loses: tuple[str, ...]


@dataclass(frozen=True)
class HostRow:
    name: str
    kind: str
    profile: int
    stale: bool
    replayed: bool
    brand: str


@dataclass(frozen=True)
class Removal:
    host: str | None
    gained: tuple[str, ...]
    offline_action_after: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "gained": list(self.gained),
            "offline_action_after": self.offline_action_after,
        }


@dataclass(frozen=True)
class CommonBaseline:
    vendor: str | None
    features: frozenset[str]
    xsave_mask: int
    physical_bits: int | None
    x86_64_level: str | None
    microarchitecture: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "features": sorted(self.features),
            "x86_64_level": self.x86_64_level,
            "microarchitecture": self.microarchitecture,
            "xsave_components": list(component_names(self.xsave_mask)),
            "physical_bits": self.physical_bits,
        }


@dataclass(frozen=True)
class AuditReport:
    """Everything the audit found; `to_json` is the operator-facing document (README)."""

    offline_action: str
    summary: str
    reasons: tuple[Reason, ...]
    warnings: tuple[Reason, ...]
    hosts: tuple[HostRow, ...]
    profiles: tuple[ProfileRow, ...]
    matrix: tuple[tuple[Verdict, ...], ...]  # [source profile][target profile]
    groups: tuple[tuple[int, ...], ...]  # profile indices per group
    baseline: CommonBaseline
    best_removal: Removal
    pair_limit: int = PAIR_HOST_LIMIT
    cluster: str | None = None
    view: str = GENERIC_VIEW
    """The rules that said what a guest sees (`kvm_offerable`)."""

    @property
    def pairs_mode(self) -> str:
        return "hosts" if len(self.hosts) <= self.pair_limit else "profiles"

    @property
    def vendors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.profiles:
            out[p.vendor] = out.get(p.vendor, 0) + len(p.hosts)
        return dict(sorted(out.items()))

    def group_hosts(self, group: int) -> list[str]:
        return [self.hosts[h].name for p in self.groups[group] for h in self.profiles[p].hosts]

    def _profile_pair(self, i: int, j: int) -> dict[str, Any]:
        src, tgt, v = self.profiles[i], self.profiles[j], self.matrix[i][j]
        return {
            "source": src.fingerprint,
            "target": tgt.fingerprint,
            "source_hosts": len(src.hosts),
            "target_hosts": len(tgt.hosts),
            "source_example": self.hosts[src.hosts[0]].name,
            "target_example": self.hosts[tgt.hosts[0]].name,
            "compatible": v.compatible,
            "reasons": [r.to_json() for r in v.reasons],
        }

    def _profile_pairs(self, blocking_only: bool) -> list[dict[str, Any]]:
        n = len(self.profiles)
        return [
            self._profile_pair(i, j)
            for i in range(n)
            for j in range(n)
            if i != j and not (blocking_only and self.matrix[i][j].compatible)
        ]

    def ranked_blocking(self, limit: int) -> tuple[list[dict[str, Any]], int]:
        """(the blocking pairs of distinct profiles covering most host pairs first, at most
        ``limit`` of them, as `pairs` gives them in profile mode; how many there are).

        Only those listed are rendered: a cluster's policy lists a few of hundreds."""
        counts = [len(p.hosts) for p in self.profiles]
        examples = [self.hosts[p.hosts[0]].name for p in self.profiles]
        refused = [
            (-counts[i] * counts[j], examples[i], examples[j], i, j)
            for i, row in enumerate(self.matrix)
            for j, verdict in enumerate(row)
            if i != j and not verdict.compatible
        ]
        top = heapq.nsmallest(limit, refused)
        return [self._profile_pair(i, j) for *_, i, j in top], len(refused)

    def _host_pairs(self, blocking_only: bool) -> list[dict[str, Any]]:
        out = []
        rendered: dict[int, list[dict[str, Any]]] = {}
        for a, src in enumerate(self.hosts):
            row = self.matrix[src.profile]
            for b, tgt in enumerate(self.hosts):
                if a == b:
                    continue
                v = row[tgt.profile]
                if blocking_only and v.compatible:
                    continue
                reasons = rendered.get(id(v))
                if reasons is None:
                    reasons = rendered[id(v)] = [r.to_json() for r in v.reasons]
                out.append(
                    {
                        "source": src.name,
                        "target": tgt.name,
                        "compatible": v.compatible,
                        "reasons": reasons,
                    }
                )
        return out

    def pairs(self, blocking_only: bool = False) -> list[dict[str, Any]]:
        if self.pairs_mode == "hosts":
            return self._host_pairs(blocking_only)
        return self._profile_pairs(blocking_only)

    def to_json(self) -> dict[str, Any]:
        hosts = [
            {
                "name": h.name,
                "kind": h.kind,
                "vendor": self.profiles[h.profile].vendor,
                "brand": h.brand,
                "fingerprint": self.profiles[h.profile].fingerprint,
                "profile": h.profile,
                "level": self.profiles[h.profile].level,
                "replayed": h.replayed,
                "stale": h.stale,
                "group": self.profiles[h.profile].group,
                "loses": list(self.profiles[h.profile].loses),
            }
            for h in self.hosts
        ]
        profiles = [
            {
                "index": p.index,
                "fingerprint": p.fingerprint,
                "vendor": p.vendor,
                "brand": p.brand,
                "family": p.family,
                "model": p.model,
                "level": p.level,
                "hosts": len(p.hosts),
                "example_host": self.hosts[p.hosts[0]].name,
                "group": p.group,
                "loses": list(p.loses),
            }
            for p in self.profiles
        ]
        return {
            "cluster": self.cluster,
            "offline_action": self.offline_action,
            "summary": self.summary,
            "view": self.view,
            "reasons": [r.to_json() for r in self.reasons],
            "warnings": [w.to_json() for w in self.warnings],
            "host_count": len(self.hosts),
            "hosts": hosts,
            "vendors": [{"vendor": v, "hosts": n} for v, n in self.vendors.items()],
            "distinct_profiles": profiles,
            "pairs_mode": self.pairs_mode,
            "pairs": self.pairs(),
            "matrix": {
                "profiles": [p.fingerprint for p in self.profiles],
                "compatible": [[v.compatible for v in row] for row in self.matrix],
            },
            "groups": [
                {
                    "index": g,
                    "hosts": self.group_hosts(g),
                    "profiles": [self.profiles[p].fingerprint for p in members],
                    "vendor": self.profiles[members[0]].vendor,
                }
                for g, members in enumerate(self.groups)
            ],
            "baseline": self.baseline.to_json(),
            "best_removal": self.best_removal.to_json(),
            "blocking_pairs": self.pairs(blocking_only=True),
        }


def _unpack(host: Any) -> HostInput:
    if isinstance(host, HostInput):
        return host
    if isinstance(host, tuple) and len(host) == 2:
        return HostInput(str(host[0]), host[1])
    raise AuditError(
        f"cannot audit {type(host).__name__}: pass HostInput(name, profile_or_baseline) "
        "or a (name, Profile) pair"
    )


def _source(
    source: object,
    name: str,
    hypervisor: Hypervisor,
    by_key: dict[str, _ProfileClass],
    classes: list[_ProfileClass],
) -> tuple[Profile | Baseline, _ProfileClass, str, bool, str]:
    """A source object met for the first time: its class (made when new, its sides built
    for ``name``, the first host of the class), default kind, replayed flag and brand."""
    key = source_class(source, name, hypervisor)
    assert isinstance(source, (Profile, Baseline))
    pc = by_key.get(key)
    if pc is None:
        sides = class_sides(source, key, name, hypervisor)
        pc = by_key[key] = _ProfileClass(
            index=len(classes),
            key=key,
            fingerprint=sides.fingerprint,
            view=sides.view,
            requirement=sides.requirement,
            hosts=[],
        )
        classes.append(pc)
    if isinstance(source, Profile):
        return source, pc, "host", source.replayed, source.brand
    return source, pc, "model", False, ""


class ClassSides(NamedTuple):
    """One distinct processor's both sides, as the audit and a cluster's policy build them."""

    fingerprint: str
    view: TargetView  # flags cleared: the processor, not a host's state
    requirement: Requirement


def source_class(source: object, name: str, hypervisor: Hypervisor) -> str:
    """The class key of a host's source (`_class_key`); AuditError for what is neither a
    Profile nor a Baseline."""
    if not isinstance(source, (Profile, Baseline)):
        raise AuditError(
            f"host {name!r}: source must be a Profile or a Baseline, not {type(source).__name__}"
        )
    if isinstance(source, Profile):
        return _class_key(source, None)
    return _class_key(source, target_of(source, name, hypervisor=hypervisor))


def class_sides(
    source: Profile | Baseline, key: str, name: str, hypervisor: Hypervisor
) -> ClassSides:
    """The sides of a class new to an audit or a cluster, built for its first host."""
    return ClassSides(
        fingerprint=source.fingerprint if isinstance(source, Profile) else key,
        view=target_of(source, name, replayed=False, hypervisor=hypervisor),
        requirement=requirement_of(source, name, hypervisor=hypervisor),
    )


def _order(code: str) -> int:
    return REFUSAL_ORDER.index(code) if code in REFUSAL_ORDER else len(REFUSAL_ORDER)


def _class_key(source: Profile | Baseline, view: TargetView | None) -> str:
    """Equal keys give equal verdicts both ways.

    A profile's fingerprint, told apart by the bits its capture cannot tell
    (they are not in the fingerprint, yet a target offers them); a baseline's
    digest of its decision fields.
    """
    if isinstance(source, Profile):
        if not source.unknown_features:
            return source.fingerprint
        unknown = ",".join(sorted(source.unknown_features)).encode()
        return f"{source.fingerprint}+unknown:{hashlib.sha256(unknown).hexdigest()[:16]}"
    assert view is not None
    return view.profile_key


def _intersection(sets: Sequence[frozenset[str]]) -> frozenset[str]:
    if not sets:
        return frozenset()
    return frozenset.intersection(*sets)


def _groups(
    classes: list[_ProfileClass], matrix: list[list[Verdict]]
) -> tuple[tuple[tuple[int, ...], ...], list[int]]:
    """Groups of mutually compatible profiles (see the module docstring) and each one's group."""
    order = sorted(classes, key=lambda c: (-len(c.hosts), c.index))
    members: list[list[int]] = []
    for c in order:
        i = c.index
        for group in members:
            if all(matrix[i][j].compatible and matrix[j][i].compatible for j in group):
                group.append(i)
                break
        else:
            members.append([i])
    sizes = [sum(len(classes[p].hosts) for p in g) for g in members]
    ranked = sorted(range(len(members)), key=lambda g: (-sizes[g], min(members[g])))
    groups = tuple(tuple(sorted(members[g])) for g in ranked)
    group_of = [0] * len(classes)
    for g, profs in enumerate(groups):
        for p in profs:
            group_of[p] = g
    return groups, group_of


def audit(
    hosts: Iterable[HostLike],
    pair_limit: int = PAIR_HOST_LIMIT,
    cluster: str | None = None,
    hypervisor: Hypervisor = Hypervisor.GENERIC,
    advice: bool = True,
) -> AuditReport:
    """Audit a set of named hosts and decide the planned fail-over action.

    ``hypervisor`` says which rules tell what a guest sees (`kvm_offerable`).
    ``advice`` False leaves out what only a person reads (the baseline's nearest level
    and microarchitecture, what each profile loses to it, the best host to remove): a
    cluster's policy, recomputed on every change, needs the verdicts and groups alone.
    """
    rows: list[HostRow] = []
    classes: list[_ProfileClass] = []
    by_key: dict[str, _ProfileClass] = {}
    # Per distinct source object (hosts of one profile share it): the object (kept, so its
    # id stays its own), its class, default kind, replayed flag and brand, found once.
    seen_sources: dict[int, tuple[Profile | Baseline, _ProfileClass, str, bool, str]] = {}
    names: set[str] = set()
    for host in hosts:
        h = host if type(host) is HostInput else _unpack(host)
        name, source = h.name, h.source
        if name in names:
            raise AuditError(f"host name {name!r} appears twice; give every host its own name")
        names.add(name)
        seen = seen_sources.get(id(source))
        if seen is None:
            seen = seen_sources[id(source)] = _source(source, name, hypervisor, by_key, classes)
        pc, default_kind, source_replayed, brand = seen[1:]
        kind = h.kind or default_kind
        if kind not in HOST_KINDS:
            raise AuditError(f"host {name!r}: kind {kind!r} is not one of {HOST_KINDS}")
        replayed = source_replayed if h.replayed is None else bool(h.replayed)
        pc.hosts.append(len(rows))
        rows.append(HostRow(name, kind, pc.index, h.stale, replayed, brand))
    if not rows:
        raise AuditError("no hosts to audit; register hosts or pass dump files")

    # A row per source: its requirement compiled once, the held verdicts looked up together.
    views = [tgt.view for tgt in classes]
    matrix = [check_row(src.requirement, views) for src in classes]
    groups, group_of = _groups(classes, matrix)

    feature_sets = [p.requirement.features for p in classes]
    common = _intersection(feature_sets)
    vendors = sorted({p.view.vendor for p in classes})
    single_vendor = vendors[0] if len(vendors) == 1 else None
    xsave = classes[0].requirement.xsave_mask
    for p in classes[1:]:
        xsave &= p.requirement.xsave_mask
    bits = [p.view.physical_bits for p in classes if p.view.physical_bits is not None]
    baseline = CommonBaseline(
        vendor=single_vendor,
        features=common,
        xsave_mask=xsave,
        physical_bits=min(bits) if bits else None,
        x86_64_level=nearest_level(common) if advice else None,
        microarchitecture=nearest_microarchitecture(common, single_vendor) if advice else None,
    )
    profiles = tuple(
        ProfileRow(
            index=p.index,
            fingerprint=p.fingerprint,
            vendor=p.view.vendor,
            brand=p.view.brand,
            family=p.view.family,
            model=p.view.model,
            level=p.view.x86_64_level,
            hosts=tuple(p.hosts),
            group=group_of[p.index],
            loses=tuple(sorted(p.requirement.features - common)) if advice else (),
        )
        for p in classes
    )

    stale_names = [r.name for r in rows if r.stale]
    best = (
        _best_removal(rows, classes, matrix, feature_sets, common)
        if advice
        else Removal(None, (), None)
    )

    reasons: list[Reason] = []
    blocking: dict[str, int] = {}
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            if i != j:
                for r in v.reasons:
                    blocking[r.code] = blocking.get(r.code, 0) + 1
    if len(groups) > 1:
        reasons.append(
            Reason(
                NO_COMMON_GROUP,
                f"the hosts fall into {len(groups)} groups that cannot restore each other's VMs",
                data={"groups": len(groups)},
            )
        )
    for code, count in sorted(blocking.items(), key=lambda kv: _order(kv[0])):
        reasons.append(
            Reason(
                code,
                f"{count} ordered pair(s) of distinct profiles refused with {code}",
                data={"profile_pairs": count},
            )
        )
    if stale_names:
        cut = len(stale_names) - 5
        reasons.append(
            Reason(
                HOST_STALE,
                f"{len(stale_names)} host(s) have stale profiles (missed heartbeats): "
                f"{', '.join(stale_names[:5])}"
                + (f", \u2026 and {cut} more" if cut > 0 else "")
                + "; their processors may have changed, bring the agents back or remove the hosts",
                data={"hosts": stale_names},
            )
        )
    warnings: list[Reason] = []
    replayed_names = [r.name for r in rows if r.replayed]
    if replayed_names:
        warnings.append(
            Reason(
                REPLAYED_PROFILE,
                f"{len(replayed_names)} host(s) are audited from replayed dumps, not live processors",
                data={"hosts": len(replayed_names)},
            )
        )
    action = SAVE if not reasons else SHUTDOWN
    if action == SAVE:
        summary = f"SAVE: all {len(rows)} host(s) can restore each other's VMs"
    else:
        summary = "SHUTDOWN: " + "; ".join(
            r.detail if r.code in (NO_COMMON_GROUP, HOST_STALE) else r.code for r in reasons
        )
    return AuditReport(
        offline_action=action,
        summary=summary,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
        hosts=tuple(rows),
        profiles=profiles,
        matrix=tuple(tuple(row) for row in matrix),
        groups=groups,
        baseline=baseline,
        best_removal=best,
        pair_limit=pair_limit,
        cluster=cluster,
        view=view_label(hypervisor),
    )


def _best_removal(
    rows: list[HostRow],
    classes: list[_ProfileClass],
    matrix: list[list[Verdict]],
    feature_sets: list[frozenset[str]],
    common: frozenset[str],
) -> Removal:
    """The host whose removal widens the common baseline most.

    Only a host that is alone with its profile can change the baseline, so
    candidates are those; the intersection without each comes from prefix
    and suffix intersections (linear in distinct profiles). The set left is
    SAVE when no refused pair remains: the refused ordered pairs that involve
    the removed profile are all of them.
    """
    n = len(classes)
    if len(rows) < 2:
        return Removal(None, (), None)
    prefix: list[frozenset[str] | None] = [None] * (n + 1)
    suffix: list[frozenset[str] | None] = [None] * (n + 1)
    for i in range(n):
        prev = prefix[i]
        prefix[i + 1] = feature_sets[i] if prev is None else prev & feature_sets[i]
    for i in range(n - 1, -1, -1):
        nxt = suffix[i + 1]
        suffix[i] = feature_sets[i] if nxt is None else nxt & feature_sets[i]
    refused_with = [0] * n
    refused = 0
    for i in range(n):
        for j in range(n):
            if i != j and not matrix[i][j].compatible:
                refused += 1
                refused_with[i] += 1
                refused_with[j] += 1
    stale_total = sum(1 for r in rows if r.stale)
    best: tuple[int, bool, str, tuple[str, ...], str] | None = None
    for p in classes:
        if len(p.hosts) != 1:
            continue
        left, right = prefix[p.index], suffix[p.index + 1]
        if left is None and right is None:
            continue
        without = left if right is None else right if left is None else left & right
        assert without is not None
        gained = tuple(sorted(without - common))
        row = rows[p.hosts[0]]
        stale_left = stale_total - row.stale
        after = SAVE if refused == refused_with[p.index] and stale_left == 0 else SHUTDOWN
        rank = (len(gained), after == SAVE, row.name, gained, after)
        if best is None or rank[:2] > best[:2] or (rank[:2] == best[:2] and row.name < best[2]):
            best = rank
    if best is None or (best[0] == 0 and not best[1]):
        return Removal(None, (), None)
    return Removal(best[2], best[3], best[4])
