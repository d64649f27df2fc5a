"""After a coordinator restart, agents with short intervals are back inside the restart grace."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.support.daemons import free_port, run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import DEV_DUMP

pytestmark = pytest.mark.e2e

INTERVAL = 1.0  # the coordinator's restart grace is three intervals: 3 s


def test_short_interval_agents_rejoin_before_the_grace_runs_out(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{free_port()}"
    coord = start_coordinator(tmp_path, "--allow-replayed", listen=listen)
    agent = start_agent(
        tmp_path, listen, "h1", "--replay-dump", str(DEV_DUMP), "--interval", str(INTERVAL)
    )
    try:
        wait_until(lambda: run_cli("host", "show", "h1", "--coordinator", listen).returncode == 0)
        coord.stop(signal.SIGKILL)
        time.sleep(
            12 * INTERVAL
        )  # long enough for uncapped backoff (8 s and more) to outgrow the grace
        coord = start_coordinator(tmp_path, "--allow-replayed", listen=listen, log="again.log")
        restarted = time.time()
        wait_until(
            lambda: (
                json.loads(run_cli("hosts", "--json", "--coordinator", listen).stdout)[0].get(
                    "last_seen", ""
                )
                > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(restarted))
            ),
            what="h1 heard from after the restart",
        )
        time.sleep(3 * INTERVAL)  # past the grace: a late agent would now be stale
        events = json.loads(run_cli("events", "--json", "--coordinator", listen).stdout)["events"]
        stale = [e for e in events if e.get("host_id") == "h1" and "stale" in e["message"].lower()]
        assert not stale, stale
        policy = json.loads(
            run_cli("policy", "show", "--cluster", "prod", "--json", "--coordinator", listen).stdout
        )
        assert policy["stale_hosts"] == []
    finally:
        agent.stop()
        coord.stop()


def test_a_refused_agent_says_so_once_and_keeps_running(tmp_path: Path) -> None:
    coord = start_coordinator(tmp_path)  # replayed reports are refused: FAILED_PRECONDITION
    agent = start_agent(
        tmp_path, coord.address, "h1", "--replay-dump", str(DEV_DUMP), "--interval", "0.2"
    )
    try:
        wait_until(lambda: "refused this host" in agent.output(), what="the refusal logged")
        time.sleep(15 * 0.2)  # many normal intervals: a fast retry loop would log each time
        assert agent.output().count("refused this host") == 1, agent.output()
        assert agent.proc.poll() is None  # still serving its own port
    finally:
        agent.stop()
        coord.stop()
