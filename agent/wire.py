"""Raw captures and profiles to and from their protobuf messages.

Only the agent's daemon and the coordinator's conversion module import
this; `cpucompat probe` never does, so it never loads gRPC or protobuf.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.timestamp_pb2 import Timestamp

from cpucompat.v1 import profile_pb2

from .cpu_classes import ClassMember, CpuClasses, SplitCpus, expand_classes, split_of
from .profile import FEATURE_MSR_NAMES, HypervisorOffer, Profile
from .raw import HostTsc, LeafKey, LogicalCpu, RawCapture, RawDataError, RawOffer, Regs


def enum_prefix(enum: EnumTypeWrapper) -> str:
    """The prefix every value name of a wire enum carries ("OFFLINE_ACTION_").

    Every enum of the protocol names it in value 0, ``<PREFIX>UNSPECIFIED`` (the
    protobuf style guide), so it is read from there, never spelt out.
    """
    return enum.Name(0).removesuffix("UNSPECIFIED")


def enum_name(enum: EnumTypeWrapper, value: int) -> str:
    """A wire enum value's name without its enum's prefix (OFFLINE_ACTION_SAVE -> SAVE)."""
    return enum.Name(value).removeprefix(enum_prefix(enum))


def _msrs_to_proto(msrs: Iterable[tuple[int, int]]) -> list[profile_pb2.FeatureMsr]:
    return [
        profile_pb2.FeatureMsr(index=i, value=v, name=FEATURE_MSR_NAMES.get(i, "")) for i, v in msrs
    ]


def _leaves_to_proto(leaves: Mapping[LeafKey, Regs]) -> list[profile_pb2.CpuidLeaf]:
    return [
        profile_pb2.CpuidLeaf(leaf=leaf, subleaf=sub, eax=r[0], ebx=r[1], ecx=r[2], edx=r[3])
        for (leaf, sub), r in sorted(leaves.items())
    ]


def _leaves_from_proto(
    leaves_msg: Iterable[profile_pb2.CpuidLeaf], where: str
) -> dict[LeafKey, Regs]:
    leaves: dict[LeafKey, Regs] = {}
    for leaf in leaves_msg:
        key = (leaf.leaf, leaf.subleaf)
        regs = (leaf.eax, leaf.ebx, leaf.ecx, leaf.edx)
        if key in leaves and leaves[key] != regs:
            raise RawDataError(
                f"{where}: leaf 0x{leaf.leaf:08x} subleaf {leaf.subleaf} "
                "is given twice with different values"
            )
        leaves[key] = regs
    return leaves


def offer_to_proto(offer: RawOffer) -> profile_pb2.RawHypervisorOffer:
    return profile_pb2.RawHypervisorOffer(
        kind=offer.kind,
        api_version=offer.api_version,
        leaves=_leaves_to_proto(offer.leaves),
        msrs=_msrs_to_proto(sorted(offer.msrs.items())),
    )


def offer_from_proto(msg: profile_pb2.RawHypervisorOffer) -> RawOffer:
    msrs: dict[int, int] = {}
    for m in msg.msrs:
        if m.index in msrs and msrs[m.index] != m.value:
            raise RawDataError(
                f"hypervisor offer: MSR 0x{m.index:x} is given twice with different values"
            )
        msrs[m.index] = m.value
    return RawOffer(
        kind=msg.kind,
        api_version=msg.api_version,
        leaves=_leaves_from_proto(msg.leaves, "hypervisor offer"),
        msrs=msrs,
    )


def decoded_offer_to_proto(offer: HypervisorOffer) -> profile_pb2.HypervisorOffer:
    return profile_pb2.HypervisorOffer(
        kind=offer.kind,
        api_version=offer.api_version,
        features=sorted(offer.features),
        msrs=_msrs_to_proto(offer.msrs),
        fingerprint=offer.fingerprint,
        replayed=offer.replayed,
    )


def capture_to_proto(
    capture: RawCapture, captured_at: float | None = None, *, compact: bool = False
) -> profile_pb2.RawCapture:
    """The wire form; ``compact`` sends each distinct class of CPUs once (reports do)."""
    msg = profile_pb2.RawCapture(
        source=capture.source,
        microcode=capture.microcode or "",
        origin=capture.origin or "",
        extra=dict(capture.extra),
    )
    if compact:
        _split_to_proto(split_of(capture), msg)
    for cpu in () if compact else capture.cpus:
        out = msg.cpus.add(cpu=cpu.index)
        if cpu.xcr0 is not None:
            out.xcr0 = cpu.xcr0
        out.leaves.extend(_leaves_to_proto(cpu.leaves))
    tsc = capture.host_tsc
    if tsc is not None:
        msg.host_tsc.CopyFrom(
            profile_pb2.HostTsc(
                khz=tsc.khz or 0,
                source=tsc.source,
                scaling_source=tsc.scaling_source,
                missing=tsc.missing,
            )
        )
        if tsc.scaling is not None:
            msg.host_tsc.scaling = tsc.scaling
    if capture.offer is not None:
        msg.hypervisor_offer.CopyFrom(offer_to_proto(capture.offer))
    elif capture.offer_missing:
        msg.hypervisor_offer_missing = capture.offer_missing
    if captured_at is not None:
        ts = Timestamp()
        ts.FromNanoseconds(int(captured_at * 1e9))
        msg.captured_at.CopyFrom(ts)
    return msg


def _split_to_proto(split: SplitCpus, msg: profile_pb2.RawCapture) -> None:
    for leaves in split.classes:
        msg.cpu_classes.add().leaves.extend(_leaves_to_proto(leaves))
    for member in split.members:
        out = msg.compact_cpus.add(cpu=member.index, cpu_class=member.cpu_class)
        if member.xcr0 is not None:
            out.xcr0 = member.xcr0
        out.overrides.extend(
            profile_pb2.RegisterOverride(leaf=leaf, subleaf=sub, register=reg + 1, value=value)
            for leaf, sub, reg, value in member.overrides
        )


def split_from_proto(msg: profile_pb2.RawCapture) -> SplitCpus:
    """The compact form as sent (checked and expanded by :func:`cpu_classes.expand_cpus`)."""
    classes = tuple(
        _leaves_from_proto(c.leaves, f"CPU class {number}")
        for number, c in enumerate(msg.cpu_classes)
    )
    members = tuple(
        ClassMember(
            index=m.cpu,
            cpu_class=m.cpu_class,
            xcr0=m.xcr0 if m.HasField("xcr0") else None,
            overrides=tuple((o.leaf, o.subleaf, o.register - 1, o.value) for o in m.overrides),
        )
        for m in msg.compact_cpus
    )
    return SplitCpus(classes, members)


def capture_from_proto(msg: profile_pb2.RawCapture) -> RawCapture:
    """The domain capture of either form; duplicated leaves with different values, and a
    compact form that does not add up (see :func:`cpu_classes.expand_cpus`), are refused.
    The compact form stays beside the CPUs (`RawCapture.classes`) for the coordinator."""
    classes: CpuClasses | None = None
    if msg.cpu_classes or msg.compact_cpus:
        if msg.cpus:
            raise RawDataError(
                "the report gives its leaves twice, as cpus and as cpu_classes/compact_cpus; "
                "send one form"
            )
        classes = expand_classes(split_from_proto(msg))
        cpus = classes.cpus
    else:
        cpus = tuple(
            LogicalCpu(
                index=cpu_msg.cpu,
                leaves=_leaves_from_proto(cpu_msg.leaves, f"logical CPU {cpu_msg.cpu}"),
                xcr0=cpu_msg.xcr0 if cpu_msg.HasField("xcr0") else None,
            )
            for cpu_msg in msg.cpus
        )
    return RawCapture(
        cpus=cpus,
        source=msg.source,
        microcode=msg.microcode or None,
        origin=msg.origin or None,
        extra=dict(msg.extra),
        offer=offer_from_proto(msg.hypervisor_offer) if msg.HasField("hypervisor_offer") else None,
        offer_missing=None
        if msg.HasField("hypervisor_offer")
        else (msg.hypervisor_offer_missing or None),
        host_tsc=_host_tsc_from_proto(msg.host_tsc) if msg.HasField("host_tsc") else None,
        classes=classes,
    )


def _host_tsc_from_proto(msg: profile_pb2.HostTsc) -> HostTsc:
    return HostTsc(
        khz=msg.khz or None,
        source=msg.source,
        scaling=msg.scaling if msg.HasField("scaling") else None,
        scaling_source=msg.scaling_source,
        missing=msg.missing,
    )


def profile_to_proto(profile: Profile, microarchitecture: str = "") -> profile_pb2.ProcessorProfile:
    xs = profile.xsave
    msg = profile_pb2.ProcessorProfile(
        vendor=profile.vendor,
        brand=profile.brand,
        family=profile.family,
        model=profile.model,
        stepping=profile.stepping,
        x86_64_level=profile.x86_64_level or "",
        features=sorted(profile.features),
        xsave=profile_pb2.Xsave(
            supported_mask=xs.supported_mask,
            supervisor_mask=xs.supervisor_mask,
            max_size=xs.max_size,
            components=[
                profile_pb2.XsaveComponent(
                    index=c.index,
                    name=c.name,
                    size=c.size,
                    offset=c.offset,
                    supervisor=c.supervisor,
                )
                for c in xs.components
            ],
        ),
        address_sizes=profile_pb2.AddressSizes(
            physical_bits=profile.address_sizes.physical_bits,
            linear_bits=profile.address_sizes.linear_bits,
            guest_physical_bits=profile.address_sizes.guest_physical_bits or 0,
        ),
        tsc=profile_pb2.Tsc(
            hz=profile.tsc.hz or 0,
            source=profile.tsc.source,
            scaling_source=profile.tsc.scaling_source,
            missing=profile.tsc.missing,
        ),
        avx10_version=profile.avx10_version or 0,
        hypervisor=profile.hypervisor or "",
        invariant_tsc=profile.invariant_tsc,
        tsc_hz=profile.tsc_hz or 0,
        microcode=profile.microcode or "",
        source=profile.source,
        replayed=profile.replayed,
        fingerprint=profile.fingerprint,
        origin=profile.raw.origin or "",
        logical_cpu_count=profile.logical_cpu_count,
        microarchitecture=microarchitecture,
    )
    if xs.enabled_mask is not None:
        msg.xsave.enabled_mask = xs.enabled_mask
    if profile.tsc.scaling is not None:
        msg.tsc.scaling = profile.tsc.scaling
    if profile.hypervisor_offer is not None:
        msg.hypervisor_offer.CopyFrom(decoded_offer_to_proto(profile.hypervisor_offer))
    else:
        msg.hypervisor_offer_missing = profile.hypervisor_offer_missing or ""
    for t in profile.cpu_types:
        msg.cpu_types.add(
            logical_cpus=list(t.logical_cpus),
            features=sorted(t.features),
            fingerprint=t.fingerprint,
            family=t.family,
            model=t.model,
            stepping=t.stepping,
            core_type=t.core_type or "",
        )
    return msg


def summary_to_proto(profile: Profile, microarchitecture: str = "") -> profile_pb2.ProfileSummary:
    return profile_pb2.ProfileSummary(
        vendor=profile.vendor,
        brand=profile.brand,
        family=profile.family,
        model=profile.model,
        stepping=profile.stepping,
        x86_64_level=profile.x86_64_level or "",
        microarchitecture=microarchitecture,
        hypervisor=profile.hypervisor or "",
        feature_count=len(profile.features),
        logical_cpu_count=profile.logical_cpu_count,
        cpu_type_count=len(profile.cpu_types),
        physical_bits=profile.address_sizes.physical_bits,
        microcode=profile.microcode or "",
        source=profile.source,
    )
