"""`cpucompat agent`: run the agent daemon on this host."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from .common import (
    EXIT_OK,
    CliError,
    add_tls_options,
    address_type,
    listen_error,
    number_in,
    tls_files,
    wait_for_signal,
)

DEFAULT_INTERVAL = 300.0
MIN_INTERVAL = 0.1
MAX_INTERVAL = 3600.0  # the coordinator's default --max-interval


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Run the agent: it probes this host's processors, serves the profile over gRPC, "
            "reports it to the coordinator at start and whenever it changes, and heartbeats "
            "in between. Prints 'listening on ADDR' once ready; stops cleanly on SIGTERM/SIGINT."
        ),
    )
    p.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        required=True,
        type=address_type("dial"),
        help="the coordinator's address (port 7443 when none is given)",
    )
    p.add_argument("--cluster", required=True, help="the cluster this host belongs to")
    p.add_argument(
        "--listen",
        default="127.0.0.1:7444",
        type=address_type("listen"),
        metavar="ADDR",
        help="address for the agent's own gRPC service (default 127.0.0.1:7444; port 0 picks one)",
    )
    p.add_argument(
        "--host-id",
        metavar="ID",
        help="id to report under (default: /etc/machine-id); under mutual TLS it must "
        "equal the certificate's CN or a DNS SAN",
    )
    p.add_argument(
        "--interval",
        type=number_in(MIN_INTERVAL, MAX_INTERVAL, unit=" seconds"),
        default=DEFAULT_INTERVAL,
        metavar="SECONDS",
        help="re-probe and heartbeat interval, 0.1-3600 (default 300)",
    )
    p.add_argument(
        "--replay-dump",
        metavar="FILE",
        help="report a recorded processor from FILE instead of this host's (rehearsals); "
        "the file is re-read at every probe, so replacing it swaps the processor",
    )
    p.add_argument(
        "--source",
        choices=("instruction", "devcpu"),
        default="instruction",
        help="live source: the CPUID instruction (default) or /dev/cpu/N/cpuid",
    )
    p.add_argument(
        "--insecure", action="store_true", help="allow a non-loopback --listen without TLS"
    )
    p.add_argument(
        "--state-file",
        metavar="PATH",
        help="where to write the cluster's current fail-over policy as JSON (default "
        "STATE_DIR/policy-CLUSTER.json; STATE_DIR is $CPUCOMPAT_STATE_DIR, "
        "/var/lib/cpucompat as root, else ~/.local/state/cpucompat)",
    )
    p.add_argument(
        "--on-policy-change",
        metavar="CMD",
        help="command run (via /bin/sh) when the cluster's offline action changes, with "
        "CPUCOMPAT_CLUSTER, CPUCOMPAT_ACTION, CPUCOMPAT_HYPERV_OFFLINE_ACTION and "
        "CPUCOMPAT_REASON set; a failing hook is logged and retried on the next change",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="log every report and heartbeat")
    add_tls_options(p, "agent")
    p.set_defaults(run=run)


def _capture_fn(args: argparse.Namespace) -> Any:
    if args.replay_dump:
        from ..dumps import load_valid_dump

        path = args.replay_dump
        return lambda: load_valid_dump(path)
    from dataclasses import replace

    from ..live import probe
    from ..osinfo import os_details, start_gathering

    source = "devcpu" if args.source == "devcpu" else "cpuid-instruction"
    start_gathering()

    def capture() -> Any:
        raw = probe(source)
        return replace(raw, extra={**raw.extra, **os_details()})

    return capture


def run(args: argparse.Namespace) -> int:
    import grpc

    from cpucompat import agent as agent_pkg

    from ..daemon.reporter import Reporter
    from ..daemon.service import AgentServicer, build_agent_server
    from ..daemon.state import ProfileHolder, default_host_id
    from ..live import ProbeError
    from ..names import valid_name
    from ..raw import RawDataError
    from ..tls import channel_credentials, check_listen_address

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s cpucompat agent: %(message)s",
        stream=sys.stderr,
    )
    host_id = args.host_id or default_host_id()
    try:  # names first: a refused name must not start a probe or a server
        valid_name(host_id, "host id")
        valid_name(args.cluster, "cluster name")
    except ValueError as exc:
        raise CliError(str(exc)) from None
    tls = tls_files(args)
    try:
        check_listen_address(args.listen, tls, args.insecure)
        holder = ProfileHolder(_capture_fn(args))
    except (ValueError, ProbeError, RawDataError) as exc:
        raise CliError(str(exc)) from None
    version = getattr(agent_pkg, "__version__", "0.1.0")
    try:
        # gRPC's own reconnect backoff grows to 120 s; after a coordinator outage the channel
        # would fail calls fast until its next attempt, outlasting the coordinator's restart
        # grace of three intervals. Bound it by the interval like the reporter's retries.
        reconnect_ms = int(min(120.0, args.interval) * 1000)
        options = [
            ("grpc.initial_reconnect_backoff_ms", max(100, min(1000, reconnect_ms // 4))),
            ("grpc.min_reconnect_backoff_ms", max(100, min(1000, reconnect_ms // 4))),
            ("grpc.max_reconnect_backoff_ms", max(100, reconnect_ms)),
        ]
        channel = (
            grpc.secure_channel(args.coordinator, channel_credentials(tls), options=options)
            if tls.enabled
            else grpc.insecure_channel(args.coordinator, options=options)
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    servicer = AgentServicer(holder, host_id, args.cluster, version)
    try:
        server, port, health = build_agent_server(servicer, args.listen, tls)
    except (ValueError, RuntimeError, OSError) as exc:
        raise CliError(listen_error(args.listen, exc)) from None
    address = f"{args.listen.rsplit(':', 1)[0]}:{port}"
    reporter = Reporter(holder, channel, host_id, args.cluster, address, version, args.interval)
    servicer.on_probe = reporter.probed
    server.start()
    reporter.start()
    from ..daemon.policy_watch import PolicyWatcher
    from .common import default_state_dir

    state_file = args.state_file or str(default_state_dir() / f"policy-{args.cluster}.json")
    watcher = PolicyWatcher(channel, args.cluster, state_file, args.on_policy_change)
    watcher.on_refused = reporter.check_now
    watcher.start()
    snap = holder.current
    print(
        f"cpucompat agent listening on {address} (host {host_id}, cluster {args.cluster}, "
        f"{snap.profile.source}, fingerprint {snap.profile.fingerprint[:12]})",
        flush=True,
    )
    try:
        wait_for_signal()
    finally:
        health.enter_graceful_shutdown()
        watcher.stop()
        reporter.stop(leave=True)
        server.stop(grace=2).wait(5)
        channel.close()
    print("cpucompat agent stopped", flush=True)
    return EXIT_OK
