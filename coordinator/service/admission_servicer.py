"""AdmissionService: administrators say which hosts may join which cluster. Thin."""

from __future__ import annotations

import logging

import grpc

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from ..admissions import Admission, Admissions
from ..limits import LimitError, check_name
from ..security import identity_of
from .paging import decode_token, encode_token, fill, page_size

log = logging.getLogger("cpucompat.coordinator")


def admission_to_proto(item: Admission) -> pb.Admission:
    out = pb.Admission(cluster=item.cluster, pattern=item.pattern, admitted_by=item.admitted_by)
    out.admitted_at.FromNanoseconds(int(item.admitted_at * 1e9))
    return out


class AdmissionServicer(pb_grpc.AdmissionServiceServicer):
    def __init__(self, admissions: Admissions) -> None:
        self.admissions = admissions

    def AdmitHosts(
        self, request: pb.AdmitHostsRequest, context: grpc.ServicerContext
    ) -> pb.AdmitHostsResponse:
        who = identity_of(context)
        by = ", ".join(sorted(who.names))
        stored = self.admissions.admit(request.cluster, request.patterns, by=by)
        log.warning(
            "cluster %s: admitted %s (by %s)",
            request.cluster,
            " ".join(request.patterns),
            who.label(),
        )
        return pb.AdmitHostsResponse(admissions=[admission_to_proto(a) for a in stored])

    def RevokeHosts(
        self, request: pb.RevokeHostsRequest, context: grpc.ServicerContext
    ) -> pb.RevokeHostsResponse:
        left = self.admissions.revoke(request.cluster, request.patterns)
        log.warning(
            "cluster %s: revoked %s (by %s)",
            request.cluster,
            " ".join(request.patterns),
            identity_of(context).label(),
        )
        return pb.RevokeHostsResponse(admissions=[admission_to_proto(a) for a in left])

    def ListAdmissions(
        self, request: pb.ListAdmissionsRequest, context: grpc.ServicerContext
    ) -> pb.ListAdmissionsResponse:
        if request.cluster:
            check_name(request.cluster, "cluster name")
        after = decode_token(request.page_token)
        if after is not None and not (
            isinstance(after, list) and len(after) == 2 and all(isinstance(x, str) for x in after)
        ):
            raise LimitError("page_token does not belong to this listing; start again without it")
        stored = [
            a
            for a in self.admissions.all(request.cluster)
            if after is None or (a.cluster, a.pattern) > (after[0], after[1])
        ]
        page, more = fill(stored, page_size(request.page_size), admission_to_proto)
        last = stored[len(page) - 1] if page else None
        token = encode_token([last.cluster, last.pattern]) if more and last else ""
        return pb.ListAdmissionsResponse(admissions=page, next_page_token=token)
