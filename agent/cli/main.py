"""The `cpucompat` command: one entry point, subcommands loaded on demand.

Subcommand modules are imported only when chosen, so `cpucompat probe`
never loads gRPC and starts fast on every host.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..errors import cli_outcome
from .common import EXIT_CODES_HELP, EXIT_USAGE, safe

# name -> (module that defines add_parser(subparsers) and run(args), one-line help).
# Loaded by name with importlib when chosen: this table is the one place the agent's side
# names the coordinator's modules (tests/unit/test_layers.py allows exactly this).
COMMANDS: dict[str, tuple[str, str]] = {
    "quickstart": (
        "cpucompat.coordinator.cli.quickstart_cmd",
        "bring up a coordinator and this host's agent, audit and show the policy",
    ),
    "probe": (
        "cpucompat.agent.cli.probe",
        "read this host's processors (or a dump) and decode them",
    ),
    "coordinator": ("cpucompat.coordinator.cli.coordinator_cmd", "run the coordinator daemon"),
    "pki": (
        "cpucompat.agent.cli.pki_cmd",
        "make a CA and the certificates for mutual TLS (coordinator, hosts, admins)",
    ),
    "agent": ("cpucompat.agent.cli.agent_cmd", "run the agent daemon on this host"),
    "hosts": ("cpucompat.coordinator.cli.hosts_cmd:add_hosts_parser", "list registered hosts"),
    "host": (
        "cpucompat.coordinator.cli.hosts_cmd:add_host_parser",
        "show, trace, remove or maintain one host",
    ),
    "events": ("cpucompat.coordinator.cli.hosts_cmd:add_events_parser", "show the event log"),
    "cluster": (
        "cpucompat.coordinator.cli.cluster_cmd:add_cluster_parser",
        "admit or revoke the hosts that may join a cluster",
    ),
    "check": (
        "cpucompat.coordinator.cli.compat_cmd:add_check_parser",
        "may SOURCE's saved state restore on TARGET?",
    ),
    "targets": (
        "cpucompat.coordinator.cli.compat_cmd:add_targets_parser",
        "which hosts can take a VM booted on SOURCE",
    ),
    "audit": (
        "cpucompat.coordinator.cli.compat_cmd:add_audit_parser",
        "audit a cluster, dumps and models: SAVE or SHUTDOWN",
    ),
    "whatif": (
        "cpucompat.coordinator.cli.whatif_cmd",
        "what adding or removing hosts would do to a cluster and its VMs (nothing stored)",
    ),
    "baseline": (
        "cpucompat.coordinator.cli.baseline_cmd:add_baseline_parser",
        "the features every host can give, as libvirt, QEMU, Hyper-V or JSON",
    ),
    "stamp": (
        "cpucompat.coordinator.cli.guard_cmd:add_stamp_parser",
        "write a saved VM's requirement (restore guard)",
    ),
    "guard": (
        "cpucompat.coordinator.cli.guard_cmd:add_guard_parser",
        "refuse a restore this processor cannot take",
    ),
    "policy": (
        "cpucompat.coordinator.cli.policy_cmd:add_policy_parser",
        "show, pin or export a cluster's offline action",
    ),
    "vm": (
        "cpucompat.coordinator.cli.policy_cmd:add_vm_parser",
        "register VMs and list their targets",
    ),
    "failover": (
        "cpucompat.coordinator.cli.policy_cmd:add_failover_parser",
        "plan a VM's fail-over: SAVE or SHUTDOWN",
    ),
    "completion": (
        "cpucompat.agent.cli.completion_cmd",
        "print a bash or zsh completion script (cpucompat completion bash)",
    ),
    "man": (
        "cpucompat.agent.cli.man_cmd",
        "print the cpucompat(1) manual page (cpucompat man | man -l -)",
    ),
}


def _version() -> str:
    """The installed distribution's version (pyproject.toml), read without importing gRPC."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cpucompat")
    except PackageNotFoundError:
        return "unknown (not installed)"


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (exit 2); the full usage stays behind --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser; with ``only``, that command's options in full and the others by name.

    Loading one command's module instead of all of them keeps `cpucompat probe` quick.
    """
    parser = OneLineParser(
        prog="cpucompat",
        description="Decide, from the real processors, where a VM's saved state may be restored.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"cpucompat {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (target, help_text) in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=help_text)
            continue
        module, _, func = target.partition(":")
        getattr(importlib.import_module(module), func or "add_parser")(sub, name, help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # gRPC's C core logs bind failures and the like on stderr beside our own one-line
    # error; GRPC_VERBOSITY=debug brings its messages back when they are wanted.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        # The one place a failure becomes an exit code and a line (agent/errors.py);
        # anything it does not know is a bug and keeps its traceback.
        outcome = cli_outcome(exc)
        if outcome is None:
            raise
        code, message = outcome
        print(f"cpucompat {args.command}: {safe(message)}", file=sys.stderr)
        return code


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
