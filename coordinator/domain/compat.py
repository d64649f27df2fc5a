"""The compatibility engine: may a saved state be restored on a target host?

`check` is directional and reports, in DESIGN's order, every reason a target
refuses a requirement, then the warnings. The audit and the eligible-target
search call it across many profiles, so both sides are compiled once into
integers (one bit per feature name) and verdicts are cached per distinct
pair of decision keys: the cost follows distinct profiles, not hosts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import compress
from operator import attrgetter
from typing import Any

from cpucompat.agent.decode import FEATURE_CLASS
from cpucompat.agent.feature_table import FeatureClass, bits_named
from cpucompat.agent.profile import Profile

from ..cache import Memo
from .kvm_offerable import GENERIC_VIEW
from .mitigations import KERNEL_SYNTHESISED, kernel_decides, kernel_dependent, kernel_may_set
from .requirement import (
    FEATURE_CLASSES_VIEW,
    LEGACY_XSAVE_MASK,
    Requirement,
    component_names,
    decides,
    mask_indices,
    offer_view,
    offers_nested,
    usable_xsave_mask,
)

# Refusal codes, in the order DESIGN reports them.
VENDOR_MISMATCH = "VENDOR_MISMATCH"
MISSING_FEATURES = "MISSING_FEATURES"
XSAVE_STATE_MISSING = "XSAVE_STATE_MISSING"
AVX10_VERSION_LOWER = "AVX10_VERSION_LOWER"
PHYS_ADDR_BITS_SMALLER = "PHYS_ADDR_BITS_SMALLER"
GUEST_PHYS_ADDR_BITS_SMALLER = "GUEST_PHYS_ADDR_BITS_SMALLER"
TSC_FREQUENCY_DIFFERS = "TSC_FREQUENCY_DIFFERS"
TSC_FREQUENCY_UNKNOWN = "TSC_FREQUENCY_UNKNOWN"
UNKNOWN_HOST = "UNKNOWN_HOST"
REFUSAL_ORDER = (
    VENDOR_MISMATCH,
    MISSING_FEATURES,
    AVX10_VERSION_LOWER,
    XSAVE_STATE_MISSING,
    PHYS_ADDR_BITS_SMALLER,
    GUEST_PHYS_ADDR_BITS_SMALLER,
    TSC_FREQUENCY_DIFFERS,
    TSC_FREQUENCY_UNKNOWN,
    UNKNOWN_HOST,
)
# Warning codes: the restore may go ahead, but someone should know.
VENDOR_NOT_CHECKED = "VENDOR_NOT_CHECKED"
FAMILY_MODEL_CHANGED = "FAMILY_MODEL_CHANGED"
STEPPING_CHANGED = "STEPPING_CHANGED"
NESTED_VIRT_DIFFERS = "NESTED_VIRT_DIFFERS"
TSC_NOT_INVARIANT = "TSC_NOT_INVARIANT"
FEATURES_UNKNOWN = "FEATURES_UNKNOWN"
STALE_PROFILE = "STALE_PROFILE"
REPLAYED_PROFILE = "REPLAYED_PROFILE"
MITIGATIONS_FROM_KERNEL = "MITIGATIONS_FROM_KERNEL"

GUEST_VISIBLE_REASON = (
    "a hypervisor can expose it and a guest can depend on it (DESIGN: guest-visible); "
    "the table gives no further reason"
)
"""What explain_feature says for guest-visible rows whose table entry carries no reason."""

TSC_TOLERANCE_PPM = 250
"""KVM's ``tsc_tolerance_ppm`` (arch/x86/kvm/x86.c): a guest TSC rate within this of the
host's runs unscaled; beyond it KVM needs TSC scaling, and QEMU's
``kvm_arch_set_tsc_khz`` fails the vCPU ("TSC frequency mismatch ... TSC scaling
unavailable") when the host has none."""

SUMMARY_FEATURES = 8
"""How many missing feature names the one-line summary spells out before '...'."""


@dataclass(frozen=True)
class Reason:
    """One machine-readable cause of a refusal or warning, with a human line."""

    code: str
    detail: str
    features: tuple[str, ...] = ()
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "detail": self.detail,
            "features": list(self.features),
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class Verdict:
    """A target's answer to one requirement: refusals decide, warnings only inform."""

    compatible: bool
    reasons: tuple[Reason, ...]
    warnings: tuple[Reason, ...]
    summary: str
    view: str = GENERIC_VIEW
    """The rules that said what the guest sees (`kvm_offerable`): named in every answer."""

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(r.code for r in self.reasons)

    def reason(self, code: str) -> Reason | None:
        """The refusal (or warning) with ``code``, if any."""
        for r in (*self.reasons, *self.warnings):
            if r.code == code:
                return r
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "compatible": self.compatible,
            "reasons": [r.to_json() for r in self.reasons],
            "warnings": [w.to_json() for w in self.warnings],
            "summary": self.summary,
            "view": self.view,
        }


def unknown_host(name: str) -> Verdict:
    """The verdict for a target nobody has registered: refuse, never guess."""
    reason = Reason(
        UNKNOWN_HOST,
        f"host {name!r} is not registered; start its agent or register it before planning",
        data={"host": name},
    )
    return Verdict(False, (reason,), (), f"refused: {reason.detail}")


# --- feature classes, explained -------------------------------------------------------


def explain_feature(name: str) -> tuple[FeatureClass, str]:
    """The table's class for a feature (any accepted spelling) and the reason written beside it.

    Raises the table's UnknownFeatureError for names it does not know.
    """
    rows = bits_named(name)
    cls, reason = rows[0].cls, rows[0].reason
    if not reason and cls is FeatureClass.GUEST_VISIBLE:
        reason = GUEST_VISIBLE_REASON
    return cls, reason


# --- target view ---------------------------------------------------------------------------


def tsc_scaling_of(profile: Profile) -> bool | None:
    """Whether the host can scale a guest's TSC; None when nobody reported it.

    AMD states it in the SVM leaf 0x8000000A EDX bit 4 (TscRateMsr); Intel in
    ``IA32_VMX_PROCBASED_CTLS2`` bit 25, which only the live agent reads (the
    kernel's ``vmx flags``). The decoder puts either in ``profile.tsc``.
    """
    return profile.tsc.scaling


@dataclass(frozen=True, slots=True)
class TargetView:
    """What a target host offers a restore, with the flags that only warn.

    ``xsave_mask`` is the user XSAVE components it can give guests (see
    `usable_xsave_mask`); ``tsc_scaling`` is None when CPUID cannot tell.
    The compiled form is made at construction and kept in a slot: searches
    over thousands of views then touch one small object per host.
    """

    name: str
    vendor: str
    features: frozenset[str]
    xsave_mask: int
    physical_bits: int | None
    family: int | None = None
    model: int | None = None
    invariant_tsc: bool = False
    tsc_hz: int | None = None
    tsc_scaling: bool | None = None
    stale: bool = False
    replayed: bool = False
    fingerprint: str = ""
    guest_physical_bits: int | None = None
    """The guest-physical width the target states (None: its physical width)."""
    avx10_version: int | None = None
    brand: str = ""
    x86_64_level: str | None = None
    unknown_features: frozenset[str] = frozenset()
    """Features the target's capture cannot tell (a dump without their leaf): counted as
    present, never as missing, and named in a FEATURES_UNKNOWN warning when required."""
    view: str = FEATURE_CLASSES_VIEW
    """``offer: kvm`` when ``features`` are the target's hypervisor offer."""
    stepping: int | None = None
    nested: bool | None = None
    """Whether it offers guests nested virtualisation (None: not a processor, not told)."""
    kernel_mitigations: bool = False
    """Its guests' view of the kernel-synthesised mitigation bits is its kernel's, unknown
    here (an AMD or Hygon host without a hypervisor offer, `mitigations.kernel_decides`)."""
    guest_features: frozenset[str] = field(init=False, repr=False, compare=False)
    """The features that take part in decisions."""
    compiled: _Compiled = field(init=False, repr=False, compare=False)
    """The interned integer form the engine compares."""
    _profile_key: str | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        # Frozen: derived values are set once here, never changed after.
        object.__setattr__(
            self, "guest_features", frozenset(f for f in self.features if decides(f))
        )
        object.__setattr__(self, "compiled", _COMPILER.target(self))

    @classmethod
    def from_profile(
        cls,
        profile: Profile,
        name: str,
        *,
        stale: bool = False,
        replayed: bool | None = None,
    ) -> TargetView:
        """A host's view from its decoded profile (``replayed`` defaults to the profile's own).

        Unknown bits count as present, for features and for the XSAVE state
        they gate alike (callers go through `sides.target_of`). A host with a
        hypervisor offer accepts only what the offer gives a guest.
        """
        offer = profile.hypervisor_offer
        own = profile.features if offer is None else offer.features
        offered = own | profile.unknown_features
        view = FEATURE_CLASSES_VIEW if offer is None else offer_view(offer.kind)
        return cls(
            name=name,
            vendor=profile.vendor,
            features=offered,
            xsave_mask=usable_xsave_mask(profile.xsave, offered),
            physical_bits=profile.address_sizes.physical_bits,
            family=profile.family,
            model=profile.model,
            invariant_tsc=profile.invariant_tsc,
            tsc_hz=profile.tsc.hz,
            tsc_scaling=tsc_scaling_of(profile),
            stale=stale,
            replayed=profile.replayed if replayed is None else replayed,
            fingerprint=profile.fingerprint,
            brand=profile.brand,
            x86_64_level=profile.x86_64_level,
            unknown_features=profile.unknown_features,
            guest_physical_bits=profile.address_sizes.guest_physical_bits,
            avx10_version=profile.avx10_version,
            view=view,
            stepping=profile.stepping,
            nested=offers_nested(profile),
            kernel_mitigations=kernel_decides(profile),
        )

    @property
    def profile_key(self) -> str:
        """The profile fingerprint, or a digest of the decision fields when none was given."""
        if self.fingerprint:
            return self.fingerprint
        if self._profile_key is None:
            doc = [
                self.vendor,
                sorted(self.guest_features),
                self.xsave_mask,
                self.physical_bits,
                self.family,
                self.model,
            ] + [x for x in (self.guest_physical_bits, self.avx10_version) if x is not None]
            digest = hashlib.sha256(json.dumps(doc).encode()).hexdigest()
            object.__setattr__(self, "_profile_key", "view:" + digest)
        assert self._profile_key is not None
        return self._profile_key

    @property
    def decision_key(self) -> tuple[Any, ...]:
        """Everything a verdict depends on (host flags included), hashable."""
        return (
            self.vendor,
            self.guest_features,
            self.xsave_mask | LEGACY_XSAVE_MASK,
            self.physical_bits,
            self.family,
            self.model,
            self.invariant_tsc,
            self.tsc_hz,
            self.tsc_scaling,
            self.stale,
            self.replayed,
            self.guest_physical_bits,
            self.avx10_version,
            self.view,
            self.stepping,
            self.nested,
            self.kernel_mitigations,
        )


# --- compiled forms ------------------------------------------------------------------------


class _Bits:
    """One bit position per feature name, assigned once; sets become ints."""

    def __init__(self, names: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self.position: dict[str, int] = {}
        self.names: list[str] = []
        for n in names:
            self._add(n)

    def _add(self, name: str) -> int:
        pos = self.position.get(name)
        if pos is None:
            pos = len(self.names)
            self.names.append(name)
            self.position[name] = pos
        return pos

    def mask(self, names: Iterable[str]) -> int:
        position = self.position
        m = 0
        for n in names:
            pos = position.get(n)
            if pos is None:
                with self._lock:
                    pos = self._add(n)
            m |= 1 << pos
        return m

    def unmask(self, mask: int) -> tuple[str, ...]:
        names = self.names
        return tuple(sorted(names[i] for i in range(mask.bit_length()) if mask >> i & 1))


_BITS = _Bits(sorted(n for n, c in FEATURE_CLASS.items() if c is FeatureClass.GUEST_VISIBLE))


@dataclass(frozen=True, slots=True, eq=False)
class _Compiled:
    """A requirement or target as integers; interned, so identity is equality."""

    ident: int
    vendor: str | None
    features: int
    xsave: int
    physical_bits: int | None
    family: int | None
    model: int | None
    invariant_tsc: bool
    tsc_hz: int | None
    tsc_scaling: bool | None
    stale: bool
    replayed: bool
    guest_physical_bits: int | None
    avx10_version: int | None
    kernel_mitigations: bool = False
    view: str = GENERIC_VIEW
    stepping: int | None = None
    nested: bool | None = None
    kernel_bits: frozenset[str] = frozenset()
    """What this side's host kernel may set of the kernel-synthesised bits (none with an
    offer: `mitigations.kernel_may_set`)."""
    tsc_fixed: bool = False
    """A requirement whose TSC rate is the VM's own (``Requirement.tsc_fixed``)."""


class _Compiler:
    """Interns decision keys: equal keys share one compiled form and one small integer id.

    The tables are bounded memos of the coordinator's one cache module: keys are
    content (decision keys; ids are never reused), so an entry never goes stale and an
    evicted one is only compiled again, under a new id.
    """

    # Distinct decision keys: profiles x flags x rules, far below this in any fleet;
    # verdicts: distinct (requirement, target) pairs an audit or search meets.
    COMPILED_ENTRIES = 50_000
    VERDICT_ENTRIES = 200_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requirements: Memo[tuple[Any, ...], _Compiled] = Memo(
            "compiled requirements", self.COMPILED_ENTRIES
        )
        self._targets: Memo[tuple[Any, ...], _Compiled] = Memo(
            "compiled targets", self.COMPILED_ENTRIES
        )
        self._verdicts: Memo[tuple[int, int], Verdict] = Memo("verdicts", self.VERDICT_ENTRIES)
        self._next = 0

    def _ident(self) -> int:
        with self._lock:
            self._next += 1
            return self._next

    def requirement(self, req: Requirement) -> _Compiled:
        key = req.decision_key
        c = self._requirements.get(key)
        if c is None:
            c = _Compiled(
                ident=self._ident(),
                vendor=req.vendor,
                features=_BITS.mask(f for f in req.features if decides(f)),
                xsave=req.xsave_mask,
                physical_bits=req.physical_bits,
                family=req.family,
                model=req.model,
                invariant_tsc=req.invariant_tsc,
                tsc_hz=req.tsc_hz,
                tsc_scaling=None,
                stale=False,
                replayed=False,
                guest_physical_bits=req.guest_physical_bits,
                avx10_version=req.avx10_version,
                kernel_mitigations=req.kernel_mitigations,
                view=req.view,
                stepping=req.stepping,
                nested=req.nested,
                kernel_bits=_kernel_bits(req.kernel_mitigations, req.vendor, req.family),
                tsc_fixed=req.tsc_fixed,
            )
            c = self._requirements.put(key, c)
        return c

    def target(self, view: TargetView) -> _Compiled:
        key = view.decision_key
        c = self._targets.get(key)
        if c is None:
            c = _Compiled(
                ident=self._ident(),
                vendor=view.vendor,
                features=_BITS.mask(view.guest_features),
                xsave=view.xsave_mask | LEGACY_XSAVE_MASK,
                physical_bits=view.physical_bits,
                family=view.family,
                model=view.model,
                invariant_tsc=view.invariant_tsc,
                tsc_hz=view.tsc_hz,
                tsc_scaling=view.tsc_scaling,
                stale=view.stale,
                replayed=view.replayed,
                guest_physical_bits=view.guest_physical_bits,
                avx10_version=view.avx10_version,
                view=view.view,
                stepping=view.stepping,
                nested=view.nested,
                kernel_mitigations=view.kernel_mitigations,
                kernel_bits=_kernel_bits(view.kernel_mitigations, view.vendor, view.family),
            )
            c = self._targets.put(key, c)
        return c

    def verdicts(self, req: _Compiled, targets: Sequence[_Compiled]) -> list[Verdict]:
        """`verdict` against each of ``targets``: the held ones under one lock."""
        held = self._verdicts.get_many([(req.ident, t.ident) for t in targets])
        return [
            v if v is not None else self.verdict(req, t) for v, t in zip(held, targets, strict=True)
        ]

    def verdict(self, req: _Compiled, tgt: _Compiled) -> Verdict:
        key = (req.ident, tgt.ident)
        v = self._verdicts.get(key)
        if v is None:
            v = self._verdicts.put(key, _judge(req, tgt))
        return v


def _kernel_bits(unknown: bool, vendor: str | None, family: int | None) -> frozenset[str]:
    return kernel_may_set(vendor, family) if unknown else frozenset()


_COMPILER = _Compiler()
_SYNTHESISED_MASK = _BITS.mask(KERNEL_SYNTHESISED)
_COMPILED_OF = attrgetter("compiled")


def _short_list(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SUMMARY_FEATURES])
    rest = len(names) - SUMMARY_FEATURES
    return shown + (f", \u2026 and {rest} more" if rest > 0 else "")


def _judge(req: _Compiled, tgt: _Compiled) -> Verdict:
    reasons: list[Reason] = []
    warnings: list[Reason] = []

    # 1. vendor (a vendorless baseline on either side cannot be checked)
    if req.vendor is None or not tgt.vendor:
        warnings.append(
            Reason(
                VENDOR_NOT_CHECKED,
                "the baseline names no vendor, so the vendor was not checked; "
                "name one (e.g. level:x86-64-v3@intel) for a real VM",
                data={"target": tgt.vendor},
            )
        )
    elif req.vendor != tgt.vendor:
        reasons.append(
            Reason(
                VENDOR_MISMATCH,
                f"vendor differs: saved on {(req.vendor or '').strip()}, target is {(tgt.vendor or '').strip()}",
                data={"required": req.vendor, "target": tgt.vendor},
            )
        )
    # 2. guest-visible features
    missing = req.features & ~tgt.features
    if missing:
        names = _BITS.unmask(missing)
        reasons.append(
            Reason(
                MISSING_FEATURES,
                f"{len(names)} guest-visible feature(s) missing on the target: "
                f"{_short_list(names)}",
                features=names,
            )
        )
    # 2b. AVX10 version: the guest chose code paths for this version (Intel AVX10 spec,
    # CPUID 0x24 EBX[7:0]); QEMU's x86_cpu_filter_features drops AVX10 on a lower host.
    # A target whose dump lacks leaf 0x24 has it unknown: counted as present.
    if (
        req.avx10_version is not None
        and tgt.avx10_version is not None
        and tgt.avx10_version < req.avx10_version
    ):
        reasons.append(
            Reason(
                AVX10_VERSION_LOWER,
                f"the guest saw AVX10.{req.avx10_version}; the target offers only "
                f"AVX10.{tgt.avx10_version}",
                data={"required": req.avx10_version, "target": tgt.avx10_version},
            )
        )
    # 3. XSAVE state
    xmissing = req.xsave & ~tgt.xsave
    if xmissing:
        comps = component_names(xmissing)
        reasons.append(
            Reason(
                XSAVE_STATE_MISSING,
                f"XSAVE state the guest may use is not supported: {', '.join(comps)}",
                data={"components": list(comps), "indices": list(mask_indices(xmissing))},
            )
        )
    # 4. physical address width
    if (
        req.physical_bits is not None
        and tgt.physical_bits is not None
        and tgt.physical_bits < req.physical_bits
    ):
        reasons.append(
            Reason(
                PHYS_ADDR_BITS_SMALLER,
                f"physical address width {tgt.physical_bits} bits is below the "
                f"required {req.physical_bits}",
                data={"required": req.physical_bits, "target": tgt.physical_bits},
            )
        )
    # 4b. guest-physical width (0x80000008 EAX[23:16]; QEMU's guest-phys-bits, capped by KVM
    # at 48 without 5-level EPT/NPT): firmware sized the guest's 64-bit MMIO window from it.
    # Compared when either side states one; otherwise it is the physical width, above.
    if req.guest_physical_bits is not None or tgt.guest_physical_bits is not None:
        need = req.guest_physical_bits or req.physical_bits
        have = tgt.guest_physical_bits or tgt.physical_bits
        if need is not None and have is not None and have < need:
            reasons.append(
                Reason(
                    GUEST_PHYS_ADDR_BITS_SMALLER,
                    f"guest-physical address width {have} bits is below the {need} the guest saw",
                    data={"required": need, "target": have},
                )
            )
    real_target = tgt.family is not None  # a named baseline has no family, model or TSC
    # 4c. TSC rate of a guest with invariant TSC (QEMU invtsc) or a fixed rate (QEMU
    # tsc-frequency, libvirt <timer name='tsc' frequency>): see TSC_TOLERANCE_PPM.
    pinned = req.invariant_tsc or req.tsc_fixed
    if pinned and real_target and tgt.tsc_scaling is not True:
        how = "cannot scale" if tgt.tsc_scaling is False else "is not known to scale"
        data = {
            "required_hz": req.tsc_hz,
            "target_hz": tgt.tsc_hz,
            "tsc_scaling": tgt.tsc_scaling,
            "tolerance_ppm": TSC_TOLERANCE_PPM,
            "tsc_fixed": req.tsc_fixed,
        }
        guest = "a fixed TSC rate" if req.tsc_fixed else "an invariant TSC"
        if not req.tsc_hz or not tgt.tsc_hz:
            side = "the guest's" if not req.tsc_hz else "the target's"
            reasons.append(
                Reason(
                    TSC_FREQUENCY_UNKNOWN,
                    f"the guest has {guest}, {side} TSC rate is unknown and the "
                    f"target {how} a guest's TSC; probe the host live (its kernel states "
                    "the rate)",
                    data=data,
                )
            )
        elif abs(req.tsc_hz - tgt.tsc_hz) * 1_000_000 > TSC_TOLERANCE_PPM * tgt.tsc_hz:
            runs = (
                f"the guest's TSC is fixed at {req.tsc_hz} Hz (tsc-frequency)"
                if req.tsc_fixed
                else f"the guest's invariant TSC runs at {req.tsc_hz} Hz"
            )
            reasons.append(
                Reason(
                    TSC_FREQUENCY_DIFFERS,
                    f"{runs}, the target's at {tgt.tsc_hz} Hz (beyond KVM's "
                    f"{TSC_TOLERANCE_PPM} ppm) and the target {how} a guest's TSC",
                    data=data,
                )
            )
    # 5. warnings
    if (
        req.family is not None
        and req.model is not None
        and real_target
        and (req.family, req.model) != (tgt.family, tgt.model)
    ):
        warnings.append(
            Reason(
                FAMILY_MODEL_CHANGED,
                f"family/model changes from {req.family:#x}/{req.model:#x} to "
                f"{tgt.family or 0:#x}/{tgt.model or 0:#x}: the guest chose errata paths "
                "for the old one",
                data={
                    "required": [req.family, req.model],
                    "target": [tgt.family, tgt.model],
                },
            )
        )
    # Kernel-synthesised mitigation bits (`mitigations`): warn only where the verdict
    # changes when both host kernels set what they may (Rome -> Milan: TSA_*_NO).
    depends = kernel_dependent(
        frozenset(_BITS.unmask(req.features & _SYNTHESISED_MASK)),
        req.kernel_bits,
        frozenset(_BITS.unmask(tgt.features & _SYNTHESISED_MASK)),
        tgt.kernel_bits,
    )
    if depends:
        sides = " and ".join(
            side
            for side, unknown in (("source", req.kernel_bits), ("target", tgt.kernel_bits))
            if unknown
        )
        warnings.append(
            Reason(
                MITIGATIONS_FROM_KERNEL,
                f"the {sides} has no hypervisor offer, and this verdict depends on mitigation "
                f"bits a host kernel sets for its guests ({', '.join(sorted(depends))}), not "
                "on raw CPUID; probe both hosts live where /dev/kvm is readable",
                features=tuple(sorted(depends)),
            )
        )
    # Linux picks some mitigations by stepping (arch/x86/kernel/cpu/common.c,
    # cpu_vuln_blacklist: VULNBL_INTEL_STEPPINGS with X86_STEPPINGS ranges).
    if (
        req.stepping is not None
        and tgt.stepping is not None
        and real_target
        and (req.family, req.model) == (tgt.family, tgt.model)
        and req.stepping != tgt.stepping
    ):
        warnings.append(
            Reason(
                STEPPING_CHANGED,
                f"stepping changes from {req.stepping} to {tgt.stepping} within family/model "
                f"{req.family or 0:#x}/{req.model or 0:#x}: the guest chose some mitigations "
                "by stepping at boot",
                data={"required": req.stepping, "target": tgt.stepping},
            )
        )
    if req.nested and tgt.nested is False:
        warnings.append(
            Reason(
                NESTED_VIRT_DIFFERS,
                "the source offered nested virtualisation (vmx/svm) and the target does "
                "not: guests the VM runs itself stop working",
            )
        )
    if req.invariant_tsc and real_target and not tgt.invariant_tsc:
        warnings.append(
            Reason(
                TSC_NOT_INVARIANT,
                "the guest saw an invariant TSC; the target's TSC is not invariant",
            )
        )
    if tgt.stale:
        warnings.append(
            Reason(
                STALE_PROFILE,
                "the target's profile is stale (its agent missed heartbeats): "
                "the processor may have changed",
            )
        )
    if tgt.replayed:
        warnings.append(
            Reason(
                REPLAYED_PROFILE,
                "the target's profile is replayed from a dump, not read from a live processor",
            )
        )

    compatible = not reasons
    if compatible:
        summary = "compatible"
        if warnings:
            summary += f" with {len(warnings)} warning(s): " + "; ".join(
                w.code.lower().replace("_", " ") for w in warnings
            )
    else:
        summary = "refused: " + "; ".join(_brief(r) for r in reasons)
    # The offer decides when either side's came from one (a requirement read from the
    # boot host's offer, or a target that accepts only what its own offer gives).
    view = req.view if req.view != FEATURE_CLASSES_VIEW else tgt.view
    return Verdict(compatible, tuple(reasons), tuple(warnings), summary, view)


def _brief(reason: Reason) -> str:
    if reason.code == MISSING_FEATURES:
        return f"missing {_short_list(reason.features)}"
    return reason.detail


def check(requirement: Requirement, target: TargetView) -> Verdict:
    """Whether ``target`` may restore a saved state with ``requirement``; directional."""
    return checker(requirement)(target)


def checker(requirement: Requirement) -> Callable[[TargetView], Verdict]:
    """`check` of one requirement against many targets, the requirement compiled once
    (its decision key is hashed once, not once per target)."""
    c = _COMPILER
    req = c.requirement(requirement)

    def against(target: TargetView) -> Verdict:
        verdict = c.verdict(req, target.compiled)
        # The verdict's view comes from both compiled sides (`_decide`): the requirement's
        # rules, or the target's offer when the requirement's are the classes.
        unknown = sorted(requirement.features & target.unknown_features)
        if not unknown:
            return verdict
        warning = Reason(
            FEATURES_UNKNOWN,
            f"the target's dump does not record {len(unknown)} required feature(s), taken as "
            f"present: {_short_list(unknown)}; re-dump it with `cpucompat probe --raw`",
            features=tuple(unknown),
        )
        return replace(verdict, warnings=(*verdict.warnings, warning))

    return against


def check_row(requirement: Requirement, targets: Sequence[TargetView]) -> list[Verdict]:
    """`check` of one requirement against each of ``targets`` (an audit's matrix row), the
    requirement compiled once and the held verdicts looked up together."""
    c = _COMPILER
    verdicts = c.verdicts(c.requirement(requirement), [t.compiled for t in targets])
    if not any(t.unknown_features for t in targets):
        return verdicts
    single = checker(requirement)  # the FEATURES_UNKNOWN warning, as `check` gives it
    return [single(t) if t.unknown_features else v for v, t in zip(verdicts, targets, strict=True)]


def eligible_targets(
    requirement: Requirement, hosts: Iterable[TargetView] | TargetIndex
) -> list[tuple[TargetView, Verdict]]:
    """Every host that accepts ``requirement``, in input order, with its verdict.

    The check runs once per distinct target decision key; hosts that share a
    profile (and flags) share the verdict object.
    """
    if isinstance(hosts, TargetIndex):
        return hosts.eligible(requirement)
    c = _COMPILER
    req = c.requirement(requirement)
    hosts = hosts if isinstance(hosts, list | tuple) else list(hosts)
    # C-level passes only (map/compress/zip): the per-host cost is a few dict lookups.
    targets = list(map(_COMPILED_OF, hosts))
    verdicts = _PerTarget(lambda t: c.verdict(req, t))
    accepted = _PerTarget(lambda t: verdicts[t].compatible)
    flags = list(map(accepted.__getitem__, targets))
    chosen = map(verdicts.__getitem__, compress(targets, flags))
    return list(zip(compress(hosts, flags), chosen, strict=True))


class _PerTarget(dict[Any, Any]):
    """A dict that fills itself on first lookup: one check per distinct target."""

    def __init__(self, make: Callable[[Any], Any]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: Any) -> Any:
        value = self[key] = self.make(key)
        return value


class TargetIndex:
    """Registered hosts grouped by decision key, for repeated eligible-target searches.

    Build once when hosts change; each search then costs one check per
    distinct profile plus the size of the answer. Results come grouped by
    profile (first-seen order), hosts of a group in input order.
    """

    def __init__(self, hosts: Iterable[TargetView]) -> None:
        groups: dict[int, tuple[_Compiled, list[TargetView]]] = {}
        for h in hosts:
            tgt = h.compiled
            entry = groups.get(tgt.ident)
            if entry is None:
                entry = groups[tgt.ident] = (tgt, [])
            entry[1].append(h)
        self._groups = list(groups.values())
        self.size = sum(len(g) for _, g in self._groups)

    @property
    def distinct(self) -> int:
        return len(self._groups)

    def eligible(self, requirement: Requirement) -> list[tuple[TargetView, Verdict]]:
        c = _COMPILER
        req = c.requirement(requirement)
        out: list[tuple[TargetView, Verdict]] = []
        for tgt, group in self._groups:
            v = c.verdict(req, tgt)
            if v.compatible:
                out.extend([(h, v) for h in group])
        return out
