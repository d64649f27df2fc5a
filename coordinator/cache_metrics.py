"""The answer cache's regions as metrics: how full each is and how often it answered.

Read from `AnswerCache.stats` at scrape time (one lock acquisition), so the cache keeps
no counter of its own for Prometheus and a scrape never slows an answer down.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .cache import AnswerCache


class CacheCollector(Collector):
    """Entries, bound, hits, misses and evictions of each region of one coordinator's cache."""

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
