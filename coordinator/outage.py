"""Database outages this coordinator noticed, so their silence is not blamed on the hosts.

While the database cannot be reached, every report and heartbeat a host sends fails:
the host did its part, the coordinator could not record it. When the database answers
again, the stale sweep would see only old ``last_seen`` times and fail safe (SHUTDOWN)
for hosts that are alive. The registry therefore measures each host's stale window from
the end of the last outage this coordinator noticed, as it does from its own start.

An outage is a failed transaction whose `StorageFault` says the database was not there
(``outage``: unreachable, locked, full, an I/O error), not one change's own conflict or
a damaged row. It ends at the first transaction (or sweeper probe) that succeeds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from .storage.errors import StorageFault
from .storage.interface import Storage, UnitOfWork

log = logging.getLogger("cpucompat.coordinator")


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database itself was unavailable (not this one change)."""
    return isinstance(exc, StorageFault) and exc.outage


class OutageWatch:
    """When the database last failed to answer, and when it answered again after that."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self.down_since: float | None = None  # the first failure of the current outage
        self.back_at: float | None = None  # the end of the last outage (None: none yet)
        self.outages = 0  # outages that ended since this coordinator started
        self.began = 0  # outages that began since this coordinator started (metrics)

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException) -> None:
        """A transaction failed with ``exc``; an outage begins if the database was not there."""
        if not is_outage(exc):
            return
        with self._lock:
            if self.down_since is None:
                self.down_since = self.clock()
                self.began += 1
                # The fault itself is logged where it failed (rate-limited): not repeated here.
                log.warning(
                    "database unavailable: hosts' silence from now until it answers again "
                    "does not count toward staleness"
                )

    def answered(self) -> None:
        """A transaction succeeded: an outage in progress ends now."""
        if self.down_since is None:  # the common case, without the lock
            return
        with self._lock:
            if self.down_since is None:
                return
            began, self.down_since = self.down_since, None
            self.back_at = self.clock()
            self.outages += 1
        log.warning(
            "database available again after an outage of %.1f s; hosts silent during it "
            "get their whole stale window from now",
            self.back_at - began,
        )


class WatchedStorage:
    """A Storage whose transactions tell an `OutageWatch` whether the database answered."""

    def __init__(self, inner: Storage, watch: OutageWatch) -> None:
        self._inner = inner
        self.watch = watch

    @contextmanager
    def _watched(
        self, open_: Callable[[], AbstractContextManager[UnitOfWork]]
    ) -> Iterator[UnitOfWork]:
        try:
            with open_() as uow:
                yield uow
        except BaseException as exc:
            self.watch.failed(exc)
            raise
        self.watch.answered()

    def unit_of_work(self) -> AbstractContextManager[UnitOfWork]:
        return self._watched(self._inner.unit_of_work)

    def read(self) -> AbstractContextManager[UnitOfWork]:
        return self._watched(self._inner.read)

    def probe(self) -> None:
        """Ask the database for nothing: ends a noticed outage if it answers (the sweeper,
        before it judges anyone), raises StorageFault if it does not."""
        with self.read():
            pass

    def holds_lease(self, name: str) -> bool:
        try:
            return self._inner.holds_lease(name)
        except BaseException as exc:
            self.watch.failed(exc)
            raise

    def damaged(self, what: str) -> StorageFault:
        return self._inner.damaged(what)

    def subscribe(self, listener: Callable[[str, str], None]) -> None:
        self._inner.subscribe(listener)

    def close(self) -> None:
        self._inner.close()

    def __getattr__(self, name: str) -> Any:
        """A backend's own tools (tests read SQLite through ``reading()``)."""
        return getattr(self._inner, name)
