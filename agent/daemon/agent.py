"""The agent daemon as an object: `Agent(AgentConfig).run()`, beside the coordinator's.

`cpucompat agent` only turns flags into an `AgentConfig`; a test or an embedding
program builds the same `Agent` in-process. Construction does everything that can
fail on bad input (names, TLS files, the first probe, binding the port) so a
failure leaves nothing running; `run()` starts the threads and blocks until
`request_stop()` (the CLI calls it from SIGTERM/SIGINT).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import grpc

from ..addresses import listen_error
from ..coordinators import FailoverChannel, parse_coordinators
from ..keepalive import CHANNEL_KEEPALIVE
from ..metrics_http import MetricsEndpoint, check_metrics_address
from ..names import valid_name
from ..raw import RawCapture, RawDataError
from ..sdnotify import serve_until_stopped
from ..tls import (
    ReloadableServerTls,
    TlsFiles,
    channel_credentials,
    check_listen_address,
    serves_tls,
)
from .metrics import AgentMetrics
from .policy_watch import PolicyWatcher
from .reporter import Reporter
from .service import AgentServicer, build_agent_server
from .state import ProfileHolder, default_host_id

log = logging.getLogger("cpucompat.agent")

DEFAULT_LISTEN = "127.0.0.1:7444"
DEFAULT_INTERVAL = 300.0  # as `cpucompat agent --interval`


class AgentError(Exception):
    """The agent cannot start; the message says what to change."""


@dataclass(frozen=True)
class AgentConfig:
    # The coordinators' dial addresses in failover order: "A,B" or ("A", "B")
    coordinator: str | tuple[str, ...]
    cluster: str
    listen: str = DEFAULT_LISTEN  # the agent's own gRPC service; port 0 picks one
    host_id: str | None = None  # None: /etc/machine-id, else the hostname
    interval: float = DEFAULT_INTERVAL  # re-probe and heartbeat, seconds
    replay_dump: str | None = None  # report a recorded processor (re-read at every probe)
    source: str = "instruction"  # live source: "instruction" or "devcpu"
    tls: TlsFiles = field(default_factory=TlsFiles)
    insecure: bool = False  # allow a non-loopback listen address without TLS
    state_file: str | None = None  # the cluster's policy as JSON; None: not written
    on_policy_change: str | None = None  # /bin/sh command run when the action changes
    metrics_listen: str | None = None  # HOST:PORT of /metrics; None: not served


def capture_fn(config: AgentConfig) -> Any:
    """What one probe reads: the replayed dump, or this host with the kernel's view added."""
    if config.replay_dump:
        from ..dumps import load_valid_dump

        path = config.replay_dump
        return lambda: load_valid_dump(path)
    from dataclasses import replace

    from ..live import probe
    from ..osinfo import os_details, start_gathering

    source = "devcpu" if config.source == "devcpu" else "cpuid-instruction"
    start_gathering()

    def capture() -> RawCapture:
        raw = probe(source)
        return replace(raw, extra={**raw.extra, **os_details()})

    return capture


def make_channel(address: str, tls: TlsFiles, interval: float) -> grpc.Channel:
    """One channel to one coordinator, made again by `FailoverChannel.reconnect()`.

    The TLS files are read at each call; the server's certificate must name ``address``.
    Keepalive pings (agent/keepalive.py) end a connection to a coordinator that hangs.
    """
    # gRPC's own reconnect backoff grows to 120 s; after a coordinator outage the channel
    # would fail calls fast until its next attempt, outlasting the coordinator's restart
    # grace of three intervals. Bound it by the interval like the reporter's retries.
    # The minimum reconnect backoff is also gRPC's connect timeout: a coordinator that
    # accepts TCP but never completes the HTTP/2 handshake is given up after it (<= 1 s).
    reconnect_ms = int(min(120.0, interval) * 1000)
    options = [
        *CHANNEL_KEEPALIVE,
        ("grpc.initial_reconnect_backoff_ms", max(100, min(1000, reconnect_ms // 4))),
        ("grpc.min_reconnect_backoff_ms", max(100, min(1000, reconnect_ms // 4))),
        ("grpc.max_reconnect_backoff_ms", max(100, reconnect_ms)),
    ]
    if tls.enabled:
        return grpc.secure_channel(address, channel_credentials(tls), options=options)
    return grpc.insecure_channel(address, options=options)


def coordinator_channel(config: AgentConfig) -> FailoverChannel:
    """The agent's one channel to its coordinators, shared by the reporter and the policy
    watch so that both stay on the same coordinator and a switch is logged once."""
    addresses = parse_coordinators(config.coordinator)
    if config.tls.enabled:
        channel_credentials(config.tls)  # unreadable TLS files: refused now, not at a call
    return FailoverChannel(
        addresses, lambda address: make_channel(address, config.tls, config.interval), log=log
    )


class Agent:
    """The running pieces: the profile holder, the agent's server, reporter and policy watch."""

    def __init__(self, config: AgentConfig) -> None:
        from cpucompat import agent as agent_pkg

        from ..live import ProbeError

        self.config = config
        self.host_id = config.host_id or default_host_id()
        try:  # names first: a refused name must not start a probe or a server
            valid_name(self.host_id, "host id")
            valid_name(config.cluster, "cluster name")
            check_listen_address(config.listen, config.tls, config.insecure)
            if config.metrics_listen:
                check_metrics_address(config.metrics_listen, config.tls, config.insecure)
            self.metrics = AgentMetrics(config.interval)
            self.holder = ProfileHolder(self.metrics.timed_probe(capture_fn(config)))
            self.channel = coordinator_channel(config)
        except (ValueError, ProbeError, RawDataError) as exc:
            raise AgentError(str(exc)) from None
        self.version = getattr(agent_pkg, "__version__", "0.1.0")
        self.servicer = AgentServicer(self.holder, self.host_id, config.cluster, self.version)
        try:
            self.server_tls = ReloadableServerTls(config.tls) if serves_tls(config.tls) else None
            self.server, port, self.health = build_agent_server(
                self.servicer, config.listen, config.tls, self.server_tls
            )
        except (ValueError, RuntimeError, OSError) as exc:
            self.channel.close()
            raise AgentError(listen_error(config.listen, exc)) from None
        self.address = f"{config.listen.rsplit(':', 1)[0]}:{port}"
        self.reporter = Reporter(
            self.holder,
            self.channel,
            self.host_id,
            config.cluster,
            self.address,
            self.version,
            config.interval,
            metrics=self.metrics,
        )
        self.servicer.on_probe = self.reporter.probed
        self.watcher = PolicyWatcher(
            self.channel,
            config.cluster,
            config.state_file,
            config.on_policy_change,
            host_id=self.host_id,
            metrics=self.metrics,
        )
        self.metrics_endpoint: MetricsEndpoint | None = None
        if config.metrics_listen:  # bound now: a taken port fails before anything runs
            try:
                self.metrics_endpoint = MetricsEndpoint(
                    config.metrics_listen, self.metrics.registry, config.tls
                )
            except ValueError as exc:
                self.server.stop(None)
                self.channel.close()
                raise AgentError(str(exc)) from None
        self.watcher.on_refused = self.reporter.check_now  # revoked: the reporter asks now
        self._stopping = threading.Event()
        self._reload = threading.Event()

    def ready_line(self) -> str:
        """What the daemon prints once it serves; launchers wait for "listening on ADDR"."""
        profile = self.holder.current.profile
        return (
            f"cpucompat agent listening on {self.address} (host {self.host_id}, cluster "
            f"{self.config.cluster}, {profile.source}, fingerprint {profile.fingerprint[:12]})"
        )

    def start(self) -> None:
        if self.metrics_endpoint is not None:  # before READY: a ready agent can be scraped
            self.metrics_endpoint.start()
        self.server.start()
        self.reporter.start()
        self.watcher.start()

    def request_stop(self) -> None:
        """Ask `run()` to stop; safe from a signal handler or another thread."""
        self._stopping.set()

    def request_reload(self) -> None:
        """Ask `run()` to re-read the TLS files (SIGHUP); safe from a signal handler."""
        self._reload.set()

    def reload_tls(self) -> None:
        """The agent's own port serves new connections with the re-read certificates."""
        if self.metrics_endpoint is not None and self.metrics_endpoint.tls is not None:
            log.warning("%s", self.metrics_endpoint.reload())
        if self.server_tls is None:
            log.warning("reload: this agent serves no TLS certificate to re-read")
            return
        log.warning("%s", self.server_tls.reload())

    def stop(self) -> None:
        """Stop serving, tell the coordinator this host leaves, close the channel."""
        self.health.enter_graceful_shutdown()
        self.watcher.stop()
        self.reporter.stop(leave=True)
        self.server.stop(grace=2).wait(5)
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.stop()
        self.channel.close()

    def run(self) -> None:
        """Serve and report until `request_stop()`, then stop cleanly."""
        self.start()
        if self.metrics_endpoint is not None:
            print(f"cpucompat agent metrics on {self.metrics_endpoint.url}", flush=True)
        print(self.ready_line(), flush=True)
        try:
            serve_until_stopped(self.address, self._stopping, self._reload, self.reload_tls)
        finally:
            self.stop()
        print("cpucompat agent stopped", flush=True)
