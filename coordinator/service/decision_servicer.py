"""DecisionService: check, targets, audit, what-if. Thin: `CompatibilityService` and
`WhatIfService` answer."""

from __future__ import annotations

import grpc

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .. import convert
from ..cache import Region
from ..compatibility import CompatibilityService
from ..limits import LimitError
from ..registry import Registry
from ..whatif import WhatIfService
from .host_pages import audit_page, host_after, target_page
from .paging import cursor
from .whatif_pages import whatif_page, whatif_place


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
        after = host_after(request.page_token)
        source = convert.ref_from_proto(request.source)
        results = self.decisions.targets(
            source, request.cluster or None, convert.hypervisor_from_proto(request.hypervisor)
        )
        status = {record.host_id: record.status for record, _ in results}
        targets, token = target_page(
            [(record.host_id, verdict) for record, verdict in results],
            status.__getitem__,
            after,
            request.page_size,
        )
        return pb.TargetsResponse(source_label=source.label, targets=targets, next_page_token=token)

    def Audit(self, request: pb.AuditRequest, context: grpc.ServicerContext) -> pb.AuditResponse:
        place = cursor(request.page_token, {"host": str, "extras": int})
        extra = [convert.ref_from_proto(r) for r in request.extra_hosts]
        if place is not None and not 0 <= place["extras"] <= len(extra):
            raise LimitError("page_token does not belong to this listing; start again without it")
        report = self.decisions.audit(
            request.cluster or None, extra, convert.hypervisor_from_proto(request.hypervisor)
        )
        return audit_page(report, len(extra), place, request.page_size, self.registry.clock())

    def WhatIf(self, request: pb.WhatIfRequest, context: grpc.ServicerContext) -> pb.WhatIfResponse:
        if self.whatif is None:
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this coordinator serves no what-if")
        assert self.whatif is not None
        place = whatif_place(request.page_token)  # a bad token fails before any work
        report = self.whatif.whatif(
            request.cluster,
            [convert.ref_from_proto(r) for r in request.add],
            list(request.remove),
            convert.hypervisor_from_proto(request.hypervisor),
        )
        return whatif_page(convert.whatif_to_proto(report), place, request.page_size)
