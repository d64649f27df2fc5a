"""An agent that vanishes without closing its connection stops holding a coordinator thread.

A stopped process (SIGSTOP; a host that froze or fell off the network behaves alike)
keeps its TCP connection: the kernel still acknowledges what the coordinator sends, and
a policy watch stream is silent between changes, so without pings of its own the
coordinator would hold that stream, and the server thread serving it, until TCP gave
up. The coordinator's keepalive pings (agent/keepalive.py) go unanswered and it closes
the connection: the open-watchers gauge an operator watches drops and the stream is
counted as ended by its client. A live watcher that sends no pings of its own (a plain
gRPC channel in this test) answers the coordinator's pings and keeps its stream. Once
resumed, the agent subscribes again.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import grpc

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from tests.support.daemons import Daemon, free_port, start_agent, start_coordinator
from tests.support.paths import DEV_DUMP
from tests.support.scrape import Samples, scrape, value, wait_for

WATCH = {"service": "cpucompat.v1.PolicyService", "method": "WatchPolicy"}


def cancelled(samples: Samples) -> float:
    """Watch streams that ended because their client went away (none yet: not exported)."""
    key = ("cpucompat_rpc_handled_total", tuple(sorted({**WATCH, "code": "CANCELLED"}.items())))
    return samples.get(key, 0.0)


def test_a_stopped_agents_watch_is_dropped_by_the_coordinator(tmp_path: Path) -> None:
    port = free_port()
    coord = start_coordinator(tmp_path, "--allow-replayed", "--metrics-listen", str(port))
    url = f"http://127.0.0.1:{port}/metrics"
    agent: Daemon | None = None
    stopped = False
    channel = grpc.insecure_channel(coord.address)  # no keepalive of its own
    try:
        agent = start_agent(
            tmp_path, coord.address, "frozen", "--replay-dump", str(DEV_DUMP),
            "--interval", "300", "--state-file", str(tmp_path / "policy.json"),
        )  # fmt: skip
        wait_for(
            lambda: scrape(url),
            lambda s: value(s, "cpucompat_policy_watchers") == 1,
            "the agent's policy watch open",
        )
        live = pb_grpc.PolicyServiceStub(channel).WatchPolicy(pb.WatchPolicyRequest(cluster="prod"))
        assert next(live).policy.cluster == "prod"
        before = wait_for(
            lambda: scrape(url),
            lambda s: value(s, "cpucompat_policy_watchers") == 2,
            "the test's own watch open beside it",
        )
        assert value(before, "cpucompat_policy_watchers_limit") == 1024 - 32
        assert not cancelled(before)  # no watch stream ended yet

        os.kill(agent.proc.pid, signal.SIGSTOP)
        stopped = True
        frozen_at = time.monotonic()
        after = wait_for(
            lambda: scrape(url),
            lambda s: value(s, "cpucompat_policy_watchers") == 1,
            "the coordinator to drop the stopped agent's watch",
        )
        print(f"watch of a stopped agent dropped after {time.monotonic() - frozen_at:.1f} s")
        assert cancelled(after) == 1  # counted as ended by its client
        assert live.is_active()  # pinged too (silent for more than 10 s), and it answered
        assert coord.proc.poll() is None

        os.kill(agent.proc.pid, signal.SIGCONT)
        stopped = False
        wait_for(
            lambda: scrape(url),
            lambda s: value(s, "cpucompat_policy_watchers") == 2,
            "the resumed agent's watch open again",
        )
        assert cancelled(scrape(url)) == 1
        assert live.is_active()
        live.cancel()
    finally:
        if agent is not None:
            if stopped:
                os.kill(agent.proc.pid, signal.SIGCONT)
            agent.stop()
        channel.close()
        coord.stop()
