"""Reports this host to the coordinator: a full report at start and on change, heartbeats otherwise.

Cycles start one interval apart, start to start (`cadence.py`), however long the probe
takes. The loop never gives up: while the coordinator is away it retries with
capped, jittered backoff, and the agent keeps serving its own gRPC port.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from ..coordinators import FailoverChannel
from ..wire import capture_to_proto, profile_to_proto
from .cadence import Cadence
from .metrics import AgentMetrics
from .state import Backoff, ProfileHolder, Snapshot

log = logging.getLogger("cpucompat.agent")

RPC_TIMEOUT = 10.0
# A heartbeat is one row's update: a coordinator that has not answered one in 5 s is
# wedged (its keepalive pings may still be answered), so the heartbeat moves on to the
# next coordinator. A full report keeps the longer deadline (a 128-CPU report costs a
# busy coordinator seconds of CPU). The deadline is per coordinator tried.
HEARTBEAT_TIMEOUT = 5.0
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# Refusals that retrying at the normal rate cannot cure: someone must fix the cause.
PERMANENT = frozenset(
    {
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
    }
)
SLOW_RETRY = 60.0


def backoff_for(interval: float) -> Backoff:
    """Retries never wait longer than one interval: the coordinator's restart grace is three
    intervals, so an agent is back before its host could be marked stale."""
    return Backoff(base=min(0.2, interval / 4), cap=max(0.1, min(30.0, interval)))


class Reporter:
    """Owns the channel to the coordinator and the probe/report/heartbeat cycle."""

    def __init__(
        self,
        holder: ProfileHolder,
        channel: grpc.Channel,
        host_id: str,
        cluster: str,
        agent_address: str,
        version: str,
        interval: float,
        backoff: Backoff | None = None,
        metrics: AgentMetrics | None = None,
    ) -> None:
        self.holder = holder
        # Several coordinators: the channel fails over and logs each switch itself.
        self.several = isinstance(channel, FailoverChannel) and len(channel.addresses) > 1
        self.metrics = metrics
        self.stub = pb_grpc.RegistryServiceStub(channel)
        self.host_id = host_id
        self.cluster = cluster
        self.agent_address = agent_address
        self.version = version
        self.interval = interval
        self.backoff = backoff or backoff_for(interval)
        self._last_refusal: tuple[str, str] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._need_report = True
        self._lock = threading.Lock()
        self._cadence = Cadence(interval)
        self._thread = threading.Thread(target=self._run, name="reporter", daemon=True)

    def _interval(self) -> Duration:
        d = Duration()
        d.FromNanoseconds(int(self.interval * 1e9))
        return d

    def start(self) -> None:
        self._thread.start()

    def check_now(self) -> None:
        """Call the coordinator at once (the policy watch was refused: admission revoked?)."""
        self._wake.set()

    def probed(self, previous: Snapshot, fresh: Snapshot) -> None:
        """Called after an on-demand probe: report at once when the profile or offer changed."""
        if previous.profile.report_fingerprint != fresh.profile.report_fingerprint:
            with self._lock:
                self._need_report = True
            self._wake.set()

    def _report(self, snap: Snapshot) -> None:
        request = pb.ReportProfileRequest(
            host_id=self.host_id,
            cluster=self.cluster,
            agent_address=self.agent_address,
            raw=capture_to_proto(snap.profile.raw, snap.taken_at, compact=True),
            agent_version=self.version,
            profile=profile_to_proto(snap.profile),
            probe_interval=self._interval(),
            agent_fingerprint=snap.profile.report_fingerprint,
        )
        response = self._counted("report", self.stub.ReportProfile, request, RPC_TIMEOUT)
        log.info(
            "reported %s to the coordinator (fingerprint %s, version %d)",
            self.host_id,
            response.fingerprint[:12],
            response.profile_version,
        )

    def _heartbeat(self, snap: Snapshot) -> bool:
        """Returns True when the coordinator wants a full report."""
        response = self._counted(
            "heartbeat",
            self.stub.Heartbeat,
            pb.HeartbeatRequest(
                host_id=self.host_id,
                cluster=self.cluster,
                fingerprint=snap.profile.report_fingerprint,
                probe_interval=self._interval(),
            ),
            HEARTBEAT_TIMEOUT,
        )
        return bool(response.report_required)

    def _counted(self, kind: str, call: Any, request: Any, timeout: float) -> Any:
        """``call(request)``, its acknowledgement or failure told to the metrics."""
        try:
            response = call(request, timeout=timeout)
        except grpc.RpcError as exc:
            if self.metrics is not None:
                code = exc.code() if hasattr(exc, "code") else None
                self.metrics.call_failed(kind, code.name if code else "unknown")
            raise
        if self.metrics is not None:
            self.metrics.acknowledged(kind)
        return response

    def _cycle(self) -> None:
        snap = self.holder.current
        with self._lock:
            need = self._need_report
        if not need and self._heartbeat(snap):
            need = True
        if need:
            self._report(snap)
            with self._lock:
                self._need_report = False

    def _run(self) -> None:
        first = True
        while not self._stop.is_set():
            self._cadence.begin()  # the next cycle is due one interval after this start
            if not first:
                try:
                    previous, fresh = self.holder.refresh()
                    if previous.profile.report_fingerprint != fresh.profile.report_fingerprint:
                        log.info("processor profile or hypervisor offer changed; reporting")
                        with self._lock:
                            self._need_report = True
                except Exception as exc:  # keep serving the last good profile
                    log.error("probe failed, keeping the previous profile: %s", exc)
            first = False
            try:
                self._cycle()
                self.backoff.reset()
                if self._last_refusal is not None:
                    log.warning("the coordinator accepts this host again")
                    self._last_refusal = None
                delay = self._until_next_cycle()
            except grpc.RpcError as exc:
                delay = self._failed(exc)
                first = True  # retry without re-probing
            except Exception:  # a bug must not end reporting silently: log it and carry on
                log.exception("reporting failed unexpectedly; retrying")
                delay = self.backoff.next_delay()
                with self._lock:
                    self._need_report = True
                first = True
            self._wake.wait(delay)
            self._wake.clear()

    def _until_next_cycle(self) -> float:
        """What is left of the interval since this cycle started (0: overran, start now);
        an overrun is counted, and logged when it begins and when cycles fit again."""
        was_late = self._cadence.overran
        delay = self._cadence.remaining()
        if self._cadence.overran:
            if self.metrics is not None:
                self.metrics.cycle_overruns.inc()
            if not was_late:
                log.warning(
                    "probing and reporting took longer than the interval (%.1fs); the next "
                    "cycle starts at once, so heartbeats are now as far apart as one cycle "
                    "takes",
                    self.interval,
                )
        elif was_late:
            log.warning("probing and reporting fit in the interval (%.1fs) again", self.interval)
        return delay

    def _failed(self, exc: grpc.RpcError) -> float:
        """Log a failed call and choose when to retry: soon when transient, slowly when refused."""
        code = exc.code() if hasattr(exc, "code") else None
        detail = exc.details() if hasattr(exc, "details") else str(exc)
        name = code.name if code else "error"
        if code not in TRANSIENT:
            # A refusal or an error: report in full once it is cured. After a transient
            # failure a failed report is still due, and a heartbeat's answer says whether
            # the coordinator (perhaps another one now) wants a full report.
            with self._lock:
                self._need_report = True
        if code == grpc.StatusCode.PERMISSION_DENIED:
            # An administrator's admit cures it at any moment: retry at the bounded backoff so
            # the host is back within one interval of being admitted, and say so once.
            delay = self.backoff.next_delay()
            if self._last_refusal != (name, detail):
                log.error(
                    "coordinator refused this host (%s: %s); retrying every %.0fs or less "
                    "until it is admitted",
                    name,
                    detail,
                    self.backoff.cap,
                )
                self._last_refusal = (name, detail)
            return delay
        if code in PERMANENT:
            delay = max(self.interval, SLOW_RETRY)
            if self._last_refusal != (name, detail):  # once per change, not every retry
                log.error(
                    "coordinator refused this host (%s: %s); retrying every %.0fs until fixed",
                    name,
                    detail,
                    delay,
                )
                self._last_refusal = (name, detail)
            return delay
        delay = self.backoff.next_delay()
        if code in TRANSIENT and self.several:  # the channel said which failed, once
            log.info("coordinators unavailable (%s: %s); retrying in %.1fs", name, detail, delay)
        elif code in TRANSIENT:
            log.warning("coordinator unavailable (%s: %s); retrying in %.1fs", name, detail, delay)
        else:
            log.error("coordinator error (%s: %s); retrying in %.1fs", name, detail, delay)
        return delay

    def stop(self, leave: bool = True) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        if leave:
            try:
                self.stub.Leave(
                    pb.LeaveRequest(
                        host_id=self.host_id, cluster=self.cluster, reason="agent stopping"
                    ),
                    timeout=3,
                )
            except grpc.RpcError as exc:
                log.warning("could not tell the coordinator we are leaving: %s", exc.code().name)
