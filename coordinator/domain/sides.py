"""The two sides of every question, built one way: a source's requirement, a target's view.

`check`, `targets`, the audit, the policy engine, fail-over plans and stamps
all ask the same engine (`compat.check`) and must never disagree, so each
side is built here and nowhere else. A side is a decoded processor
(`Profile`: a registered host, a dump, this host) or a named `Baseline`.

The rule for bits a capture cannot tell (``Profile.unknown_features``):

- as a source they never add requirements (`Requirement.from_profile` keeps
  only features the capture shows present);
- as a target they count as present, and `check` names the ones a
  requirement needs in a FEATURES_UNKNOWN warning.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from cpucompat.agent.profile import Profile

from .compat import TargetView
from .kvm_offerable import Hypervisor, guest_sees
from .mitigations import arch_capabilities_no, as_guest_sees, satisfied
from .requirement import Requirement, usable_xsave_mask_of

if TYPE_CHECKING:
    from .baselines import Baseline


def requirement_of(
    side: Profile | Baseline,
    name: str,
    *,
    invtsc: bool = False,
    sgx_epc: bool = False,
    hypervisor: Hypervisor = Hypervisor.GENERIC,
) -> Requirement:
    """What a VM booted on ``side`` needs from its restore target.

    ``name`` labels a processor's requirement; a baseline's requirement
    carries the baseline's resolved name (``level:x86-64-v3@intel``).
    ``invtsc`` and ``sgx_epc`` are the VM's own configuration (an invariant
    TSC, an SGX enclave page cache); without them, the defaults of QEMU and
    libvirt: no invtsc, no EPC, so SGX features do not count. ``hypervisor``
    says which rules tell what the guest saw (`kvm_offerable`); the requirement
    names them in ``view``.
    """
    req = (
        Requirement.from_profile(side, name, hypervisor)
        if isinstance(side, Profile)
        else side.requirement().under(hypervisor)
    )
    return req.with_guest(invtsc=invtsc, sgx_epc=sgx_epc) if invtsc or sgx_epc else req


def target_of(
    side: Profile | Baseline,
    name: str,
    *,
    stale: bool = False,
    replayed: bool | None = None,
    hypervisor: Hypervisor = Hypervisor.GENERIC,
) -> TargetView:
    """What ``side`` offers a restore (``replayed`` None: a profile's own flag).

    Under ``hypervisor`` KVM a target without a hypervisor offer offers only what
    KVM can ever offer a guest there, plus what KVM emulates everywhere
    (`kvm_offerable`); a target with an offer is judged by its offer alone (the
    real answer takes precedence over the table).
    """
    if isinstance(side, Profile):
        view = TargetView.from_profile(side, name, stale=stale, replayed=replayed)
        # Kernel-synthesised bits from the offer where there is one; a mitigation the
        # target lacks but is not affected by counts as satisfied (`mitigations`).
        seen = as_guest_sees(side, view.features)
        if side.hypervisor_offer is None:
            seen = guest_sees(seen, hypervisor)
        seen |= satisfied(seen, arch_capabilities_no(side.hypervisor_offer))
        if seen == view.features:
            return view
        return replace(view, features=seen, xsave_mask=usable_xsave_mask_of(view.xsave_mask, seen))
    # A Baseline object exists, so its module is loaded already: no import cost here.
    from .baselines import nearest_level

    # Exactly the baseline's features and its address width if it fixes one (a QEMU
    # model's phys-bits); no family or TSC to compare.
    features = guest_sees(side.features, hypervisor)
    return TargetView(
        name=name,
        vendor=side.vendor or "",
        features=features,
        xsave_mask=usable_xsave_mask_of(side.xsave_mask, features),
        physical_bits=side.physical_bits,
        stale=stale,
        replayed=bool(replayed),
        x86_64_level=nearest_level(features),
    )
