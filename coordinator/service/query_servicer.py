"""QueryService: hosts, their history and the event log, for administrators."""

from __future__ import annotations

import grpc

from cpucompat.agent.wire import capture_to_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .. import convert
from ..registry import Registry
from ..security import Authorizer
from .errors import rpc


class QueryServicer(pb_grpc.QueryServiceServicer):
    def __init__(self, registry: Registry, auth: Authorizer) -> None:
        self.registry = registry
        self.auth = auth

    @rpc
    def ListHosts(
        self, request: pb.ListHostsRequest, context: grpc.ServicerContext
    ) -> pb.ListHostsResponse:
        self.auth.require_admin(context)
        return pb.ListHostsResponse(
            hosts=[convert.host_to_proto(r) for r in self.registry.hosts(request.cluster or None)]
        )

    @rpc
    def GetHost(
        self, request: pb.GetHostRequest, context: grpc.ServicerContext
    ) -> pb.GetHostResponse:
        self.auth.require_admin(context)
        record = self.registry.host(request.host_id)
        response = pb.GetHostResponse(
            host=convert.host_to_proto(record),
            profile=convert.profile_to_proto(record.profile),
        )
        if request.include_raw:
            response.raw.CopyFrom(capture_to_proto(record.profile.raw))
        return response

    @rpc
    def GetHostHistory(
        self, request: pb.GetHostHistoryRequest, context: grpc.ServicerContext
    ) -> pb.GetHostHistoryResponse:
        self.auth.require_admin(context)
        versions = self.registry.history(request.host_id)
        numbered = list(enumerate(versions, start=1))
        if request.limit:
            numbered = numbered[-request.limit :]
        return pb.GetHostHistoryResponse(
            host_id=request.host_id,
            versions=[convert.version_to_proto(n, v) for n, v in numbered],
        )

    @rpc
    def ListEvents(
        self, request: pb.ListEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListEventsResponse:
        self.auth.require_admin(context)
        since = convert.timestamp_seconds(request.since) if request.HasField("since") else None
        events = self.registry.events(
            request.cluster or None,
            since,
            request.limit or 1000,
            host_id=request.host_id or None,
            after_id=request.after_id or None,
            newest_first=request.newest_first,
        )
        return pb.ListEventsResponse(events=[convert.event_to_proto(e) for e in events])

    @rpc
    def RemoveHost(
        self, request: pb.RemoveHostRequest, context: grpc.ServicerContext
    ) -> pb.RemoveHostResponse:
        self.auth.require_admin(context)
        record = self.registry.host(request.host_id)
        self.registry.remove(request.host_id, force=request.force)
        return pb.RemoveHostResponse(host=convert.host_to_proto(record))
