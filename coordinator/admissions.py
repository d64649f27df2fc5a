"""Which hosts may join which cluster: admissions an administrator grants.

Under mutual TLS a certificate proves which host is calling, but any host the CA
signed could otherwise report into any cluster and, by being stale or different,
force that cluster to SHUTDOWN. An admission names a cluster and a host id or an
fnmatch pattern (`node-*`) matched case-sensitively against the whole host id.
The table is small and read on every report, so it is kept in memory and written
through to the storage.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase

from cpucompat.agent.errors import NotFoundError, PermissionDeniedError

from .limits import LimitError, check_name
from .storage.interface import Admission, Storage

MAX_PATTERNS_PER_REQUEST = 1000
ADMISSIONS_TOPIC = "admissions"  # announced with the cluster whose admissions changed
PATTERN = re.compile(r"[A-Za-z0-9*?\[][A-Za-z0-9._:@*?\[\]!-]{0,252}")
"""A host name with fnmatch's `*`, `?` and `[...]`; nothing that could span a line."""


class NotAdmittedError(PermissionDeniedError):
    """The host may not report into that cluster (PERMISSION_DENIED)."""


class AdmissionNotFoundError(NotFoundError):
    """A revoke named a pattern the cluster does not hold (NOT_FOUND)."""


def check_pattern(value: str) -> str:
    if PATTERN.fullmatch(value) is None:
        raise LimitError(
            f"host pattern {value[:80]!r} is not valid: use a host id or an fnmatch pattern "
            "of letters, digits, '.', '_', '-', ':', '@', '*', '?' and '[...]'"
        )
    return value


def _check_request(cluster: str, patterns: Iterable[str]) -> list[str]:
    check_name(cluster, "cluster name")
    wanted = list(dict.fromkeys(patterns))
    if not wanted:
        raise LimitError("name at least one host or pattern")
    if len(wanted) > MAX_PATTERNS_PER_REQUEST:
        raise LimitError(f"at most {MAX_PATTERNS_PER_REQUEST} hosts or patterns per request")
    for pattern in wanted:
        check_pattern(pattern)
    return wanted


class Admissions:
    """The admission list, kept in memory and written through to the store."""

    def __init__(self, store: Storage, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._by_cluster: dict[str, dict[str, Admission]] = {}
        self.refresh()

    def refresh(self, cluster: str | None = None) -> None:
        """Mirror the stored list (again: another coordinator changed ``cluster``'s)."""
        with self.store.read() as uow:
            rows = uow.admissions.all()
        by_cluster: dict[str, dict[str, Admission]] = {}
        for item in rows:
            by_cluster.setdefault(item.cluster, {})[item.pattern] = item
        with self._lock:
            self._by_cluster = by_cluster

    def allows(self, cluster: str, host_id: str) -> bool:
        with self._lock:
            patterns = list(self._by_cluster.get(cluster, {}))
        return any(fnmatchcase(host_id, p) for p in patterns)

    def check(self, cluster: str, host_id: str) -> None:
        """NotAdmittedError, naming the command that fixes it, unless ``host_id`` may join."""
        if not self.allows(cluster, host_id):
            raise NotAdmittedError(
                f"host {host_id} is not admitted to cluster {cluster}; an administrator "
                f"admits it with `cpucompat cluster admit {cluster} {host_id}`"
            )

    def admit(self, cluster: str, patterns: Iterable[str], by: str = "") -> list[Admission]:
        wanted = _check_request(cluster, patterns)
        with self._lock:
            now = self.clock()
            have = self._by_cluster.get(cluster, {})
            new = [Admission(cluster, p, now, by) for p in wanted if p not in have]
            with self.store.unit_of_work() as uow:
                uow.announce(ADMISSIONS_TOPIC, cluster)
                uow.admissions.add(new)
            self._by_cluster.setdefault(cluster, {}).update({a.pattern: a for a in new})
            return self._sorted(cluster)

    def revoke(self, cluster: str, patterns: Iterable[str]) -> list[Admission]:
        """Remove admissions exactly as admitted; all of them or, if one is missing, none."""
        wanted = _check_request(cluster, patterns)
        with self._lock:
            have = self._by_cluster.get(cluster, {})
            for pattern in wanted:
                if pattern not in have:
                    raise AdmissionNotFoundError(self._missing(cluster, pattern, have))
            with self.store.unit_of_work() as uow:
                uow.announce(ADMISSIONS_TOPIC, cluster)
                uow.admissions.remove(cluster, wanted)
            for pattern in wanted:
                del have[pattern]
            if not have:
                self._by_cluster.pop(cluster, None)
            return self._sorted(cluster)

    @staticmethod
    def _missing(cluster: str, pattern: str, have: dict[str, Admission]) -> str:
        covering = sorted(p for p in have if fnmatchcase(pattern, p))
        if covering:
            return (
                f"cluster {cluster} has no admission {pattern!r}: it is admitted by pattern "
                f"{covering[0]!r}; revoke that pattern (and admit the hosts that stay)"
            )
        return f"cluster {cluster} has no admission {pattern!r}; nothing was revoked"

    def _sorted(self, cluster: str) -> list[Admission]:
        return sorted(self._by_cluster.get(cluster, {}).values(), key=lambda a: a.pattern)

    def all(self, cluster: str = "") -> list[Admission]:
        with self._lock:
            clusters = [cluster] if cluster else sorted(self._by_cluster)
            return [a for c in clusters for a in self._sorted(c)]
