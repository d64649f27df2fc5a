"""The restore guard's stamp: a saved state's requirement, written beside it.

The stamp is plain versioned JSON an operator can read. Its ``integrity``
field is the sha256 of the canonical JSON (sorted keys, no spaces, ASCII) of
every other field, so a stamp edited by hand, damaged or truncated is
refused rather than trusted. It detects accidents and naive edits; it is not
a signature (anyone may recompute it), so protect the files like the saved
state itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cpucompat.agent.errors import InputError

from .kvm_offerable import GENERIC_VIEW
from .requirement import Mode, Requirement, component_names, mask_indices

STAMP_FORMAT = "cpucompat-restore-stamp"
STAMP_VERSION = 1
DIGEST_ALGORITHM = "sha256"
MAX_STAMP_BYTES = 1 << 20
_FEATURE_NAME = re.compile(r"[a-z0-9_.\-]{1,64}")  # fullmatch: `$` passes a trailing newline


class StampError(InputError):
    """A stamp that cannot be trusted; the one-line message says what is wrong and what to do."""


@dataclass(frozen=True)
class Stamp:
    """A loaded, verified stamp."""

    requirement: Requirement
    created_at: str
    source_host: str


def canonical_json(doc: Any) -> bytes:
    """The byte form the digest covers: stable across Python versions and key orders."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _timestamp(created_at: float | datetime | str) -> str:
    if isinstance(created_at, str):
        return created_at
    if isinstance(created_at, datetime):
        moment = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
    else:
        moment = datetime.fromtimestamp(float(created_at), tz=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_stamp(
    requirement: Requirement, created_at: float | datetime | str, source_host: str
) -> dict[str, Any]:
    """The stamp document for a saved state with ``requirement`` (serialize with `stamp_text`)."""
    body: dict[str, Any] = {
        "format": STAMP_FORMAT,
        "version": STAMP_VERSION,
        "created_at": _timestamp(created_at),
        "source_host": source_host,
        # The requirement's one JSON form, with XSAVE as the stamp has always carried it:
        # index and name lists rather than objects (the digest covers this layout).
        "requirement": {
            **requirement.to_json(),
            "xsave_components": list(mask_indices(requirement.xsave_mask)),
            "xsave_component_names": list(component_names(requirement.xsave_mask)),
        },
    }
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    return {**body, "integrity": {"algorithm": DIGEST_ALGORITHM, "digest": digest}}


def stamp_text(stamp: dict[str, Any]) -> str:
    """Readable text for the stamp file (indentation does not affect the digest)."""
    return json.dumps(stamp, indent=2, sort_keys=True) + "\n"


def _field(doc: dict[str, Any], key: str, kinds: tuple[type, ...], where: str) -> Any:
    if key not in doc:
        raise StampError(f"stamp is missing '{where}{key}'; re-create it with 'cpucompat stamp'")
    value = doc[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        want = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise StampError(f"stamp field '{where}{key}' must be {want}, got {value!r}")
    return value


def _optional(doc: dict[str, Any], key: str, kinds: tuple[type, ...], default: Any) -> Any:
    """A field later stamps carry; stamps written before it existed get ``default``."""
    return _field(doc, key, kinds, "requirement.") if key in doc else default


def _feature_names(values: Any) -> frozenset[str]:
    for f in values:
        if not isinstance(f, str) or _FEATURE_NAME.fullmatch(f) is None:
            raise StampError(f"stamp requirement lists {f!r}, which is not a feature name")
    return frozenset(values)


def read_stamp(text: str | bytes) -> Stamp:
    """Parse and verify a stamp; StampError for anything but a whole, intact stamp."""
    if len(text) > MAX_STAMP_BYTES:
        raise StampError(f"stamp is {len(text)} bytes, more than any real stamp holds")
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StampError(
            f"stamp is not valid JSON ({exc}); it is truncated or corrupted, do not restore from it"
        ) from None
    if not isinstance(doc, dict):
        raise StampError("stamp is not a JSON object; this is not a cpucompat stamp")
    fmt = doc.get("format")
    if fmt != STAMP_FORMAT:
        raise StampError(f"stamp format is {fmt!r}, expected {STAMP_FORMAT!r}")
    version = doc.get("version")
    if version != STAMP_VERSION:
        raise StampError(
            f"stamp version {version!r} is not supported (this cpucompat reads version "
            f"{STAMP_VERSION}); use the cpucompat release that wrote it"
        )
    integrity = _field(doc, "integrity", (dict,), "")
    algorithm = _field(integrity, "algorithm", (str,), "integrity.")
    digest = _field(integrity, "digest", (str,), "integrity.")
    if algorithm != DIGEST_ALGORITHM:
        raise StampError(f"stamp integrity algorithm {algorithm!r} is not {DIGEST_ALGORITHM!r}")
    body = {k: v for k, v in doc.items() if k != "integrity"}
    if hashlib.sha256(canonical_json(body)).hexdigest() != digest.lower():
        raise StampError(
            "stamp digest does not match its contents: it was edited or damaged; "
            "do not restore from it, re-create the saved state's stamp on its source host"
        )
    created_at = _field(body, "created_at", (str,), "")
    source_host = _field(body, "source_host", (str,), "")
    req = _field(body, "requirement", (dict,), "")
    return Stamp(_requirement(req), created_at, source_host)


def _requirement(req: dict[str, Any]) -> Requirement:
    w = "requirement."
    mode_text = _field(req, "mode", (str,), w)
    try:
        mode = Mode(mode_text)
    except ValueError:
        raise StampError(
            f"stamp requirement mode {mode_text!r} is not 'host' or 'baseline'"
        ) from None
    features = _feature_names(_field(req, "features", (list,), w))
    sgx_epc = _optional(req, "sgx_epc", (bool,), False)
    sgx_features = _feature_names(_optional(req, "sgx_features", (list,), []))
    guest_physical_bits = _optional(req, "guest_physical_bits", (int, type(None)), None)
    avx10_version = _optional(req, "avx10_version", (int, type(None)), None)
    view = _optional(req, "view", (str,), GENERIC_VIEW)
    kernel_mitigations = _optional(req, "kernel_mitigations", (bool,), False)
    stepping = _optional(req, "stepping", (int, type(None)), None)
    nested = _optional(req, "nested", (bool,), False)
    tsc_fixed = _optional(req, "tsc_fixed", (bool,), False)
    for key, value in (("guest_physical_bits", guest_physical_bits), ("avx10", avx10_version)):
        if value is not None and not 0 < value < 256:
            raise StampError(f"stamp requirement {key} {value} is not 1..255")
    components = _field(req, "xsave_components", (list,), w)
    mask = 0
    for c in components:
        if not isinstance(c, int) or isinstance(c, bool) or not 0 <= c < 64:
            raise StampError(f"stamp XSAVE component {c!r} is not an index 0..63")
        mask |= 1 << c
    vendor = _field(req, "vendor", (str, type(None)), w)
    baseline = _field(req, "baseline", (str, type(None)), w)
    if mode is Mode.HOST and vendor is None:
        raise StampError("stamp requirement in host mode has no vendor; re-create the stamp")
    if mode is Mode.BASELINE and baseline is None:
        raise StampError("stamp requirement in baseline mode names no baseline; re-create it")
    return Requirement(
        mode=mode,
        name=_field(req, "name", (str,), w),
        vendor=vendor,
        features=features,
        xsave_mask=mask,
        physical_bits=_field(req, "physical_bits", (int, type(None)), w),
        family=_field(req, "family", (int, type(None)), w),
        model=_field(req, "model", (int, type(None)), w),
        # Stamps written before the VM's configuration was recorded (no "sgx_epc") put the
        # boot host's invariant-TSC bit here, not the guest's: they mean no invtsc guest.
        invariant_tsc=_field(req, "invariant_tsc", (bool,), w) and "sgx_epc" in req,
        tsc_hz=_field(req, "tsc_hz", (int, type(None)), w),
        baseline=baseline,
        fingerprint=_field(req, "fingerprint", (str, type(None)), w),
        sgx_epc=sgx_epc,
        sgx_features=sgx_features,
        guest_physical_bits=guest_physical_bits,
        avx10_version=avx10_version,
        view=view,
        kernel_mitigations=kernel_mitigations,
        stepping=stepping,
        nested=nested,
        tsc_fixed=tsc_fixed,
    )


def load_stamp(text: str | bytes) -> Requirement:
    """The requirement a stamp carries, verified (see `read_stamp`)."""
    return read_stamp(text).requirement
