"""Every metric the agent exports, in one place; docs/operations.md says what each means.

The reporter, the policy watch and the probe wrapper call the small methods below;
the seconds since the last acknowledged call are computed at scrape time. Each agent
owns its CollectorRegistry, so two agents in one process never share a metric.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

T = TypeVar("T")

PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
ACTIONS = ("save", "shutdown", "turn_off", "shutdown_forced", "unspecified")
CALLS = ("report", "heartbeat")


class AgentMetrics:
    """The agent's registry and the metrics its loops feed."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.clock = clock
        self.last_ack_at = 0.0
        r = self.registry
        self.probes = Counter(
            "cpucompat_agent_probes_total",
            "Probes of this host's processors, by result (ok or failed)",
            ["result"],
            registry=r,
        )
        self.probe_duration = Histogram(
            "cpucompat_agent_probe_duration_seconds",
            "Time to read every logical CPU's CPUID leaves (or the replayed dump)",
            buckets=PROBE_BUCKETS,
            registry=r,
        )
        self.sent = Counter(
            "cpucompat_agent_reports_sent_total",
            "Reports and heartbeats the coordinator acknowledged, by kind",
            ["kind"],
            registry=r,
        )
        self.failed = Counter(
            "cpucompat_agent_reports_failed_total",
            "Reports and heartbeats that failed, by kind and status code (unavailable: the "
            "coordinator is away; permission_denied: not admitted)",
            ["kind", "code"],
            registry=r,
        )
        self.last_ack = Gauge(
            "cpucompat_agent_last_ack_timestamp_seconds",
            "Unix time of the coordinator's last acknowledgement (0: none yet)",
            registry=r,
        )
        Gauge(
            "cpucompat_agent_interval_seconds",
            "The agent's probe and heartbeat interval (--interval)",
            registry=r,
        ).set(interval)
        self.cycle_overruns = Counter(
            "cpucompat_agent_cycle_overruns_total",
            "Probe-and-report cycles that took longer than the interval (the next started at "
            "once; heartbeats were that much further apart)",
            registry=r,
        )
        self.policy_version = Gauge(
            "cpucompat_agent_policy_version",
            "Version of the cluster policy the agent holds (0: none received yet)",
            registry=r,
        )
        self.policy_action = Gauge(
            "cpucompat_agent_policy_action",
            "1 for the cluster's offline action the agent holds, 0 for the others",
            ["action"],
            registry=r,
        )
        self.policy_updates = Counter(
            "cpucompat_agent_policy_updates_total",
            "Policy messages received from the coordinator's watch stream",
            registry=r,
        )
        for result in ("ok", "failed"):
            self.probes.labels(result)
        for kind in CALLS:
            self.sent.labels(kind)
        for action in ACTIONS:
            self.policy_action.labels(action).set(0)
        r.register(_SinceLastAck(self))

    def timed_probe(self, capture: Callable[[], T]) -> Callable[[], T]:
        """``capture`` counted and timed at each call (a failure is counted, then raised)."""

        def probe() -> T:
            start = time.perf_counter()
            try:
                result = capture()
            except BaseException:
                self.probes.labels("failed").inc()
                raise
            self.probe_duration.observe(time.perf_counter() - start)
            self.probes.labels("ok").inc()
            return result

        return probe

    def acknowledged(self, kind: str) -> None:
        self.sent.labels(kind).inc()
        self.last_ack_at = self.clock()
        self.last_ack.set(self.last_ack_at)

    def call_failed(self, kind: str, code: str) -> None:
        self.failed.labels(kind, code.lower()).inc()

    def policy(self, action: str, version: int) -> None:
        self.policy_updates.inc()
        self.policy_version.set(version)
        held = action.lower()
        for name in ACTIONS:
            self.policy_action.labels(name).set(1 if name == held else 0)


class _SinceLastAck(Collector):
    """Seconds since the last acknowledgement, at scrape time (+Inf before the first)."""

    def __init__(self, metrics: AgentMetrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        last = self.metrics.last_ack_at
        since = max(0.0, self.metrics.clock() - last) if last else float("inf")
        yield GaugeMetricFamily(
            "cpucompat_agent_seconds_since_last_ack",
            "Seconds since the coordinator last acknowledged a report or heartbeat "
            "(+Inf before the first)",
            value=since,
        )
