"""A database outage is the coordinators' silence, not the hosts' (issue 13).

Two coordinators share a throwaway PostgreSQL server of the test's own; every agent
reports to the first, the second serves nobody and only asks for the stale-sweep
lease, so whichever holds the lease when the database returns must know of the outage.
The server is stopped as a crash would stop it for longer than three heartbeat
intervals, one agent is killed meanwhile, and the server is started again. Asserted:
no live host turns stale and its cluster's policy never turns SHUTDOWN (nothing stored,
nothing heard by the agents), while the killed host does turn stale afterwards and a
host already stale before the outage stays stale.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import DEV_DUMP
from tests.support.postgres import start_server

pytestmark = pytest.mark.e2e

# The live hosts' interval: their agents retry at most this long apart, so after the
# outage the sweeper (asking every second) sweeps before they are heard again.
INTERVAL = 3.0
SHORT = 1.0  # the hosts that die: stale three seconds after their last heartbeat
OUTAGE = 4 * INTERVAL  # the database is down this long at least: beyond three intervals


def listed(address: str) -> dict[str, dict]:
    result = run_cli("hosts", "--coordinator", address, "--json")
    assert result.returncode == 0, result.stderr
    return {h["host_id"]: h for h in json.loads(result.stdout)}


def hosts(address: str) -> dict[str, str]:
    return {host: h["status"] for host, h in listed(address).items()}


def heard_since(address: str, host: str, since: float) -> bool:
    seen = datetime.fromisoformat(listed(address)[host]["last_seen"])
    return seen.timestamp() > since


def events(address: str) -> list[dict]:
    result = run_cli("events", "--coordinator", address, "--json", "--limit", "100000")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout)["events"])


def policy(address: str, cluster: str) -> dict:
    result = run_cli("policy", "show", "--cluster", cluster, "--json", "--coordinator", address)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def went_stale(found: list[dict]) -> list[str]:
    return [
        e["host_id"]
        for e in found
        if e["kind"] == "status_changed" and e.get("new_status") == "stale"
    ]


def test_a_database_outage_marks_no_live_host_stale_and_publishes_no_shutdown(
    tmp_path: Path,
) -> None:
    server = start_server()  # its own server: the test stops it
    daemons: list[Daemon] = []
    try:
        url = server.database()
        idle = start_coordinator(tmp_path, db=url, log="idle.log")  # first: takes the lease
        daemons.append(idle)
        coord = start_coordinator(tmp_path, "--allow-replayed", db=url)
        daemons.append(coord)

        def agent(host: str, cluster: str, interval: float) -> Daemon:
            started = start_agent(
                tmp_path, coord.address, host, "-v", "--interval", str(interval),
                "--replay-dump", str(DEV_DUMP), cluster=cluster,
            )  # fmt: skip
            daemons.append(started)
            return started

        live = [agent("live-1", "prod", INTERVAL), agent("live-2", "prod", INTERVAL)]
        goner = agent("goner", "lab", SHORT)
        before = agent("gone-before", "lab", SHORT)
        wait_until(
            lambda: (
                set(hosts(coord.address).items())
                == {(h, "online") for h in ("live-1", "live-2", "goner", "gone-before")}
            ),
            what="four hosts online",
        )
        wait_until(lambda: policy(coord.address, "prod")["action"] == "SAVE", what="prod SAVE")
        version = policy(coord.address, "prod")["version"]
        before.kill()
        wait_until(lambda: hosts(coord.address)["gone-before"] == "stale", what="an early stale")
        mark = len(events(coord.address))

        server.stop()
        goner.kill()  # dies during the outage: nobody could have heard it anyway
        time.sleep(OUTAGE)  # a minimum, asserts no speed
        back = time.time()
        server.resume()

        # The killed host goes stale within its window measured from the database's return,
        # and the live hosts are heard again.
        wait_until(lambda: hosts(idle.address)["goner"] == "stale", what="the killed host stale")
        wait_until(
            lambda: all(heard_since(coord.address, h, back) for h in ("live-1", "live-2")),
            what="the live hosts heard again",
        )
        after = events(coord.address)[mark:]
        assert went_stale(after) == ["goner"], after
        assert hosts(coord.address) == {
            "live-1": "online",
            "live-2": "online",
            "goner": "stale",
            "gone-before": "stale",
        }
        for address in (coord.address, idle.address):
            shown = policy(address, "prod")
            assert (shown["action"], shown["version"]) == ("SAVE", version)
        assert not [e for e in after if e["kind"] == "policy_changed" and e["cluster"] == "prod"]
        for a in live:
            assert "cluster prod policy SHUTDOWN" not in a.output()
        # Both coordinators saw the outage and its end.
        for c in (coord, idle):
            assert "database available again after an outage" in c.output(), c.output()
    finally:
        for d in daemons:
            d.kill()
        server.stop()
        shutil.rmtree(server.folder, ignore_errors=True)
