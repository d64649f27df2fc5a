"""BaselineService: pin, unpin and show a cluster's baseline (`baseline_pins`). Thin."""

from __future__ import annotations

import grpc

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from ..baseline_pins import BaselinePins, HostMeasure, Pin
from ..convert import timestamp
from ..limits import check_name, check_text
from ..security import identity_of

MAX_SOURCE = 200


def pin_to_proto(pin: Pin, measures: list[HostMeasure]) -> pb.PinnedBaseline:
    base = pin.baseline
    return pb.PinnedBaseline(
        cluster=pin.cluster,
        source=pin.source,
        vendor=base.vendor or "",
        features=sorted(base.features),
        xsave_mask=base.xsave_mask,
        physical_bits=base.physical_bits or 0,
        members=list(base.members),
        pinned_at=timestamp(pin.pinned_at),
        pinned_by=pin.pinned_by,
        hosts=[
            pb.BaselineHost(
                host_id=m.host_id, below_baseline=m.below, missing=m.missing, summary=m.summary
            )
            for m in measures
        ],
    )


class BaselineServicer(pb_grpc.BaselineServiceServicer):
    """Who may call each RPC is `service.access`; errors become statuses in the interceptor."""

    def __init__(self, pins: BaselinePins) -> None:
        self.pins = pins

    def PinBaseline(
        self, request: pb.PinBaselineRequest, context: grpc.ServicerContext
    ) -> pb.PinBaselineResponse:
        who = identity_of(context)
        check_name(request.cluster, "cluster name")
        check_text(request.source, "source", MAX_SOURCE)
        by = ", ".join(sorted(who.names))
        pin = self.pins.pin(request.cluster, request.source, by=by)
        return pb.PinBaselineResponse(baseline=pin_to_proto(pin, self.pins.measure(pin.cluster)))

    def UnpinBaseline(
        self, request: pb.UnpinBaselineRequest, context: grpc.ServicerContext
    ) -> pb.UnpinBaselineResponse:
        check_name(request.cluster, "cluster name")
        pin = self.pins.unpin(request.cluster)
        return pb.UnpinBaselineResponse(baseline=pin_to_proto(pin, []))

    def GetPinnedBaseline(
        self, request: pb.GetPinnedBaselineRequest, context: grpc.ServicerContext
    ) -> pb.GetPinnedBaselineResponse:
        check_name(request.cluster, "cluster name")
        pin = self.pins.get(request.cluster)
        if pin is None:
            return pb.GetPinnedBaselineResponse(pinned=False)
        return pb.GetPinnedBaselineResponse(
            pinned=True, baseline=pin_to_proto(pin, self.pins.measure(pin.cluster))
        )
