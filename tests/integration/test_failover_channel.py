"""`FailoverChannel`: the order calls take through several real coordinators.

Sticky: a call goes to the coordinator that answered last; a coordinator that is gone
hands the same call on to the next in the listed order; an answer that is a refusal
stays where it is (another coordinator on the same database would say the same); and
with every coordinator gone the caller gets UNAVAILABLE.
"""

from __future__ import annotations

import socket
from pathlib import Path

import grpc
import pytest

from cpucompat.agent.coordinators import FailoverChannel
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.inprocess import Running


def unused_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def running(folder: Path) -> Running:
    folder.mkdir()
    return Running(folder)


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
