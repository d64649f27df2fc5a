"""Several coordinators behind one address option: the list, and a channel that fails over.

`--coordinator A,B,C` names coordinators that share one PostgreSQL database, so any of
them answers alike. The agent and the CLI keep one gRPC channel per listed address
(each checks its own server's certificate name) and call them through
`FailoverChannel`: calls go to the coordinator that answered last ("sticky"); when it
does not answer (`FAILOVER_CODES`) the call moves on to the next address in the listed
order, each address at most once per call. A DNS name inside one entry is left to gRPC
itself: its resolver and `pick_first` policy try every resolved address. A coordinator
that hangs is noticed by the channels' keepalive pings (agent/keepalive.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc

from .addresses import dial_address

_QUIET = logging.getLogger(__name__ + ".quiet")
_QUIET.propagate = False
_QUIET.addHandler(logging.NullHandler())

# "Try the next coordinator": this one cannot be reached, lost the connection (a reset, a
# GOAWAY, an unanswered keepalive ping: all UNAVAILABLE, as is a coordinator whose own
# database connection failed) or did not answer in time. Any other status is an answer:
# the coordinators share one database, so another would say the same.
FAILOVER_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# A response stream (WatchPolicy) also moves on, before its first message, from a
# coordinator out of room for it (RESOURCE_EXHAUSTED: its watcher limit or workers are
# used up; another coordinator has its own). A unary RESOURCE_EXHAUSTED stays an
# answer: a full database is full for every coordinator, and the per-host rate limit
# must not be escaped by asking another one.
STREAM_FAILOVER_CODES = FAILOVER_CODES | {grpc.StatusCode.RESOURCE_EXHAUSTED}


def parse_coordinators(value: str | Sequence[str]) -> tuple[str, ...]:
    """Dial addresses from ``A,B,C`` (or a list of such strings), in order, port 7443 added
    where none is given; ValueError naming the first bad entry."""
    texts = [value] if isinstance(value, str) else list(value)
    found: list[str] = []
    for text in texts:
        for entry in text.split(","):
            entry = entry.strip()
            if not entry:
                raise ValueError(
                    f"coordinator list {text!r} has an empty entry: separate addresses "
                    "with single commas, e.g. 10.0.0.1:7443,10.0.0.2:7443"
                )
            address = dial_address(entry)
            if address in found:
                raise ValueError(f"coordinator {entry!r} is listed twice")
            found.append(address)
    if not found:
        raise ValueError("no coordinator address given: HOST:PORT[,HOST:PORT...]")
    return tuple(found)


def _factory(kind: str) -> Callable[..., Any]:
    """A `grpc.Channel` factory method (``unary_unary`` ...) of `FailoverChannel`."""

    def factory(
        self: FailoverChannel,
        method: str,
        request_serializer: Any = None,
        response_deserializer: Any = None,
        _registered_method: bool | None = False,
    ) -> Any:
        return self._call(kind, method, request_serializer, response_deserializer)

    factory.__name__ = factory.__qualname__ = kind
    return factory


class FailoverChannel(grpc.Channel):
    """A `grpc.Channel` over several coordinators, for the generated stubs as they are.

    Unary calls try the current coordinator, then the others in the listed order, each
    once; a response stream fails over only until its first message (after that the
    caller resubscribes, and the next call starts at the coordinator that is current
    then). Channels are made by ``make_channel(address)`` when first needed;
    `reconnect()` drops them so that the next call makes them again (new certificates).
    """

    def __init__(
        self,
        addresses: Sequence[str],
        make_channel: Callable[[str], grpc.Channel],
        log: logging.Logger | None = None,
    ) -> None:
        """``log``: where switches are told (the agent's log); None keeps quiet (the CLI
        explains only the failure that ends a command)."""
        if not addresses:
            raise ValueError("a FailoverChannel needs at least one address")
        self.addresses = tuple(addresses)
        self._make = make_channel
        self._log = log or _QUIET
        self._lock = threading.Lock()
        self._channels: dict[int, grpc.Channel] = {}
        self._current = 0
        self._failed_in_a_row = 0  # addresses failed since the last answer
        self._all_down = False
        self._on_switch: list[Callable[[str], None]] = []
        self.last_address = self.addresses[0]  # the address of the latest attempt

    # ---- which coordinator -------------------------------------------------------------

    @property
    def current(self) -> str:
        """The coordinator calls go to first."""
        with self._lock:
            return self.addresses[self._current]

    @property
    def all_down(self) -> bool:
        """Whether every listed coordinator failed since one last answered."""
        with self._lock:
            return self._all_down

    def on_switch(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(new_address)`` after each move to another coordinator (a stream
        still open on the one left, say a hung one, is then given up by its owner)."""
        self._on_switch.append(listener)

    def channel(self, index: int) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(index)
            if channel is None:
                channel = self._channels[index] = self._make(self.addresses[index])
            return channel

    def _order(self) -> list[int]:
        """Every address once, starting at the current one."""
        with self._lock:
            start = self._current
        n = len(self.addresses)
        return [(start + k) % n for k in range(n)]

    def failed(self, index: int, exc: grpc.RpcError) -> None:
        """``addresses[index]`` did not answer: move on to the next one (once per failure)."""
        n = len(self.addresses)
        if n == 1:
            return
        code = exc.code() if hasattr(exc, "code") else None
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        why = f"{code.name if code else 'error'}: {detail}"
        with self._lock:
            if index != self._current:
                return  # another call already moved on from it
            self._current = (index + 1) % n
            self._failed_in_a_row += 1
            failed, following = self.addresses[index], self.addresses[self._current]
            every = self._failed_in_a_row >= n
            newly_down = every and not self._all_down
            self._all_down = self._all_down or every
            quiet = self._all_down and not newly_down
        if newly_down:
            self._log.warning(
                "no coordinator answers (%s; last: %s %s); retrying them in order with backoff",
                ", ".join(self.addresses),
                failed,
                why,
            )
        elif quiet:  # all down: each round's switches are not news
            self._log.info("coordinator %s failed (%s); trying %s", failed, why, following)
        else:
            self._log.warning("coordinator %s failed (%s); switching to %s", failed, why, following)
        for listener in self._on_switch:
            listener(following)

    def answered(self, index: int) -> None:
        """``addresses[index]`` answered: stay on it."""
        with self._lock:
            self._current = index
            self._failed_in_a_row = 0
            recovered, self._all_down = self._all_down, False
        if recovered and len(self.addresses) > 1:
            self._log.warning("coordinator %s answers again; using it", self.addresses[index])

    # ---- calls -------------------------------------------------------------------------

    def _multicallable(self, index: int, kind: str, method: str, ser: Any, de: Any) -> Any:
        factory = getattr(self.channel(index), kind)
        return factory(
            method, request_serializer=ser, response_deserializer=de, _registered_method=True
        )

    def _unary(self, method: str, ser: Any, de: Any, request: Any, kwargs: dict) -> Any:
        last: grpc.RpcError | None = None
        for index in self._order():
            self.last_address = self.addresses[index]
            try:
                response = self._multicallable(index, "unary_unary", method, ser, de)(
                    request, **kwargs
                )
            except grpc.RpcError as exc:
                if exc.code() not in FAILOVER_CODES:
                    self.answered(index)  # an answer, if a refusal: the others say the same
                    raise
                self.failed(index, exc)
                last = exc
                continue
            self.answered(index)
            return response
        assert last is not None
        raise last

    def _call(self, kind: str, method: str, ser: Any, de: Any) -> Callable[..., Any]:
        """What a stub calls for ``method``: unary calls and response streams fail over;
        request streams (no cpucompat RPC has one) go to the current coordinator."""
        if kind == "unary_unary":
            return lambda request, **kwargs: self._unary(method, ser, de, request, kwargs)
        if kind == "unary_stream":
            return lambda request, **kwargs: _FailoverStream(self, method, ser, de, request, kwargs)
        return lambda requests, **kwargs: self._multicallable(
            self._order()[0], kind, method, ser, de
        )(requests, **kwargs)

    # The four `grpc.Channel` factories the generated stubs use, one helper behind them.
    unary_unary = _factory("unary_unary")  # type: ignore[assignment]
    unary_stream = _factory("unary_stream")  # type: ignore[assignment]
    stream_unary = _factory("stream_unary")  # type: ignore[assignment]
    stream_stream = _factory("stream_stream")  # type: ignore[assignment]

    def subscribe(self, callback: Any, try_to_connect: bool = False) -> None:
        self.channel(self._order()[0]).subscribe(callback, try_to_connect)

    def unsubscribe(self, callback: Any) -> None:
        for channel in list(self._channels.values()):
            channel.unsubscribe(callback)

    def reconnect(self) -> None:
        """Close every channel; the next call makes them again with ``make_channel``."""
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    def close(self) -> None:
        self.reconnect()

    def __enter__(self) -> FailoverChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _FailoverStream(Iterator[Any]):
    """A response stream that moves on to the next coordinator until its first message.

    After that, a stream ended by a lost coordinator (a keepalive ping unanswered) marks
    it failed and ends; its owner resubscribes, starting at the next coordinator."""

    def __init__(
        self,
        owner: FailoverChannel,
        method: str,
        ser: Any,
        de: Any,
        request: Any,
        kwargs: dict,
    ) -> None:
        self._owner = owner
        self._method, self._ser, self._de = method, ser, de
        self._request, self._kwargs = request, kwargs
        self._order = owner._order()
        self._index = -1
        self._call: Any = None
        self._started = False
        self._cancelled = False
        self._lock = threading.Lock()

    def __iter__(self) -> _FailoverStream:
        return self

    def _open(self) -> Any:
        index = self._order.pop(0)
        self._owner.last_address = self._owner.addresses[index]
        call = self._owner._multicallable(index, "unary_stream", self._method, self._ser, self._de)(
            self._request, **self._kwargs
        )
        with self._lock:
            self._index, self._call = index, call
            if self._cancelled:
                call.cancel()
        return call

    def __next__(self) -> Any:
        while True:
            call = self._call if self._call is not None else self._open()
            try:
                message = next(call)
            except grpc.RpcError as exc:
                moves_on = FAILOVER_CODES if self._started else STREAM_FAILOVER_CODES
                if self._cancelled or exc.code() not in moves_on:
                    raise
                self._owner.failed(self._index, exc)
                if self._started or not self._order:
                    raise
                self._call = None
                continue
            if not self._started:
                self._started = True
                self._owner.answered(self._index)
            return message

    @property
    def started(self) -> bool:
        """Whether a message arrived (from then on the stream no longer fails over)."""
        return self._started

    @property
    def address(self) -> str | None:
        """The coordinator this stream is open on (None before it is opened)."""
        return self._owner.addresses[self._index] if self._index >= 0 else None

    def cancel(self) -> bool:
        with self._lock:
            self._cancelled = True
            call = self._call
        return bool(call.cancel()) if call is not None else True

    def code(self) -> Any:
        return self._call.code() if self._call is not None else None

    def details(self) -> Any:
        return self._call.details() if self._call is not None else None
