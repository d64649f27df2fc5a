"""A fleet in network namespaces through repeated faults, measured in one run. Prints JSON.

The longer run of `tests/e2e/test_fleet_netns.py` (same builder, `tests/support/fleet.py`):
PostgreSQL, two coordinators and --agents agents, each host a Linux network namespace
on 198.18.0.0/15 addresses only, under mutual TLS; every agent lists both coordinators.
Half the agents replay variants of one processor (cluster "steady", SAVE while all are
fresh), half different processors (cluster "mixed"). For --rounds rounds it measures:

- partition: one steady agent's link down: seconds until the stored policy is SHUTDOWN
  (expected about three intervals) and until every other steady agent's state file says
  so; link up: seconds until everything has settled (SAVE again, every state file at
  the stored version);
- kill: the coordinator most agents use killed with -9, while the mixed agents change
  processor (each takes the next one's dump): seconds until every host has
  been heard since (its agents moved on), hosts marked stale meanwhile (expected 0), and
  the restart;
- coordinator_db: the link to the database of the coordinator most agents use down: the same measures;
- db_outage: the database's own link down for --outage seconds (no coordinator can
  record anything): hosts marked stale once it returns, and seconds until settled.

At the end: reports acknowledged to agents and how many the database lacks (expected 0),
and whether every agent's state file holds its cluster's stored policy version.
Needs root (ip netns) and PostgreSQL's binaries.

    sudo python benchmarks/fleet.py --agents 24 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.fleet import (  # noqa: E402
    MIXED_DUMPS,
    MIXED_SHARED,
    STEADY_DUMPS,
    STEADY_SHARED,
    Fleet,
    poll,
)
from tests.support.netns import sweep_stale, unavailable_reason  # noqa: E402
from tests.support.paths import SHARED_DUMPS  # noqa: E402
from tests.support.postgres import SKIP_REASON, find_binaries  # noqa: E402

STEADY, MIXED = "steady", "mixed"


def cycle(shared: list[str], own: list[Path], count: int) -> list[Path]:
    """``count`` dumps: each different one once (shared real ones first), then again."""
    pool = [SHARED_DUMPS / n for n in shared if (SHARED_DUMPS / n).is_file()] + own
    return [pool[i % len(pool)] for i in range(count)]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
    }


def heard_since(fleet: Fleet, moment: float) -> bool:
    """Every host's last heartbeat or report was recorded after ``moment`` (wall clock)."""
    rows = fleet.sql("SELECT min(last_seen), count(*) FROM hosts")
    return bool(rows and rows[0][1] == len(fleet.agents) and rows[0][0] > moment)


def partition_round(fleet: Fleet, index: int) -> dict[str, float]:
    steady = fleet.in_cluster(STEADY)
    cut = steady[index % len(steady)]
    others = [a for a in steady if a is not cut]
    moment = time.time()  # measure from a fresh heartbeat, not one left old by a fault
    poll(lambda: heard_since(fleet, moment), "every host heard", rounds=3000)
    fleet.cut(cut.link)
    stored = poll(lambda: fleet.policy(STEADY)[0] == "SHUTDOWN", "SHUTDOWN", rounds=3000)
    heard = poll(
        lambda: all(a.state().get("action") == "SHUTDOWN" for a in others),
        "the others to hear SHUTDOWN",
        rounds=3000,
    )
    stale = fleet.host_status()[cut.name] == "stale"
    healed = time.monotonic()
    fleet.heal(cut.link)
    poll(fleet.settled, "SAVE again", rounds=3000)
    return {
        "to_shutdown_stored_s": stored,
        "to_shutdown_heard_s": stored + heard,
        "to_save_again_s": time.monotonic() - healed,
        "cut_host_stale": float(stale),
    }


def kill_round(fleet: Fleet) -> dict[str, float]:
    victim = fleet.busiest()
    assert victim.daemon is not None
    fleet.rotate_processors(MIXED)  # reports acknowledged around the kill
    mark, moment = fleet.last_event(), time.time()
    began = time.monotonic()
    victim.daemon.kill()
    heard = poll(lambda: heard_since(fleet, moment), "every host heard again", rounds=3000)
    stale = len(fleet.stale_events(mark))
    restart = time.monotonic()
    fleet.start_coordinator(victim)
    restarted = time.monotonic() - restart
    poll(fleet.settled, "settled after the restart", rounds=3000)
    return {
        "every_host_heard_again_s": heard,
        "hosts_marked_stale": float(stale),
        "restart_s": restarted,
        "settled_s": time.monotonic() - began,
    }


def coordinator_db_round(fleet: Fleet) -> dict[str, float]:
    victim = fleet.busiest()
    mark = fleet.last_event()
    time.sleep(fleet.interval)  # every host heard at least once more before the cut
    moment = time.time()
    began = time.monotonic()
    fleet.cut(victim.back)
    heard = poll(lambda: heard_since(fleet, moment), "every host heard again", rounds=3000)
    healed = time.monotonic()
    fleet.heal(victim.back)
    poll(fleet.settled, "settled after the heal", rounds=3000)
    return {
        "every_host_heard_again_s": heard,
        "hosts_marked_stale": float(len(fleet.stale_events(mark))),
        "settled_after_heal_s": time.monotonic() - healed,
        "total_s": time.monotonic() - began,
    }


def db_outage_round(fleet: Fleet, outage: float) -> dict[str, float]:
    assert fleet.db_link is not None
    mark = fleet.last_event()
    fleet.cut(fleet.db_link)
    time.sleep(outage)
    healed, moment = time.monotonic(), time.time()
    fleet.heal(fleet.db_link)
    heard = poll(lambda: heard_since(fleet, moment), "every host heard again", rounds=3000)
    poll(fleet.settled, "settled after the outage", rounds=3000)
    stale = fleet.stale_events(mark)
    return {
        "every_host_heard_after_heal_s": heard,
        "settled_after_heal_s": time.monotonic() - healed,
        "hosts_marked_stale": float(len(stale)),
        "distinct_hosts_marked_stale": float(len(set(stale))),
    }


def run(args: argparse.Namespace) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="cpucompat-fleet-bench-"))
    steady = args.agents // 2
    fleet = Fleet(
        folder,
        {
            STEADY: cycle(STEADY_SHARED, STEADY_DUMPS, steady),
            MIXED: cycle(MIXED_SHARED, MIXED_DUMPS, args.agents - steady),
        },
        {STEADY: "SAVE", MIXED: "SHUTDOWN"},
        interval=args.interval,
        failover=True,
    )
    result: dict = {
        "agents": args.agents,
        "coordinators": 2,
        "interval_s": args.interval,
        "rounds": args.rounds,
        "shared_dumps": SHARED_DUMPS.is_dir(),
        "folder": str(folder),
    }
    try:
        began = time.monotonic()
        fleet.start()
        result["build"] = {k: round(v, 3) for k, v in fleet.timings.items()}
        result["build"]["settled_s"] = round(poll(fleet.settled, "settled", rounds=3000), 3)
        result["build"]["total_s"] = round(time.monotonic() - began, 3)
        rounds: dict[str, list[dict[str, float]]] = {
            "partition": [],
            "kill": [],
            "coordinator_db": [],
            "db_outage": [],
        }
        for i in range(args.rounds):
            rounds["partition"].append(partition_round(fleet, i))
            rounds["kill"].append(kill_round(fleet))
            rounds["coordinator_db"].append(coordinator_db_round(fleet))
            if args.outage > 0:
                rounds["db_outage"].append(db_outage_round(fleet, args.outage))
        for name, measured in rounds.items():
            if measured:
                result[name] = {key: summary([m[key] for m in measured]) for key in measured[0]}
        acked = sum(len(a.acknowledged()) for a in fleet.agents)
        result["reports_acknowledged"] = acked
        result["acknowledged_reports_missing"] = len(fleet.lost_acknowledgements())
        result["state_files_at_stored_version"] = fleet.settled()
        result["total_s"] = round(time.monotonic() - began, 3)
    finally:
        fleet.close()
    result["namespaces_left"] = fleet.leftovers()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=24, help="agents (2-150, default 24)")
    parser.add_argument("--interval", type=float, default=2.0, help="agents' interval (s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of faults (default 3)")
    parser.add_argument(
        "--outage", type=float, default=10.0, help="database outage per round, s (0: none)"
    )
    args = parser.parse_args()
    if not 2 <= args.agents <= 150:
        parser.error("--agents must be 2-150 (one /24 holds the agents)")
    reason = unavailable_reason()
    if reason is None and find_binaries() is None:
        reason = SKIP_REASON
    if reason is not None:
        print(f"fleet benchmark: {reason}", file=sys.stderr)
        return 2
    swept = sweep_stale()
    result = run(args)
    result["stale_namespaces_swept"] = swept
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
