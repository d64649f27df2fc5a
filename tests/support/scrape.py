"""Scrape a daemon's /metrics over real HTTP and read samples as Prometheus would store them."""

from __future__ import annotations

import ssl
import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, context: ssl.SSLContext | None = None) -> Samples:
    """Every sample at ``url`` as {(name, sorted labels): value}."""
    with urllib.request.urlopen(url, timeout=30, context=context) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; an AssertionError naming what is exported when it is not."""
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} not exported; have {sorted(k for k in samples)}"
    return samples[key]


def wait_for(
    fetch: Callable[[], Samples],
    predicate: Callable[[Samples], object],
    what: str,
    timeout: float = 60,
) -> Samples:
    """Scrape until ``predicate(samples)``; the timeout only bounds a hung test."""
    deadline = time.monotonic() + timeout
    samples: Samples = {}
    while time.monotonic() < deadline:
        samples = fetch()
        try:
            if predicate(samples):
                return samples
        except AssertionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
