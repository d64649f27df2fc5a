"""Cluster audit: may a planned fail-over save state, or must it shut VMs down?

Hosts are grouped by profile fingerprint first, so the cost follows the
number of distinct profiles (D): one requirement and one target view per
profile, D x D cached checks for the directed matrix, and O(hosts) work to
list the hosts.

Groups: hosts are mutually compatible when each can restore the other's
VMs. For host-mode requirements that holds exactly when both have the same
vendor, the same guest-visible features, the same usable XSAVE components
and the same physical address width (each side's set must contain the
other's), so mutual compatibility is an equivalence relation and the groups
are its classes; family/model and TSC only warn, so hosts of different
models with identical guest-visible sets share a group. SAVE is allowed
exactly when there is one group and no host is stale.

Pairs: up to PAIR_HOST_LIMIT hosts, `pairs` lists every ordered pair of
distinct hosts. Above it (100,000 hosts would mean 10^10 pairs) `pairs`
lists ordered pairs of distinct profiles with their host counts and an
example host each (`pairs_mode` says which); `blocking_pairs` follows the
same mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from cpucompat.agent.profile import Profile

from .baselines import nearest_level, nearest_microarchitecture
from .compat import (
    REFUSAL_ORDER,
    REPLAYED_PROFILE,
    Reason,
    TargetView,
    Verdict,
    check,
)
from .requirement import LEGACY_XSAVE_MASK, Requirement, component_names

SAVE = "SAVE"
SHUTDOWN = "SHUTDOWN"
HOST_STALE = "HOST_STALE"
NO_COMMON_GROUP = "NO_COMMON_GROUP"

PAIR_HOST_LIMIT = 200
"""Up to this many hosts, pairs are listed host by host; above, profile by profile."""


class AuditError(ValueError):
    """Input the audit cannot work with; the message names the fix."""


@dataclass(frozen=True)
class HostInput:
    """One host to audit: a decoded profile or a target view, with its flags.

    ``replayed`` None takes the source's own flag (a dump is always replayed).
    """

    name: str
    source: Profile | TargetView
    stale: bool = False
    replayed: bool | None = None


HostLike = HostInput | TargetView | tuple[str, Profile]


@dataclass
class ProfileClass:
    """One distinct profile of the audited hosts."""

    index: int
    key: str
    view: TargetView  # flags cleared: the processor, not a host's state
    requirement: Requirement
    hosts: list[int]
    group: int = -1


@dataclass(frozen=True)
class HostRow:
    name: str
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


@dataclass
class AuditReport:
    """Everything the audit found; `to_json` is the operator-facing document."""

    offline_action: str
    summary: str
    reasons: tuple[Reason, ...]
    warnings: tuple[Reason, ...]
    hosts: list[HostRow]
    profiles: list[ProfileClass]
    matrix: list[list[Verdict]]
    groups: list[list[int]]  # profile indices per group
    baseline: CommonBaseline
    loses: list[tuple[str, ...]]  # per profile
    best_removal: Removal
    pair_limit: int = PAIR_HOST_LIMIT

    @property
    def pairs_mode(self) -> str:
        return "hosts" if len(self.hosts) <= self.pair_limit else "profiles"

    @property
    def vendors(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.profiles:
            out[p.view.vendor] = out.get(p.view.vendor, 0) + len(p.hosts)
        return dict(sorted(out.items()))

    def group_hosts(self, group: int) -> list[str]:
        return [self.hosts[h].name for p in self.groups[group] for h in self.profiles[p].hosts]

    def host_verdict(self, source: int, target: int) -> Verdict:
        """The verdict for restoring host ``source``'s VMs on host ``target`` (indices)."""
        src, tgt = self.hosts[source], self.hosts[target]
        view = self.profiles[tgt.profile].view
        if tgt.stale or tgt.replayed:
            view = replace(view, name=tgt.name, stale=tgt.stale, replayed=tgt.replayed)
        return check(self.profiles[src.profile].requirement, view)

    def _profile_pairs(self, blocking_only: bool) -> list[dict[str, Any]]:
        out = []
        for i, src in enumerate(self.profiles):
            for j, tgt in enumerate(self.profiles):
                if i == j:
                    continue
                v = self.matrix[i][j]
                if blocking_only and v.compatible:
                    continue
                out.append(
                    {
                        "source": src.key,
                        "target": tgt.key,
                        "source_hosts": len(src.hosts),
                        "target_hosts": len(tgt.hosts),
                        "source_example": self.hosts[src.hosts[0]].name,
                        "target_example": self.hosts[tgt.hosts[0]].name,
                        "compatible": v.compatible,
                        "reasons": [r.to_json() for r in v.reasons],
                    }
                )
        return out

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
        loses_json = [list(x) for x in self.loses]
        hosts = [
            {
                "name": h.name,
                "vendor": self.profiles[h.profile].view.vendor,
                "brand": h.brand,
                "fingerprint": self.profiles[h.profile].key,
                "level": self.profiles[h.profile].view.x86_64_level,
                "replayed": h.replayed,
                "stale": h.stale,
                "group": self.profiles[h.profile].group,
                "loses": loses_json[h.profile],
            }
            for h in self.hosts
        ]
        profiles = [
            {
                "index": p.index,
                "fingerprint": p.key,
                "vendor": p.view.vendor,
                "brand": p.view.brand,
                "family": p.view.family,
                "model": p.view.model,
                "level": p.view.x86_64_level,
                "hosts": len(p.hosts),
                "example_host": self.hosts[p.hosts[0]].name,
                "group": p.group,
                "loses": loses_json[p.index],
            }
            for p in self.profiles
        ]
        return {
            "offline_action": self.offline_action,
            "summary": self.summary,
            "reasons": [r.to_json() for r in self.reasons],
            "warnings": [w.to_json() for w in self.warnings],
            "host_count": len(self.hosts),
            "hosts": hosts,
            "vendors": [{"vendor": v, "hosts": n} for v, n in self.vendors.items()],
            "distinct_profiles": profiles,
            "pairs_mode": self.pairs_mode,
            "pairs": self.pairs(),
            "matrix": {
                "profiles": [p.key for p in self.profiles],
                "compatible": [[v.compatible for v in row] for row in self.matrix],
            },
            "groups": [
                {
                    "index": g,
                    "hosts": self.group_hosts(g),
                    "profiles": [self.profiles[p].key for p in members],
                    "vendor": self.profiles[members[0]].view.vendor,
                }
                for g, members in enumerate(self.groups)
            ],
            "baseline": self.baseline.to_json(),
            "best_removal": self.best_removal.to_json(),
            "blocking_pairs": self.pairs(blocking_only=True),
        }


def _unpack(host: Any) -> tuple[str, Profile | TargetView, bool, bool | None]:
    if isinstance(host, HostInput):
        return host.name, host.source, host.stale, host.replayed
    if isinstance(host, TargetView):
        return host.name, host, host.stale, host.replayed
    if isinstance(host, tuple) and len(host) == 2:
        return str(host[0]), host[1], False, None
    profile = getattr(host, "profile", None)
    name = getattr(host, "host_id", None)
    if isinstance(profile, Profile) and isinstance(name, str):
        # A coordinator HostRecord: its status says whether it is stale.
        status = str(getattr(host, "status", ""))
        return name, profile, status.endswith("stale"), bool(getattr(host, "replayed", False))
    raise AuditError(
        f"cannot audit {type(host).__name__}: pass HostInput(name, profile_or_view), "
        "a TargetView or a (name, Profile) pair"
    )


def _order(code: str) -> int:
    return REFUSAL_ORDER.index(code) if code in REFUSAL_ORDER else len(REFUSAL_ORDER)


def _group_key(req: Requirement) -> tuple[Any, ...]:
    """Equal keys <=> mutually compatible (see the module docstring)."""
    return (req.vendor, req.features, req.xsave_mask | LEGACY_XSAVE_MASK, req.physical_bits)


def _intersection(sets: Sequence[frozenset[str]]) -> frozenset[str]:
    if not sets:
        return frozenset()
    return frozenset.intersection(*sets)


def audit(hosts: Iterable[HostLike], pair_limit: int = PAIR_HOST_LIMIT) -> AuditReport:
    """Audit a set of named hosts and decide the planned fail-over action."""
    rows: list[HostRow] = []
    profiles: list[ProfileClass] = []
    by_key: dict[str, ProfileClass] = {}
    names: set[str] = set()
    for host in hosts:
        name, source, stale, replayed = _unpack(host)
        if name in names:
            raise AuditError(f"host name {name!r} appears twice; give every host its own name")
        names.add(name)
        if isinstance(source, Profile):
            key = source.fingerprint
            brand = source.brand
        elif isinstance(source, TargetView):
            key = source.profile_key
            brand = source.brand
        else:
            raise AuditError(
                f"host {name!r}: source must be a Profile or a TargetView, "
                f"not {type(source).__name__}"
            )
        pc = by_key.get(key)
        if pc is None:
            if isinstance(source, Profile):
                view = TargetView.from_profile(source, name, replayed=False)
            else:
                view = replace(source, name=name, stale=False, replayed=False)
            pc = by_key[key] = ProfileClass(
                index=len(profiles),
                key=key,
                view=view,
                requirement=Requirement.from_target(view),
                hosts=[],
            )
            profiles.append(pc)
        if replayed is None:
            replayed = source.replayed
        pc.hosts.append(len(rows))
        rows.append(HostRow(name, pc.index, stale, bool(replayed), brand))
    if not rows:
        raise AuditError("no hosts to audit; register hosts or pass dump files")

    matrix = [[check(src.requirement, tgt.view) for tgt in profiles] for src in profiles]

    group_of: dict[tuple[Any, ...], int] = {}
    groups: list[list[int]] = []
    for p in profiles:
        g = group_of.setdefault(_group_key(p.requirement), len(groups))
        if g == len(groups):
            groups.append([])
        groups[g].append(p.index)
        p.group = g
    sizes = [sum(len(profiles[p].hosts) for p in g) for g in groups]
    groups_sorted = sorted(range(len(groups)), key=lambda g: (-sizes[g], g))
    renumber = {old: new for new, old in enumerate(groups_sorted)}
    groups = [groups[old] for old in groups_sorted]
    for p in profiles:
        p.group = renumber[p.group]

    feature_sets = [p.requirement.features for p in profiles]
    common = _intersection(feature_sets)
    vendors = sorted({p.view.vendor for p in profiles})
    single_vendor = vendors[0] if len(vendors) == 1 else None
    xsave = LEGACY_XSAVE_MASK
    if profiles:
        xsave = profiles[0].requirement.xsave_mask
        for p in profiles[1:]:
            xsave &= p.requirement.xsave_mask
    bits = [p.view.physical_bits for p in profiles if p.view.physical_bits is not None]
    baseline = CommonBaseline(
        vendor=single_vendor,
        features=common,
        xsave_mask=xsave,
        physical_bits=min(bits) if bits else None,
        x86_64_level=nearest_level(common),
        microarchitecture=nearest_microarchitecture(common, single_vendor),
    )
    loses = [tuple(sorted(p.requirement.features - common)) for p in profiles]

    stale_names = [r.name for r in rows if r.stale]
    best = _best_removal(rows, profiles, groups, feature_sets, common)

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
        reasons.append(
            Reason(
                HOST_STALE,
                f"{len(stale_names)} host(s) have stale profiles (missed heartbeats): "
                f"{', '.join(stale_names[:5])}{', ...' if len(stale_names) > 5 else ''}; "
                "their processors may have changed, bring the agents back or remove the hosts",
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
        hosts=rows,
        profiles=profiles,
        matrix=matrix,
        groups=groups,
        baseline=baseline,
        loses=loses,
        best_removal=best,
        pair_limit=pair_limit,
    )


def _best_removal(
    rows: list[HostRow],
    profiles: list[ProfileClass],
    groups: list[list[int]],
    feature_sets: list[frozenset[str]],
    common: frozenset[str],
) -> Removal:
    """The host whose removal widens the common baseline most.

    Only a host that is alone with its profile can change the baseline, so
    candidates are those; the intersection without each comes from prefix
    and suffix intersections (linear in distinct profiles).
    """
    n = len(profiles)
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
    stale_total = sum(1 for r in rows if r.stale)
    group_hosts = [sum(len(profiles[p].hosts) for p in g) for g in groups]
    best: tuple[int, int, str, tuple[str, ...], str] | None = None
    for p in profiles:
        if len(p.hosts) != 1:
            continue
        left, right = prefix[p.index], suffix[p.index + 1]
        if left is None and right is None:
            continue
        without = left if right is None else right if left is None else left & right
        assert without is not None
        gained = tuple(sorted(without - common))
        row = rows[p.hosts[0]]
        groups_left = sum(1 for g, c in enumerate(group_hosts) if c - (g == p.group) > 0)
        stale_left = stale_total - row.stale
        after = SAVE if groups_left == 1 and stale_left == 0 else SHUTDOWN
        rank = (len(gained), after == SAVE, row.name, gained, after)
        if best is None or rank[:2] > best[:2] or (rank[:2] == best[:2] and row.name < best[2]):
            best = rank
    if best is None or (best[0] == 0 and not best[1]):
        return Removal(None, (), None)
    return Removal(best[2], best[3], best[4])
