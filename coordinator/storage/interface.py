"""What the coordinator's services need from a database: repositories and a unit of work.

Services (the registry, the policy engine, VMs, admissions) hold the rules and speak
only these protocols; each backend (SQLite, the embedded default; PostgreSQL next)
holds all of its SQL behind them. Values cross this seam as plain Python types: the
backend converts its column types (SQLite's text-stored actions, 0/1 booleans, JSON
text) so nothing of one dialect leaks into a service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from ..domain.hosts import Event, EventKind, HostStatus, ProfileVersion
from .errors import StorageFault

# ---- records: one stored row each, as plain values ------------------------------------


@dataclass(frozen=True)
class HostRow:
    """A registered host as stored (its decoded profile is the services' business)."""

    host_id: str
    cluster: str
    agent_address: str
    agent_version: str
    status: HostStatus
    replayed: bool
    fingerprint: str
    agent_fingerprint: str
    profile_version: int
    first_seen: float
    last_seen: float
    heartbeat_interval: float
    pruned_versions: int = 0
    maintenance: str = ""  # "" none, "on", "ending" (off asked; ends at the next fresh report)
    maintenance_reason: str = ""


class Member(NamedTuple):
    """What a cluster's policy reads of each member, on every change of the cluster."""

    host_id: str
    profile_version: int
    status: HostStatus
    maintenance: str


@dataclass(frozen=True)
class NewProfile:
    """A profile version to store; the backend assigns its number (increasing, never reused)."""

    host_id: str
    recorded_at: float
    fingerprint: str
    source: str
    raw: bytes  # see storage.blobs: the same bytes in every backend
    features: Sequence[str]
    gained: Sequence[str]
    lost: Sequence[str]
    summary: dict[str, Any]
    leaf_classes: Mapping[str, bytes] = field(default_factory=dict)
    """The leaf classes ``raw`` refers to, digest -> stored bytes; each is stored once."""


@dataclass(frozen=True)
class StoredRaw:
    """A stored version's raw leaves and the host it belongs to (for error messages)."""

    version: int
    host_id: str
    raw: bytes
    leaf_classes: Mapping[str, bytes] = field(default_factory=dict)
    """The leaf classes the version refers to (none for a version stored before them)."""


@dataclass(frozen=True)
class EventFilter:
    """Events of one cluster, since a time, of one host; an empty field matches all."""

    cluster: str | None = None
    since: float | None = None
    host_id: str | None = None


@dataclass(frozen=True)
class PolicyRow:
    """A cluster's stored policy; actions are OfflineAction values (Hyper-V's numbers)."""

    cluster: str
    action: int
    computed_action: int
    pinned_action: int | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    version: int = 0
    updated_at: float = 0.0


@dataclass(frozen=True)
class VmRow:
    """A registered VM; ``requirement`` is its stamp text (see domain.stamp)."""

    name: str
    cluster: str
    mode: str
    boot_host: str | None
    baseline: str | None
    requirement: str
    registered_at: float
    booted_at: float
    current_host: str | None
    cpu_definition: str | None = None  # the libvirt <cpu> it booted with, one line
    offline_action: int | None = None  # its own OfflineAction; None before the first compute
    refusing_hosts: tuple[str, ...] = ()  # the first few by host id (domain.vm_action)
    action_reason: str = ""
    refusing_total: int = 0  # every refusing host, listed or not


@dataclass(frozen=True)
class Admission:
    """A host id or fnmatch pattern an administrator admitted to a cluster."""

    cluster: str
    pattern: str
    admitted_at: float
    admitted_by: str


@dataclass(frozen=True)
class BaselinePinRow:
    """A cluster's pinned baseline: where it came from and its decision fields (a dict)."""

    cluster: str
    source: str
    baseline: dict[str, Any]
    pinned_at: float
    pinned_by: str = ""


# ---- repositories ----------------------------------------------------------------------


class HostRepository(Protocol):
    def get(self, host_id: str, *, for_update: bool = False) -> HostRow | None:
        """``for_update``: the caller changes this host in this unit of work (a backend with
        concurrent writers locks its row until commit)."""
        ...

    def all(self) -> list[HostRow]: ...

    def in_cluster(self, cluster: str) -> list[HostRow]:
        """The cluster's members, by host id."""
        ...

    def members(self, cluster: str) -> list[Member]:
        """The cluster's members as its policy reads them, by host id (four columns)."""
        ...

    def upsert(self, row: HostRow) -> None:
        """Insert, or refresh every field but ``first_seen`` and ``pruned_versions``."""
        ...

    def heard(self, host_id: str, last_seen: float, status: HostStatus, interval: float) -> None:
        """A heartbeat: last seen, status and interval."""
        ...

    def set_status(self, host_id: str, status: HostStatus) -> None: ...

    def set_maintenance(self, host_id: str, state: str, reason: str) -> None:
        """Maintenance state ("", "on", "ending") and the administrator's reason."""
        ...

    def add_pruned(self, host_id: str, count: int) -> None:
        """Count ``count`` more versions pruned from the host's history."""
        ...

    def delete(self, host_id: str) -> None: ...


class ProfileRepository(Protocol):
    def add(self, profile: NewProfile) -> int:
        """Store a version and its leaf classes not stored yet; returns its number, greater
        than every number given before."""
        ...

    def raw(self, version: int) -> StoredRaw | None:
        """The version's own bytes and the leaf classes it refers to."""
        ...

    def own_bytes(self, versions: Sequence[int]) -> dict[int, bytes]:
        """Many versions' own bytes (without their leaf classes) in few queries: at start
        the registry tells apart the distinct contents of thousands of hosts by them and
        reads the leaf classes of one version per content only."""
        ...

    def leaf_class_count(self) -> int:
        """How many distinct leaf classes are stored (shared by every version that has one)."""
        ...

    def features(self, version: int) -> list[str] | None: ...

    def history(self, host_id: str) -> list[ProfileVersion]:
        """The host's stored versions, oldest first."""
        ...

    def count(self, host_id: str) -> int: ...

    def oldest(self, host_id: str, limit: int, keep: int | None) -> list[int]:
        """Up to ``limit`` of the host's oldest version numbers, never ``keep``."""
        ...

    def delete(self, versions: Iterable[int]) -> None:
        """Forget the versions, and the leaf classes no remaining version refers to."""
        ...


class EventRepository(Protocol):
    def add(
        self,
        time: float,
        cluster: str,
        host_id: str,
        kind: EventKind,
        message: str,
        details: dict[str, Any],
    ) -> None:
        """Append an event; ids increase in the order events are added."""
        ...

    def window(self, where: EventFilter, newest: int) -> tuple[int, int] | None:
        """(first id, last id) of the newest ``newest`` matching events; None when none match."""
        ...

    def page(
        self,
        where: EventFilter,
        *,
        after_id: int,
        before_id: int | None,
        ascending: bool,
        limit: int,
    ) -> list[Event]:
        """Matching events with after_id < id < before_id, by id."""
        ...


class PolicyRepository(Protocol):
    def get(self, cluster: str, *, for_update: bool = False) -> PolicyRow | None:
        """``for_update``: the caller will write this cluster's policy in this unit of work
        (a backend with concurrent writers locks it until commit)."""
        ...

    def all(self) -> list[PolicyRow]: ...

    def clusters(self) -> list[str]:
        """Every cluster with a stored policy, sorted (without reading the policies)."""
        ...

    def put(self, row: PolicyRow) -> None:
        """Insert or replace the cluster's policy."""
        ...

    def set_pin(
        self, cluster: str, pinned: int | None, pin_reason: str, *, initial: PolicyRow
    ) -> None:
        """Set the pin and its reason, keeping the rest; ``initial`` when none is stored."""
        ...

    def pinned_action(self, cluster: str) -> int | None:
        """The cluster's pin alone (None: not pinned, or no policy stored), without reading
        its details (a mixed cluster's run to megabytes of blocking pairs)."""
        ...

    def bump_version(self, cluster: str, updated_at: float) -> int | None:
        """A new version of the stored policy, nothing else changed (the caller will write
        it: locked as ``get(for_update=True)`` does); the new version, None when none is stored."""
        ...


class VmRepository(Protocol):
    def get(self, name: str) -> VmRow | None: ...

    def all(self) -> list[VmRow]: ...

    def in_cluster(self, cluster: str) -> list[VmRow]:
        """The cluster's VMs, by name."""
        ...

    def put(self, row: VmRow) -> None:
        """Insert or replace the VM (its offline action too)."""
        ...

    def set_action(
        self, name: str, action: int, refusing_hosts: Sequence[str], reason: str, total: int
    ) -> None:
        """The VM's own offline action, the first hosts that refuse it, how many do, and why."""
        ...

    def move(self, name: str, cluster: str, current_host: str | None) -> None: ...

    def delete(self, name: str) -> None: ...


class AdmissionRepository(Protocol):
    def all(self) -> list[Admission]: ...

    def add(self, admissions: Iterable[Admission]) -> None: ...

    def remove(self, cluster: str, patterns: Iterable[str]) -> None: ...


class BaselinePinRepository(Protocol):
    def get(self, cluster: str) -> BaselinePinRow | None: ...

    def all(self) -> list[BaselinePinRow]: ...

    def put(self, row: BaselinePinRow) -> None:
        """Insert or replace the cluster's pin."""
        ...

    def delete(self, cluster: str) -> None: ...


# ---- the unit of work and the storage ----------------------------------------------------


class UnitOfWork(Protocol):
    """One transaction: everything done through it lands together or not at all."""

    @property
    def hosts(self) -> HostRepository: ...

    @property
    def profiles(self) -> ProfileRepository: ...

    @property
    def events(self) -> EventRepository: ...

    @property
    def policies(self) -> PolicyRepository: ...

    @property
    def vms(self) -> VmRepository: ...

    @property
    def admissions(self) -> AdmissionRepository: ...

    @property
    def baseline_pins(self) -> BaselinePinRepository: ...

    def on_commit(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` after the commit succeeded (in the order added); never on rollback."""
        ...

    def announce(self, topic: str, key: str) -> None:
        """Tell the other coordinators on this database that ``topic`` ``key`` changed (a
        host id, a cluster's policy, a VM name, a cluster's admissions), once this unit of
        work commits. Nothing where this coordinator is the only writer (SQLite)."""
        ...


class Storage(Protocol):
    """An open database. Backend errors surface as StoreError / StorageFault only."""

    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]:
        """A writing transaction: commit at exit, rollback on any exception."""
        ...

    def read(self) -> AbstractContextManager[UnitOfWork]:
        """A consistent read; nothing may be written through it."""
        ...

    def damaged(self, what: str) -> StorageFault:
        """The fault to raise when stored data cannot be read back, naming the database."""
        ...

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        """Call ``listener(topic, key)`` for each announcement another coordinator commits;
        ``("*", "")`` when some may have been missed (a lost connection): reload everything.
        The listener runs on the backend's own thread. Nothing where no one else writes."""
        ...

    def holds_lease(self, name: str) -> bool:
        """Whether this coordinator may do the once-per-database job ``name`` (the stale
        sweep) now; a lease held by a coordinator that died passes to the next one that
        asks. Always true where this coordinator is the only writer. StorageFault when the
        database cannot be asked (the lease is lost then)."""
        ...

    def close(self) -> None: ...
