"""QueryService: hosts, their history and the event log, for administrators."""

from __future__ import annotations

import grpc

from cpucompat.agent.wire import capture_to_proto
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .. import convert
from ..compatibility import CompatibilityService
from ..domain.hosts import HostRecord
from ..limits import MAX_REASON, LimitError, check_name, check_text
from ..registry import Registry
from .paging import cursor as _cursor
from .paging import encode_token, fill, page_size

DEFAULT_EVENT_LIMIT = 1000
MAX_EVENT_LIMIT = 100_000


def optional_name(value: str, what: str) -> str | None:
    """A name filter: empty means "all"; anything else must be a whole, valid name."""
    return check_name(value, what) if value else None


class QueryServicer(pb_grpc.QueryServiceServicer):
    def __init__(self, registry: Registry, decisions: CompatibilityService) -> None:
        self.registry = registry
        self.decisions = decisions

    def _host(self, record: HostRecord) -> pb.Host:
        return convert.host_to_proto(record, self.decisions.host_microarchitecture(record) or "")

    def ListHosts(
        self, request: pb.ListHostsRequest, context: grpc.ServicerContext
    ) -> pb.ListHostsResponse:
        cluster = optional_name(request.cluster, "cluster name")
        cursor = _cursor(request.page_token, {"cluster": str, "host": str})
        records = self.registry.hosts(cluster)
        if cursor is not None:
            after = (cursor["cluster"], cursor["host"])
            records = [r for r in records if (r.cluster, r.host_id) > after]
        hosts, more = fill(records, page_size(request.page_size), self._host)
        token = ""
        if more:
            last = records[len(hosts) - 1]
            token = encode_token({"cluster": last.cluster, "host": last.host_id})
        return pb.ListHostsResponse(hosts=hosts, next_page_token=token)

    def GetHost(
        self, request: pb.GetHostRequest, context: grpc.ServicerContext
    ) -> pb.GetHostResponse:
        check_name(request.host_id, "host id")
        record = self.registry.host(request.host_id)
        microarchitecture = self.decisions.host_microarchitecture(record) or ""
        response = pb.GetHostResponse(
            host=convert.host_to_proto(record, microarchitecture),
            profile=convert.profile_to_proto(record.profile, microarchitecture),
        )
        if request.include_raw:
            response.raw.CopyFrom(capture_to_proto(record.profile.raw))
        return response

    def GetHostHistory(
        self, request: pb.GetHostHistoryRequest, context: grpc.ServicerContext
    ) -> pb.GetHostHistoryResponse:
        check_name(request.host_id, "host id")
        cursor = _cursor(request.page_token, {"after": int})
        pruned, versions = self.registry.history(request.host_id)
        numbered = list(enumerate(versions, start=pruned + 1))
        if request.limit:
            numbered = numbered[-request.limit :]
        if cursor is not None:
            numbered = [(n, v) for n, v in numbered if n > cursor["after"]]
        page, more = fill(
            numbered, page_size(request.page_size), lambda nv: convert.version_to_proto(*nv)
        )
        last = numbered[len(page) - 1][0] if page else 0
        return pb.GetHostHistoryResponse(
            host_id=request.host_id,
            versions=page,
            next_page_token=encode_token({"after": last}) if more else "",
        )

    def ListEvents(
        self, request: pb.ListEventsRequest, context: grpc.ServicerContext
    ) -> pb.ListEventsResponse:
        """Pages of one selection: ``limit`` events in all, fixed by the first page."""
        cluster = optional_name(request.cluster, "cluster name")
        host_id = optional_name(request.host_id, "host id")
        if request.limit > MAX_EVENT_LIMIT:
            raise LimitError(f"limit {request.limit} is more than {MAX_EVENT_LIMIT} events")
        since = convert.timestamp_seconds(request.since) if request.HasField("since") else None
        cursor = _cursor(
            request.page_token, {"after": int, "before": int, "left": int, "desc": int}
        )
        if cursor is None:
            left = request.limit or DEFAULT_EVENT_LIMIT
            after, before, desc = int(request.after_id), 0, request.newest_first
            if not desc and not after:
                # The newest `limit` events, oldest first: the window is fixed now, so
                # events that arrive while a client pages do not push older ones out.
                window = self.registry.event_window(cluster, since, host_id, left)
                if window is None:
                    return pb.ListEventsResponse()
                after, before = window[0] - 1, window[1] + 1
        else:
            after, before, left = cursor["after"], cursor["before"], cursor["left"]
            desc = bool(cursor["desc"])
        fetch = min(left, page_size(request.page_size))
        events = self.registry.events(
            cluster,
            since,
            fetch,
            host_id=host_id,
            after_id=after,
            before_id=before or None,
            ascending=not desc,
        )
        page, cut = fill(events, fetch, convert.event_to_proto)
        left -= len(page)
        token = ""
        if page and left > 0 and (cut or len(events) == fetch):
            last = events[len(page) - 1]
            if desc:
                token = encode_token({"after": after, "before": last.id, "left": left, "desc": 1})
            else:
                token = encode_token({"after": last.id, "before": before, "left": left, "desc": 0})
        return pb.ListEventsResponse(events=page, next_page_token=token)

    def RemoveHost(
        self, request: pb.RemoveHostRequest, context: grpc.ServicerContext
    ) -> pb.RemoveHostResponse:
        check_name(request.host_id, "host id")
        record = self.registry.host(request.host_id)
        self.registry.remove(request.host_id, force=request.force)
        return pb.RemoveHostResponse(host=self._host(record))

    def SetMaintenance(
        self, request: pb.SetMaintenanceRequest, context: grpc.ServicerContext
    ) -> pb.SetMaintenanceResponse:
        check_name(request.host_id, "host id")
        check_text(request.reason, "reason", MAX_REASON)
        record = self.registry.set_maintenance(request.host_id, request.on, request.reason)
        return pb.SetMaintenanceResponse(host=self._host(record))
