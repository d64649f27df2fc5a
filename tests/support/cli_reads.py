"""What end-to-end tests read from a running coordinator through the `cpucompat` CLI,
and an agent's policy state file."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from .daemons import run_cli
from .daemons import wait_until as wait_for


def wait_until(predicate: object, what: str) -> object:
    """Bounded polling (generous: the test machine may be busy); asserts no speed."""
    return wait_for(predicate, timeout=120.0, what=what)  # type: ignore[arg-type]


def hosts(address: str) -> dict[str, dict]:
    result = run_cli("hosts", "--coordinator", address, "--json")
    assert result.returncode == 0, result.stderr
    return {h["host_id"]: h for h in json.loads(result.stdout)}


def last_seen(address: str, host: str) -> float:
    entry = hosts(address).get(host)
    if not entry or not entry.get("last_seen"):
        return 0.0
    return datetime.fromisoformat(entry["last_seen"].replace("Z", "+00:00")).timestamp()


def state(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def events(address: str) -> list[dict]:
    done = run_cli("events", "--coordinator", address, "--json", "--limit", "1000")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["events"])
