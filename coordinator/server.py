"""Build the coordinator's gRPC server: every service, health and reflection, on one port."""

from __future__ import annotations

import logging
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from cpucompat.agent.keepalive import SERVER_KEEPALIVE
from cpucompat.agent.metrics_http import MetricsEndpoint, check_metrics_address
from cpucompat.agent.sdnotify import serve_until_stopped
from cpucompat.agent.tls import ReloadableServerTls, TlsFiles, check_listen_address
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .admissions import ADMISSIONS_TOPIC, Admissions
from .baseline_pins import BASELINE_PIN_TOPIC, BaselinePins
from .compatibility import CompatibilityService
from .domain.hosts import HostStatus
from .faultlog import FaultLog
from .limits import Limits
from .metrics import CoordinatorMetrics, TimedStorage
from .outage import OutageWatch, WatchedStorage
from .policy import POLICY_TOPIC, PolicyEngine
from .registry import HOST_TOPIC, Registry
from .security import Authorizer
from .service.access import SERVICES
from .service.admission_servicer import AdmissionServicer
from .service.baseline_servicer import BaselineServicer
from .service.decision_servicer import DecisionServicer
from .service.interceptors import AccessInterceptor, ErrorInterceptor, MetricsInterceptor
from .service.policy_servicer import PolicyServicer
from .service.query_servicer import QueryServicer
from .service.registry_servicer import RegistryServicer
from .service.vm_servicer import VmServicer
from .storage import StoreError, describe, open_storage
from .vms import VM_TOPIC, VmRegistry
from .whatif import WhatIfService

log = logging.getLogger("cpucompat.coordinator")

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
DEFAULT_LISTEN = "127.0.0.1:7443"
RESERVED_WORKERS = 32


@dataclass
class CoordinatorConfig:
    db_path: Path | str  # an SQLite file, or a postgresql:// URL
    listen: str = DEFAULT_LISTEN
    tls: TlsFiles = field(default_factory=TlsFiles)
    admins: tuple[str, ...] = ()
    allow_replayed: bool = False
    insecure: bool = False
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    workers: int = 1024  # each WatchPolicy subscriber (one per agent) holds one while it waits
    durable: bool = True  # False only for bulk loading that can be redone
    limits: Limits = field(default_factory=Limits)
    create_db_folder: bool = False  # only for the default location, never for a given --db
    # Reports only into clusters the host was admitted to; None: on exactly under mutual TLS.
    require_admission: bool | None = None
    metrics_listen: str | None = None  # HOST:PORT of /metrics; None: not served

    def check_metrics(self) -> None:
        """Refuse a plain-HTTP metrics address beyond loopback (InputError), before binding."""
        if self.metrics_listen:
            check_metrics_address(self.metrics_listen, self.tls, self.insecure)

    @property
    def admission_required(self) -> bool:
        if self.require_admission is None:
            return bool(self.tls.ca)
        return self.require_admission


SWEEP_LEASE = "stale-sweep"
ONLINE, STALE = HostStatus.ONLINE, HostStatus.STALE


class Coordinator:
    """The running pieces: store, registry, the staleness sweeper."""

    def __init__(self, config: CoordinatorConfig) -> None:
        self.config = config
        config.check_metrics()
        self.metrics = CoordinatorMetrics()
        # Every transaction tells the watch whether the database answered (outage grace).
        self.outages = OutageWatch()
        self.watched = WatchedStorage(
            open_storage(
                config.db_path, durable=config.durable, create_folder=config.create_db_folder
            ),
            self.outages,
        )
        self.store = TimedStorage(self.watched, self.metrics)
        try:
            self.registry = Registry(
                self.store,
                allow_replayed=config.allow_replayed,
                limits=config.limits,
                outages=self.outages,
            )
            self.admissions = Admissions(self.store)
            self.auth = Authorizer(mutual_tls=bool(config.tls.ca), admins=config.admins)
            self.policies = PolicyEngine(self.store, self.registry)
            self.decisions = CompatibilityService(self.registry)
            self.baseline_pins = BaselinePins(self.store, self.registry)
            self.vms = VmRegistry(
                self.store, self.registry, self.decisions, self.policies, pins=self.baseline_pins
            )
            self.policies.on_publish.append(self.metrics.policy_published)
            self.metrics.watch(self)
        except (StoreError, ValueError, KeyError) as exc:
            # A damaged row or blob found while loading: one line naming the database.
            self.store.close()
            if isinstance(exc, StoreError):
                raise StoreError(str(exc)) from None
            raise StoreError(
                f"database {describe(config.db_path)} holds data this coordinator cannot read ({exc}); "
                "restore it from a backup"
            ) from None
        self.faults = FaultLog(log)
        self._stopping = threading.Event()
        self._reload = threading.Event()
        self.server_tls: ReloadableServerTls | None = None
        self.metrics_endpoint: MetricsEndpoint | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="stale-sweeper", daemon=True)

    def start(self) -> None:
        # Other coordinators on the same (PostgreSQL) database: mirror what they commit.
        self.store.subscribe(self._heard)
        self._sweeper.start()

    def _heard(self, topic: str, key: str) -> None:
        """Another coordinator committed a change to ``topic`` ``key``; ``*``: maybe anything."""
        every = topic == "*"
        if every or topic == HOST_TOPIC:
            self.registry.refresh(None if every else key)
        if every or topic == POLICY_TOPIC:
            # The VM actions first: the policy's watchers send them as soon as they wake.
            self.vms.actions.refresh(None if every else key)
            self.policies.refresh(None if every else key)
        if every or topic == VM_TOPIC:
            self.vms.refresh(None if every else key)
        if every or topic == ADMISSIONS_TOPIC:
            self.admissions.refresh(None if every else key)
        if every or topic == BASELINE_PIN_TOPIC:
            self.baseline_pins.refresh(None if every else key)

    def _sweep_loop(self) -> None:
        """Mark silent hosts stale; an error is logged and retried, never ends the loop.

        Several coordinators on one database sweep one at a time: the holder of the
        ``stale-sweep`` lease; the others ask again each round and take over when it dies.
        Each asks the database every round, so each notices an outage of the database
        itself (its lease is lost then too); after a noticed outage the database is probed
        before anyone is judged, so the grace (`outage.py`) starts before the sweep does.
        """
        while not self._stop.is_set():
            delay = 1.0
            try:
                if self.store.holds_lease(SWEEP_LEASE):
                    if self.outages.down:
                        self.watched.probe()
                    online = {r.host_id for r in self.registry.records() if r.status == ONLINE}
                    self.registry.sweep()
                    stale = {r.host_id for r in self.registry.records() if r.status == STALE}
                    self.metrics.swept(len(online & stale))
                    delay = self.registry.next_sweep_in(default=1.0)
            except Exception as exc:  # a locked or full database must not end stale detection
                self.metrics.sweep_failures.inc()
                self.faults.log("stale-host sweep failed, retrying", exc)
            self._wake.wait(delay)
            self._wake.clear()

    def request_stop(self) -> None:
        """Ask `run()` to stop; safe from a signal handler or another thread."""
        self._stopping.set()

    def request_reload(self) -> None:
        """Ask `run()` to re-read the TLS files (SIGHUP); safe from a signal handler."""
        self._reload.set()

    def reload_tls(self) -> None:
        """New connections get the re-read certificates; a bad file keeps the old ones."""
        if self.metrics_endpoint is not None and self.metrics_endpoint.tls is not None:
            log.warning("%s", self.metrics_endpoint.reload())
        if self.server_tls is None:
            log.warning("reload: no TLS certificate to re-read (plaintext)")
            return
        log.warning("%s", self.server_tls.reload())

    def run(self) -> None:
        """Serve until `request_stop()`, then stop cleanly and close the database.

        Binding fails with ValueError/OSError/RuntimeError (database closed by then);
        prints "cpucompat coordinator listening on ADDR" once serving, as launchers expect.
        """
        try:
            server, port = build_server(self)
        except (ValueError, OSError, RuntimeError):
            self.close()
            raise
        if self.config.metrics_listen:  # before READY: a ready coordinator can be scraped
            try:
                self.metrics_endpoint = MetricsEndpoint(
                    self.config.metrics_listen, self.metrics.registry, self.config.tls
                )
            except ValueError:
                server.stop(None)
                self.close()
                raise
            self.metrics_endpoint.start()
            print(f"cpucompat coordinator metrics on {self.metrics_endpoint.url}", flush=True)
        server.start()
        self.start()
        host = self.config.listen.rsplit(":", 1)[0]
        print(
            f"cpucompat coordinator listening on {host}:{port} (db {describe(self.config.db_path)})",
            flush=True,
        )
        try:
            serve_until_stopped(f"{host}:{port}", self._stopping, self._reload, self.reload_tls)
        finally:
            self.health.enter_graceful_shutdown()  # type: ignore[attr-defined]
            server.stop(grace=2).wait(5)
            if self.metrics_endpoint is not None:
                self.metrics_endpoint.stop()
            self.close()
        print("cpucompat coordinator stopped", flush=True)

    def close(self) -> None:
        self.policies.close()
        self._stop.set()
        self._wake.set()
        if self._sweeper.is_alive():
            self._sweeper.join(timeout=5)
        self.store.close()


def build_server(coordinator: Coordinator) -> tuple[grpc.Server, int]:
    """A started-ready server with every service registered; returns (server, bound port)."""
    config = coordinator.config
    check_listen_address(config.listen, config.tls, config.insecure)
    options = [
        ("grpc.max_receive_message_length", config.max_message_bytes),
        ("grpc.max_send_message_length", max(config.max_message_bytes, 64 * 1024 * 1024)),
        ("grpc.so_reuseport", 0),
        *SERVER_KEEPALIVE,  # the agents' and the CLI's keepalive pings, not GOAWAY
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers),
        options=options,
        # outermost first: errors map whatever the access check or a servicer raises
        # metrics outermost: they see the status the other two answered
        interceptors=[
            MetricsInterceptor(coordinator.metrics),
            ErrorInterceptor(),
            AccessInterceptor(coordinator.auth),
        ],
    )
    pb_grpc.add_RegistryServiceServicer_to_server(
        RegistryServicer(
            coordinator.registry,
            coordinator.admissions if config.admission_required else None,
        ),
        server,
    )
    pb_grpc.add_AdmissionServiceServicer_to_server(
        AdmissionServicer(coordinator.admissions), server
    )
    pb_grpc.add_QueryServiceServicer_to_server(
        QueryServicer(coordinator.registry, coordinator.decisions), server
    )
    pb_grpc.add_DecisionServiceServicer_to_server(
        DecisionServicer(
            coordinator.decisions,
            coordinator.registry,
            WhatIfService(
                coordinator.registry,
                coordinator.decisions,
                coordinator.policies,
                coordinator.vms,
                coordinator.baseline_pins,
            ),
        ),
        server,
    )
    # Watch streams may take all workers but RESERVED_WORKERS, kept for reports and queries.
    max_watchers = max(1, config.workers - RESERVED_WORKERS)
    coordinator.metrics.policy_watchers_limit.set(max_watchers)
    pb_grpc.add_PolicyServiceServicer_to_server(
        PolicyServicer(
            coordinator.policies,
            coordinator.auth,
            max_watchers,
            coordinator.admissions if config.admission_required else None,
            coordinator.vms.actions,
            on_watchers=coordinator.metrics.policy_watchers.set,
        ),
        server,
    )
    pb_grpc.add_BaselineServiceServicer_to_server(
        BaselineServicer(coordinator.baseline_pins), server
    )
    pb_grpc.add_VmServiceServicer_to_server(
        VmServicer(coordinator.vms, coordinator.registry), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ["", *SERVICES]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        [*SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    if config.tls.enabled:
        coordinator.server_tls = ReloadableServerTls(config.tls)
        port = server.add_secure_port(config.listen, coordinator.server_tls.credentials())
    else:
        port = server.add_insecure_port(config.listen)
    if port == 0:
        raise OSError(f"cannot listen on {config.listen}: address in use or not available")
    coordinator.health = health_servicer  # type: ignore[attr-defined]
    return server, port
