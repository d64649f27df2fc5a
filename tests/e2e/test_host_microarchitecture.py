"""Hosts name their nearest microarchitecture, by the rule the audit applies to a cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpucompat.agent.dumps import load_dump_profile
from cpucompat.agent.wire import capture_to_proto
from cpucompat.coordinator.domain.baselines import resolve_baseline
from cpucompat.v1 import coordinator_service_pb2 as pb
from tests.support.daemons import run_cli
from tests.support.inprocess import Running
from tests.support.paths import PROCESSORS


@pytest.mark.parametrize(
    "dump", ["dev-amd-epyc-kvm.cpuid-r.txt", "intel-skylake-leaf2-edited.cpuid-r.txt"]
)
def test_host_show_and_hosts_name_the_audits_microarchitecture(tmp_path: Path, dump: str) -> None:
    path = PROCESSORS / dump
    profile = load_dump_profile(path)
    capture = profile.raw
    offline = run_cli("audit", f"dump:{path}", "--json")
    assert offline.returncode == 0, offline.stderr
    expected = json.loads(offline.stdout)["baseline"]["microarchitecture"]
    # a microarchitecture of the processor's own vendor, not the generic x86-64 targets
    assert expected and resolve_baseline(f"model:{expected}").vendor == profile.vendor
    running = Running(tmp_path, allow_replayed=True)
    try:
        running.registry.ReportProfile(
            pb.ReportProfileRequest(host_id="h1", cluster="c", raw=capture_to_proto(capture)),
            timeout=10,
        )
        shown = run_cli("host", "show", "h1", "--json", "--coordinator", running.address)
        assert shown.returncode == 0, shown.stderr
        doc = json.loads(shown.stdout)
        assert doc["host"]["summary"]["microarchitecture"] == expected
        assert doc["profile"]["microarchitecture"] == expected
        listed = run_cli("hosts", "--json", "--coordinator", running.address)
        assert [h["summary"]["microarchitecture"] for h in json.loads(listed.stdout)] == [expected]
        readable = run_cli("host", "show", "h1", "--coordinator", running.address)
        assert readable.returncode == 0, readable.stderr
        assert f", nearest microarchitecture {expected}\n" in readable.stdout
    finally:
        running.close()
