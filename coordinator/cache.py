"""The coordinator's one cache: every remembered answer, bounded and dropped when it goes stale.

Nothing else in the coordinator keeps a memo table (`tests/integration/test_one_cache.py` holds
that). Two kinds live here:

- `Memo`: a bounded, thread-safe LRU for pure functions of immutable content (the
  compatibility engine's compiled forms and verdicts, decoded raw captures, shipped
  tables). Their keys say everything the value depends on, so they never go stale;
  the bound only caps memory.
- `AnswerCache`: answers about registered hosts (decoded profile versions, host
  requirements and views, host-to-host verdicts, fail-over plans, whole audits). Each key holds what
  makes the answer valid (profile version, status, replayed flag, hypervisor rules,
  policy version, the VM's boot), and each entry is tagged with the hosts it speaks
  of, so the registry drops every answer about a host after the commit that removes
  it or changes its profile, status or cluster (`Registry._load`), never serving an
  answer about a host that is gone.

Bounds are counts of entries, per region, sized for the benchmarked scale (10,000
hosts, both hypervisor rules) with room to spare; an entry is a few KiB at most
(a decoded profile of a many-CPU host is the largest), so the whole cache stays
within a few hundred MiB even when full. Whole audits are the exception: one grows with
its cluster (tens of MiB at 100,000 hosts), so their region holds a handful.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import wraps
from typing import Any, Generic, ParamSpec, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
P = ParamSpec("P")
R = TypeVar("R")

_MISSING: Any = object()


@dataclass(frozen=True)
class CacheStats:
    """How one memo or region has done since it was made."""

    size: int
    maxsize: int
    hits: int
    misses: int
    evictions: int


class Memo(Generic[K, V]):
    """A least-recently-used map of at most ``maxsize`` entries; safe across threads.

    ``make`` in `get_or_make` runs outside the lock (two threads may compute the same
    value; the first stored wins, so callers that intern by identity stay consistent).
    """

    def __init__(self, name: str, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"cache {name}: maxsize must be at least 1, not {maxsize}")
        self.name = name
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._data: OrderedDict[K, V] = OrderedDict()
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key, _MISSING)
            if value is _MISSING:
                self._misses += 1
                return None
            self._data.move_to_end(key)
            self._hits += 1
            return value  # type: ignore[no-any-return]

    def get_many(self, keys: Sequence[K]) -> list[V | None]:
        """`get` of each key (None where not held), under one acquisition of the lock."""
        with self._lock:
            data = self._data
            found: list[V | None] = [data.get(key) for key in keys]
            hits = 0
            for key, value in zip(keys, found, strict=True):
                if value is not None:
                    data.move_to_end(key)
                    hits += 1
            self._hits += hits
            self._misses += len(found) - hits
            return found

    def put(self, key: K, value: V) -> V:
        """Store ``value`` unless ``key`` is already held; returns the value held."""
        with self._lock:
            held = self._data.get(key, _MISSING)
            if held is not _MISSING:
                self._data.move_to_end(key)
                return held  # type: ignore[no-any-return]
            self._data[key] = value
            if len(self._data) > self.maxsize:
                self._data.popitem(last=False)
                self._evictions += 1
            return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        value = self.get(key)
        if value is None:
            value = self.put(key, make())
        return value

    def discard(self, key: K) -> None:
        with self._lock:
            self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                len(self._data), self.maxsize, self._hits, self._misses, self._evictions
            )


def memo(name: str, maxsize: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a pure function of hashable arguments with a bounded `Memo`.

    The function must not return None (None reads as "not cached").
    """

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        table: Memo[Hashable, R] = Memo(name, maxsize)

        @wraps(fn)
        def cached(*args: P.args, **kwargs: P.kwargs) -> R:
            key = (args, tuple(sorted(kwargs.items()))) if kwargs else args
            return table.get_or_make(key, lambda: fn(*args, **kwargs))

        cached.memo = table  # type: ignore[attr-defined]
        return cached

    return wrap


class Region(StrEnum):
    """What the answer cache holds; each region has its own bound."""

    PROFILE = "profile"  # stored profile version -> decoded Profile
    CONTENT = "content"  # digest of raw leaves -> decoded Profile (identical hosts share)
    WIRE = "wire"  # digest of a report's capture as sent -> it checked, packed and decoded
    REQUIREMENT = "requirement"  # (host, version, rules) -> Requirement
    VIEW = "view"  # (host, version, status, replayed, rules) -> TargetView
    CHECK = "check"  # (source host, version, target host, version, status, ...) -> Verdict
    PLAN = "plan"  # (VM, boot, cluster, target host, version, status, policy version) -> plan
    AUDIT = "audit"  # (cluster, rules, every input's state: `audit_key`) -> AuditReport


# 10,000 hosts (the benchmarked scale) with a few stored versions each; two rules
# (generic, KVM) for requirements and views; the check and plan regions keep the pairs
# fail-over tooling asks again and again, not every pair of a large fleet.
DEFAULT_BOUNDS: dict[Region, int] = {
    Region.PROFILE: 20_000,
    Region.CONTENT: 4_096,
    # A few hundred processor models, firmware and topologies in a fleet; an entry holds
    # the packed leaves (some 10-20 KiB for a 128-CPU server), so at most ~20 MiB.
    Region.WIRE: 1_024,
    Region.REQUIREMENT: 20_000,
    Region.VIEW: 20_000,
    Region.CHECK: 100_000,
    Region.PLAN: 100_000,
    # The pages of one listing share an audit; an audit of 100,000 hosts holds some tens of
    # MiB, so a few listings (clusters, rules, extra hosts) at a time.
    Region.AUDIT: 4,
}


class _Entry:
    """One answer, the tags of what it names, and its other form once made."""

    __slots__ = ("form", "tags", "value")

    def __init__(self, value: Any, tags: tuple[str, ...]) -> None:
        self.value = value
        self.tags = tags
        self.form: Any = None


_HOST = "host:"
_VM = "vm:"


def _tags(hosts: Iterable[str], vms: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*(_HOST + h for h in hosts), *(_VM + v for v in vms)]))


class AnswerCache:
    """Answers about registered hosts, per region, each tagged with the hosts it names.

    `forget_host` drops every answer that names a host (as source, target or boot
    host), whatever its key; `forget_version` drops one decoded profile version.
    """

    def __init__(self, bounds: dict[Region, int] | None = None) -> None:
        self.bounds = {**DEFAULT_BOUNDS, **(bounds or {})}
        for region, size in self.bounds.items():
            if size < 1:
                raise ValueError(f"cache region {region}: bound must be at least 1, not {size}")
        self._lock = threading.Lock()
        self._regions: dict[Region, OrderedDict[Hashable, _Entry]] = {
            region: OrderedDict() for region in Region
        }
        self._by_tag: dict[str, set[tuple[Region, Hashable]]] = {}
        self._hits = dict.fromkeys(Region, 0)
        self._misses = dict.fromkeys(Region, 0)
        self._evictions = dict.fromkeys(Region, 0)

    def get(self, region: Region, key: Hashable) -> Any:
        """The answer held under ``key``, or None."""
        with self._lock:
            entries = self._regions[region]
            entry = entries.get(key)
            if entry is None:
                self._misses[region] += 1
                return None
            entries.move_to_end(key)
            self._hits[region] += 1
            return entry.value

    def put(
        self,
        region: Region,
        key: Hashable,
        value: Any,
        hosts: Iterable[str] = (),
        vms: Iterable[str] = (),
    ) -> Any:
        """Remember ``value`` as the answer about ``hosts`` (and ``vms``); returns the answer
        held (an earlier one under the same key wins)."""
        tags = _tags(hosts, vms)
        with self._lock:
            entries = self._regions[region]
            held = entries.get(key)
            if held is not None:
                entries.move_to_end(key)
                return held.value
            entries[key] = _Entry(value, tags)
            for tag in tags:
                self._by_tag.setdefault(tag, set()).add((region, key))
            if len(entries) > self.bounds[region]:
                old_key, old = entries.popitem(last=False)
                self._untag(region, old_key, old.tags)
                self._evictions[region] += 1
            return value

    def get_or_make(
        self,
        region: Region,
        key: Hashable,
        make: Callable[[], V],
        hosts: Iterable[str] = (),
        vms: Iterable[str] = (),
    ) -> V:
        value = self.get(region, key)
        if value is None:
            value = self.put(region, key, make(), hosts, vms)
        return value  # type: ignore[no-any-return]

    def form(
        self, region: Region, key: Hashable | None, answer: object, make: Callable[[], V]
    ) -> V:
        """Another form of ``answer`` (its wire message, say), made once while ``answer`` is
        the one held under ``key`` and dropped with it; made afresh otherwise.

        The transport keeps no table of its own: a repeated question costs no conversion,
        and nothing outlives the answer it was made from."""
        if key is None:
            return make()
        with self._lock:
            entry = self._regions[region].get(key)
            if entry is None or entry.value is not answer:
                entry = None
            elif entry.form is not None:
                return entry.form  # type: ignore[no-any-return]
        made = make()
        if entry is not None:
            with self._lock:
                if entry.form is None:
                    entry.form = made
        return made

    def _untag(self, region: Region, key: Hashable, tags: tuple[str, ...]) -> None:
        for tag in tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard((region, key))
                if not keys:
                    del self._by_tag[tag]

    def forget_host(self, host_id: str) -> int:
        """Drop every answer that names ``host_id``; returns how many went."""
        return self._forget(_HOST + host_id)

    def forget_vm(self, name: str) -> int:
        """Drop every answer about the VM ``name`` (its plans)."""
        return self._forget(_VM + name)

    def _forget(self, tag: str) -> int:
        with self._lock:
            keys = self._by_tag.pop(tag, set())
            for region, key in keys:
                entry = self._regions[region].pop(key, None)
                if entry is not None:
                    self._untag(region, key, tuple(t for t in entry.tags if t != tag))
            return len(keys)

    def forget_version(self, version: int) -> None:
        """Drop one decoded profile version (pruned or removed)."""
        with self._lock:
            entry = self._regions[Region.PROFILE].pop(version, None)
            if entry is not None:
                self._untag(Region.PROFILE, version, entry.tags)

    def clear(self) -> None:
        with self._lock:
            for entries in self._regions.values():
                entries.clear()
            self._by_tag.clear()

    def naming(self, host_id: str) -> int:
        """How many held answers name ``host_id``."""
        with self._lock:
            return len(self._by_tag.get(_HOST + host_id, ()))

    def __len__(self) -> int:
        return sum(len(e) for e in self._regions.values())

    def stats(self) -> dict[Region, CacheStats]:
        with self._lock:
            return {
                region: CacheStats(
                    len(self._regions[region]),
                    self.bounds[region],
                    self._hits[region],
                    self._misses[region],
                    self._evictions[region],
                )
                for region in Region
            }
