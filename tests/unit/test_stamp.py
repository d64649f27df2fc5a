"""Restore stamps: round trip, and refusal of tampered, truncated or foreign stamps."""

from __future__ import annotations

import hashlib
import json

import pytest

from cpucompat.coordinator.domain.baselines import resolve_baseline
from cpucompat.coordinator.domain.compat import MISSING_FEATURES, TargetView, check
from cpucompat.coordinator.domain.requirement import Mode, Requirement
from cpucompat.coordinator.domain.stamp import (
    STAMP_FORMAT,
    StampError,
    canonical_json,
    load_stamp,
    make_stamp,
    read_stamp,
    stamp_text,
)
from tests.support.shared import shared_profile as profile

SKYLAKE_SP = "instlatx64-GenuineIntel0050654_SkylakeXeon_CPUID.txt"
SAPPHIRE_RAPIDS = "instlatx64-GenuineIntel00806F8_SapphireRapids_05_CPUID.txt"
CREATED = 1_790_000_000.25


def skx_stamp() -> tuple[Requirement, dict]:
    req = Requirement.from_profile(profile(SKYLAKE_SP), "skx-01")
    return req, make_stamp(req, CREATED, "skx-01")


def test_round_trip_keeps_the_requirement() -> None:
    req, stamp = skx_stamp()
    text = stamp_text(stamp)
    assert load_stamp(text) == req
    loaded = read_stamp(text)
    assert loaded.source_host == "skx-01"
    assert loaded.created_at == "2026-09-21T14:13:20.250Z"
    # Compact and pretty forms are the same stamp.
    assert load_stamp(json.dumps(stamp)) == req


def test_stamp_is_readable_by_an_operator() -> None:
    req, stamp = skx_stamp()
    assert stamp["format"] == STAMP_FORMAT and stamp["version"] == 1
    body = stamp["requirement"]
    assert body["mode"] == "host" and body["baseline"] is None
    assert body["vendor"] == "GenuineIntel"
    assert body["features"] == sorted(req.features)
    assert "mpx_bndregs" in body["xsave_component_names"]
    assert body["physical_bits"] == req.physical_bits
    assert (body["family"], body["model"]) == (6, 0x55)
    rest = {k: v for k, v in stamp.items() if k != "integrity"}
    assert stamp["integrity"]["digest"] == hashlib.sha256(canonical_json(rest)).hexdigest()


def test_baseline_stamp_round_trip() -> None:
    req = resolve_baseline("level:x86-64-v3@amd").requirement()
    stamp = make_stamp(req, CREATED, "any")
    loaded = load_stamp(stamp_text(stamp))
    assert loaded == req and loaded.mode is Mode.BASELINE
    assert loaded.baseline == "level:x86-64-v3@amd"


def test_loaded_stamp_guards_a_restore() -> None:
    _, stamp = skx_stamp()
    req = load_stamp(stamp_text(stamp))
    target = TargetView.from_profile(profile(SAPPHIRE_RAPIDS), "spr-01")
    verdict = check(req, target)
    assert not verdict.compatible
    missing = verdict.reason(MISSING_FEATURES)
    assert missing is not None and "mpx" in missing.features


def test_tampered_stamp_is_refused() -> None:
    _, stamp = skx_stamp()
    stamp["requirement"]["features"].remove("mpx")  # make it look restorable on SPR
    with pytest.raises(StampError, match="digest does not match"):
        load_stamp(json.dumps(stamp))
    _, stamp = skx_stamp()
    stamp["source_host"] = "elsewhere"
    with pytest.raises(StampError, match="digest does not match"):
        load_stamp(json.dumps(stamp))


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_stamp_is_refused(keep: float) -> None:
    _, stamp = skx_stamp()
    text = stamp_text(stamp)
    with pytest.raises(StampError) as info:
        load_stamp(text[: int(len(text) * keep)])
    assert "\n" not in str(info.value)


def test_wrong_format_version_and_missing_fields() -> None:
    _, stamp = skx_stamp()
    with pytest.raises(StampError, match="format"):
        load_stamp(json.dumps({**stamp, "format": "something-else"}))
    with pytest.raises(StampError, match="version 2 is not supported"):
        load_stamp(json.dumps({**stamp, "version": 2}))
    with pytest.raises(StampError, match="missing 'integrity'"):
        load_stamp(json.dumps({k: v for k, v in stamp.items() if k != "integrity"}))
    with pytest.raises(StampError, match="not a JSON object"):
        load_stamp("[1, 2]")
    with pytest.raises(StampError, match="not valid JSON"):
        load_stamp("\x00garbage")


def test_missing_field_with_a_valid_digest_is_refused() -> None:
    """A stamp written by a broken tool (digest right, field absent) is still refused."""
    _, stamp = skx_stamp()
    body = {k: v for k, v in stamp.items() if k != "integrity"}
    del body["requirement"]["vendor"]
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    doc = {**body, "integrity": {"algorithm": "sha256", "digest": digest}}
    with pytest.raises(StampError, match=r"missing 'requirement\.vendor'"):
        load_stamp(json.dumps(doc))


@pytest.mark.parametrize("invtsc", [False, True])
def test_a_stamp_carries_the_requirements_json_with_xsave_as_index_lists(invtsc: bool) -> None:
    """Stamps and `vm show --json` serialise a requirement one way; only XSAVE's shape differs."""
    from cpucompat.agent.dumps import load_dump_profile
    from cpucompat.coordinator.domain.sides import requirement_of
    from tests.support.paths import NESTED_KVM_OFFER

    here = load_dump_profile(NESTED_KVM_OFFER)
    req = requirement_of(here, "dev", invtsc=invtsc)
    body = make_stamp(req, CREATED, "dev")["requirement"]
    doc = req.to_json()
    assert {k: v for k, v in body.items() if not k.startswith("xsave_")} == {
        k: v for k, v in doc.items() if k != "xsave_components"
    }
    assert body["xsave_components"] == [c["index"] for c in doc["xsave_components"]]
    assert body["xsave_component_names"] == [c["name"] for c in doc["xsave_components"]]
    assert load_stamp(stamp_text(make_stamp(req, CREATED, "dev"))) == req


def test_a_fixed_tsc_rate_survives_the_stamp() -> None:
    """A registered VM's requirement is stored as a stamp: its fixed TSC rate must come back."""
    from dataclasses import replace

    req = replace(
        Requirement.from_profile(profile(SKYLAKE_SP), "rt"), tsc_hz=2_000_000_000, tsc_fixed=True
    )
    loaded = load_stamp(stamp_text(make_stamp(req, CREATED, "rt")))
    assert loaded.tsc_fixed and loaded.tsc_hz == 2_000_000_000 and loaded == req
    target = TargetView.from_profile(profile(SKYLAKE_SP), "skx")  # 3.0 GHz, scaling unknown
    assert not check(loaded, target).compatible
    assert check(replace(loaded, tsc_fixed=False), target).compatible
