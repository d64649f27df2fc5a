"""Unchanged reports that arrive together share one commit, and each acknowledged one
survives kill -9 of the coordinator (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.agent.wire import capture_to_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.daemons import run_cli, start_coordinator
from tests.support.paths import DEV_DUMP

pytestmark = pytest.mark.e2e

HOSTS = [f"host-{n:02d}" for n in range(24)]


def test_acknowledged_unchanged_reports_survive_kill_9(tmp_path: Path, coordinator_db: str) -> None:
    capture = load_dump(DEV_DUMP)
    raw = capture_to_proto(capture)
    fingerprint = decode(capture).report_fingerprint
    coord = start_coordinator(tmp_path, "--allow-replayed", db=coordinator_db)
    channel = grpc.insecure_channel(coord.address)
    stub = pb_grpc.RegistryServiceStub(channel)

    def report(host: str, version: str) -> pb.ReportProfileResponse:
        response: pb.ReportProfileResponse = stub.ReportProfile(
            pb.ReportProfileRequest(
                host_id=host,
                cluster="prod",
                raw=raw,
                agent_version=version,
                agent_fingerprint=fingerprint,
            ),
            timeout=60,
        )
        return response

    try:
        joined = [report(host, "1.0") for host in HOSTS]
        # All at once: the coordinator applies them as unchanged, in shared commits.
        with ThreadPoolExecutor(len(HOSTS)) as pool:
            again = list(pool.map(lambda h: report(h, "2.0"), HOSTS))
        assert [r.profile_version for r in again] == [r.profile_version for r in joined]
        assert not any(r.changed for r in again)
    finally:
        channel.close()
        coord.stop(signal.SIGKILL)
    restarted = start_coordinator(tmp_path, "--allow-replayed", db=coordinator_db)
    try:
        listed = run_cli("hosts", "--coordinator", restarted.address, "--json")
        assert listed.returncode == 0, listed.stderr
        versions = {h["host_id"]: h["agent_version"] for h in json.loads(listed.stdout)}
        assert versions == dict.fromkeys(HOSTS, "2.0")
    finally:
        restarted.stop()
