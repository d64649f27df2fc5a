"""The host registry: applies agent reports, heartbeats and goodbyes to the storage.

Every change happens in one unit of work (one transaction) together with its
events and with whatever `on_change` does for the clusters it touched (the
policy engine recomputes there), and the in-memory view is updated only after
the commit, so readers never see what the disk does not hold. The rules live
here (staleness, event wording, rate limits, pruning); the SQL lives behind
``storage.interface``.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, NamedTuple

from cpucompat.agent.decode import capture_tsc, decode
from cpucompat.agent.decode import offer_fingerprint as decode_offer_fingerprint
from cpucompat.agent.errors import CpucompatError, InputError, NotFoundError, RefusalError
from cpucompat.agent.profile import Profile
from cpucompat.agent.raw import RawCapture, RawDataError, validate_capture

from .cache import AnswerCache, Region
from .domain.hosts import (
    MISSED_HEARTBEATS_FOR_STALE,
    Event,
    EventKind,
    HostRecord,
    HostStatus,
    ProfileVersion,
)
from .limits import (
    MAX_AGENT_VERSION,
    MAX_FINGERPRINT,
    MAX_REASON,
    RATE_WINDOW,
    LimitError,
    Limits,
    RateLimitedError,
    check_agent_address,
    check_capture_fields,
    check_interval,
    check_text,
)
from .limits import check_name as check_whole_name
from .outage import OutageWatch
from .profile_changes import (
    offer_change,
    offer_fingerprint,
    profile_changed,
    tsc_changed,
    version_summary,
)
from .storage.blobs import PackedCapture, pack_capture, unpack_capture
from .storage.errors import StorageFault
from .storage.interface import EventFilter, HostRow, NewProfile, Storage, StoredRaw, UnitOfWork

OnChange = Callable[[UnitOfWork, set[str], float], None]
"""Called inside the unit of work with the clusters whose membership or profiles changed."""

HOST_TOPIC = "host"  # announced for each host a unit of work changes (several coordinators)
DEFAULT_HEARTBEAT_INTERVAL = 300.0
MAINTENANCE_ON = "on"
MAINTENANCE_ENDING = "ending"
MIN_HEARTBEAT_INTERVAL = 0.05


class RegistryError(CpucompatError):
    """Base of the registry's refusals; each maps to one gRPC status."""


class InvalidReportError(RegistryError, InputError):
    """The report cannot describe a processor (INVALID_ARGUMENT)."""


class UnknownHostError(RegistryError, NotFoundError):
    """No host is registered under that id (NOT_FOUND)."""


class RefusedError(RegistryError, RefusalError):
    """The coordinator's configuration forbids this (FAILED_PRECONDITION)."""


def digest(blob: bytes) -> str:
    """The content key of stored raw leaves: identical hosts share one decoded profile."""
    return hashlib.sha256(blob).hexdigest()


def check_name(value: str, what: str) -> str:
    """A host id, cluster or VM name, matched whole (InvalidReportError otherwise)."""
    try:
        return check_whole_name(value, what)
    except LimitError as exc:
        raise InvalidReportError(str(exc)) from None


def add_event(
    uow: UnitOfWork,
    now: float,
    cluster: str,
    host_id: str,
    kind: EventKind,
    message: str,
    **details: Any,
) -> None:
    """Append one event to the log, in the unit of work of the change it describes."""
    uow.events.add(now, cluster, host_id, kind, message, details)


class Prepared(NamedTuple):
    """A report's capture as `Registry.report` keeps it: checked, packed and decoded (a
    pure function of the bytes sent, so remembered by their digest: `Region.WIRE`)."""

    packed: PackedCapture
    key: str  # digest of the packed own bytes (`Region.CONTENT`)
    profile: Profile


class NotApplied(Exception):
    """Raised by a grouped change before it wrote anything: leave it out of the batch."""


@dataclass
class _Queued:
    """One change waiting for a group commit, and what became of it."""

    work: Callable[[UnitOfWork, float], set[str]]
    host_ids: set[str]
    clusters: set[str] = field(default_factory=set)
    error: BaseException | None = None
    done: bool = False


class Registry:
    """All registered hosts, kept in the storage and mirrored in memory for fast decisions."""

    def __init__(
        self,
        store: Storage,
        *,
        allow_replayed: bool = False,
        clock: Callable[[], float] = time.time,
        limits: Limits | None = None,
        cache: AnswerCache | None = None,
        outages: OutageWatch | None = None,
    ) -> None:
        self.store = store
        self.allow_replayed = allow_replayed
        self.limits = limits or Limits()
        self.clock = clock
        self.on_change: list[OnChange] = []
        self._hosts: dict[str, HostRecord] = {}
        # The coordinator's one cache (`cache.py`): decoded profiles here, the answers
        # about hosts in CompatibilityService and VmRegistry; `_load` drops a changed host's answers.
        self.cache = cache or AnswerCache()
        self._lock = threading.RLock()
        self._queue: list[_Queued] = []  # changes waiting for a group commit
        self._queue_lock = threading.Lock()
        self._changes: dict[str, deque[float]] = {}  # when each host last stored new versions
        self._rate_lock = threading.Lock()  # guards _changes
        # Profiles stored by the unit of work under way (the writer lock is held): the
        # policy recompute in the same transaction takes them from here, not by reading
        # back and hashing what was just written. Cached on commit, dropped either way.
        self._added: dict[int, Profile] = {}
        # Host rows written whole by the unit of work under way (reports, heartbeats):
        # after the commit the mirror takes them as written instead of reading each back,
        # with the profile of a version the unit added (`_added`). Dropped when it ends.
        self._written: dict[str, HostRow] = {}
        # After a restart, silence during the outage is the coordinator's, not the hosts':
        # nobody counts as stale before three intervals have passed since this start.
        self.started_at = clock()
        # Likewise after a database outage this coordinator noticed (`outage.py`).
        self.outages = outages
        with self._lock:
            self._load()

    # ---- reading -------------------------------------------------------------------

    def _decoded(self, uow: UnitOfWork, version: int) -> Profile | None:
        """The decoded profile of one stored version, None when it is not stored (cached:
        versions never change; pruning and removal forget them)."""
        profile: Profile | None = self.cache.get(Region.PROFILE, version) or self._added.get(
            version
        )
        if profile is None:
            stored = uow.profiles.raw(version)
            if stored is None:
                return None
            profile = self.cache.put(
                Region.PROFILE,
                version,
                self._decode_stored(stored, f"profile {version} of host {stored.host_id}"),
            )
        return profile

    def _decode_stored(self, stored: StoredRaw, what: str) -> Profile:
        """Stored raw leaves decoded once per distinct content."""
        key = digest(stored.raw)
        profile: Profile | None = self.cache.get(Region.CONTENT, key)
        if profile is None:
            try:
                profile = decode(unpack_capture(stored.raw, stored.leaf_classes))
            except Exception as exc:  # zlib, JSON or leaves: the stored bytes are damaged
                raise self.store.damaged(f"{what} cannot be decoded ({exc})") from None
            profile = self.cache.put(Region.CONTENT, key, profile)
        return profile

    def profile_for_version(self, uow: UnitOfWork, version: int) -> Profile:
        profile = self._decoded(uow, version)
        if profile is None:
            raise UnknownHostError(f"profile version {version} is not stored")
        return profile

    def _record(
        self,
        uow: UnitOfWork,
        row: HostRow,
        known: HostRecord | None = None,
        decoded: Profile | None = None,
    ) -> HostRecord | None:
        """The mirrored record of a stored host; None when its profile is not stored.

        ``known``, the record mirrored so far, lends its decoded profile when the version
        is the same (a heartbeat never decodes again, whatever the cache evicted);
        ``decoded`` is the profile of the row's version when the caller has it."""
        if decoded is not None:
            profile: Profile | None = decoded
        elif known is not None and known.profile_version == row.profile_version:
            profile = known.profile
        else:
            profile = self._decoded(uow, row.profile_version)
        if profile is None:
            return None
        return self._record_of(row, profile)

    def _record_of(self, row: HostRow, profile: Profile) -> HostRecord:
        return HostRecord(
            host_id=row.host_id,
            cluster=row.cluster,
            agent_address=row.agent_address,
            status=row.status,
            replayed=row.replayed,
            fingerprint=row.fingerprint,
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            # Never longer than --max-interval, even from a database written before the bound.
            heartbeat_interval=min(row.heartbeat_interval, self.limits.max_interval),
            profile_version=row.profile_version,
            profile=profile,
            agent_version=row.agent_version,
            maintenance=row.maintenance,
            maintenance_reason=row.maintenance_reason,
            agent_fingerprint=row.agent_fingerprint,
        )

    def _preload(self, uow: UnitOfWork, versions: list[int]) -> dict[int, Profile]:
        """The decoded profiles of ``versions``, each distinct content decoded once.

        At start thousands of hosts share a few processors: their versions' own bytes
        come in a few queries and tell the contents apart, and only one version per
        content not decoded yet has its leaf classes read (not two queries per host)."""
        out: dict[int, Profile] = {}
        wanted = []
        for version in versions:
            profile: Profile | None = self.cache.get(Region.PROFILE, version)
            if profile is None:
                wanted.append(version)
            else:
                out[version] = profile
        for version, own in uow.profiles.own_bytes(wanted).items():
            profile = self.cache.get(Region.CONTENT, digest(own))
            if profile is None:
                stored = uow.profiles.raw(version)
                if stored is None:
                    continue
                profile = self._decode_stored(stored, f"profile {version} of host {stored.host_id}")
            out[version] = self.cache.put(Region.PROFILE, version, profile)
        return out

    def record_of(self, uow: UnitOfWork, row: HostRow) -> HostRecord | None:
        """A stored host as a record, inside a unit of work (before the mirror has it)."""
        return self._record(uow, row)

    def _load(self, host_ids: Iterable[str] | None = None) -> None:
        """Mirror the stored hosts in memory (all of them, or just ``host_ids``).

        Then the cache forgets every answer about a host that is gone or whose profile
        version, status, replayed flag or cluster changed: after the mirror changed, so an
        answer a reader stored meanwhile is dropped by one side or the other (see
        `CompatibilityService._remember`)."""
        if host_ids is not None:
            host_ids = self._mirror_written(host_ids)
            if not host_ids:
                return
        with self.store.read() as uow:
            if host_ids is None:
                rows = uow.hosts.all()
                decoded = self._preload(uow, [row.profile_version for row in rows])
                records = (
                    self._record(uow, row, decoded=decoded.get(row.profile_version)) for row in rows
                )
                self._hosts = {r.host_id: r for r in records if r is not None}
                return
            for host_id in host_ids:
                old = self._hosts.get(host_id)
                row = uow.hosts.get(host_id)
                record = None if row is None else self._record(uow, row, old)
                if record is None:
                    self._hosts.pop(host_id, None)
                else:
                    self._hosts[host_id] = record
                if old is None or record is None or _answer_key(old) != _answer_key(record):
                    self.cache.forget_host(host_id)

    def _mirror_written(self, host_ids: Iterable[str]) -> list[str]:
        """Mirror the rows this unit of work wrote whole (`_written`) as written; returns
        the other hosts, which are read back."""
        rest = []
        for host_id in host_ids:
            row = self._written.get(host_id)
            old = self._hosts.get(host_id)
            profile: Profile | None = None
            if row is not None and old is not None:
                # A changed report's new version was added by this very unit of work.
                profile = (
                    old.profile
                    if old.profile_version == row.profile_version
                    else self._added.get(row.profile_version)
                )
            if row is None or old is None or profile is None:
                rest.append(host_id)
                continue
            record = self._record_of(row, profile)
            self._hosts[host_id] = record
            if _answer_key(old) != _answer_key(record):
                self.cache.forget_host(host_id)
        return rest

    def refresh(self, host_id: str | None = None) -> None:
        """Another coordinator changed ``host_id`` (None: maybe anything) in the database."""
        with self._lock:
            self._load(None if host_id is None else [host_id])

    def records(self) -> list[HostRecord]:
        """Every mirrored host in no order: what the sweeper scans each second (sorting
        10,000 records there cost more than the sweep)."""
        return list(self._hosts.values())  # one C-level copy: consistent under the GIL

    def hosts(self, cluster: str | None = None) -> list[HostRecord]:
        records = self.records()
        if cluster:
            records = [r for r in records if r.cluster == cluster]
        return sorted(records, key=lambda r: (r.cluster, r.host_id))

    def clusters(self) -> list[str]:
        with self._lock:
            return sorted({r.cluster for r in self._hosts.values()})

    def host(self, host_id: str) -> HostRecord:
        record = self._hosts.get(host_id)  # lock-free, see find()
        if record is None:
            raise UnknownHostError(f"no host {host_id!r} is registered; see `cpucompat hosts`")
        return record

    def find(self, host_id: str) -> HostRecord | None:
        # No lock: a dict lookup is atomic, and queries must not wait behind a write's fsync.
        return self._hosts.get(host_id)

    def history(self, host_id: str) -> tuple[int, list[ProfileVersion]]:
        """(how many older versions were pruned, the versions kept, oldest first)."""
        self.host(host_id)
        with self.store.read() as uow:
            row = uow.hosts.get(host_id)
            versions = uow.profiles.history(host_id)
        return (row.pruned_versions if row is not None else 0), versions

    def event_window(
        self, cluster: str | None, since: float | None, host_id: str | None, newest: int
    ) -> tuple[int, int] | None:
        """(first id, last id) of the newest ``newest`` matching events; None when none match."""
        with self.store.read() as uow:
            return uow.events.window(EventFilter(cluster, since, host_id), newest)

    def events(
        self,
        cluster: str | None = None,
        since: float | None = None,
        limit: int = 1000,
        host_id: str | None = None,
        after_id: int = 0,
        before_id: int | None = None,
        ascending: bool = True,
    ) -> list[Event]:
        """Events matching every filter with after_id < id < before_id, by id."""
        with self.store.read() as uow:
            return uow.events.page(
                EventFilter(cluster, since, host_id),
                after_id=after_id,
                before_id=before_id,
                ascending=ascending,
                limit=limit,
            )

    # ---- writing -------------------------------------------------------------------

    add_event = staticmethod(add_event)

    def _commit(
        self, work: Callable[[UnitOfWork, float], set[str]], host_ids: Iterable[str]
    ) -> set[str]:
        """Run ``work`` and the on_change hooks in one unit of work; then refresh ``host_ids``
        in the mirror (before any hook the on_change listeners added runs)."""
        ids = set(host_ids)
        with self._lock:
            now = self.clock()
            try:
                with self._added_until_done(), self.store.unit_of_work() as uow:
                    uow.on_commit(lambda: self._load(ids))
                    for host_id in ids:  # other coordinators on this database refresh them
                        uow.announce(HOST_TOPIC, host_id)
                    clusters = work(uow, now)
                    if clusters:
                        for hook in self.on_change:
                            hook(uow, clusters, now)
            except BaseException:
                self._load(ids)  # a failed change leaves the mirror as stored
                raise
        return clusters

    @contextmanager
    def _added_until_done(self) -> Iterator[None]:
        """Around a unit of work: the profiles it adds are forgotten when it ends (the
        committed ones are cached by then), so a rolled-back version is never served."""
        try:
            yield
        finally:
            self._added.clear()
            self._written.clear()

    def _commit_grouped(
        self, work: Callable[[UnitOfWork, float], set[str]], host_ids: Iterable[str]
    ) -> set[str]:
        """`_commit`, sharing one transaction (one fsync) with whatever other threads queued
        meanwhile: group commit. Returns only after the shared transaction committed, so
        an acknowledged change is as durable as with `_commit`. Each ``work`` runs with
        its own time and its own on_change hooks, in queue order: the stored rows and
        events are those of running them one after the other. A ``work`` may raise
        `NotApplied` before it writes anything: only it is left out, and it raises it."""
        item = _Queued(work, set(host_ids))
        with self._queue_lock:
            self._queue.append(item)
        with self._lock:
            if not item.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._run_batch(batch)
        if item.error is not None:
            raise item.error
        return item.clusters

    def _run_batch(self, batch: list[_Queued]) -> None:
        """One unit of work for every queued change (called holding the writer lock); when
        it fails, each change is committed alone (a deadlock between coordinators on
        PostgreSQL, a fault of one change), so each caller gets its own outcome."""
        try:
            with self._added_until_done(), self.store.unit_of_work() as uow:
                for item in batch:
                    now = self.clock()
                    ids = item.host_ids  # as in _commit: mirrored before the hooks' own
                    uow.on_commit(lambda ids=ids: self._load(ids))  # type: ignore[misc]
                    for host_id in ids:
                        uow.announce(HOST_TOPIC, host_id)
                    try:
                        item.clusters = item.work(uow, now)
                    except NotApplied as exc:
                        item.error = exc
                        continue
                    if item.clusters:
                        for hook in self.on_change:
                            hook(uow, item.clusters, now)
        except Exception as exc:
            # Every caller's outcome first: nothing of this batch was committed, whatever
            # happens next (a reload that fails too must not leave a change acknowledged).
            for item in batch:
                item.error = item.error if isinstance(item.error, NotApplied) else exc
            with suppress(Exception):  # the mirror only ever takes committed changes
                self._load({h for item in batch for h in item.host_ids})
            # One change's failure (or a deadlock) must not fail the rest: each is tried
            # alone. Not when the database itself is out: each would wait for it in turn,
            # holding the writer, while its agent could be moving on to another coordinator.
            outage = isinstance(exc, StorageFault) and exc.outage
            if len(batch) > 1 and not outage:
                for item in batch:
                    if not isinstance(item.error, NotApplied):
                        self._commit_alone(item)
        except BaseException as exc:
            for item in batch:
                item.error = exc
            raise
        finally:
            for item in batch:
                item.done = True

    def _commit_alone(self, item: _Queued) -> None:
        """A change of a failed batch, committed by itself (its own error, if any)."""
        try:
            item.clusters, item.error = self._commit(item.work, item.host_ids), None
        except Exception as exc:
            item.error = exc

    def report(
        self,
        host_id: str,
        cluster: str,
        capture: RawCapture,
        *,
        agent_address: str = "",
        heartbeat_interval: float = 0,
        agent_fingerprint: str = "",
        agent_version: str = "",
        wire: bytes | None = None,
    ) -> HostRecord:
        """Apply a full report: validate everything, re-decode, store a new version if it changed.

        Every field is checked before the transaction opens: a refused report stores nothing.
        ``wire``: the digest of the capture as it was sent (`report_from`); the capture
        checked, packed and decoded is remembered under it.
        """
        replayed, interval = self._check_report(
            host_id, cluster, capture, agent_address, heartbeat_interval, agent_fingerprint,
            agent_version,
        )  # fmt: skip
        prepared: Prepared | None = self.cache.get(Region.WIRE, wire) if wire else None
        if prepared is None:
            if not replayed:
                # A live capture has no file behind it: whatever the client wrote as its
                # origin (a dump path, say) must never show as where a live host's profile
                # came from.
                capture = replace(capture, origin=None)
            try:
                validate_capture(capture)
                packed = pack_capture(capture)
                key = digest(packed.own)
                profile = self.cache.get(Region.CONTENT, key) or decode(capture)
            except RawDataError as exc:
                raise InvalidReportError(f"report for {host_id!r} refused: {exc}") from None
            if wire:
                self.cache.put(Region.WIRE, wire, Prepared(packed, key, profile))
        else:
            packed, key, profile = prepared
        features = sorted(profile.features)
        stored_new_version = False

        def work(uow: UnitOfWork, now: float) -> set[str]:
            nonlocal stored_new_version
            old = uow.hosts.get(host_id, for_update=True)
            touched: set[str] = set()
            version = old.profile_version if old is not None else None
            gained: list[str] = []
            lost: list[str] = []
            # The hypervisor's offer is part of the stored profile: a kernel update that
            # changes what KVM gives guests is a new version and an event, like a
            # microcode update that changes CPUID.
            previous = self.profile_for_version(uow, version) if version is not None else None
            offer_changed = previous is not None and offer_fingerprint(
                previous
            ) != offer_fingerprint(profile)
            _, offer_gained, offer_lost = (
                offer_change(previous, profile)
                if previous is not None and offer_changed
                else ("", [], [])
            )
            tsc_moved = version is not None and tsc_changed(
                self.profile_for_version(uow, version).tsc, profile.tsc
            )
            if old is None or old.fingerprint != profile.fingerprint or tsc_moved or offer_changed:
                stored_new_version = True
                if old is not None:
                    prev = set(uow.profiles.features(old.profile_version) or [])
                    gained = sorted(set(features) - prev)
                    lost = sorted(prev - set(features))
                version = uow.profiles.add(
                    NewProfile(
                        host_id=host_id,
                        recorded_at=now,
                        fingerprint=profile.fingerprint,
                        source=capture.source,
                        raw=packed.own,
                        leaf_classes=packed.classes,
                        features=features,
                        gained=gained,
                        lost=lost,
                        summary=version_summary(profile, offer_gained, offer_lost),
                    )
                )
                self._added[version] = profile
                uow.on_commit(partial(self.cache.put, Region.PROFILE, version, profile))
            assert version is not None
            row = HostRow(
                host_id=host_id,
                cluster=cluster,
                agent_address=agent_address,
                agent_version=agent_version,
                status=HostStatus.ONLINE,
                replayed=replayed,
                fingerprint=profile.fingerprint,
                agent_fingerprint=agent_fingerprint,
                profile_version=version,
                first_seen=now,  # kept by the storage when the host is known
                last_seen=now,
                heartbeat_interval=interval,
            )
            uow.hosts.upsert(row)
            pruned = (
                self._prune_versions(uow, now, host_id, cluster, version)
                if stored_new_version
                else 0
            )
            if old is not None and old.maintenance != MAINTENANCE_ENDING:
                # The row as stored now (what the storage keeps of a known host beside),
                # mirrored as written after the commit (ending maintenance writes it again).
                self._written[host_id] = replace(
                    row,
                    first_seen=old.first_seen,
                    pruned_versions=old.pruned_versions + pruned,
                    maintenance=old.maintenance,
                    maintenance_reason=old.maintenance_reason,
                )
            if old is None:
                what = "replayed dump" if replayed else "processor"
                self.add_event(
                    uow,
                    now,
                    cluster,
                    host_id,
                    EventKind.HOST_JOINED,
                    f"host {host_id} joined cluster {cluster} ({what}: {profile.brand or profile.vendor})",
                    fingerprint=profile.fingerprint,
                    replayed=replayed,
                )
                return {cluster}
            if old.cluster != cluster:
                self.add_event(
                    uow,
                    now,
                    old.cluster,
                    host_id,
                    EventKind.HOST_LEFT,
                    f"host {host_id} left cluster {old.cluster} (now reports into {cluster})",
                    new_cluster=cluster,
                )
                self.add_event(
                    uow,
                    now,
                    cluster,
                    host_id,
                    EventKind.CLUSTER_CHANGED,
                    f"host {host_id} moved from cluster {old.cluster} to {cluster}",
                    old_cluster=old.cluster,
                    new_cluster=cluster,
                )
                touched |= {old.cluster, cluster}
            if old.fingerprint != profile.fingerprint or offer_changed or tsc_moved:
                assert previous is not None
                message, details = profile_changed(
                    host_id, old.fingerprint, previous, profile, gained, lost, tsc_moved
                )
                self.add_event(
                    uow, now, cluster, host_id, EventKind.PROFILE_CHANGED, message, **details
                )
                touched.add(cluster)
            if old.status != HostStatus.ONLINE:
                self.add_event(
                    uow,
                    now,
                    cluster,
                    host_id,
                    EventKind.STATUS_CHANGED,
                    f"host {host_id} is online again (was {old.status.value})",
                    old_status=old.status.value,
                    new_status=HostStatus.ONLINE.value,
                )
                touched.add(cluster)
            if old.replayed != replayed:
                touched.add(cluster)
            if old.maintenance == MAINTENANCE_ENDING:
                self._end_maintenance(uow, now, host_id, cluster, "a full report")
                touched.add(cluster)
            return touched

        # The rate's own lock, not the writer's: the writer is held through a whole group
        # commit (its fsync included), and waiting for it twice more per report, before
        # and after its own commit, left the coordinator idle while reports queued.
        with self._rate_lock:
            known = self._hosts.get(host_id)
            if known is None or known.fingerprint != profile.fingerprint:
                self._check_change_rate(host_id)
        # Group commit, as for unchanged reports: reports arriving together share one
        # transaction (one fsync), each still acknowledged only after it committed.
        self._commit_grouped(work, [host_id])
        self.cache.put(Region.CONTENT, key, profile)
        if stored_new_version:
            with self._rate_lock:
                self._changes.setdefault(host_id, deque()).append(self.clock())
        return self.host(host_id)

    def _check_report(
        self,
        host_id: str,
        cluster: str,
        capture: RawCapture,
        agent_address: str,
        heartbeat_interval: float,
        agent_fingerprint: str,
        agent_version: str,
    ) -> tuple[bool, float]:
        """A report's own fields (not its leaves), checked alike on both paths:
        (replayed, heartbeat interval); InvalidReportError or RefusedError."""
        check_name(host_id, "host id")
        check_name(cluster, "cluster name")
        try:
            replayed = check_capture_fields(
                capture.source, capture.microcode, capture.origin, capture.extra
            )
            check_agent_address(agent_address)
            check_text(agent_version, "agent_version", MAX_AGENT_VERSION)
            check_text(agent_fingerprint, "agent_fingerprint", MAX_FINGERPRINT)
            interval = self._interval(heartbeat_interval, DEFAULT_HEARTBEAT_INTERVAL)
        except LimitError as exc:
            raise InvalidReportError(f"report for {host_id!r} refused: {exc}") from None
        if replayed and not self.allow_replayed:
            raise RefusedError(
                f"report for {host_id!r} is replayed from a dump ({capture.source}); start the "
                "coordinator with --allow-replayed to accept rehearsal hosts"
            )
        return replayed, interval

    def report_from(
        self,
        host_id: str,
        cluster: str,
        header: RawCapture,
        leaves: Callable[[], RawCapture],
        *,
        agent_address: str = "",
        heartbeat_interval: float = 0,
        agent_fingerprint: str = "",
        agent_version: str = "",
        wire: Callable[[], bytes] | None = None,
    ) -> tuple[HostRecord, bool]:
        """A report as it arrives: ``header`` is its capture without logical CPUs, ``leaves``
        converts the whole capture, called only when the profile may have changed and the
        capture's bytes as sent (their digest, from ``wire``: not taken for an unchanged
        report) were not seen before.
        Returns (the host's record, whether it was applied as unchanged)."""
        fields: dict[str, Any] = {
            "agent_address": agent_address,
            "heartbeat_interval": heartbeat_interval,
            "agent_fingerprint": agent_fingerprint,
            "agent_version": agent_version,
        }
        known = self.find(host_id)
        if known is not None and agent_fingerprint and agent_fingerprint == known.agent_fingerprint:
            record = self.report_unchanged(host_id, cluster, header, **fields)
            if record is not None:
                return record, True
        sent = wire() if wire is not None else None
        if sent and self.cache.get(Region.WIRE, sent) is not None:
            # These very bytes were checked, packed and decoded before (another host of the
            # same model, the same firmware change across a fleet): the header will do.
            return self.report(host_id, cluster, header, wire=sent, **fields), False
        return self.report(host_id, cluster, leaves(), wire=sent, **fields), False

    def report_unchanged(
        self,
        host_id: str,
        cluster: str,
        header: RawCapture,
        *,
        agent_address: str = "",
        heartbeat_interval: float = 0,
        agent_fingerprint: str = "",
        agent_version: str = "",
    ) -> HostRecord | None:
        """A report whose profile provably did not change, applied at a heartbeat's cost;
        None when that is not provable (the caller then applies it with `report`).

        ``header`` is the report's capture without its logical CPUs (never decoded here).
        Unchanged means: the agent's fingerprint (processor and hypervisor offer, as the
        agent decoded them) equals the one stored with the host, exactly what a heartbeat
        is trusted with; the stored fingerprint equals this coordinator's decoding of the
        stored leaves (a newer feature table is noticed: the full report stores a new
        version, as always); the offer's fingerprint, the kernel's TSC (within the
        recalibration tolerance), the replayed flag and the cluster are the stored ones.
        What is stored then is what `report` would store for it: the host's last-seen
        time, status, interval, agent address and version (all checked first), and the
        events of a heartbeat (back online, maintenance ended).
        """
        replayed, interval = self._check_report(
            host_id, cluster, header, agent_address, heartbeat_interval, agent_fingerprint,
            agent_version,
        )  # fmt: skip
        record = self.find(host_id)
        if record is None or not self._same_profile(record, header, cluster, agent_fingerprint):
            return None

        def work(uow: UnitOfWork, now: float) -> set[str]:
            old = uow.hosts.get(host_id, for_update=True)
            if (
                old is None
                or old.agent_fingerprint != agent_fingerprint
                or old.cluster != cluster
                or old.fingerprint != record.fingerprint
                or old.profile_version != record.profile_version
                or old.replayed != replayed
            ):
                raise NotApplied("the stored host changed since the mirror was read")
            new = replace(
                old,
                agent_address=agent_address,
                agent_version=agent_version,
                status=HostStatus.ONLINE,
                last_seen=now,
                heartbeat_interval=interval,
            )
            uow.hosts.upsert(new)
            if old.maintenance != MAINTENANCE_ENDING:  # else ending it writes the row again
                self._written[host_id] = new
            return self._heard_events(uow, now, old, "a full report")

        try:
            self._commit_grouped(work, [host_id])
        except NotApplied:
            return None
        return self.host(host_id)

    def _same_profile(
        self, record: HostRecord, header: RawCapture, cluster: str, agent_fingerprint: str
    ) -> bool:
        """What `report_unchanged` checks against the mirror before it opens a transaction."""
        profile = record.profile
        if (
            not agent_fingerprint
            or agent_fingerprint != record.agent_fingerprint
            or cluster != record.cluster
            or header.replayed != record.replayed
            or profile.fingerprint != record.fingerprint  # the decoder changed
        ):
            return False
        offer = "" if header.offer is None else decode_offer_fingerprint(header.offer)
        if offer != offer_fingerprint(profile):
            return False
        return not tsc_changed(profile.tsc, capture_tsc(header, profile.tsc_hz, profile.features))

    def _heard_events(self, uow: UnitOfWork, now: float, old: HostRow, what: str) -> set[str]:
        """An unchanged report's events, in the order `report` logs them: a host that was
        not online is online again, maintenance that was ending ends; touched clusters."""
        touched: set[str] = set()
        if old.status != HostStatus.ONLINE:
            self.add_event(
                uow,
                now,
                old.cluster,
                old.host_id,
                EventKind.STATUS_CHANGED,
                f"host {old.host_id} is online again (was {old.status.value})",
                old_status=old.status.value,
                new_status=HostStatus.ONLINE.value,
            )
            touched.add(old.cluster)
        if old.maintenance == MAINTENANCE_ENDING:
            self._end_maintenance(uow, now, old.host_id, old.cluster, what)
            touched.add(old.cluster)
        return touched

    def _check_change_rate(self, host_id: str) -> None:
        """At most --profile-changes-per-hour new versions per host (RateLimitedError).

        A host whose profile flaps is refused, so it goes stale and its cluster fails safe,
        instead of filling the disk with versions.
        """
        now = self.clock()
        times = self._changes.get(host_id)
        if not times:
            return
        while times and times[0] <= now - RATE_WINDOW:
            times.popleft()
        limit = self.limits.profile_changes_per_hour
        if len(times) >= limit:
            retry_at = times[0] + RATE_WINDOW
            when = datetime.fromtimestamp(retry_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            raise RateLimitedError(
                f"host {host_id} stored {len(times)} new processor profiles in the last hour, "
                f"the coordinator's --profile-changes-per-hour {limit}; retry after {when} "
                f"(in {max(1, math.ceil(retry_at - now))} s)"
            )

    def _prune_versions(
        self, uow: UnitOfWork, now: float, host_id: str, cluster: str, current: int
    ) -> int:
        """Keep the newest --max-profile-versions of a host; an event says what went.
        Returns how many versions were pruned."""
        keep = self.limits.max_profile_versions
        count = uow.profiles.count(host_id)
        if count <= keep:
            return 0
        ids = uow.profiles.oldest(host_id, count - keep, keep=current)
        uow.profiles.delete(ids)
        uow.hosts.add_pruned(host_id, len(ids))
        uow.on_commit(lambda: self._forget_versions(ids))
        self.add_event(
            uow,
            now,
            cluster,
            host_id,
            EventKind.PROFILE_CHANGED,
            f"host {host_id}: {len(ids)} oldest profile version(s) pruned; the newest {keep} "
            "are kept (--max-profile-versions)",
            pruned_versions=len(ids),
            kept_versions=keep,
        )
        return len(ids)

    def _forget_versions(self, versions: Iterable[int]) -> None:
        for version in versions:
            self.cache.forget_version(version)

    def _interval(self, seconds: float, default: float) -> float:
        """A client's interval, bounded by --max-interval (LimitError beyond it).

        0 means "not given": ``default`` (itself capped by --max-interval), or 0 to keep
        the stored one. Tiny positive intervals are raised to MIN_HEARTBEAT_INTERVAL.
        """
        check_interval(seconds, self.limits)
        if seconds == 0:
            return min(default, self.limits.max_interval)
        return max(seconds, MIN_HEARTBEAT_INTERVAL)

    def heartbeat(
        self, host_id: str, cluster: str, agent_fingerprint: str, heartbeat_interval: float = 0
    ) -> tuple[HostRecord | None, bool]:
        """Refresh a host's last-seen time; returns (record, whether a full report is wanted)."""
        check_name(host_id, "host id")
        check_name(cluster, "cluster name")
        try:
            check_text(agent_fingerprint, "fingerprint", MAX_FINGERPRINT)
            seconds = self._interval(heartbeat_interval, 0.0)
        except LimitError as exc:
            raise InvalidReportError(f"heartbeat for {host_id!r} refused: {exc}") from None
        record = self.find(host_id)
        if record is None:
            return None, True
        if record.agent_fingerprint != agent_fingerprint or record.cluster != cluster:
            return record, True
        interval = seconds or record.heartbeat_interval

        def work(uow: UnitOfWork, now: float) -> set[str]:
            # The mirror said yes; the stored row decides (another coordinator may have
            # stored a new report meanwhile): a full report is wanted then.
            old = uow.hosts.get(host_id, for_update=True)
            if old is None or old.agent_fingerprint != agent_fingerprint or old.cluster != cluster:
                raise NotApplied("the stored host changed since the mirror was read")
            uow.hosts.heard(host_id, now, HostStatus.ONLINE, interval)
            if old.maintenance != MAINTENANCE_ENDING:  # else ending it writes the row again
                self._written[host_id] = replace(
                    old, last_seen=now, status=HostStatus.ONLINE, heartbeat_interval=interval
                )
            touched: set[str] = set()
            if old is not None and old.maintenance == MAINTENANCE_ENDING:
                self._end_maintenance(uow, now, host_id, cluster, "a heartbeat")
                touched.add(cluster)
            if old is not None and old.status != HostStatus.ONLINE:
                self.add_event(
                    uow,
                    now,
                    cluster,
                    host_id,
                    EventKind.STATUS_CHANGED,
                    f"host {host_id} is online again (was {old.status.value})",
                    old_status=old.status.value,
                    new_status=HostStatus.ONLINE.value,
                )
                touched.add(cluster)
            return touched

        try:
            self._commit_grouped(work, [host_id])
        except NotApplied:
            return self.find(host_id) or record, True
        return self.host(host_id), False

    def _set_status(
        self,
        host_ids: Iterable[str],
        status: HostStatus,
        why: str,
        still_silent_since: float | None = None,
    ) -> set[str]:
        """Change hosts' status with an event each; ``still_silent_since`` re-checks staleness
        inside the transaction, so a heartbeat that just landed wins over the sweeper."""
        ids = list(host_ids)

        def work(uow: UnitOfWork, now: float) -> set[str]:
            touched: set[str] = set()
            for host_id in ids:
                old = uow.hosts.get(host_id, for_update=True)
                if old is None or old.status == status:
                    continue
                if still_silent_since is not None and (
                    max(old.last_seen, self._grace_since())
                    + MISSED_HEARTBEATS_FOR_STALE
                    * min(old.heartbeat_interval, self.limits.max_interval)
                    >= still_silent_since
                ):
                    continue
                uow.hosts.set_status(host_id, status)
                self.add_event(
                    uow,
                    now,
                    old.cluster,
                    host_id,
                    EventKind.STATUS_CHANGED,
                    f"host {host_id} is {status.value} ({why}; was {old.status.value})",
                    old_status=old.status.value,
                    new_status=status.value,
                    reason=why,
                )
                touched.add(old.cluster)
            return touched

        return self._commit(work, ids) if ids else set()

    def goodbye(self, host_id: str) -> HostRecord:
        """The host's agent is stopping: mark it offline (it is still a member)."""
        self.host(host_id)
        self._set_status([host_id], HostStatus.OFFLINE, "its agent is stopping")
        return self.host(host_id)

    def _grace_since(self) -> float:
        """Silence before this does not count: this coordinator's start, or the end of the
        last database outage it noticed, whichever is later (neither is the hosts' fault)."""
        back = self.outages.back_at if self.outages is not None else None
        return self.started_at if back is None else max(self.started_at, back)

    def _stale_after(self, record: HostRecord) -> float:
        """When a host counts as stale: three intervals after it was last heard, or after
        the grace began, whichever is later (an outage is not the hosts' silence)."""
        return max(record.last_seen, self._grace_since()) + (
            record.stale_after() - record.last_seen
        )

    def sweep(self) -> set[str]:
        """Mark online hosts whose heartbeats stopped as stale; returns touched clusters.

        Hosts in maintenance are skipped: their agents may stop for the work. A host whose
        maintenance is ending (off asked, no fresh report yet) is swept like any other: if
        its agent did not come back, it goes stale and counts as refusing (fail-safe).
        Nobody is judged while the database is failing: what hosts sent may be unrecorded.
        """
        if self.outages is not None and self.outages.down:
            return set()
        now = self.clock()
        due = [
            r.host_id
            for r in self.records()
            if r.status == HostStatus.ONLINE
            and r.maintenance != MAINTENANCE_ON
            and now > self._stale_after(r)
        ]
        if not due:
            return set()
        return self._set_status(
            due, HostStatus.STALE, "3 heartbeats missed", still_silent_since=now
        )

    def next_sweep_in(self, default: float = 5.0) -> float:
        """Seconds until the next host could become stale (bounded), for the sweeper thread."""
        now = self.clock()
        waits = [
            self._stale_after(r) - now
            for r in self.records()
            if r.status == HostStatus.ONLINE and r.maintenance != MAINTENANCE_ON
        ]
        return max(0.05, min([default, *waits])) if waits else default

    def set_maintenance(self, host_id: str, on: bool, reason: str = "") -> HostRecord:
        """Put a host in maintenance, or ask for it to end at its next fresh report.

        In maintenance a host is no fail-over target, counts towards no action and is
        never swept stale; `off` only marks it "ending": while online it still has no say
        until its agent reports (or sends a heartbeat), but it is swept again, and once
        not online it counts as a host that refuses (`domain.vm_action.has_no_say`).
        """
        check_name(host_id, "host id")
        try:
            check_text(reason, "reason", MAX_REASON)
        except LimitError as exc:
            raise InvalidReportError(str(exc)) from None
        record = self.host(host_id)

        def work(uow: UnitOfWork, now: float) -> set[str]:
            old = uow.hosts.get(host_id, for_update=True)
            if old is None:
                raise UnknownHostError(f"no host {host_id!r} is registered; see `cpucompat hosts`")
            state = MAINTENANCE_ON if on else (MAINTENANCE_ENDING if old.maintenance else "")
            if state == old.maintenance and (not on or reason == old.maintenance_reason):
                return set()
            uow.hosts.set_maintenance(host_id, state, reason if on else old.maintenance_reason)
            if on:
                message = f"host {host_id} entered maintenance" + (f": {reason}" if reason else "")
            else:
                message = (
                    f"host {host_id}: maintenance off asked"
                    + (f" ({reason})" if reason else "")
                    + "; it counts again at its next fresh report"
                )
            self.add_event(
                uow,
                now,
                old.cluster,
                host_id,
                EventKind.MAINTENANCE_CHANGED,
                message,
                old_state=old.maintenance or "off",
                new_state=state or "off",
                reason=reason,
            )
            return {old.cluster}

        self._commit(work, [host_id])
        return self.find(host_id) or record

    def _end_maintenance(
        self, uow: UnitOfWork, now: float, host_id: str, cluster: str, what: str
    ) -> None:
        uow.hosts.set_maintenance(host_id, "", "")
        self.add_event(
            uow,
            now,
            cluster,
            host_id,
            EventKind.MAINTENANCE_CHANGED,
            f"host {host_id} left maintenance ({what} arrived after maintenance off)",
            old_state=MAINTENANCE_ENDING,
            new_state="off",
        )

    def remove(self, host_id: str, force: bool = False) -> None:
        """Forget a host (an administrator decommissioned it): it leaves its cluster.

        Its stored profile versions go with it (a host that joins again under the same
        id starts a new history); the event log keeps what happened.
        """
        record = self.host(host_id)
        if record.status == HostStatus.ONLINE and not force:
            raise RefusedError(
                f"host {host_id} is online (its agent is reporting) and would join again at its "
                "next heartbeat; stop its agent first, or remove it with --force"
            )

        def work(uow: UnitOfWork, now: float) -> set[str]:
            uow.hosts.delete(host_id)
            versions = uow.profiles.oldest(host_id, uow.profiles.count(host_id), keep=None)
            uow.profiles.delete(versions)
            uow.on_commit(lambda: self._forget_versions(versions))
            self.add_event(
                uow,
                now,
                record.cluster,
                host_id,
                EventKind.HOST_REMOVED,
                f"host {host_id} left cluster {record.cluster} (removed by an administrator)",
                fingerprint=record.fingerprint,
                profile_versions_removed=len(versions),
            )
            return {record.cluster}

        self._commit(work, [host_id])


def _answer_key(record: HostRecord) -> tuple[object, ...]:
    """What the cached answers about a host depend on; any change drops them."""
    return (record.profile_version, record.status, record.replayed, record.cluster)
