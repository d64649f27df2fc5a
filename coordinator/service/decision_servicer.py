"""DecisionService: check, targets, audit, what-if. Thin: `CompatibilityService` and
`WhatIfService` answer."""

from __future__ import annotations

import grpc

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .. import convert
from ..cache import Region
from ..compatibility import CompatibilityService
from ..registry import Registry
from ..whatif import WhatIfService


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    """Caches nothing: `CompatibilityService` keeps the answers in the coordinator's one cache."""

    def __init__(
        self,
        decisions: CompatibilityService,
        registry: Registry,
        whatif: WhatIfService | None = None,
    ) -> None:
        self.decisions = decisions
        self.registry = registry
        self.whatif = whatif

    def Check(self, request: pb.CheckRequest, context: grpc.ServicerContext) -> pb.CheckResponse:
        source = convert.ref_from_proto(request.source)
        target = convert.ref_from_proto(request.target)
        hypervisor = convert.hypervisor_from_proto(request.hypervisor)
        verdict = self.decisions.check(source, target, hypervisor)
        return self.registry.cache.form(
            Region.CHECK,
            self.decisions.check_key(source, target, hypervisor),
            verdict,
            lambda: pb.CheckResponse(
                verdict=convert.verdict_to_proto(verdict),
                source_label=source.label,
                target_label=target.label,
            ),
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
                    verdict=message,
                )
                for (record, _), message in zip(
                    results, convert.verdicts_to_proto([v for _, v in results]), strict=True
                )
            ],
        )

    def Audit(self, request: pb.AuditRequest, context: grpc.ServicerContext) -> pb.AuditResponse:
        extra = [convert.ref_from_proto(r) for r in request.extra_hosts]
        report = self.decisions.audit(
            request.cluster or None, extra, convert.hypervisor_from_proto(request.hypervisor)
        )
        return pb.AuditResponse(report=convert.audit_to_proto(report, self.registry.clock()))

    def WhatIf(self, request: pb.WhatIfRequest, context: grpc.ServicerContext) -> pb.WhatIfResponse:
        if self.whatif is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this coordinator serves no what-if")
        assert self.whatif is not None
        report = self.whatif.whatif(
            request.cluster,
            [convert.ref_from_proto(r) for r in request.add],
            list(request.remove),
            convert.hypervisor_from_proto(request.hypervisor),
        )
        return convert.whatif_to_proto(report)
