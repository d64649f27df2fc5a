"""Bounded storage (issue 10, item 4): string sizes, history cap, change rate, paged lists.

Real in-process coordinators on loopback with real SQLite files, and the real CLI.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import grpc
import pytest

from cpucompat.coordinator.limits import Limits
from cpucompat.coordinator.service.paging import PAGE_BYTES, fill
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.daemons import run_cli
from tests.support.hostile import DEV_DUMP, DUMPS, raw_of, refused, report, snapshot
from tests.support.inprocess import Running

# Real processors with distinct fingerprints: reporting them in turn changes the profile.
PROCESSORS = [
    DEV_DUMP,
    DUMPS / "libcpuid-single.txt",
    DUMPS / "aida-tab.txt",
    DUMPS / "libcpuid-multi.txt",
    DUMPS / "capture.json",
    DUMPS / "aida-affmask.txt",
]


def history_numbers(running: Running, host: str) -> list[int]:
    result = run_cli("host", "history", host, "--json", "--coordinator", running.address)
    assert result.returncode == 0, result.stderr
    return [v["version"] for v in json.loads(result.stdout)["versions"]]


def test_huge_agent_versions_cannot_break_listings(tmp_path: Path) -> None:
    running = Running(tmp_path)
    try:
        running.registry.ReportProfile(report("good"), timeout=10)
        before = snapshot(running.db)
        for n in range(5):
            err = refused(
                running.registry.ReportProfile, report(f"big-{n}", agent_version="9" * 1_000_000)
            )
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "agent_version" in err.details() and "at most 128" in err.details()
        assert snapshot(running.db) == before
        listed = run_cli("hosts", "--json", "--coordinator", running.address)
        assert listed.returncode == 0, listed.stderr
        assert [h["host_id"] for h in json.loads(listed.stdout)] == ["good"]
    finally:
        running.close()


def test_profile_history_is_capped_with_an_event(tmp_path: Path) -> None:
    running = Running(tmp_path, limits=Limits(max_profile_versions=3, profile_changes_per_hour=100))
    try:
        for path in PROCESSORS:
            running.registry.ReportProfile(report("h1", raw=raw_of(path)), timeout=10)
        with sqlite3.connect(running.db) as db:
            kept = db.execute("SELECT COUNT(*) FROM profiles WHERE host_id = 'h1'").fetchone()[0]
        assert kept == 3
        # Numbers count every version ever recorded: the three kept are 4, 5 and 6.
        assert history_numbers(running, "h1") == [4, 5, 6]
        events = running.query.ListEvents(pb.ListEventsRequest(host_id="h1"), timeout=10).events
        pruned = [e for e in events if "pruned" in e.message]
        assert len(pruned) == 3 and "--max-profile-versions" in pruned[0].message
        assert pruned[0].details["pruned_versions"] == "1"
        # The current profile is intact and still decides.
        host = running.query.GetHost(pb.GetHostRequest(host_id="h1"), timeout=10)
        assert host.host.fingerprint == host.profile.fingerprint != ""
    finally:
        running.close()
    again = Running(tmp_path)  # the numbering survives a restart
    try:
        assert history_numbers(again, "h1") == [4, 5, 6]
    finally:
        again.close()


def test_profile_changes_are_rate_limited_per_host(tmp_path: Path) -> None:
    running = Running(tmp_path, limits=Limits(profile_changes_per_hour=2))
    try:
        running.registry.ReportProfile(report("flappy", raw=raw_of(PROCESSORS[0])), timeout=10)
        running.registry.ReportProfile(report("flappy", raw=raw_of(PROCESSORS[1])), timeout=10)
        before = snapshot(running.db)
        err = refused(running.registry.ReportProfile, report("flappy", raw=raw_of(PROCESSORS[2])))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "--profile-changes-per-hour 2" in err.details()
        assert "retry after" in err.details() and " UTC (in " in err.details()
        assert snapshot(running.db) == before
        # The unchanged profile is still accepted, and other hosts are not held back.
        same = running.registry.ReportProfile(
            report("flappy", raw=raw_of(PROCESSORS[1])), timeout=10
        )
        assert same.accepted and not same.changed
        other = running.registry.ReportProfile(
            report("calm", raw=raw_of(PROCESSORS[2])), timeout=10
        )
        assert other.accepted
    finally:
        running.close()


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-profile-versions", "1"),
        ("--max-profile-versions", "-3"),
        ("--profile-changes-per-hour", "0"),
        ("--profile-changes-per-hour", "99999999999"),
    ],
)
def test_history_flags_are_range_checked(tmp_path: Path, flag: str, value: str) -> None:
    db = tmp_path / "c.db"
    result = run_cli("coordinator", "--db", str(db), "--listen", "127.0.0.1:0", flag, value)
    assert result.returncode == 2 and flag in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not db.exists()


def test_lists_page_and_the_cli_follows_the_pages(tmp_path: Path) -> None:
    running = Running(tmp_path, durable=False)
    try:
        names = sorted(f"host-{n:04d}" for n in range(520))
        for name in names:
            running.registry.ReportProfile(report(name, cluster="big"), timeout=30)
        first = running.query.ListHosts(pb.ListHostsRequest(), timeout=30)
        assert len(first.hosts) == 500 and first.next_page_token
        listed = run_cli("hosts", "--json", "--coordinator", running.address)
        assert listed.returncode == 0, listed.stderr
        assert [h["host_id"] for h in json.loads(listed.stdout)] == names

        with sqlite3.connect(running.db) as db:
            newest = [r[0] for r in db.execute("SELECT id FROM events ORDER BY id DESC LIMIT 700")]
            (stored,) = db.execute("SELECT count(*) FROM events").fetchone()
        shown = run_cli("events", "--limit", "700", "--json", "--coordinator", running.address)
        assert shown.returncode == 0, shown.stderr
        doc = json.loads(shown.stdout)
        assert [e["id"] for e in doc["events"]] == sorted(newest)
        assert doc["more"] == max(0, stored - 700) and doc["more_exact"]  # counted, not silent
    finally:
        running.close()


def pages(call, request, field: str) -> list[list]:
    out = []
    while True:
        response = call(request, timeout=10)
        out.append(list(getattr(response, field)))
        if not response.next_page_token:
            return out
        request.page_token = response.next_page_token


def test_every_list_call_pages(tmp_path: Path) -> None:
    running = Running(tmp_path, limits=Limits(profile_changes_per_hour=100))
    try:
        for n, cluster in enumerate(("a", "b", "c")):
            for path in PROCESSORS[:3]:
                running.registry.ReportProfile(
                    report(f"h{n}", cluster=cluster, raw=raw_of(path)), timeout=10
                )
        vms = pb_grpc.VmServiceStub(running.channel)
        for name in ("vm-1", "vm-2", "vm-3"):
            vms.RegisterVm(pb.RegisterVmRequest(vm_name=name, cluster="a", boot_host="h0"))
        policies = pb_grpc.PolicyServiceStub(running.channel)
        q = running.query

        host_pages = pages(q.ListHosts, pb.ListHostsRequest(page_size=2), "hosts")
        assert [len(p) for p in host_pages] == [2, 1]
        assert [h.host_id for p in host_pages for h in p] == ["h0", "h1", "h2"]
        history = pages(
            q.GetHostHistory, pb.GetHostHistoryRequest(host_id="h0", page_size=1), "versions"
        )
        assert [v.version for p in history for v in p] == [1, 2, 3]
        policy_pages = pages(policies.ListPolicies, pb.ListPoliciesRequest(page_size=2), "policies")
        assert [p.cluster for page in policy_pages for p in page] == ["a", "b", "c"]
        vm_pages = pages(vms.ListVms, pb.ListVmsRequest(page_size=2), "vms")
        assert [v.name for page in vm_pages for v in page] == ["vm-1", "vm-2", "vm-3"]

        everything = list(q.ListEvents(pb.ListEventsRequest(), timeout=10).events)
        assert len(everything) > 12
        paged = pages(q.ListEvents, pb.ListEventsRequest(limit=12, page_size=5), "events")
        assert [len(p) for p in paged] == [5, 5, 2]
        assert [e.id for p in paged for e in p] == [e.id for e in everything[-12:]]
        newest = pages(
            q.ListEvents, pb.ListEventsRequest(limit=7, page_size=3, newest_first=True), "events"
        )
        assert [e.id for p in newest for e in p] == [e.id for e in everything[::-1][:7]]
        after = pages(
            q.ListEvents,
            pb.ListEventsRequest(after_id=everything[2].id, limit=6, page_size=4),
            "events",
        )
        assert [e.id for p in after for e in p] == [e.id for e in everything[3:9]]

        for bad in ("garbage!", "eyJ4IjoxfQ"):  # not base64 JSON; JSON of another listing
            err = refused(q.ListHosts, pb.ListHostsRequest(page_token=bad))
            assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "page_token" in err.details()
    finally:
        running.close()


def test_a_page_never_outgrows_the_byte_budget() -> None:
    big = [pb.Event(id=n, message="m" * 2000, details={"k": "v" * 1000}) for n in range(5000)]
    page, more = fill(big, 5000, lambda e: e)
    assert more and 0 < len(page) < 5000
    assert pb.ListEventsResponse(events=page).ByteSize() <= PAGE_BYTES
    assert fill(big[:3], 2, lambda e: e) == (big[:2], True)
