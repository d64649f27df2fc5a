"""A database outage is visible on /metrics while it lasts, and counted after it.

Two coordinators share a throwaway PostgreSQL server of the test's own: the first holds
the stale-sweep lease, the second serves nobody (no transaction of its own but the
sweeper's questions). The server is stopped as a crash would stop it and started again;
both coordinators' real /metrics endpoints are scraped before, during and after.
Asserted: `cpucompat_database_up` is 1, then 0 while the server is down, then 1 again on
both; the outage is counted once; the seconds since the last outage go from +Inf
(none yet) to 0 during it and to a finite count after it.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.support.daemons import Daemon, free_port, start_coordinator
from tests.support.postgres import running_server
from tests.support.scrape import Samples, scrape, value, wait_for

pytestmark = pytest.mark.e2e


def database(samples: Samples) -> tuple[float, float, float]:
    """(up, outages counted, seconds since the last one ended)."""
    return (
        value(samples, "cpucompat_database_up"),
        value(samples, "cpucompat_database_outages_total"),
        value(samples, "cpucompat_database_seconds_since_outage"),
    )


def test_database_up_and_outages_follow_a_real_outage(tmp_path: Path) -> None:
    daemons: list[Daemon] = []
    with running_server() as server:  # its own server: the test stops it
        try:
            url = server.database()
            urls = []
            for name in ("holder", "idle"):
                port = free_port()
                daemons.append(
                    start_coordinator(
                        tmp_path, "--metrics-listen", str(port), db=url, log=f"{name}.log"
                    )
                )
                urls.append(f"http://127.0.0.1:{port}/metrics")

            for metrics in urls:
                assert database(scrape(metrics)) == (1, 0, math.inf)

            server.stop()
            for metrics in urls:
                during = wait_for(
                    lambda m=metrics: scrape(m),
                    lambda s: value(s, "cpucompat_database_up") == 0,
                    "the outage noticed",
                )
                assert database(during) == (0, 1, 0)
            server.resume()

            for metrics in urls:
                after = wait_for(
                    lambda m=metrics: scrape(m),
                    lambda s: value(s, "cpucompat_database_up") == 1,
                    "the database answering again",
                )
                up, outages, since = database(after)
                assert (up, outages) == (1, 1)
                assert 0 <= since < math.inf
            for d in daemons:
                assert "database available again after an outage" in d.output(), d.output()
        finally:
            for d in daemons:
                d.kill()
