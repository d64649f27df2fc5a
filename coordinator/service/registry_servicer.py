"""RegistryService: agents report, heartbeat and leave. Thin: the registry decides."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import replace

import grpc

from cpucompat.agent.raw import RawCapture, RawDataError, RawOffer
from cpucompat.agent.wire import offer_from_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc
from cpucompat.v1 import profile_pb2 as pb_profile

from .. import convert
from ..admissions import Admissions, NotAdmittedError
from ..cache import Memo
from ..limits import MAX_FINGERPRINT, MAX_REASON, check_text
from ..registry import InvalidReportError, Registry, check_name
from ..store import FaultLog

log = logging.getLogger("cpucompat.coordinator")
LEAF_FIELDS = ("cpus", "cpu_classes", "compact_cpus")  # the fields holding the leaves
OFFER_FIELD = "hypervisor_offer"


def _converted(
    request: pb.ReportProfileRequest, convert_raw: Callable[[pb_profile.RawCapture], RawCapture]
) -> RawCapture:
    """The report's capture (or its header) in domain form; bad leaves are INVALID_ARGUMENT."""
    try:
        return convert_raw(request.raw)
    except RawDataError as exc:
        raise InvalidReportError(f"report for {request.host_id!r} refused: {exc}") from None


class RecentOffers:
    """The hypervisor offers reports carried lately, each converted once per distinct wire
    bytes: a KVM host's offer (some 75 leaves) is the same at every report, and the same
    object lets its fingerprint be remembered too (`decode.offer_fingerprint`)."""

    def __init__(self, size: int = 256) -> None:
        self._offers: Memo[bytes, RawOffer] = Memo("recent hypervisor offers", size)

    def get(self, msg: pb_profile.RawHypervisorOffer) -> RawOffer:
        """The offer of ``msg``; RawDataError for a bad one (never remembered)."""
        key = msg.SerializeToString(deterministic=True)
        return self._offers.get_or_make(key, lambda: offer_from_proto(msg))


def capture_header(raw: pb_profile.RawCapture, offers: RecentOffers | None = None) -> RawCapture:
    """A report's capture without its logical CPUs: what `Registry.report_unchanged` reads.

    Field by field, never copying the leaves (a 128-CPU server's are 100 KiB); the offer
    through ``offers`` when given (the same bytes, the same offer)."""
    header = pb_profile.RawCapture()
    for field, value in raw.ListFields():
        if field.name in LEAF_FIELDS or (offers is not None and field.name == OFFER_FIELD):
            continue
        if field.message_type is not None or field.is_repeated:
            getattr(header, field.name).MergeFrom(value)  # messages, maps, repeated
        else:
            setattr(header, field.name, value)
    capture = convert.capture_from_proto(header)
    if offers is None or not raw.HasField(OFFER_FIELD):
        return capture
    # As capture_from_proto reads a capture with an offer: no reason for a missing one.
    return replace(capture, offer=offers.get(raw.hypervisor_offer), offer_missing=None)


def wire_digest(raw: pb_profile.RawCapture) -> bytes:
    """The digest of a report's capture as sent (the deterministic serialization of the
    message parsed): hosts of one model send the same bytes, and a change rolled across a
    fleet (firmware, microcode) sends the same new bytes from every host it reaches, so
    the coordinator checks, packs and decodes them once (`Registry.report`)."""
    return hashlib.sha256(raw.SerializeToString(deterministic=True)).digest()


class RegistryServicer(pb_grpc.RegistryServiceServicer):
    """``admissions`` given: reports and heartbeats only for clusters the host was admitted to."""

    def __init__(self, registry: Registry, admissions: Admissions | None = None) -> None:
        self.registry = registry
        self.admissions = admissions
        # A log line per refused host and cluster per minute: refusals cannot flood the log
        # and are stored nowhere, so an unadmitted certificate cannot grow the database.
        self.refusals = FaultLog(log, level=logging.WARNING)
        self.offers = RecentOffers()

    def _require_admission(self, host_id: str, cluster: str) -> None:
        if self.admissions is None:
            return
        check_name(cluster, "cluster name")
        try:
            self.admissions.check(cluster, host_id)
        except NotAdmittedError as exc:
            self.refusals.log("refused", exc)
            raise

    def ReportProfile(
        self, request: pb.ReportProfileRequest, context: grpc.ServicerContext
    ) -> pb.ReportProfileResponse:
        check_name(request.host_id, "host id")
        self._require_admission(request.host_id, request.cluster)
        check_text(request.agent_fingerprint, "agent_fingerprint", MAX_FINGERPRINT)
        before = self.registry.find(request.host_id)
        record, _unchanged = self.registry.report_from(
            request.host_id,
            request.cluster,
            _converted(request, lambda raw: capture_header(raw, self.offers)),
            lambda: _converted(request, convert.capture_from_proto),
            agent_address=request.agent_address,
            heartbeat_interval=convert.duration_seconds(request.probe_interval),
            agent_fingerprint=request.agent_fingerprint,
            agent_version=request.agent_version,
            wire=lambda: wire_digest(request.raw),
        )
        return pb.ReportProfileResponse(
            accepted=True,
            fingerprint=record.fingerprint,
            status=convert.status_to_proto(record.status),
            changed=before is None or before.fingerprint != record.fingerprint,
            profile_version=record.profile_version,
            heartbeat_interval=convert.duration(record.heartbeat_interval),
        )

    def Heartbeat(
        self, request: pb.HeartbeatRequest, context: grpc.ServicerContext
    ) -> pb.HeartbeatResponse:
        check_name(request.host_id, "host id")
        self._require_admission(request.host_id, request.cluster)
        record, wanted = self.registry.heartbeat(
            request.host_id,
            request.cluster,
            request.fingerprint,
            convert.duration_seconds(request.probe_interval),
        )
        if record is None:
            return pb.HeartbeatResponse(report_required=True, reason="host is not registered")
        return pb.HeartbeatResponse(
            report_required=wanted,
            reason="fingerprint or cluster differs from the stored profile" if wanted else "",
            status=convert.status_to_proto(record.status),
            heartbeat_interval=convert.duration(record.heartbeat_interval),
        )

    def Leave(self, request: pb.LeaveRequest, context: grpc.ServicerContext) -> pb.LeaveResponse:
        check_name(request.host_id, "host id")
        if request.cluster:
            check_name(request.cluster, "cluster name")
        check_text(request.reason, "reason", MAX_REASON)
        record = self.registry.goodbye(request.host_id)
        return pb.LeaveResponse(status=convert.status_to_proto(record.status))
