"""A slow probe does not stretch the heartbeat period the coordinator sees.

The agent replays its dump from a named pipe that the test fills only after a delay,
as a dump on a slow disk would be: every probe really waits that long for its bytes
(the agent's code is not touched; `read_dump_bytes` reads pipes to their end). The
coordinator's heartbeat counter, scraped from its real /metrics many times a second,
tells when each heartbeat arrived. Timed start to start, heartbeats stay one interval
apart although each probe takes half of it (timed after the probe, they were an
interval plus a probe apart). One probe that takes longer than two intervals is
followed at once by the next cycle, and the cycles after it are again one interval
apart, start to start: no burst of heartbeats to catch up.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from tests.support.daemons import Daemon, free_port, start_agent, start_coordinator, wait_until
from tests.support.paths import DEV_DUMP
from tests.support.scrape import scrape, value

INTERVAL = 1.0
PROBE = 0.5  # each probe waits this long for its dump
LONG_PROBE = 2.5  # one probe: longer than two intervals
PERIODS = 6  # heartbeat periods measured


class SlowDump:
    """A named pipe that hands the dump to each reader ``delay`` seconds after it opens it
    (`once` changes the next probe's delay); ``opened`` holds when each probe began and
    ``delays`` how long it was kept waiting (monotonic seconds, measured here)."""

    def __init__(self, path: Path, content: bytes, delay: float) -> None:
        self.path = path
        self.content = content
        self.delay = delay
        self.opened: list[float] = []
        self.delays: list[float] = []
        self._once: list[float] = []
        self._stop = threading.Event()
        self._fresh_pipe()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _fresh_pipe(self) -> None:
        """A new pipe at the path for the next probe: the last reader, still reading the old
        one, gets its end of file there and never meets the next probe's bytes."""
        spare = self.path.with_suffix(".next")
        os.mkfifo(spare)
        os.replace(spare, self.path)

    def _serve(self) -> None:
        while not self._stop.is_set():
            fd = os.open(self.path, os.O_WRONLY)  # blocks until a probe opens the pipe
            try:
                if self._stop.is_set():
                    return
                delay = self._once.pop(0) if self._once else self.delay
                self.opened.append(time.monotonic())
                self.delays.append(delay)
                self._stop.wait(delay)
                view = memoryview(self.content)
                while view:
                    view = view[os.write(fd, view) :]
            except BrokenPipeError:
                pass  # the reader went away (the agent stopped)
            finally:
                self._fresh_pipe()
                os.close(fd)

    def once(self, delay: float) -> None:
        self._once.append(delay)

    def close(self) -> None:
        self._stop.set()
        unblock = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # ends a waiting open
        self._thread.join(timeout=30)
        os.close(unblock)


def heartbeat_arrivals(url: str, count: int) -> list[float]:
    """When each of the next ``count`` heartbeats was first counted by the coordinator."""
    arrivals: list[float] = []
    seen = value(scrape(url), "cpucompat_agent_calls_received_total", kind="heartbeat")
    while len(arrivals) < count:
        now = value(scrape(url), "cpucompat_agent_calls_received_total", kind="heartbeat")
        if now > seen:
            arrivals.extend([time.monotonic()] * int(now - seen))
            seen = now
        time.sleep(0.05)
    return arrivals


def test_heartbeats_keep_their_interval_while_the_probe_is_slow(tmp_path: Path) -> None:
    c_port, a_port = free_port(), free_port()
    coord = start_coordinator(tmp_path, "--allow-replayed", "--metrics-listen", str(c_port))
    c_url = f"http://127.0.0.1:{c_port}/metrics"
    a_url = f"http://127.0.0.1:{a_port}/metrics"
    dump = SlowDump(tmp_path / "slow.cpuid-r.txt", DEV_DUMP.read_bytes(), PROBE)
    agent: Daemon | None = None
    try:
        agent = start_agent(
            tmp_path, coord.address, "slow", "--interval", str(INTERVAL),
            "--replay-dump", str(dump.path), "--metrics-listen", str(a_port),
        )  # fmt: skip
        wait_until(
            lambda: value(scrape(c_url), "cpucompat_agent_calls_received_total", kind="heartbeat"),
            what="a first heartbeat",
        )

        arrivals = heartbeat_arrivals(c_url, PERIODS + 1)
        period = (arrivals[-1] - arrivals[0]) / PERIODS
        a = scrape(a_url)
        probe = value(a, "cpucompat_agent_probe_duration_seconds_sum") / value(
            a, "cpucompat_agent_probe_duration_seconds_count"
        )
        assert probe >= PROBE, probe  # the probes really were slow
        # Start to start: one interval. Timed after the probe it would be INTERVAL + probe.
        assert INTERVAL * 0.9 <= period < INTERVAL + probe / 2, (period, probe, arrivals)
        overruns = value(a, "cpucompat_agent_cycle_overruns_total")

        # One probe overruns two intervals: the next cycle starts at once, then one
        # interval apart again; never two cycles in quick succession to catch up.
        dump.once(LONG_PROBE)
        wait_until(lambda: LONG_PROBE in dump.delays, what="the long probe to begin")
        long_start = dump.opened[dump.delays.index(LONG_PROBE)]
        wait_until(
            lambda: len([t for t in dump.opened if t > long_start]) >= 4,
            what="four probes after the long one",
        )
        after = [long_start, *[t for t in dump.opened if t > long_start]][:5]
        gaps = [later - earlier for earlier, later in itertools.pairwise(after)]
        assert gaps[0] >= LONG_PROBE, gaps  # the long probe's own cycle
        assert gaps[0] < LONG_PROBE + INTERVAL, gaps  # ... followed at once, not a deadline later
        assert min(gaps[1:]) >= INTERVAL * 0.8, gaps  # no catching up (that: about PROBE)
        assert value(scrape(a_url), "cpucompat_agent_cycle_overruns_total") > overruns
        assert "took longer than the interval" in agent.output()
        assert value(scrape(c_url), "cpucompat_hosts", cluster="prod", status="online") == 1
    finally:
        if agent is not None:
            agent.stop()
        dump.close()
        coord.stop()
