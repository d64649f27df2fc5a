"""DecisionService: check, targets, audit. Thin: `Decisions` answers."""

from __future__ import annotations

import grpc

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .. import convert
from ..decisions import Decisions
from ..registry import Registry
from ..security import Authorizer
from .errors import rpc

_KIND = {
    "host": pb.AUDIT_HOST_KIND_REGISTERED,
    "dump": pb.AUDIT_HOST_KIND_DUMP,
    "model": pb.AUDIT_HOST_KIND_MODEL,
}


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(self, decisions: Decisions, registry: Registry, auth: Authorizer) -> None:
        self.decisions = decisions
        self.registry = registry
        self.auth = auth

    @rpc
    def Check(self, request: pb.CheckRequest, context: grpc.ServicerContext) -> pb.CheckResponse:
        self.auth.require_admin(context)
        source = convert.ref_from_proto(request.source)
        target = convert.ref_from_proto(request.target)
        verdict = self.decisions.check(source, target)
        return pb.CheckResponse(
            verdict=convert.verdict_to_proto(verdict),
            source_label=source.label,
            target_label=target.label,
        )

    @rpc
    def Targets(
        self, request: pb.TargetsRequest, context: grpc.ServicerContext
    ) -> pb.TargetsResponse:
        self.auth.require_admin(context)
        source = convert.ref_from_proto(request.source)
        results = self.decisions.targets(source, request.cluster or None)
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

    @rpc
    def Audit(self, request: pb.AuditRequest, context: grpc.ServicerContext) -> pb.AuditResponse:
        self.auth.require_admin(context)
        extra = [convert.ref_from_proto(r) for r in request.extra_hosts]
        report = self.decisions.audit(request.cluster or None, extra)
        kinds = {
            r.host_id: pb.AUDIT_HOST_KIND_REGISTERED
            for r in self.registry.hosts(request.cluster or None)
        }
        kinds.update({ref.label: _KIND[ref.kind] for ref in extra})
        return pb.AuditResponse(
            report=convert.audit_to_proto(report, request.cluster, self.registry.clock(), kinds)
        )
