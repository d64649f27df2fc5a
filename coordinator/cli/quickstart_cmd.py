"""`cpucompat quickstart`: the whole system on one machine, in one command.

Starts a coordinator (SQLite in a state folder, loopback only) and this host's
real agent, which joins the cluster; then prints the audit of the cluster
with the what-if hosts (`--dump` files of hardware not racked yet, `--model`
baselines) and the policy the coordinator enforces. What-if hosts are
audited against the cluster but not joined to it: they are not listed by
`cpucompat hosts` and do not change the enforced policy. Everything runs as
real processes; they are stopped at the end unless `--keep` is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cpucompat.agent.cli.common import EXIT_OK, CliError, wrap

from .launch import CLI, Launched, LaunchError


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dump",
        action="append",
        default=[],
        metavar="FILE",
        help="what-if host from a CPUID dump, audited against the cluster but not joined "
        "to it (repeatable)",
    )
    p.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="NAME",
        help="what-if baseline audited against the cluster but not joined to it, e.g. "
        "model:icelake (repeatable; default: model:zen3 and model:icelake)",
    )
    p.add_argument("--cluster", default="quickstart", help="cluster name (default quickstart)")
    p.add_argument(
        "--state-dir", metavar="DIR", help="where the database and logs go (default: a temp folder)"
    )
    p.add_argument(
        "--keep", action="store_true", help="leave the daemons running and print how to stop them"
    )
    p.set_defaults(run=run)


def _start(args: list[str], log: Path, env: dict[str, str]) -> Launched:
    try:
        return Launched(args, log, env=env, append=False)
    except LaunchError:
        raise CliError(f"`cpucompat {' '.join(args[:1])}` did not start; see {log}", 1) from None


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        CLI + list(args), capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL
    )


def _wait_hosts(address: str, count: int, env: dict[str, str]) -> None:
    import json

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        r = _cli("hosts", "--json", "--coordinator", address, env=env)
        if r.returncode == 0 and len(json.loads(r.stdout)) >= count:
            return
        time.sleep(0.2)
    raise CliError("the agents did not report within 60 s; see the logs in the state folder", 1)


def run(args: argparse.Namespace) -> int:
    from cpucompat.agent.dumps import load_dump_profile

    for dump in args.dump:
        if not Path(dump).is_file():
            raise CliError(f"--dump {dump}: no such file")
        try:
            load_dump_profile(dump)  # refused as the agent would refuse it, before anything starts
        except Exception as exc:  # any parse failure: one line, before anything starts
            raise CliError(f"--dump {dump}: {exc}") from None
    models = args.model if args.model is not None else ["model:zen3", "model:icelake"]
    state = (
        Path(args.state_dir)
        if args.state_dir
        else Path(tempfile.mkdtemp(prefix="cpucompat-quickstart-"))
    )
    state.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CPUCOMPAT_STATE_DIR": str(state)}
    procs: list[Launched] = []
    failed = True  # until the end: a failed run keeps its folder, so the logs it names exist
    try:
        coord = _start(
            [
                "coordinator",
                "--listen",
                "127.0.0.1:0",
                "--db",
                str(state / "coordinator.db"),
            ],
            state / "coordinator.log",
            env,
        )
        procs.append(coord)
        address = coord.address
        print(f"coordinator on {address} (database {state / 'coordinator.db'})")
        common = [
            "--coordinator",
            address,
            "--cluster",
            args.cluster,
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "60",
        ]
        agent = _start(
            ["agent", *common, "--host-id", "this-host"], state / "agent-this-host.log", env
        )
        procs.append(agent)
        print("agent this-host: this machine's processors (CPUID on every logical CPU)")
        _wait_hosts(address, 1, env)
        print()
        print(_cli("hosts", "--coordinator", address, env=env).stdout)
        what_if = [f"dump:{Path(d).resolve()}" for d in args.dump] + models
        audit = _cli(
            "audit", "--cluster", args.cluster, *what_if, "--coordinator", address, env=env
        )
        if audit.returncode not in (0, 3):
            log = state / "audit.log"
            log.write_text(audit.stderr)
            raise CliError(f"the audit failed: {audit.stderr.strip()} (see {log})", 2)
        labels = [f"dump:{Path(d).name}" for d in args.dump] + models
        print(f"== audit: cluster {args.cluster}" + (" + what-if hosts" if what_if else ""))
        if what_if:
            print(
                wrap(
                    f"what-if hosts {', '.join(labels)}: audited against cluster {args.cluster} as "
                    "if they joined it, but NOT joined (not in `cpucompat hosts`, no effect on "
                    "the enforced policy below)",
                    indent="   ",
                )
            )
        print(audit.stdout)
        print("== enforced policy")
        policy = _cli(
            "policy", "show", "--cluster", args.cluster, "--coordinator", address, env=env
        )
        print(policy.stdout or policy.stderr)
        state_file = state / f"policy-{args.cluster}.json"
        deadline = time.monotonic() + 10
        while not state_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if state_file.exists():
            print(f"== the agent's policy state file {state_file}")
            print(state_file.read_text())
        if args.keep:
            pids = " ".join(str(p.proc.pid) for p in procs)
            print(f"daemons left running; stop them with: kill {pids}")
            print(f"try: CPUCOMPAT_COORDINATOR={address} cpucompat hosts")
            procs = []
        failed = False
        return EXIT_OK
    finally:
        for launched in reversed(procs):
            launched.terminate()
        for launched in procs:
            launched.stop(timeout=15)
        if failed:
            print(f"logs kept in {state}", file=sys.stderr)
        elif not args.keep and not args.state_dir:
            shutil.rmtree(state, ignore_errors=True)
