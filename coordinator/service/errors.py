"""Map the coordinator's domain refusals onto gRPC status codes, in one place.

Storage faults (a full disk, a damaged file) are logged here, one line each, and
answered RESOURCE_EXHAUSTED or UNAVAILABLE: never an UNKNOWN with a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, TypeVar

import grpc

from cpucompat.agent.raw import RawDataError

from ..admissions import NotAdmittedError
from ..domain.policy import PolicyRefusedError
from ..limits import LimitError, RateLimitedError
from ..registry import InvalidReportError, RefusedError, UnknownHostError
from ..store import FaultLog, StorageFault

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("cpucompat.coordinator")
faults = FaultLog(log)

STATUS_FOR: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (NotAdmittedError, grpc.StatusCode.PERMISSION_DENIED),
    (InvalidReportError, grpc.StatusCode.INVALID_ARGUMENT),
    (LimitError, grpc.StatusCode.INVALID_ARGUMENT),
    (RawDataError, grpc.StatusCode.INVALID_ARGUMENT),
    (RateLimitedError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (UnknownHostError, grpc.StatusCode.NOT_FOUND),
    (RefusedError, grpc.StatusCode.FAILED_PRECONDITION),
    (PolicyRefusedError, grpc.StatusCode.FAILED_PRECONDITION),
    (LookupError, grpc.StatusCode.NOT_FOUND),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
)


def _status(exc: Exception, method: str) -> grpc.StatusCode | None:
    if isinstance(exc, StorageFault):
        faults.log(f"{method} failed", exc)
        if isinstance(exc, StorageFault) and exc.full:
            return grpc.StatusCode.RESOURCE_EXHAUSTED
        return grpc.StatusCode.UNAVAILABLE
    for kind, code in STATUS_FOR:
        if isinstance(exc, kind):
            return code
    return None


def _detail(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def rpc(method: F) -> F:
    """Turn domain exceptions raised by a servicer method into a proper gRPC status."""

    @wraps(method)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:
            code = _status(exc, method.__name__)
            if code is None:
                raise
            context.abort(code, _detail(exc))

    return unary  # type: ignore[return-value]


def stream(method: F) -> F:
    @wraps(method)
    def streaming(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, request, context)
        except Exception as exc:
            code = _status(exc, method.__name__)
            if code is None:
                raise
            context.abort(code, _detail(exc))

    return streaming  # type: ignore[return-value]
