"""Named baselines (psABI levels, archspec models) against real processors."""

from __future__ import annotations

import archspec.cpu
import pytest

from cpucompat.agent.decode import LEVEL_FEATURES
from cpucompat.agent.feature_table import FeatureClass, canonical_name
from cpucompat.coordinator.domain.baselines import (
    BaselineError,
    map_feature_names,
    model_names,
    nearest_level,
    nearest_microarchitecture,
    resolve_baseline,
    unmapped_archspec_features,
    xsave_mask_for,
)
from cpucompat.coordinator.domain.compat import (
    MISSING_FEATURES,
    VENDOR_MISMATCH,
    VENDOR_NOT_CHECKED,
    XSAVE_STATE_MISSING,
    TargetView,
    check,
)
from cpucompat.coordinator.domain.requirement import Mode, Requirement, feature_class
from tests.support.paths import SHARED_DUMPS as DUMPS
from tests.support.shared import shared_profile as profile

ICELAKE_CLIENT = "intel-x86-64-sunny-cove-intel-core-i5-1035g4-cpu.txt"
SKYLAKE_SP = "instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt"
SAPPHIRE_RAPIDS = "instlatx64-GenuineIntel00806F8_SapphireRapids_05_CPUID.txt"
HASWELL = "intel-x86-64-haswell-intel-core-i7-4750hq-cpu.txt"
MILAN = "instlatx64-AuthenticAMD0A00F11_K19_Milan_02_CPUID.txt"


def view(name: str) -> TargetView:
    return TargetView.from_profile(profile(name), name)


def test_every_archspec_feature_maps_or_is_listed() -> None:
    """archspec spells some features its own way; each maps through the table or is listed."""
    mapped_or_listed = unmapped_archspec_features()
    for name in model_names():
        baseline = resolve_baseline(f"model:{name}")
        target = archspec.cpu.TARGETS[name]
        for feature in target.features:
            if feature in baseline.unmapped:
                continue
            canonical = canonical_name(feature)
            assert canonical in baseline.features or canonical in dict(baseline.ignored), (
                name,
                feature,
            )
        assert baseline.unmapped == mapped_or_listed.get(name, ())
    # archspec's 'sse3' is Linux's 'pni': the alias must carry it.
    assert "pni" in resolve_baseline("model:x86_64_v2").features


def test_unmapped_archspec_features_are_listed() -> None:
    """Today the table maps every archspec x86-64 feature; a name it cannot map is listed."""
    assert unmapped_archspec_features() == {}
    features, ignored, unmapped = map_feature_names(["sse3", "sse4.1", "tsc_adjust", "warp9"])
    assert features == {"pni", "sse4_1"}
    assert ignored == (("tsc_adjust", "hypervisor-emulated"),)
    assert unmapped == ("warp9",)


def test_baseline_requirements_hold_guest_visible_features_only() -> None:
    for name in ("level:x86-64-v3@intel", "model:icelake", "model:zen3"):
        req = resolve_baseline(name).requirement()
        assert req.mode is Mode.BASELINE and req.baseline == name
        assert req.physical_bits is None
        for feature in req.features:
            assert feature_class(feature) is FeatureClass.GUEST_VISIBLE, (name, feature)


def test_model_vendor_comes_from_archspec() -> None:
    assert resolve_baseline("model:icelake").vendor == "GenuineIntel"
    assert resolve_baseline("model:zen3").vendor == "AuthenticAMD"
    assert resolve_baseline("model:x86_64_v3").vendor is None
    assert resolve_baseline("model:x86_64_v3@amd").vendor == "AuthenticAMD"
    with pytest.raises(BaselineError, match="GenuineIntel microarchitecture"):
        resolve_baseline("model:icelake@amd")


def test_icelake_baseline_against_real_dumps() -> None:
    icelake = resolve_baseline("model:icelake").requirement()
    # Sapphire Rapids runs an icelake VM.
    verdict = check(icelake, view(SAPPHIRE_RAPIDS))
    assert verdict.compatible, verdict.summary
    # archspec's icelake descends from cascadelake (server) and so has CLWB; the
    # Ice Lake client part in the dumps (Sunny Cove, i5-1035G4) reports no CLWB.
    verdict = check(icelake, view(ICELAKE_CLIENT))
    assert verdict.codes == (MISSING_FEATURES,)
    assert verdict.reasons[0].features == ("clwb",)
    # Skylake-SP lacks the Ice Lake additions (VBMI2, GFNI, VAES, ...).
    verdict = check(icelake, view(SKYLAKE_SP))
    assert not verdict.compatible
    missing = verdict.reason(MISSING_FEATURES)
    assert missing is not None
    assert {"avx512_vbmi2", "gfni", "vaes", "vpclmulqdq"} <= set(missing.features)
    # An AMD host never takes it.
    assert check(icelake, view(MILAN)).codes[0] == VENDOR_MISMATCH


def test_level_v3_needs_a_vendor_for_the_vendor_rule() -> None:
    with_vendor = resolve_baseline("level:x86-64-v3@intel").requirement()
    assert with_vendor.vendor == "GenuineIntel"
    assert resolve_baseline("level:x86-64-v3", vendor="intel").requirement() == with_vendor
    haswell = check(with_vendor, view(HASWELL))
    assert haswell.compatible, haswell.summary
    assert check(with_vendor, view(MILAN)).codes == (VENDOR_MISMATCH,)
    # Without a vendor the check is skipped, and the verdict says so.
    vendorless = resolve_baseline("level:x86-64-v3").requirement()
    assert vendorless.vendor is None
    verdict = check(vendorless, view(MILAN))
    assert verdict.compatible
    assert verdict.warnings[0].code == VENDOR_NOT_CHECKED
    with pytest.raises(BaselineError, match="give one"):
        resolve_baseline("level:x86-64-v3@intel", vendor="amd")


def test_level_v4_refused_by_a_processor_without_avx512() -> None:
    verdict = check(resolve_baseline("level:x86-64-v4@intel").requirement(), view(HASWELL))
    assert not verdict.compatible
    missing = verdict.reason(MISSING_FEATURES)
    assert missing is not None and "avx512f" in missing.features
    xsave = verdict.reason(XSAVE_STATE_MISSING)
    assert xsave is not None
    assert xsave.data["components"] == ["avx512_opmask", "avx512_zmm_hi256", "avx512_hi16_zmm"]


def test_xsave_components_follow_features() -> None:
    assert xsave_mask_for(["avx"]) == 0b111
    assert xsave_mask_for(["avx512f"]) == 0b1110_0011
    assert xsave_mask_for(["pku", "mpx"]) == 0b10_0001_1011
    assert xsave_mask_for(["amx_tile"]) == 0b11 | 1 << 17 | 1 << 18


def test_unknown_names_suggest_close_matches() -> None:
    with pytest.raises(BaselineError, match="model:icelake"):
        resolve_baseline("model:icelak")
    with pytest.raises(BaselineError, match="level:x86-64-v3"):
        resolve_baseline("level:x86-64-v5")
    with pytest.raises(BaselineError, match="not x86-64"):
        resolve_baseline("model:neoverse_n1")
    with pytest.raises(BaselineError, match="unknown vendor"):
        resolve_baseline("level:x86-64-v2@arm")


def test_nearest_level_matches_the_decoder_on_real_dumps() -> None:
    names = sorted(p.name for p in DUMPS.glob("*.txt")) if DUMPS.is_dir() else []
    if not names:
        pytest.skip(f"no shared dumps in {DUMPS}")
    for name in names:
        p = profile(name)
        gv = Requirement.from_profile(p, name).features
        # The profile's own level also needs OS-enabled state; the nearest level
        # from guest-visible features alone is never lower.
        order = [lv for lv, _ in LEVEL_FEATURES]
        if p.x86_64_level is not None:
            assert nearest_level(gv) is not None
            assert order.index(nearest_level(gv) or "") >= order.index(p.x86_64_level), name


def test_nearest_microarchitecture_of_real_dumps() -> None:
    def nearest(name: str) -> str | None:
        p = profile(name)
        return nearest_microarchitecture(Requirement.from_profile(p, name).features, p.vendor)

    assert nearest(SAPPHIRE_RAPIDS) == "sapphirerapids"
    assert nearest(ICELAKE_CLIENT) == "cannonlake"  # icelake but for CLWB (see above)
    assert nearest(SKYLAKE_SP) in ("skylake_avx512", "cascadelake")
    assert nearest(MILAN) == "zen3"
    # The result always resolves and is accepted by the processor it came from.
    for name in (SAPPHIRE_RAPIDS, MILAN, HASWELL):
        model = nearest(name)
        assert model is not None
        assert check(resolve_baseline(f"model:{model}").requirement(), view(name)).compatible
    # A vendorless query only considers generic targets.
    assert nearest_microarchitecture(
        Requirement.from_profile(profile(MILAN), MILAN).features, None
    ) in ("x86_64_v3", "x86_64_v4")


def test_model_baselines_carry_the_psabi_basics_archspec_leaves_implicit() -> None:
    """archspec's x86_64 root lists no features; a model must still reach its level."""
    from cpucompat.coordinator.domain.baselines import nearest_level, resolve_baseline

    expected = {
        "model:nehalem": "x86-64-v2",
        "model:zen3": "x86-64-v3",
        "model:icelake": "x86-64-v4",
    }
    for name, level in expected.items():
        base = resolve_baseline(name)
        assert {"lm", "cmov", "cx8", "fpu", "fxsr", "sse2"} <= base.features, name
        assert nearest_level(base.features) == level, name


def test_the_agent_names_the_microarchitecture_the_coordinator_names() -> None:
    """`GetProfile` (agent) and `hosts` (coordinator) name one microarchitecture per host,
    on every project fixture and shared dump, with and without a hypervisor offer."""
    from cpucompat.agent.dumps import load_dump_profile
    from cpucompat.agent.microarchitecture import of_profile
    from cpucompat.agent.raw import RawDataError
    from cpucompat.coordinator.domain.baselines import nearest_microarchitecture
    from cpucompat.coordinator.domain.sides import requirement_of
    from tests.support.paths import PROCESSORS
    from tests.support.shared import manifest_entries, shared_profile

    profiles = [load_dump_profile(path) for path in sorted(PROCESSORS.iterdir())]
    assert any(p.hypervisor_offer is not None for p in profiles)
    for entry in manifest_entries():
        try:
            profiles.append(shared_profile(entry["file"]))
        except RawDataError:
            continue  # a dump the importer refuses names no processor
    for host in profiles:
        coordinator = requirement_of(host, "h")
        expected = nearest_microarchitecture(coordinator.features, host.vendor)
        assert of_profile(host) == expected, host.brand
