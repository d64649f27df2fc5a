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

from typing import TYPE_CHECKING

from cpucompat.agent.profile import Profile

from .compat import TargetView
from .requirement import Requirement

if TYPE_CHECKING:
    from .baselines import Baseline


def requirement_of(
    side: Profile | Baseline, name: str, *, invtsc: bool = False, sgx_epc: bool = False
) -> Requirement:
    """What a VM booted on ``side`` needs from its restore target.

    ``name`` labels a processor's requirement; a baseline's requirement
    carries the baseline's resolved name (``level:x86-64-v3@intel``).
    ``invtsc`` and ``sgx_epc`` are the VM's own configuration (an invariant
    TSC, an SGX enclave page cache); without them, the defaults of QEMU and
    libvirt: no invtsc, no EPC, so SGX features do not count.
    """
    req = Requirement.from_profile(side, name) if isinstance(side, Profile) else side.requirement()
    return req.with_guest(invtsc=invtsc, sgx_epc=sgx_epc) if invtsc or sgx_epc else req


def target_of(
    side: Profile | Baseline,
    name: str,
    *,
    stale: bool = False,
    replayed: bool | None = None,
) -> TargetView:
    """What ``side`` offers a restore (``replayed`` None: a profile's own flag)."""
    if isinstance(side, Profile):
        return TargetView.from_profile(side, name, stale=stale, replayed=replayed)
    # A Baseline object exists, so its module is loaded already: no import cost here.
    from .baselines import nearest_level

    # Exactly the baseline's features and its address width if it fixes one (a QEMU
    # model's phys-bits); no family or TSC to compare.
    return TargetView(
        name=name,
        vendor=side.vendor or "",
        features=side.features,
        xsave_mask=side.xsave_mask,
        physical_bits=side.physical_bits,
        stale=stale,
        replayed=bool(replayed),
        x86_64_level=nearest_level(side.features),
    )
