"""`cpucompat agent`: flags into an `AgentConfig`; `Agent` (agent/daemon/agent.py) runs it."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from ..metrics_http import add_metrics_option
from .common import (
    EXIT_OK,
    CliError,
    add_config_options,
    add_tls_options,
    address_type,
    coordinators_type,
    default_state_dir,
    number_in,
    on_reload_signal,
    on_stop_signal,
    print_config,
    resolve_config,
    tls_files,
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
        metavar="HOST:PORT[,HOST:PORT...]",
        required=True,
        type=coordinators_type(),
        help="the coordinator's address (port 7443 when none is given); several "
        "coordinators on one PostgreSQL database as a comma-separated list: the agent "
        "stays on the one that answers and moves on in order when it fails",
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
    add_metrics_option(p, 9465)
    add_config_options(p)  # last: every option above becomes a key and a variable
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    args = resolve_config(args)
    if args.print_config:
        return print_config(args)
    from ..daemon.agent import Agent, AgentConfig, AgentError

    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s cpucompat agent: %(message)s",
        stream=sys.stderr,
    )
    config = AgentConfig(
        coordinator=args.coordinator,
        cluster=args.cluster,
        listen=args.listen,
        host_id=args.host_id,
        interval=args.interval,
        replay_dump=args.replay_dump,
        source=args.source,
        tls=tls_files(args),
        insecure=args.insecure,
        state_file=args.state_file or str(default_state_dir() / f"policy-{args.cluster}.json"),
        on_policy_change=args.on_policy_change,
        metrics_listen=args.metrics_listen,
    )
    try:
        agent = Agent(config)
    except AgentError as exc:
        raise CliError(str(exc)) from None
    on_reload_signal(agent.request_reload)
    on_stop_signal(agent.request_stop)
    agent.run()
    return EXIT_OK
