"""An agent whose coordinator hangs (SIGSTOP: it accepts TCP but never answers) moves on.

A stopped process still has its sockets: the kernel acknowledges every byte sent to it,
so neither a refused connection nor a TCP reset ever tells the agent. Only gRPC
keepalive pings that go unanswered (agent/keepalive.py) end the connection; the
heartbeat in flight then fails over to the next coordinator and the policy watch
follows. The host must never turn stale and no SHUTDOWN may be published while it does.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.support.cli_reads import events, hosts, last_seen, state, wait_until
from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator
from tests.support.paths import FIXTURES
from tests.support.postgres import PostgresServer

DEV_DUMP = FIXTURES / "processors" / "dev-amd-epyc-kvm.cpuid-r.txt"
# A host is stale after three missed heartbeats: 12 s of silence. The stopped
# coordinator must be given up well within that (its keepalive ping times out in 3 s),
# where the old 10 s call deadline alone could not keep the host online.
INTERVAL = "4"


@pytest.mark.e2e
def test_a_stopped_coordinator_is_given_up_and_the_agent_carries_on_through_the_next(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.database()
    # B starts first, so B holds the stale-sweep lease: it judges h1 by the shared row
    # while A is stopped (a stopped lease holder would sweep nobody).
    b = start_coordinator(tmp_path, "--allow-replayed", db=url, log="b.log")
    a = start_coordinator(tmp_path, "--allow-replayed", db=url, log="a.log")
    state_file = tmp_path / "policy.json"
    h1: Daemon | None = None
    stopped = False
    try:
        h1 = start_agent(
            tmp_path,
            f"{a.address},{b.address}",
            "h1",
            "--interval",
            INTERVAL,
            "--replay-dump",
            str(DEV_DUMP),
            "--state-file",
            str(state_file),
        )
        wait_until(lambda: state(state_file).get("action") == "SAVE", "the agent's policy SAVE")
        wait_until(lambda: hosts(b.address).get("h1", {}).get("status") == "online", "h1 online")
        seen = last_seen(b.address, "h1")
        wait_until(lambda: last_seen(b.address, "h1") > seen, "a heartbeat through A")
        assert not any("switching" in line for line in h1.lines), h1.output()  # on A so far
        first_version = state(state_file)["policy_version"]

        os.kill(a.proc.pid, signal.SIGSTOP)
        stopped, stopped_at = True, time.time()
        # A cannot write while stopped: a last-seen time after the stop came through B.
        wait_until(lambda: last_seen(b.address, "h1") > stopped_at, "a heartbeat through B")
        print(f"hung coordinator: h1 heard through B {time.time() - stopped_at:.2f}s after SIGSTOP")
        wait_until(lambda: f"switching to {b.address}" in h1.output(), "the switch logged")

        # The policy watch resumed on B: a pin made there reaches the state file.
        pin = run_cli("policy", "pin", "--cluster", "prod", "SAVE", "--coordinator", b.address)
        assert pin.returncode == 0, pin.stderr
        wait_until(lambda: state(state_file).get("pinned") is True, "the pin via B's watch")
        assert state(state_file)["policy_version"] > first_version

        # More than three intervals heard through B alone, A still stopped.
        for _ in range(4):
            seen = last_seen(b.address, "h1")
            wait_until(lambda seen=seen: last_seen(b.address, "h1") > seen, "another heartbeat")
        assert hosts(b.address)["h1"]["status"] == "online"
        log = events(b.address)
        assert not [e for e in log if e["host_id"] == "h1" and "stale" in e["message"]], log
        shutdown = [e for e in log if "SHUTDOWN" in e["message"]]
        assert not shutdown, shutdown  # no policy version ever said SHUTDOWN
        assert state(state_file)["stale_hosts"] == []
        assert state(state_file)["action"] == "SAVE"
    finally:
        if stopped:
            os.kill(a.proc.pid, signal.SIGCONT)
        if h1 is not None:
            h1.kill()
        b.stop()
        a.kill()
