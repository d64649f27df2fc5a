"""Every metric the coordinator exports, in one place; docs/operations.md says what each means.

Gauges of the fleet (hosts, clusters, VMs) are read from the in-memory mirrors at
scrape time by `FleetCollector`, the answer cache's regions by `CacheCollector`: no
query per scrape, never out of step. Counters and
histograms are fed by thin hooks: the RPC interceptor (service/interceptors.py), the
stale sweeper (server.py), the policy engine's publish hook and `TimedStorage`, which
times each unit of work. A per-coordinator CollectorRegistry keeps two coordinators in
one process apart. The domain never imports this module.
"""

from __future__ import annotations

import math
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .cache import AnswerCache
from .domain.hosts import HostStatus
from .domain.policy import OfflineAction
from .registry import MAINTENANCE_ON

if TYPE_CHECKING:
    from .outage import OutageWatch
    from .policy import StoredPolicy
    from .server import Coordinator
    from .storage import Storage, StorageFault, UnitOfWork

# gRPC calls answer in milliseconds; a WatchPolicy stream lasts as long as its agent.
RPC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600)
DB_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
AGENT_METHODS = {"ReportProfile": "report", "Heartbeat": "heartbeat"}


def action_label(action: Any) -> str:
    """An OfflineAction as a label value: "save", "shutdown", "turn_off", "shutdown_forced"."""
    return str(getattr(action, "name", action)).lower()


class CoordinatorMetrics:
    """The coordinator's registry and the metrics its hooks feed."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.rpc_duration = Histogram(
            "cpucompat_rpc_duration_seconds",
            "Time to answer a gRPC call (a stream: its whole life), by service and method",
            ["service", "method"],
            buckets=RPC_BUCKETS,
            registry=r,
        )
        self.rpc_handled = Counter(
            "cpucompat_rpc_handled_total",
            "gRPC calls answered, by service, method and status code",
            ["service", "method", "code"],
            registry=r,
        )
        self.agent_calls = Counter(
            "cpucompat_agent_calls_received_total",
            "Reports and heartbeats received from agents, refused or not",
            ["kind"],
            registry=r,
        )
        self.agent_refused = Counter(
            "cpucompat_agent_calls_refused_total",
            "Reports and heartbeats refused, by kind and reason (the status code answered)",
            ["kind", "reason"],
            registry=r,
        )
        self.policy_changes = Counter(
            "cpucompat_policy_changes_total",
            "Changes of a cluster's offline action (a cluster's first policy counts), by the "
            "action it changed to",
            ["cluster", "action"],
            registry=r,
        )
        self.policy_watchers = Gauge(
            "cpucompat_policy_watchers",
            "Open WatchPolicy streams (each holds a server thread; one per connected agent)",
            registry=r,
        )
        self.policy_watchers_limit = Gauge(
            "cpucompat_policy_watchers_limit",
            "WatchPolicy streams this coordinator serves at most (--workers less 32); more "
            "are refused RESOURCE_EXHAUSTED",
            registry=r,
        )
        self.sweeps = Counter(
            "cpucompat_stale_sweeps_total",
            "Stale-host sweeps run by this coordinator (the lease holder)",
            registry=r,
        )
        self.sweep_failures = Counter(
            "cpucompat_stale_sweep_failures_total",
            "Stale-host sweeps that failed (a locked or full database) and were retried",
            registry=r,
        )
        self.marked_stale = Counter(
            "cpucompat_hosts_marked_stale_total",
            "Hosts the sweeper marked stale after three missed heartbeats",
            registry=r,
        )
        self.transaction = Histogram(
            "cpucompat_db_transaction_duration_seconds",
            "Time of one database transaction (write: a unit of work, read: a consistent read)",
            ["kind"],
            buckets=DB_BUCKETS,
            registry=r,
        )
        self.transaction_failures = Counter(
            "cpucompat_db_transaction_failures_total",
            "Database transactions rolled back by an error",
            ["kind"],
            registry=r,
        )
        for kind in AGENT_METHODS.values():
            self.agent_calls.labels(kind)
        for kind in ("write", "read"):
            self.transaction.labels(kind)
            self.transaction_failures.labels(kind)

    # ---- hooks ------------------------------------------------------------------------

    def rpc_done(self, full_method: str, code: str, seconds: float) -> None:
        """One answered call (from the outermost server interceptor)."""
        service, _, method = full_method.lstrip("/").rpartition("/")
        self.rpc_duration.labels(service, method).observe(seconds)
        self.rpc_handled.labels(service, method, code).inc()
        kind = AGENT_METHODS.get(method) if service.startswith("cpucompat.") else None
        if kind is not None:
            self.agent_calls.labels(kind).inc()
            if code != "OK":
                self.agent_refused.labels(kind, code.lower()).inc()

    def policy_published(self, stored: StoredPolicy, previous: StoredPolicy | None) -> None:
        """The policy engine mirrored a newer version: count it when the action changed."""
        action = stored.decision.action
        if previous is None or previous.decision.action != action:
            self.policy_changes.labels(stored.decision.cluster, action_label(action)).inc()

    def swept(self, marked: int) -> None:
        self.sweeps.inc()
        self.marked_stale.inc(marked)

    def watch(self, coordinator: Coordinator) -> None:
        """Gauges of the fleet, read from ``coordinator``'s mirrors at each scrape."""
        self.registry.register(FleetCollector(coordinator))
        self.registry.register(DatabaseCollector(coordinator.outages))
        self.registry.register(CacheCollector(coordinator.registry.cache))


class FleetCollector(Collector):
    """Hosts, clusters and VMs as they stand, from the registry's and engines' mirrors."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        c = self.coordinator
        hosts = GaugeMetricFamily(
            "cpucompat_hosts",
            "Registered hosts by cluster and status (online, stale, offline)",
            labels=["cluster", "status"],
        )
        maintenance = GaugeMetricFamily(
            "cpucompat_hosts_in_maintenance",
            "Hosts in maintenance by cluster (no fail-over target, not swept stale)",
            labels=["cluster"],
        )
        by_status: Tally[tuple[str, str]] = Tally()
        in_maintenance: Tally[str] = Tally()
        records = c.registry.hosts()
        for record in records:
            by_status[(record.cluster, str(record.status))] += 1
            in_maintenance[record.cluster] += record.maintenance == MAINTENANCE_ON
        for cluster in sorted({r.cluster for r in records}):
            for status in HostStatus:
                hosts.add_metric([cluster, str(status)], by_status[(cluster, str(status))])
            maintenance.add_metric([cluster], in_maintenance[cluster])
        yield hosts
        yield maintenance

        policies = c.policies.all()
        clusters = GaugeMetricFamily(
            "cpucompat_clusters", "Clusters by current offline action", labels=["action"]
        )
        per_cluster = GaugeMetricFamily(
            "cpucompat_cluster_offline_action",
            "1 for each cluster's current offline action (save or shutdown: alert on shutdown)",
            labels=["cluster", "action"],
        )
        version = GaugeMetricFamily(
            "cpucompat_cluster_policy_version",
            "Each cluster's current policy version (agents report the one they hold)",
            labels=["cluster"],
        )
        by_action = Tally(action_label(p.decision.action) for p in policies)
        for action in OfflineAction:
            clusters.add_metric([action_label(action)], by_action[action_label(action)])
        for policy in sorted(policies, key=lambda p: p.decision.cluster):
            name = policy.decision.cluster
            per_cluster.add_metric([name, action_label(policy.decision.action)], 1)
            version.add_metric([name], policy.version)
        yield clusters
        yield per_cluster
        yield version

        vms = GaugeMetricFamily(
            "cpucompat_vms",
            "Registered VMs by their own offline action (none: not computed yet)",
            labels=["action"],
        )
        actions = {a.vm: a.action for a in c.vms.actions.all()}
        by_vm = Tally(
            action_label(actions[v.name]) if v.name in actions else "none" for v in c.vms.all()
        )
        for label in [*(action_label(a) for a in OfflineAction), "none"]:
            vms.add_metric([label], by_vm[label])
        yield vms


class DatabaseCollector(Collector):
    """Whether the database answers, as this coordinator's outage watch (outage.py) saw it."""

    def __init__(self, outages: OutageWatch) -> None:
        self.outages = outages

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        watch = self.outages
        down, back_at = watch.down, watch.back_at
        yield GaugeMetricFamily(
            "cpucompat_database_up",
            "0 while the database does not answer this coordinator (an outage: hosts' silence "
            "does not count toward staleness), else 1",
            value=0 if down else 1,
        )
        yield CounterMetricFamily(
            "cpucompat_database_outages",
            "Database outages this coordinator noticed, counted when each began",
            value=watch.began,
        )
        if down:
            since = 0.0
        elif back_at is None:
            since = math.inf
        else:
            since = max(0.0, watch.clock() - back_at)
        yield GaugeMetricFamily(
            "cpucompat_database_seconds_since_outage",
            "Seconds since the last outage ended (0 during one, +Inf when none since this "
            "coordinator started); hosts get three intervals from then before they go stale",
            value=since,
        )


class CacheCollector(Collector):
    """Entries, bound, hits, misses and evictions of each region of the answer cache, read
    from `AnswerCache.stats` at scrape time (the cache keeps no counter for Prometheus)."""

    def __init__(self, cache: AnswerCache) -> None:
        self.cache = cache

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        labels = ["region"]
        entries = GaugeMetricFamily(
            "cpucompat_cache_entries", "Answers held in each region of the cache", labels=labels
        )
        bound = GaugeMetricFamily(
            "cpucompat_cache_bound", "Most answers each region of the cache holds", labels=labels
        )
        hits = CounterMetricFamily(
            "cpucompat_cache_hits",
            "Questions answered from each region of the cache",
            labels=labels,
        )
        misses = CounterMetricFamily(
            "cpucompat_cache_misses",
            "Questions each region of the cache did not hold the answer to",
            labels=labels,
        )
        evictions = CounterMetricFamily(
            "cpucompat_cache_evictions",
            "Answers a region dropped to stay within its bound (least recently used first)",
            labels=labels,
        )
        for region, stats in self.cache.stats().items():
            name = [str(region)]
            entries.add_metric(name, stats.size)
            bound.add_metric(name, stats.maxsize)
            hits.add_metric(name, stats.hits)
            misses.add_metric(name, stats.misses)
            evictions.add_metric(name, stats.evictions)
        yield from (entries, bound, hits, misses, evictions)


class TimedStorage:
    """A Storage whose transactions are timed into ``metrics``; everything else passes through."""

    def __init__(self, inner: Storage, metrics: CoordinatorMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    @contextmanager
    def _timed(
        self, kind: str, open_: Callable[[], AbstractContextManager[UnitOfWork]]
    ) -> Iterator[UnitOfWork]:
        start = time.perf_counter()
        try:
            with open_() as uow:
                yield uow
        except BaseException:
            self._metrics.transaction_failures.labels(kind).inc()
            raise
        finally:
            self._metrics.transaction.labels(kind).observe(time.perf_counter() - start)

    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]:
        return self._timed("write", self._inner.unit_of_work)

    def read(self) -> AbstractContextManager[UnitOfWork]:
        return self._timed("read", self._inner.read)

    def damaged(self, what: str) -> StorageFault:
        return self._inner.damaged(what)

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        self._inner.subscribe(listener)

    def holds_lease(self, name: str) -> bool:
        return self._inner.holds_lease(name)

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        """A backend's own tools (tests read SQLite through ``reading()``)."""
        return getattr(self._inner, name)
