"""The coordinator's one error path and one access check, as gRPC server interceptors.

``ErrorInterceptor`` turns what a servicer raises into a status: a project error
(:class:`~cpucompat.agent.errors.CpucompatError`) answers its own ``grpc_status`` with
its message's first line; a storage fault (a full disk, a damaged file) is logged,
one line each, and answered RESOURCE_EXHAUSTED or UNAVAILABLE; anything else is a
bug: INTERNAL with a generic detail, the traceback in the coordinator's log.

``MetricsInterceptor``, outermost, times every call and tells its status code to the
coordinator's metrics (coordinator/metrics.py), after the other two have answered.

``AccessInterceptor`` checks the caller against the rule service/access.py declares
for the method, seeing the request where a rule needs it (the host id a report
names). Both wrap unary and streaming handlers alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import grpc

from cpucompat.agent.errors import CpucompatError, first_line

from ..faultlog import FaultLog
from ..limits import check_name
from ..security import Authorizer, NotAuthorizedError, identity_of
from ..storage.errors import StorageFault
from .access import ACCESS, Caller, Rule, governed

log = logging.getLogger("cpucompat.coordinator")

Behaviour = Callable[[Any, grpc.ServicerContext], Any]
Continuation = Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None]


def _wrapped(handler: grpc.RpcMethodHandler, wrap: Callable[[Behaviour, bool], Behaviour]) -> Any:
    """``handler`` with its behaviour passed through ``wrap(behaviour, streams_out)``."""
    kinds = (
        ("unary_unary", grpc.unary_unary_rpc_method_handler, False),
        ("unary_stream", grpc.unary_stream_rpc_method_handler, True),
        ("stream_unary", grpc.stream_unary_rpc_method_handler, False),
        ("stream_stream", grpc.stream_stream_rpc_method_handler, True),
    )
    for attr, make, streams_out in kinds:
        behaviour = getattr(handler, attr)
        if behaviour is not None:
            return make(
                wrap(behaviour, streams_out),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def _method_name(method: str) -> str:
    return method.rsplit("/", 1)[-1]


class RpcObserver(Protocol):
    def rpc_done(self, full_method: str, code: str, seconds: float) -> None: ...


def _code_name(context: grpc.ServicerContext, default: grpc.StatusCode) -> str:
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    return default.name


class MetricsInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Each call's duration and status code, per method, whatever answered it."""

    def __init__(self, observer: RpcObserver) -> None:
        self.observer = observer

    def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None  # an unknown method: gRPC answers UNIMPLEMENTED, no label per guess
        method = details.method
        done = self.observer.rpc_done

        def wrap(behaviour: Behaviour, streams_out: bool) -> Behaviour:
            if streams_out:

                def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    start = time.perf_counter()
                    ended = grpc.StatusCode.CANCELLED  # closed early: the client went away
                    try:
                        yield from behaviour(request, context)
                        ended = grpc.StatusCode.OK
                    except GeneratorExit:  # gRPC closed the stream: its client went away
                        raise
                    except BaseException:
                        ended = grpc.StatusCode.UNKNOWN
                        raise
                    finally:
                        if not context.is_active():
                            ended = grpc.StatusCode.CANCELLED
                        done(method, _code_name(context, ended), time.perf_counter() - start)

                return streaming

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                start = time.perf_counter()
                ended = grpc.StatusCode.UNKNOWN
                try:
                    answer = behaviour(request, context)
                    ended = grpc.StatusCode.OK
                    return answer
                finally:
                    done(method, _code_name(context, ended), time.perf_counter() - start)

            return unary

        return _wrapped(handler, wrap)  # type: ignore[no-any-return]


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Every exception a handler raises becomes a proper status, in this one place."""

    def __init__(self) -> None:
        self.faults = FaultLog(log)

    def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None:
            return None
        name = _method_name(details.method)

        def wrap(behaviour: Behaviour, streams_out: bool) -> Behaviour:
            if streams_out:

                def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    try:
                        yield from behaviour(request, context)
                    except Exception as exc:
                        self._abort(context, exc, name)

                return streaming

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                try:
                    return behaviour(request, context)
                except Exception as exc:
                    self._abort(context, exc, name)

            return unary

        return _wrapped(handler, wrap)  # type: ignore[no-any-return]

    def _abort(self, context: grpc.ServicerContext, exc: Exception, method: str) -> None:
        if context.code() not in (None, grpc.StatusCode.OK):
            raise exc  # the handler set its status with context.abort: keep it
        code, detail = self.status(exc, method)
        context.abort(code, detail)

    def status(self, exc: Exception, method: str) -> tuple[grpc.StatusCode, str]:
        """The status and detail answered for ``exc``; logs what an operator must see."""
        if isinstance(exc, StorageFault):  # the storage layer turns driver errors into these
            self.faults.log(f"{method} failed", exc)
            return grpc.StatusCode[exc.grpc_status], first_line(exc)
        if isinstance(exc, CpucompatError):
            return grpc.StatusCode[exc.grpc_status], first_line(exc)
        log.error("%s failed with an internal error", method, exc_info=exc)
        return (
            grpc.StatusCode.INTERNAL,
            f"internal error in {method}; the coordinator's log has the details",
        )


class AccessInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Each call to our services passes its ACCESS rule before the servicer runs."""

    def __init__(self, auth: Authorizer) -> None:
        self.auth = auth

    def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or not governed(details.method):
            return handler  # health and reflection: open, as gRPC serves them
        rule = ACCESS.get(details.method)

        def wrap(behaviour: Behaviour, streams_out: bool) -> Behaviour:
            if streams_out:

                def streaming(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                    self.check(rule, details.method, request, context)
                    yield from behaviour(request, context)

                return streaming

            def unary(request: Any, context: grpc.ServicerContext) -> Any:
                self.check(rule, details.method, request, context)
                return behaviour(request, context)

            return unary

        return _wrapped(handler, wrap)  # type: ignore[no-any-return]

    def check(
        self, rule: Rule | None, method: str, request: Any, context: grpc.ServicerContext
    ) -> None:
        if rule is None:
            raise NotAuthorizedError(f"{method} has no access rule; nobody may call it")
        who = identity_of(context)
        if rule.caller is Caller.MEMBER:
            self.auth.require_member(who)
        elif rule.caller is Caller.ADMIN:
            self.auth.require_admin(who)
        else:
            host_id = check_name(getattr(request, rule.host_field), "host id")
            self.auth.require_host(who, host_id)
