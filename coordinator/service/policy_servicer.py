"""PolicyService: show, pin, unpin and watch each cluster's offline action."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import grpc

from cpucompat.agent.errors import ExhaustedError, InputError
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .. import convert
from ..admissions import Admissions, NotAdmittedError
from ..limits import MAX_REASON, LimitError, check_name, check_text
from ..policy import PolicyEngine, StoredPolicy
from ..security import Authorizer, identity_of
from ..vm_actions import VmActions
from .paging import decode_token, encode_token, fill, page_size

WATCH_POLL = 1.0


class PolicyServicer(pb_grpc.PolicyServiceServicer):
    """Policy RPCs; each watch stream holds a server thread, so their number is capped."""

    def __init__(
        self,
        engine: PolicyEngine,
        auth: Authorizer,
        max_watchers: int = 1000,
        admissions: Admissions | None = None,
        vm_actions: VmActions | None = None,
        on_watchers: Callable[[int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.vm_actions = vm_actions
        self.auth = auth  # who is a host, for following admission (access is checked before)
        self.admissions = admissions  # given: a revoked host's watch ends at once
        self.max_watchers = max_watchers
        self.on_watchers = on_watchers  # told the number of open watch streams at each change
        self._watchers = 0
        self._lock = threading.Lock()

    def GetPolicy(
        self, request: pb.GetPolicyRequest, context: grpc.ServicerContext
    ) -> pb.GetPolicyResponse:
        check_name(request.cluster, "cluster name")
        return pb.GetPolicyResponse(
            policy=convert.policy_to_proto(self.engine.get(request.cluster))
        )

    def ListPolicies(
        self, request: pb.ListPoliciesRequest, context: grpc.ServicerContext
    ) -> pb.ListPoliciesResponse:
        after = decode_token(request.page_token)
        if after is not None and not isinstance(after, str):
            raise LimitError("page_token does not belong to this listing; start again without it")
        stored = [p for p in self.engine.all() if after is None or p.decision.cluster > after]
        page, more = fill(stored, page_size(request.page_size), convert.policy_to_proto)
        token = encode_token(stored[len(page) - 1].decision.cluster) if more else ""
        return pb.ListPoliciesResponse(policies=page, next_page_token=token)

    def PinPolicy(
        self, request: pb.PinPolicyRequest, context: grpc.ServicerContext
    ) -> pb.PinPolicyResponse:
        check_name(request.cluster, "cluster name")
        check_text(request.reason, "reason", MAX_REASON)
        action = convert.action_from_proto(request.action)
        stored = self.engine.pin(request.cluster, action, request.reason)
        return pb.PinPolicyResponse(policy=convert.policy_to_proto(stored))

    def UnpinPolicy(
        self, request: pb.UnpinPolicyRequest, context: grpc.ServicerContext
    ) -> pb.UnpinPolicyResponse:
        check_name(request.cluster, "cluster name")
        return pb.UnpinPolicyResponse(
            policy=convert.policy_to_proto(self.engine.unpin(request.cluster))
        )

    def WatchPolicy(
        self, request: pb.WatchPolicyRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.WatchPolicyResponse]:
        """The current policy first, then every change until the client goes away."""
        if not request.cluster:
            raise InputError("WatchPolicy needs a cluster")
        check_name(request.cluster, "cluster name")
        if request.host_id:
            check_name(request.host_id, "host id")
        current = self.engine.get(request.cluster)
        names = self._host_names(context)
        with self._lock:
            if self._watchers >= self.max_watchers:
                raise ExhaustedError(
                    f"{self._watchers} policy watchers already; start the coordinator with more "
                    "--workers to serve more agents"
                )
            self._watchers += 1
            self._tell_watchers()
        try:
            admitted = self._follow_admission(request.cluster, names, [])
            yield self._update(current, request.host_id)
            version = current.version
            while context.is_active() and not self.engine.closed:
                admitted = self._follow_admission(request.cluster, names, admitted)
                fresh = self.engine.wait_for(request.cluster, version, WATCH_POLL)
                if fresh is not None:
                    version = fresh.version
                    yield self._update(fresh, request.host_id)
        finally:
            with self._lock:
                self._watchers -= 1
                self._tell_watchers()

    def _tell_watchers(self) -> None:
        """The open watch streams to ``on_watchers`` (under the lock: in order)."""
        if self.on_watchers is not None:
            self.on_watchers(self._watchers)

    def _update(self, policy: StoredPolicy, host_id: str) -> pb.WatchPolicyResponse:
        """The policy, with the actions of the VMs running on the watching host."""
        actions = (
            self.vm_actions.on_host(host_id) if host_id and self.vm_actions is not None else []
        )
        return pb.WatchPolicyResponse(
            policy=convert.policy_to_proto(policy),
            vm_actions=[convert.vm_action_to_proto(a) for a in actions],
        )

    def _host_names(self, context: grpc.ServicerContext) -> frozenset[str]:
        """The watching host's certificate names, when admission is enforced (else none)."""
        if self.admissions is None or not self.auth.mutual_tls:
            return frozenset()
        return identity_of(context).names - self.auth.admins

    def _follow_admission(self, cluster: str, names: frozenset[str], was: list[str]) -> list[str]:
        """The names admitted now; PERMISSION_DENIED when a host admitted before no longer is.

        A revoked member's watch ends the moment an administrator revokes it, so its agent
        hears of it at once, not at its next heartbeat an interval later.
        """
        if not names or self.admissions is None:
            return []
        now = sorted(n for n in names if self.admissions.allows(cluster, n))
        if was and not now:
            raise NotAdmittedError(
                f"host {was[0]} is not admitted to cluster {cluster}; an administrator "
                f"admits it with `cpucompat cluster admit {cluster} {was[0]}`"
            )
        return now
