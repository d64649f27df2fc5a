"""Connecting the CLI to a coordinator, and turning gRPC failures into one-line errors."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any, TypeVar

from cpucompat.agent.cli.common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    CliError,
    add_tls_options,
    coordinators_type,
)
from cpucompat.agent.errors import status_outcome

T = TypeVar("T")
ENV_COORDINATOR = "CPUCOMPAT_COORDINATOR"
DEFAULT_COORDINATOR = "127.0.0.1:7443"
TIMEOUT = 30.0  # per call, and per coordinator tried
CONNECT_TIMEOUT_MS = 5_000


def add_client_options(p: argparse.ArgumentParser, json_flag: bool = True) -> None:
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT[,HOST:PORT...]",
        default=os.environ.get(ENV_COORDINATOR, DEFAULT_COORDINATOR),
        type=coordinators_type(),
        help=f"coordinator address (default ${ENV_COORDINATOR} or {DEFAULT_COORDINATOR}; "
        "port 7443 when none is given); a comma-separated list tries each in order "
        "until one answers",
    )
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_tls_options(p, "client")


def addresses(args: argparse.Namespace) -> tuple[str, ...]:
    """The coordinators given, in order (a plain string still works for callers' args)."""
    value = args.coordinator
    return (value,) if isinstance(value, str) else tuple(value)


def make_channel(args: argparse.Namespace, address: str) -> Any:
    """One channel to one coordinator; TLS checks the server's name against ``address``."""
    import grpc

    from cpucompat.agent.keepalive import CHANNEL_KEEPALIVE
    from cpucompat.agent.tls import TlsFiles, channel_credentials

    tls = TlsFiles(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)
    # Keepalive pings end a connection to a coordinator that stopped answering.
    options = [("grpc.max_receive_message_length", 256 * 1024 * 1024), *CHANNEL_KEEPALIVE]
    if len(addresses(args)) > 1:
        # The connect timeout (gRPC's minimum reconnect backoff, 20 s by default): one that
        # accepts TCP but never completes the handshake is passed over after 5 s.
        options.append(("grpc.min_reconnect_backoff_ms", CONNECT_TIMEOUT_MS))
    if tls.enabled:  # unreadable TLS files: an InputError, exit 2
        return grpc.secure_channel(address, channel_credentials(tls), options=options)
    return grpc.insecure_channel(address, options=options)


def channel_for(args: argparse.Namespace) -> Any:
    """The command's channel: the first listed coordinator that answers takes each call,
    and later calls of the same command start with it (agent/coordinators.py)."""
    from cpucompat.agent.coordinators import FailoverChannel

    channel = getattr(args, "_channel", None)
    if channel is None:
        listed = addresses(args)
        make_channel(args, listed[0]).close()  # unreadable TLS files: exit 2 before any call
        channel = FailoverChannel(listed, lambda address: make_channel(args, address))
        args._channel = channel
    return channel


def _last_address(args: argparse.Namespace) -> str:
    """The coordinator the latest call went to (the one whose answer is being explained)."""
    channel = getattr(args, "_channel", None)
    return channel.last_address if channel is not None else addresses(args)[0]


def call(args: argparse.Namespace, fn: Callable[..., T], request: Any) -> T:
    """One RPC with a deadline; failures become CliError with the documented exit codes."""
    import grpc

    try:
        return fn(request, timeout=TIMEOUT)
    except grpc.RpcError as exc:
        code = exc.code()
        detail = exc.details() or code.name
        address = _last_address(args)
        listed = addresses(args)
        if code in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ) and detail.startswith("the coordinator's database"):
            # Reached, but its storage failed (full disk, damaged file): not the caller's fault.
            raise CliError(detail, EXIT_FAILURE) from None
        if code == grpc.StatusCode.UNIMPLEMENTED and _is_agent(args, address):
            raise CliError(
                f"{address} is a cpucompat agent, not the coordinator: pass the "
                f"coordinator's address with --coordinator or ${ENV_COORDINATOR}",
                EXIT_USAGE,
            ) from None
        if code == grpc.StatusCode.UNAVAILABLE and any(
            sign in detail.lower() for sign in ("server name", "hostname verification")
        ):
            raise CliError(
                f"the coordinator's certificate does not name {address}: issue it with "
                "that DNS name or IP address as a SAN (cpucompat pki issue coordinator --dns/--ip)",
                EXIT_USAGE,
            ) from None
        if code == grpc.StatusCode.UNAVAILABLE and not args.tls_ca and _speaks_tls(address):
            raise CliError(
                f"the coordinator speaks TLS: pass --tls-ca (and --tls-cert/--tls-key for "
                f"mutual TLS) to reach {address}",
                EXIT_USAGE,
            ) from None
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            tls_hint = (
                "; with TLS, check that --tls-ca, --tls-cert and --tls-key match the coordinator's"
                if args.tls_ca or args.tls_cert
                else ""
            )
            where = (
                f"the coordinator at {listed[0]} ({detail}); start it"
                if len(listed) == 1
                else f"any of the coordinators {', '.join(listed)} (last error, from "
                f"{address}: {detail}); start one"
            )
            raise CliError(
                f"cannot reach {where} or pass --coordinator / set {ENV_COORDINATOR}{tls_hint}",
                EXIT_FAILURE,
            ) from None
        exit_code, message = status_outcome(code.name, detail)  # the hierarchy's own table
        raise CliError(message, exit_code) from None


def call_pages(
    args: argparse.Namespace, fn: Callable[..., Any], request: Any, field: str
) -> list[Any]:
    """Every entry of a paged list call: follows next_page_token until the last page."""
    return call_paged(args, fn, request, field)[1]


def call_paged(
    args: argparse.Namespace, fn: Callable[..., Any], request: Any, field: str
) -> tuple[Any, list[Any]]:
    """The first response (for the fields beside the list) and every entry of ``field``
    over all pages."""
    first: Any = None
    entries: list[Any] = []
    seen: set[str] = set()
    while True:
        response = call(args, fn, request)
        first = response if first is None else first
        entries.extend(getattr(response, field))
        token = response.next_page_token
        if not token:
            return first, entries
        if token in seen:
            raise CliError(
                f"the coordinator at {_last_address(args)} repeated a page token; listing stopped",
                EXIT_FAILURE,
            )
        seen.add(token)
        request.page_token = token


def _is_agent(args: argparse.Namespace, address: str) -> bool:
    """Whether the address answers health checks for the agent's service."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = make_channel(args, address)
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="cpucompat.v1.AgentService"), timeout=5
        )
    except grpc.RpcError:
        return False
    finally:
        channel.close()
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _speaks_tls(address: str) -> bool:
    """Whether the address answers a TLS handshake (a plaintext client's call then fails)."""
    import socket
    import ssl

    from cpucompat.agent.addresses import split_host_port

    host, port = split_host_port(address)
    if port is None or not port.isdigit():
        return False
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only asking whether TLS answers, not trusting it
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host, int(port)), timeout=5) as sock,
            context.wrap_socket(sock, server_hostname=host or None),
        ):
            return True
    except ssl.SSLError as exc:
        return "ALERT" in (exc.reason or "").upper()  # TLS answered, but wants a certificate
    except OSError:
        return False


def to_doc(message: Any) -> Any:
    """A message as plain JSON, with enum names shortened (HOST_STATUS_ONLINE -> online)."""
    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _short_enums(_int64_as_numbers(doc, message.DESCRIPTOR))


def _int64_as_numbers(doc: Any, descriptor: Any) -> Any:
    """proto3 JSON quotes 64-bit integers; scripts want numbers (masks, versions, ids)."""
    from google.protobuf.descriptor import FieldDescriptor as F

    wide = {F.TYPE_INT64, F.TYPE_UINT64, F.TYPE_SINT64, F.TYPE_FIXED64, F.TYPE_SFIXED64}
    if not isinstance(doc, dict):
        return doc
    for field in descriptor.fields:
        if field.name not in doc:
            continue
        value = doc[field.name]
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if isinstance(value, list):
                doc[field.name] = [_int64_as_numbers(v, field.message_type) for v in value]
            else:
                doc[field.name] = _int64_as_numbers(value, field.message_type)
        elif field.type in wide:
            if isinstance(value, list):
                doc[field.name] = [int(v) for v in value]
            elif isinstance(value, str) and value.lstrip("-").isdigit():
                doc[field.name] = int(value)
    return doc


def _enum_prefixes() -> tuple[str, ...]:
    """Every wire enum's prefix (HOST_STATUS_, OFFLINE_ACTION_, ...)."""
    from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

    from cpucompat.agent.wire import enum_prefix
    from cpucompat.v1 import coordinator_service_pb2 as pb

    return tuple(enum_prefix(EnumTypeWrapper(e)) for e in pb.DESCRIPTOR.enum_types_by_name.values())


def _short_enums(value: Any, prefixes: tuple[str, ...] | None = None) -> Any:
    prefixes = prefixes or _enum_prefixes()
    if isinstance(value, dict):
        return {k: _short_enums(v, prefixes) for k, v in value.items()}
    if isinstance(value, list):
        return [_short_enums(v, prefixes) for v in value]
    if isinstance(value, str):
        for prefix in prefixes:
            if value.startswith(prefix):
                rest = value[len(prefix) :]
                return rest if prefix == "OFFLINE_ACTION_" else rest.lower()
    return value
