"""DecisionService: check, targets, audit. Thin: `Decisions` answers."""

from __future__ import annotations

import grpc

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .. import convert
from ..decisions import Decisions
from ..registry import Registry

ANSWER_CACHE_SIZE = 100_000


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(self, decisions: Decisions, registry: Registry) -> None:
        self.decisions = decisions
        self.registry = registry
        self._answers: dict[tuple[object, ...], pb.CheckResponse] = {}

    def _cached_host_check(self, request: pb.CheckRequest) -> pb.CheckResponse | None:
        """Host-to-host answers, kept per (source version, target version and state).

        Fail-over tooling asks the same pairs again and again; a host's answer changes
        only with a new profile version or status, which are part of the key, and
        the rules asked for (generic and KVM answers never share an entry).
        """
        if (
            request.source.WhichOneof("ref") != "host_id"
            or request.target.WhichOneof("ref") != "host_id"
        ):
            return None
        hypervisor = convert.hypervisor_from_proto(request.hypervisor)
        src = self.registry.find(request.source.host_id)
        tgt = self.registry.find(request.target.host_id)
        if src is None or tgt is None:
            return None
        key = (
            src.host_id,
            src.profile_version,
            tgt.host_id,
            tgt.profile_version,
            tgt.status,
            tgt.replayed,
            hypervisor,
        )
        response = self._answers.get(key)
        if response is None:
            verdict = self.decisions.check(
                convert.ref_from_proto(request.source),
                convert.ref_from_proto(request.target),
                hypervisor,
            )
            response = pb.CheckResponse(
                verdict=convert.verdict_to_proto(verdict),
                source_label=src.host_id,
                target_label=tgt.host_id,
            )
            if len(self._answers) >= ANSWER_CACHE_SIZE:
                self._answers.clear()
            self._answers[key] = response
        return response

    def Check(self, request: pb.CheckRequest, context: grpc.ServicerContext) -> pb.CheckResponse:
        cached = self._cached_host_check(request)
        if cached is not None:
            return cached
        source = convert.ref_from_proto(request.source)
        target = convert.ref_from_proto(request.target)
        verdict = self.decisions.check(
            source, target, convert.hypervisor_from_proto(request.hypervisor)
        )
        return pb.CheckResponse(
            verdict=convert.verdict_to_proto(verdict),
            source_label=source.label,
            target_label=target.label,
        )

    def Targets(
        self, request: pb.TargetsRequest, context: grpc.ServicerContext
    ) -> pb.TargetsResponse:
        source = convert.ref_from_proto(request.source)
        results = self.decisions.targets(
            source, request.cluster or None, convert.hypervisor_from_proto(request.hypervisor)
        )
        return pb.TargetsResponse(
            source_label=source.label,
            targets=[
                pb.TargetVerdict(
                    host_id=record.host_id,
                    status=convert.status_to_proto(record.status),
                    verdict=convert.verdict_to_proto(verdict),
                )
                for record, verdict in results
            ],
        )

    def Audit(self, request: pb.AuditRequest, context: grpc.ServicerContext) -> pb.AuditResponse:
        extra = [convert.ref_from_proto(r) for r in request.extra_hosts]
        report = self.decisions.audit(
            request.cluster or None, extra, convert.hypervisor_from_proto(request.hypervisor)
        )
        return pb.AuditResponse(report=convert.audit_to_proto(report, self.registry.clock()))
