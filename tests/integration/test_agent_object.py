"""`Agent(AgentConfig)` in-process against an in-process coordinator on loopback.

The subprocess tests drive `cpucompat agent`; these build the same object the command
builds, so an embedding program (or a test) gets the agent without a process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cpucompat.agent.daemon.agent import Agent, AgentConfig, AgentError
from cpucompat.agent.decode import decode
from cpucompat.agent.dumps import load_dump
from cpucompat.coordinator.server import Coordinator, CoordinatorConfig, build_server
from cpucompat.v1 import agent_service_pb2, agent_service_pb2_grpc
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.daemons import wait_until
from tests.support.paths import DEV_DUMP as DUMP


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[tuple[str, pb_grpc.QueryServiceStub]]:
    running = Coordinator(
        CoordinatorConfig(db_path=tmp_path / "c.db", listen="127.0.0.1:0", allow_replayed=True)
    )
    server, port = build_server(running)
    server.start()
    running.start()
    address = f"127.0.0.1:{port}"
    channel = grpc.insecure_channel(address)
    yield address, pb_grpc.QueryServiceStub(channel)
    channel.close()
    server.stop(None)
    running.close()


def _host(query: pb_grpc.QueryServiceStub, host_id: str) -> pb.Host | None:
    hosts = query.ListHosts(pb.ListHostsRequest(), timeout=10).hosts
    return next((h for h in hosts if h.host_id == host_id), None)


def test_an_agent_object_reports_serves_and_leaves(
    coordinator: tuple[str, pb_grpc.QueryServiceStub],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    address, query = coordinator
    state_file = tmp_path / "policy-prod.json"
    agent = Agent(
        AgentConfig(
            coordinator=address,
            cluster="prod",
            listen="127.0.0.1:0",
            host_id="in-process-1",
            replay_dump=str(DUMP),
            interval=60,
            state_file=str(state_file),
        )
    )
    runner = threading.Thread(target=agent.run, name="agent-under-test")
    runner.start()
    try:
        host = wait_until(lambda: _host(query, "in-process-1"), what="the agent's first report")
        assert isinstance(host, pb.Host)
        assert host.cluster == "prod"
        assert host.status == pb.HOST_STATUS_ONLINE
        assert host.replayed
        assert host.agent_address == agent.address
        assert host.fingerprint == decode(load_dump(str(DUMP))).fingerprint
        # The agent's own service answers with the same processor.
        with grpc.insecure_channel(agent.address) as channel:
            served = agent_service_pb2_grpc.AgentServiceStub(channel).GetProfile(
                agent_service_pb2.GetProfileRequest(), timeout=10
            )
        assert served.profile.fingerprint == host.fingerprint
        # It names the microarchitecture the coordinator names for it (one rule).
        assert served.profile.microarchitecture
        assert served.profile.microarchitecture == host.summary.microarchitecture
        # The policy watch wrote the cluster's action where the config said.
        wait_until(state_file.exists, what="the policy state file")
        assert json.loads(state_file.read_text())["cluster"] == "prod"
    finally:
        agent.request_stop()
        runner.join(timeout=60)
    assert not runner.is_alive(), "run() returned after request_stop()"
    left = _host(query, "in-process-1")
    assert left is not None and left.status == pb.HOST_STATUS_OFFLINE  # it said goodbye
    with grpc.insecure_channel(agent.address) as channel, pytest.raises(grpc.RpcError) as refused:
        agent_service_pb2_grpc.AgentServiceStub(channel).GetProfile(
            agent_service_pb2.GetProfileRequest(), timeout=2
        )
    assert refused.value.code() in (
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    )
    out = capsys.readouterr().out
    assert f"cpucompat agent listening on {agent.address} (host in-process-1" in out
    assert out.rstrip().endswith("cpucompat agent stopped")


def test_a_bad_config_raises_before_anything_runs(
    coordinator: tuple[str, pb_grpc.QueryServiceStub], tmp_path: Path
) -> None:
    address, query = coordinator
    with pytest.raises(AgentError, match="cluster name 'bad name' is not valid"):
        Agent(AgentConfig(coordinator=address, cluster="bad name", replay_dump=str(DUMP)))
    with pytest.raises(AgentError, match=r"not valid|No such file|nope\.txt"):
        Agent(
            AgentConfig(coordinator=address, cluster="prod", replay_dump=str(tmp_path / "nope.txt"))
        )
    with pytest.raises(AgentError, match="not a loopback address"):
        Agent(
            AgentConfig(
                coordinator=address, cluster="prod", listen="0.0.0.0:0", replay_dump=str(DUMP)
            )
        )
    assert list(query.ListHosts(pb.ListHostsRequest(), timeout=10).hosts) == []
