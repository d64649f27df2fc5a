"""gRPC keepalive: how the agent and the CLI notice a coordinator that hangs, and what the
coordinator must accept for that.

A coordinator that is stopped (SIGSTOP), wedged or behind a network black hole keeps its
TCP connections open: nothing is refused or reset, so a call on such a connection waits
for its whole deadline and a WatchPolicy stream, which is silent between policy changes,
waits forever. An HTTP/2 ping that is not acknowledged in time ends the connection; every
call on it fails with UNAVAILABLE and `FailoverChannel` moves on to the next coordinator.

Measured with grpcio 1.85 against a stopped coordinator: the connection ends
``grpc.http2.ping_timeout_ms`` after an unanswered ping (its default is 60 s, and
``grpc.keepalive_timeout_ms`` alone did not shorten it), so both are set. The server
side must accept pings this often: its default (one ping per 5 minutes without data,
two strikes) answers the clients' keepalive with GOAWAY ``too_many_pings`` after about
15 s, which would end every idle watch stream.
"""

from __future__ import annotations

# Ping an idle connection every 5 s; give the peer 3 s to acknowledge. A hung coordinator
# is given up 3 s after a call or stream was last answered on a busy connection, at most
# 8 s after the last sign of life on an idle one.
KEEPALIVE_TIME_MS = 5_000
KEEPALIVE_TIMEOUT_MS = 3_000

# What a channel to a coordinator sets (the agent's and the CLI's).
CHANNEL_KEEPALIVE: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    ("grpc.http2.ping_timeout_ms", KEEPALIVE_TIMEOUT_MS),
    # An agent's channel is mostly idle: a silent watch stream, a heartbeat per interval.
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)

# The coordinator's own pings. An agent that vanished without closing its connection (a
# frozen or stopped process, a host cut off the network) leaves its WatchPolicy stream
# open and silent: its kernel, or nobody, acknowledges at the TCP level, so only an
# unanswered HTTP/2 ping frees the server thread that stream holds. Twice the agents'
# period, as their pings keep a live connection busy anyway; a vanished watcher is let
# go about 15 s (ping time plus timeout) after it was last heard.
SERVER_KEEPALIVE_TIME_MS = 10_000
SERVER_KEEPALIVE_TIMEOUT_MS = 5_000

# What the coordinator's server sets: its own pings, and the clients' pings welcome.
SERVER_KEEPALIVE: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", SERVER_KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", SERVER_KEEPALIVE_TIMEOUT_MS),
    ("grpc.http2.ping_timeout_ms", SERVER_KEEPALIVE_TIMEOUT_MS),
    # A watch stream sends no data between policy changes: keep pinging it regardless.
    ("grpc.http2.max_pings_without_data", 0),
    # Pings without calls (both ways: an idle CLI or agent connection is pinged and may
    # ping), and as often as every half client keepalive period (timer jitter must not
    # count as a strike).
    ("grpc.keepalive_permit_without_calls", 1),
    # GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS; its string has no "recv" in
    # it, and gRPC ignores a name it does not know.
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
)
