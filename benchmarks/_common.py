"""What the coordinator benchmarks share: client-side QPS sampling and a coordinator process.

`benchmarks/coordinator.py` and `benchmarks/ingest.py` measure RPCs against the standard
health check on the same server, in interleaved rounds so that the machine's noise hits
every RPC alike, and run the coordinator as a real process (`cpucompat coordinator`) on
loopback; both take these from here so the two figures stay comparable.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cpucompat.agent.cli.progress import Progress

Call = Callable[[], object]


def qps(fn: Call, seconds: float, threads: int) -> float:
    """Calls per second of ``fn`` from ``threads`` client threads over ``seconds``."""
    count = [0] * threads
    stop = time.perf_counter() + seconds

    def worker(i: int) -> None:
        while time.perf_counter() < stop:
            fn()
            count[i] += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(count) / (time.perf_counter() - start)


def warm(calls: Mapping[str, Call], times: int) -> None:
    """Each call ``times`` times: connections open and the coordinator's caches filled."""
    for fn in calls.values():
        for _ in range(times):
            fn()


def interleaved_qps(
    calls: Mapping[str, Call], rounds: int, seconds: float, threads: int
) -> dict[str, list[float]]:
    """``rounds`` QPS samples of every call, one call after the other in each round."""
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            samples[name].append(qps(fn, seconds, threads))
    return samples


def medians(samples: Mapping[str, list[float]]) -> dict[str, float]:
    return {name: statistics.median(values) for name, values in samples.items()}


def rounded(samples: Mapping[str, list[float]]) -> dict[str, list[float]]:
    """The samples as the JSON shows them."""
    return {name: [round(v, 1) for v in values] for name, values in samples.items()}


class Stage(Progress):
    """A long step of a benchmark (seeding thousands of hosts): a progress line while it runs
    (on a terminal only) and, once closed (the end of its ``with``), the wall-clock
    ``seconds`` since it was made."""

    def __init__(self, label: str, total: int) -> None:
        super().__init__(label, total)
        self.seconds = 0.0
        self._start = time.perf_counter()

    def close(self) -> None:
        self.seconds = time.perf_counter() - self._start
        super().close()


# ---- coordinator processes ------------------------------------------------------------


@dataclass
class Running:
    """A coordinator process and the address it listens on."""

    proc: subprocess.Popen[str]
    address: str

    def rss_mib(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")
        )
        return kib / 1024

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_coordinator(db: str, *options: str) -> Running:
    """A real coordinator process on a free loopback port (``options`` added to its command
    line); returns once it listens (the line it prints). Its later output is read and
    dropped, so a full pipe never stalls it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpucompat.agent.cli.main", "coordinator", "--listen",
         "127.0.0.1:0", "--db", db, "--allow-replayed", *options],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "listening on " in line:
            address = line.split("listening on ")[1].split()[0]
            threading.Thread(target=_drain, args=(proc,), daemon=True).start()
            return Running(proc, address)
    proc.wait()
    sys.exit("the coordinator did not start:\n" + "".join(lines))


def _drain(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    for _ in proc.stdout:
        pass


@contextmanager
def coordinator(db: str, *options: str) -> Iterator[Running]:
    """`start_coordinator`, stopped at exit."""
    running = start_coordinator(db, *options)
    try:
        yield running
    finally:
        running.stop()
