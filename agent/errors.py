"""The project's own errors, each knowing its gRPC status and its CLI exit code.

One hierarchy serves both sides: the coordinator's server interceptor answers
``grpc_status`` for any :class:`CpucompatError` a servicer lets through, and the
CLI's one exception handler exits with ``exit_code`` and the message on one line.
It lives on the agent's side because `agent/` must never import `coordinator/`,
and it imports no gRPC (``cpucompat probe`` never loads it): statuses are names.

The categories below carry the mapping; the concrete classes (``RawDataError``,
``UnknownHostError``, ``StorageFault``...) stay in the modules that raise them and
subclass a category, keeping the built-in base (ValueError, LookupError) they had.
Anything that is not a CpucompatError is a bug: INTERNAL on the wire, its traceback
in the coordinator's log.
"""

from __future__ import annotations

import sys

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NO = 3


class CpucompatError(Exception):
    """Base of every error cpucompat raises on purpose; the message names the fix.

    ``grpc_status`` is a ``grpc.StatusCode`` member's name; ``exit_code`` follows
    README's exit codes. A subclass may compute them per instance (StorageFault).
    """

    grpc_status: str = "INTERNAL"
    exit_code: int = EXIT_FAILURE


class InputError(CpucompatError, ValueError):
    """Bad input: a malformed dump, request field, stamp or name. Nothing is stored."""

    grpc_status = "INVALID_ARGUMENT"
    exit_code = EXIT_USAGE


class NotFoundError(CpucompatError, LookupError):
    """The named subject (host, VM, cluster, admission, feature) does not exist."""

    grpc_status = "NOT_FOUND"
    exit_code = EXIT_USAGE


class RefusalError(CpucompatError):
    """A "no": the coordinator's rules or configuration refuse this."""

    grpc_status = "FAILED_PRECONDITION"
    exit_code = EXIT_NO


class PermissionDeniedError(CpucompatError):
    """The caller's certificate may not do this (or the host is not admitted)."""

    grpc_status = "PERMISSION_DENIED"
    exit_code = EXIT_USAGE


class UnauthenticatedError(CpucompatError):
    """Mutual TLS is on and the caller presented no certificate of the cluster CA."""

    grpc_status = "UNAUTHENTICATED"
    exit_code = EXIT_USAGE


class ExhaustedError(CpucompatError):
    """A bound was reached (profile change rate, policy watchers); retry later."""

    grpc_status = "RESOURCE_EXHAUSTED"
    exit_code = EXIT_USAGE


class UnavailableError(CpucompatError):
    """Something the answer depends on cannot be reached or read right now."""

    grpc_status = "UNAVAILABLE"
    exit_code = EXIT_FAILURE


CATEGORIES: tuple[type[CpucompatError], ...] = (
    InputError,
    NotFoundError,
    RefusalError,
    PermissionDeniedError,
    UnauthenticatedError,
    ExhaustedError,
    UnavailableError,
    CpucompatError,
)
"""Every status the hierarchy answers, with the exit code a CLI gives for it."""

EXIT_FOR_STATUS: dict[str, int] = {cls.grpc_status: cls.exit_code for cls in CATEGORIES}
EXIT_FOR_STATUS["DEADLINE_EXCEEDED"] = EXIT_FAILURE


def exit_for_status(status_name: str) -> int:
    """The CLI exit code for a coordinator's answer: the hierarchy's, else 1 (operational)."""
    return EXIT_FOR_STATUS.get(status_name, EXIT_FAILURE)


def status_outcome(status_name: str, detail: str) -> tuple[int, str]:
    """(exit code, one-line message) for a gRPC status a CLI command received."""
    code = exit_for_status(status_name)
    if code == EXIT_FAILURE:
        return code, f"coordinator error {status_name}: {detail}"
    return code, detail


def first_line(exc: BaseException) -> str:
    """The message as one line (the class name when it has none)."""
    text = str(exc)
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def cli_outcome(exc: BaseException) -> tuple[int, str] | None:
    """(exit code, one-line message) for a failure the CLI reports; None for a bug.

    The one place the CLI turns exceptions into exit codes: project errors carry
    theirs, a gRPC failure that escaped the client's own mapping goes by its status,
    and an OS error is an unreadable input (2) when it names a file, else 1.
    """
    if isinstance(exc, CpucompatError):
        return exc.exit_code, first_line(exc)
    grpc = sys.modules.get("grpc")  # loaded only by commands that talk gRPC
    if grpc is not None and isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        name = getattr(code, "name", "UNKNOWN")
        details = exc.details() if callable(getattr(exc, "details", None)) else None
        return status_outcome(name, details or name)
    if isinstance(exc, OSError):
        reason = exc.strerror or first_line(exc)
        if exc.filename is not None:
            return EXIT_USAGE, f"cannot use {exc.filename}: {reason}"
        return EXIT_FAILURE, reason
    return None
