"""`audit --json` prints one document whether it runs offline or through a coordinator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.compatibility import Ref, audit_offline
from cpucompat.coordinator.convert import audit_from_proto, audit_to_proto
from tests.support.daemons import Daemon, run_cli, start_agent, start_coordinator, wait_until
from tests.support.paths import DEV_DUMP as DEV
from tests.support.paths import FIXTURES

LIBCPUID = FIXTURES / "dumps" / "libcpuid-single.txt"  # a dump that cannot tell some bits
MODEL = "model:icelake"


def shape(value: Any, where: str = "$") -> Any:
    """The JSON's structure: key sets and value types, lists by the union of their items.

    None stands for "absent value" and matches any type (a field may be null in
    one run and set in another: `cluster`, `best_removal.host`). A reason's
    `data` is a map whose keys depend on the reason's code.
    """
    if isinstance(value, dict) and where.endswith(".data"):
        return "map"  # a reason's facts: keys depend on its code (README)
    if isinstance(value, dict):
        return {k: shape(v, f"{where}.{k}") for k, v in sorted(value.items())}
    if isinstance(value, list):
        items = [shape(v, f"{where}[]") for v in value]
        merged: Any = None
        for item in items:
            merged = _merge(merged, item, f"{where}[]")
        return ["list", merged]
    if value is None:
        return None
    return type(value).__name__


def _merge(a: Any, b: Any, where: str) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{where}: keys {sorted(set(a) ^ set(b))} differ"
        return {k: _merge(a[k], b[k], f"{where}.{k}") for k in a}
    if isinstance(a, list) and isinstance(b, list):
        return ["list", _merge(a[1], b[1], where)]
    assert a == b, f"{where}: {a} vs {b}"
    return a


def test_the_wire_carries_the_whole_report() -> None:
    refs = [
        Ref.dump(str(DEV), load_dump(DEV)),
        Ref.dump(str(LIBCPUID), load_dump(LIBCPUID)),
        Ref.model(MODEL),
    ]
    report = audit_offline(refs)
    again = audit_from_proto(audit_to_proto(report, now=0.0))
    assert again.to_json() == report.to_json()


def test_offline_and_coordinator_audits_print_the_same_schema(tmp_path: Path) -> None:
    offline = run_cli("audit", f"dump:{DEV}", f"dump:{LIBCPUID}", MODEL, "--json")
    assert offline.returncode in (0, 3), offline.stderr
    offline_doc = json.loads(offline.stdout)

    coordinator = start_coordinator(tmp_path, "--allow-replayed")
    agents: list[Daemon] = []
    try:
        address = coordinator.address
        for host, dump in (("dev", DEV), ("old", LIBCPUID)):
            agents.append(
                start_agent(tmp_path, address, host, "--replay-dump", str(dump), cluster="c")
            )

        def registered() -> bool:
            listed = run_cli("hosts", "--json", "--coordinator", address)
            return listed.returncode == 0 and len(json.loads(listed.stdout)) == 2

        wait_until(registered, what="both replayed hosts registered")
        online = run_cli("audit", "--cluster", "c", MODEL, "--json", "--coordinator", address)
        assert online.returncode == offline.returncode, online.stderr
        online_doc = json.loads(online.stdout)
    finally:
        for agent in agents:
            agent.stop()
        coordinator.stop()

    _merge(shape(online_doc), shape(offline_doc), "$")  # asserts keys and types everywhere
    # The same processors give the same answers; only the hosts' names differ.
    assert online_doc["cluster"] == "c" and offline_doc["cluster"] is None
    for key in ("offline_action", "reasons", "baseline", "matrix", "vendors", "pairs_mode"):
        assert online_doc[key] == offline_doc[key], key
    assert [p["fingerprint"] for p in online_doc["distinct_profiles"]] == [
        p["fingerprint"] for p in offline_doc["distinct_profiles"]
    ]
    assert [h["kind"] for h in online_doc["hosts"]] == ["host", "host", "model"]
    assert [h["kind"] for h in offline_doc["hosts"]] == ["dump", "dump", "model"]
    assert [p["compatible"] for p in online_doc["pairs"]] == [
        p["compatible"] for p in offline_doc["pairs"]
    ]
