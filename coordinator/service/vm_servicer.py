"""VmService: VMs, their eligible targets and fail-over plans."""

from __future__ import annotations

import grpc

from cpucompat.v1 import coordinator_service_pb2 as pb
from cpucompat.v1 import coordinator_service_pb2_grpc as pb_grpc

from .. import convert
from ..cache import Region
from ..domain.libvirt_cpu import MAX_XML_BYTES
from ..limits import MAX_SPEC, LimitError, check_name, check_text
from ..registry import Registry
from ..vms import UnknownVmError, VmRecord, VmRegistry
from .host_pages import host_after, target_page
from .paging import decode_token, encode_token, fill, page_size


class VmServicer(pb_grpc.VmServiceServicer):
    """Caches nothing: `VmRegistry.plan` keeps plans in the coordinator's one cache."""

    def __init__(self, vms: VmRegistry, registry: Registry) -> None:
        self.vms = vms
        self.registry = registry

    def _vm(self, record: VmRecord) -> pb.Vm:
        return convert.vm_to_proto(record, self.vms.actions.get(record.name))

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
            vm=self._vm(record), created=created, requirement_updated=updated
        )

    def ListVms(
        self, request: pb.ListVmsRequest, context: grpc.ServicerContext
    ) -> pb.ListVmsResponse:
        cluster = check_name(request.cluster, "cluster name") if request.cluster else None
        after = decode_token(request.page_token)
        if after is not None and not isinstance(after, str):
            raise LimitError("page_token does not belong to this listing; start again without it")
        vms = [v for v in self.vms.all(cluster) if after is None or v.name > after]
        page, more = fill(vms, page_size(request.page_size), self._vm)
        return pb.ListVmsResponse(
            vms=page, next_page_token=encode_token(vms[len(page) - 1].name) if more else ""
        )

    def GetVmTargets(
        self, request: pb.GetVmTargetsRequest, context: grpc.ServicerContext
    ) -> pb.GetVmTargetsResponse:
        check_name(request.vm_name, "VM name")
        after = host_after(request.page_token)
        vm = self._vm(self.vms.get(request.vm_name))
        targets, token = target_page(
            self.vms.targets(request.vm_name),
            lambda host_id: self.registry.host(host_id).status,
            after,
            request.page_size,
            beside=vm.ByteSize(),
        )
        return pb.GetVmTargetsResponse(vm=vm, targets=targets, next_page_token=token)

    def PlanFailover(
        self, request: pb.PlanFailoverRequest, context: grpc.ServicerContext
    ) -> pb.PlanFailoverResponse:
        check_name(request.vm_name, "VM name")
        check_name(request.to_host, "target host")
        plan = self.vms.plan(request.vm_name, request.to_host)
        return self.registry.cache.form(
            Region.PLAN,
            self.vms.plan_key(request.vm_name, request.to_host),
            plan,
            lambda: pb.PlanFailoverResponse(plan=convert.plan_to_proto(plan)),
        )

    def RemoveVm(
        self, request: pb.RemoveVmRequest, context: grpc.ServicerContext
    ) -> pb.RemoveVmResponse:
        check_name(request.vm_name, "VM name")
        record = self.vms.remove(request.vm_name)
        return pb.RemoveVmResponse(vm=convert.vm_to_proto(record))
