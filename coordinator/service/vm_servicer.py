"""VmService: VMs, their eligible targets and fail-over plans."""

from __future__ import annotations

import grpc

from cpucompat.agent.errors import NotFoundError
from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .. import convert
from ..domain.libvirt_cpu import MAX_XML_BYTES
from ..limits import MAX_SPEC, LimitError, check_name, check_text
from ..registry import Registry
from ..vms import UnknownVmError, VmRegistry
from .paging import decode_token, encode_token, fill, page_size

PLAN_CACHE_SIZE = 100_000


class VmServicer(pb_grpc.VmServiceServicer):
    def __init__(self, vms: VmRegistry, registry: Registry) -> None:
        self.vms = vms
        self.registry = registry
        self._plans: dict[tuple[object, ...], pb.PlanFailoverResponse] = {}

    def RegisterVm(
        self, request: pb.RegisterVmRequest, context: grpc.ServicerContext
    ) -> pb.RegisterVmResponse:
        check_name(request.vm_name, "VM name")
        check_name(request.cluster, "cluster name")
        which = request.WhichOneof("requirement")
        if which == "boot_host":
            check_name(request.boot_host, "boot host")
        check_text(request.baseline, "baseline", MAX_SPEC)
        check_text(request.vendor, "vendor", MAX_SPEC)
        if len(request.libvirt_xml) > MAX_XML_BYTES:
            raise LimitError(
                f"libvirt_xml is {len(request.libvirt_xml)} characters long; a domain XML is a "
                f"few KiB and at most {MAX_XML_BYTES} are read"
            )
        try:
            self.vms.get(request.vm_name)
            created = False
        except UnknownVmError:
            created = True
        record, updated = self.vms.register(
            request.vm_name,
            request.cluster,
            boot_host=request.boot_host if which == "boot_host" else None,
            baseline=request.baseline if which == "baseline" else None,
            vendor=request.vendor or None,
            rebooted=request.rebooted,
            invtsc=request.invtsc,
            sgx_epc=request.sgx_epc,
            libvirt_xml=request.libvirt_xml or None,
        )
        return pb.RegisterVmResponse(
            vm=convert.vm_to_proto(record), created=created, requirement_updated=updated
        )

    def ListVms(
        self, request: pb.ListVmsRequest, context: grpc.ServicerContext
    ) -> pb.ListVmsResponse:
        cluster = check_name(request.cluster, "cluster name") if request.cluster else None
        after = decode_token(request.page_token)
        if after is not None and not isinstance(after, str):
            raise LimitError("page_token does not belong to this listing; start again without it")
        vms = [v for v in self.vms.all(cluster) if after is None or v.name > after]
        page, more = fill(vms, page_size(request.page_size), convert.vm_to_proto)
        return pb.ListVmsResponse(
            vms=page, next_page_token=encode_token(vms[len(page) - 1].name) if more else ""
        )

    def GetVmTargets(
        self, request: pb.GetVmTargetsRequest, context: grpc.ServicerContext
    ) -> pb.GetVmTargetsResponse:
        check_name(request.vm_name, "VM name")
        vm = self.vms.get(request.vm_name)
        targets = []
        for host_id, verdict in self.vms.targets(request.vm_name):
            record = self.registry.host(host_id)
            targets.append(
                pb.TargetVerdict(
                    host_id=host_id,
                    status=convert.status_to_proto(record.status),
                    verdict=convert.verdict_to_proto(verdict),
                )
            )
        return pb.GetVmTargetsResponse(vm=convert.vm_to_proto(vm), targets=targets)

    def PlanFailover(
        self, request: pb.PlanFailoverRequest, context: grpc.ServicerContext
    ) -> pb.PlanFailoverResponse:
        check_name(request.vm_name, "VM name")
        check_name(request.to_host, "target host")
        key = self._plan_key(request)
        response = self._plans.get(key) if key is not None else None
        if response is None:
            plan = self.vms.plan(request.vm_name, request.to_host)
            response = pb.PlanFailoverResponse(plan=convert.plan_to_proto(plan))
            if key is not None:
                if len(self._plans) >= PLAN_CACHE_SIZE:
                    self._plans.clear()
                self._plans[key] = response
        return response

    def _plan_key(self, request: pb.PlanFailoverRequest) -> tuple[object, ...] | None:
        """A plan changes only with the VM's boot, the target's version or state, or the policy."""
        try:
            vm = self.vms.get(request.vm_name)
            policy_version = self.vms.policies.get(vm.cluster).version
        except NotFoundError:  # no such VM or cluster: plan() says which, uncached
            return None
        target = self.registry.find(request.to_host)
        if target is None:
            return None
        return (
            vm.name,
            vm.booted_at,
            vm.cluster,
            target.host_id,
            target.profile_version,
            target.status,
            target.replayed,
            target.cluster,
            policy_version,
        )

    def RemoveVm(
        self, request: pb.RemoveVmRequest, context: grpc.ServicerContext
    ) -> pb.RemoveVmResponse:
        check_name(request.vm_name, "VM name")
        record = self.vms.remove(request.vm_name)
        return pb.RemoveVmResponse(vm=convert.vm_to_proto(record))
