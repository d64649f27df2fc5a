"""How a host's processor profile changed between two reports, in the event log's words.

Pure functions over decoded profiles: which differences make a new stored version
(the TSC rule, the hypervisor offer) and how the event and the version summary say it.
"""

from __future__ import annotations

from typing import Any

from cpucompat.agent.profile import Profile, Tsc

TSC_RECALIBRATION_PPM = 10
"""A re-read TSC rate within this of the stored one is the kernel's recalibration at boot,
not a change (KVM's own tolerance is 250 ppm)."""


def tsc_changed(old: Tsc, new: Tsc) -> bool:
    """True when the kernel's TSC report differs in a way decisions can notice."""
    if (old.source, old.scaling) != (new.source, new.scaling) or (old.hz is None) != (
        new.hz is None
    ):
        return True
    if old.hz is None or new.hz is None:
        return False
    return abs(old.hz - new.hz) * 1_000_000 > TSC_RECALIBRATION_PPM * old.hz


def version_summary(
    profile: Profile, offer_gained: list[str] | None = None, offer_lost: list[str] | None = None
) -> dict[str, Any]:
    """What a stored version shows in `host history` without decoding its leaves again."""
    offer = profile.hypervisor_offer
    return {
        "vendor": profile.vendor,
        "brand": profile.brand,
        "family": profile.family,
        "model": profile.model,
        "stepping": profile.stepping,
        "x86_64_level": profile.x86_64_level,
        "hypervisor": profile.hypervisor,
        "logical_cpus": profile.logical_cpu_count,
        "microcode": profile.microcode,
        "hypervisor_offer": None
        if offer is None
        else {
            "kind": offer.kind,
            "api_version": offer.api_version,
            "fingerprint": offer.fingerprint,
            "features_gained": offer_gained or [],
            "features_lost": offer_lost or [],
        },
        "hypervisor_offer_missing": profile.hypervisor_offer_missing,
    }


def offer_fingerprint(profile: Profile | None) -> str:
    offer = None if profile is None else profile.hypervisor_offer
    return "" if offer is None else offer.fingerprint


def offer_change(old: Profile, new: Profile) -> tuple[str, list[str], list[str]]:
    """How the hypervisor offer changed between two versions: (phrase, gained, lost)."""
    before, after = old.hypervisor_offer, new.hypervisor_offer
    old_features = set() if before is None else set(before.features)
    new_features = set() if after is None else set(after.features)
    gained = sorted(new_features - old_features)
    lost = sorted(old_features - new_features)
    if before is None and after is not None:
        return (
            f"hypervisor offer appeared ({after.kind} API {after.api_version}, "
            f"{len(after.features)} features)",
            gained,
            lost,
        )
    if after is None:
        why = new.hypervisor_offer_missing or "no reason given"
        return f"hypervisor offer disappeared ({why})", gained, lost
    kind = after.kind
    change = ", ".join(
        [f"gained {' '.join(gained)}"] * bool(gained) + [f"lost {' '.join(lost)}"] * bool(lost)
    )
    return (
        f"hypervisor offer ({kind}) changed: {change or 'same features, other details'}",
        gained,
        lost,
    )


def profile_changed(
    host_id: str,
    old_fingerprint: str,
    previous: Profile,
    profile: Profile,
    gained: list[str],
    lost: list[str],
    tsc_moved: bool,
) -> tuple[str, dict[str, Any]]:
    """The PROFILE_CHANGED event of a host whose stored profile changed: (message, details)."""
    offer_changed = offer_fingerprint(previous) != offer_fingerprint(profile)
    phrases = []
    if old_fingerprint != profile.fingerprint or tsc_moved:
        change = (
            ", ".join(
                [f"gained {' '.join(gained)}"] * bool(gained)
                + [f"lost {' '.join(lost)}"] * bool(lost)
                + ["TSC rate or scaling changed"] * tsc_moved
            )
            or "same features, other details"
        )
        phrases.append(f"processor profile changed: {change}")
    details: dict[str, Any] = {
        "features_gained": gained,
        "features_lost": lost,
        "old_fingerprint": old_fingerprint,
        "new_fingerprint": profile.fingerprint,
    }
    if offer_changed:
        offer_phrase, offer_gained, offer_lost = offer_change(previous, profile)
        phrases.append(offer_phrase)
        details |= {
            "offer_features_gained": offer_gained,
            "offer_features_lost": offer_lost,
            "old_offer_fingerprint": offer_fingerprint(previous),
            "new_offer_fingerprint": offer_fingerprint(profile),
        }
    return f"host {host_id} " + "; ".join(phrases), details
