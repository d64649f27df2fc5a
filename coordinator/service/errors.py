"""Map the coordinator's domain refusals onto gRPC status codes, in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, TypeVar

import grpc

from cpucompat.agent.raw import RawDataError

from ..domain.policy import PolicyRefusedError
from ..registry import InvalidReportError, RefusedError, UnknownHostError

F = TypeVar("F", bound=Callable[..., Any])

STATUS_FOR: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (InvalidReportError, grpc.StatusCode.INVALID_ARGUMENT),
    (RawDataError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownHostError, grpc.StatusCode.NOT_FOUND),
    (RefusedError, grpc.StatusCode.FAILED_PRECONDITION),
    (PolicyRefusedError, grpc.StatusCode.FAILED_PRECONDITION),
    (LookupError, grpc.StatusCode.NOT_FOUND),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
)


def _status(exc: Exception) -> grpc.StatusCode | None:
    for kind, code in STATUS_FOR:
        if isinstance(exc, kind):
            return code
    return None


def rpc(method: F) -> F:
    """Turn domain exceptions raised by a servicer method into a proper gRPC status."""

    @wraps(method)
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Exception as exc:
            code = _status(exc)
            if code is None:
                raise
            context.abort(code, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    return unary  # type: ignore[return-value]


def stream(method: F) -> F:
    @wraps(method)
    def streaming(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from method(self, request, context)
        except Exception as exc:
            code = _status(exc)
            if code is None:
                raise
            context.abort(code, str(exc).splitlines()[0])

    return streaming  # type: ignore[return-value]
