"""`FailoverChannel`: the order calls take through several real coordinators.

Sticky: a call goes to the coordinator that answered last; a coordinator that is gone
hands the same call on to the next in the listed order; an answer that is a refusal
stays where it is (another coordinator on the same database would say the same); and
with every coordinator gone the caller gets UNAVAILABLE.
"""

from __future__ import annotations

import itertools
import logging
import socket
import time
from pathlib import Path

import grpc
import pytest

from cpucompat.agent.coordinators import FailoverChannel
from cpucompat.agent.daemon.agent import make_channel
from cpucompat.agent.keepalive import KEEPALIVE_TIME_MS
from cpucompat.agent.tls import TlsFiles
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.inprocess import Running, dev_raw


def unused_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def running(folder: Path, **config: object) -> Running:
    folder.mkdir()
    return Running(folder, **config)


def test_calls_stay_on_the_one_that_answers_and_move_on_in_order(tmp_path: Path) -> None:
    one, two = running(tmp_path / "one"), running(tmp_path / "two")
    dead = unused_address()
    made: list[str] = []

    def make(address: str) -> grpc.Channel:
        made.append(address)
        return grpc.insecure_channel(address)

    channel = FailoverChannel([dead, one.address, two.address], make)
    query = pb_grpc.QueryServiceStub(channel)
    try:
        query.ListHosts(pb.ListHostsRequest(), timeout=10)
        assert channel.current == channel.last_address == one.address
        query.ListHosts(pb.ListHostsRequest(), timeout=10)  # sticky: the dead one is not tried
        assert channel.last_address == one.address
        assert made == [dead, one.address]  # channels are made when first needed

        one.close()
        query.ListHosts(pb.ListHostsRequest(), timeout=10)  # the same call moves on
        assert channel.current == channel.last_address == two.address

        with pytest.raises(grpc.RpcError) as refused:  # an answer: no failover
            query.GetHost(pb.GetHostRequest(host_id="nobody"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        assert channel.current == two.address and not channel.all_down

        two.close()
        with pytest.raises(grpc.RpcError) as down:
            query.ListHosts(pb.ListHostsRequest(), timeout=10)
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        assert channel.all_down
    finally:
        channel.close()
        one.close()
        two.close()


def test_one_address_behaves_as_a_plain_channel(tmp_path: Path) -> None:
    dead = unused_address()
    channel = FailoverChannel([dead], grpc.insecure_channel)
    try:
        with pytest.raises(grpc.RpcError) as down:
            pb_grpc.QueryServiceStub(channel).ListHosts(pb.ListHostsRequest(), timeout=10)
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        assert channel.current == dead and not channel.all_down  # nowhere else to go
    finally:
        channel.close()


def agent_channel(address: str) -> grpc.Channel:
    """A channel as the agent makes it (keepalive pings, a short connect timeout)."""
    return make_channel(address, TlsFiles(), interval=300.0)


def with_host(running: Running, host: str = "h1", cluster: str = "c") -> Running:
    running.registry.ReportProfile(
        pb.ReportProfileRequest(host_id=host, cluster=cluster, raw=dev_raw()), timeout=10
    )
    return running


LOGS = itertools.count()


class Switches(logging.Handler):
    """The channel's switch lines, as the agent's log would show them."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def switch_log() -> tuple[logging.Logger, Switches]:
    log = logging.getLogger(f"test-failover-{next(LOGS)}")
    log.propagate = False
    handler = Switches()
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return log, handler


def test_a_coordinator_that_accepts_but_never_answers_is_passed_over(tmp_path: Path) -> None:
    # A network black hole: the kernel completes each TCP handshake, nobody ever speaks.
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)
    silent = f"127.0.0.1:{hole.getsockname()[1]}"
    live = with_host(running(tmp_path / "live"))
    log, switches = switch_log()
    channel = FailoverChannel([silent, live.address], agent_channel, log=log)
    try:
        # The calls' deadlines are long: the silent one is given up by the channel's
        # connect timeout (UNAVAILABLE), not by waiting the deadline out.
        hosts = pb_grpc.QueryServiceStub(channel).ListHosts(pb.ListHostsRequest(), timeout=60)
        assert [h.host_id for h in hosts.hosts] == ["h1"]
        assert channel.current == live.address
        assert switches.lines and f"coordinator {silent} failed (UNAVAILABLE" in switches.lines[0]

        channel.answered(0)  # back to the silent one first: the watch must move on too
        stream = pb_grpc.PolicyServiceStub(channel).WatchPolicy(
            pb.WatchPolicyRequest(cluster="c"), timeout=60
        )
        first = next(stream)
        assert first.policy.action == pb.OFFLINE_ACTION_SAVE
        assert stream.address == channel.current == live.address
        stream.cancel()
    finally:
        channel.close()
        live.close()
        hole.close()


def test_a_watch_moves_on_from_a_coordinator_without_room_for_it(tmp_path: Path) -> None:
    full = with_host(running(tmp_path / "full", workers=40), host="h2")  # room for 8 watches
    spare = with_host(running(tmp_path / "spare"))
    policy = pb_grpc.PolicyServiceStub(full.channel)
    held = [policy.WatchPolicy(pb.WatchPolicyRequest(cluster="c")) for _ in range(8)]
    log, switches = switch_log()
    channel = FailoverChannel([full.address, spare.address], agent_channel, log=log)
    try:
        for stream in held:
            next(stream)
        with pytest.raises(grpc.RpcError) as refused:  # as a single coordinator answers it
            next(policy.WatchPolicy(pb.WatchPolicyRequest(cluster="c")))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

        watch = pb_grpc.PolicyServiceStub(channel).WatchPolicy(pb.WatchPolicyRequest(cluster="c"))
        first = next(watch)
        assert watch.address == channel.current == spare.address
        assert first.policy.cluster == "c"
        assert any("RESOURCE_EXHAUSTED" in line for line in switches.lines), switches.lines
        watch.cancel()
    finally:
        for stream in held:
            stream.cancel()
        channel.close()
        full.close()
        spare.close()


def test_a_unary_resource_exhausted_is_an_answer(tmp_path: Path) -> None:
    # A report larger than the first coordinator takes: refused there, not sent on.
    small = running(tmp_path / "small", max_message_bytes=1024)
    other = running(tmp_path / "other")
    channel = FailoverChannel([small.address, other.address], agent_channel)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            pb_grpc.RegistryServiceStub(channel).ReportProfile(
                pb.ReportProfileRequest(host_id="h1", cluster="c", raw=dev_raw()), timeout=10
            )
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert channel.current == small.address and not channel.all_down
        assert other.query.ListHosts(pb.ListHostsRequest(), timeout=10).hosts == []
    finally:
        channel.close()
        small.close()
        other.close()


def test_an_idle_watch_with_keepalive_pings_is_not_sent_away(tmp_path: Path) -> None:
    """The coordinator accepts the agents' pings: without its keepalive options it answers
    the third ping on a silent stream with GOAWAY too_many_pings (about 15 s in)."""
    live = with_host(running(tmp_path / "live"))
    channel = agent_channel(live.address)
    try:
        policy = pb_grpc.PolicyServiceStub(channel)
        stream = policy.WatchPolicy(pb.WatchPolicyRequest(cluster="c"))
        first = next(stream)
        # Four keepalive periods with nothing to say on the stream.
        time.sleep(4 * KEEPALIVE_TIME_MS / 1000 + 1)
        live.registry.ReportProfile(  # a second host joins: a new policy version
            pb.ReportProfileRequest(host_id="h2", cluster="c", raw=dev_raw()), timeout=10
        )
        assert next(stream).policy.version > first.policy.version
        stream.cancel()
    finally:
        channel.close()
        live.close()
