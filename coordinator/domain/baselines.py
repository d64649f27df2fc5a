"""Named baselines: x86-64 psABI levels and archspec's microarchitectures.

A baseline is a feature set a VM may have booted under instead of its host's
own (EVC-like). Two families of names:

- ``level:x86-64-v1`` .. ``level:x86-64-v4``: glibc's psABI levels, taken
  from the decoder's LEVEL_FEATURES. A level names no vendor, but saved state
  never crosses vendors, so give one as ``level:x86-64-v3@intel`` (``@amd``,
  ``@hygon``, ``@zhaoxin``, ``@centaur`` or the full vendor string) or as the
  ``vendor`` argument. Without one the requirement's vendor is None: the
  vendor check is skipped and every verdict carries a VENDOR_NOT_CHECKED
  warning.
- ``model:<name>``: any x86-64 target of the ``archspec`` package
  (``model:icelake``, ``model:zen3``, also the generic ``model:x86_64_v3``).
  The vendor is archspec's (GenuineIntel/AuthenticAMD); generic targets have
  none and take a vendor like levels do. archspec's feature spellings are
  mapped through the agent table's canonical_name; names the table cannot map
  are listed in ``Baseline.unmapped`` and do not take part in decisions.
- ``model:qemu/<name>``: a QEMU x86 CPU model (``model:qemu/EPYC-Milan``,
  ``model:qemu/Cascadelake-Server-v4``) from the generated table in
  ``qemu_models``; it has a vendor and a physical address width (phys-bits).

Only guest-visible features enter the requirement; mapped names of other
classes are kept in ``Baseline.ignored`` with their class. XSAVE components
follow from the features (XSAVE_FOR_FEATURE); levels and archspec models
have no physical address width, so that check is skipped for them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import archspec

from cpucompat.agent.decode import LEVEL_FEATURES
from cpucompat.agent.errors import InputError
from cpucompat.agent.microarchitecture import (
    X86_64_ARCHITECTURAL,
    Parts,
    archspec_targets,
    map_feature_names,
    nearest,
    target_parts,
)

from ..cache import memo
from .qemu_models import QEMU_PREFIX, QemuModelError, qemu_model_names
from .qemu_models import table as qemu_table
from .requirement import (
    LEGACY_XSAVE_MASK,
    XSAVE_FEATURE,
    Mode,
    Requirement,
    split_sgx,
)

LEVEL_PREFIX = "level:"
MODEL_PREFIX = "model:"

VENDOR_ALIASES: Mapping[str, str] = {
    "intel": "GenuineIntel",
    "genuineintel": "GenuineIntel",
    "amd": "AuthenticAMD",
    "authenticamd": "AuthenticAMD",
    "hygon": "HygonGenuine",
    "hygongenuine": "HygonGenuine",
    "zhaoxin": "  Shanghai  ",
    "shanghai": "  Shanghai  ",
    "centaur": "CentaurHauls",
    "via": "CentaurHauls",
    "centaurhauls": "CentaurHauls",
}
"""Short vendor names accepted after '@' or as the vendor argument -> CPUID vendor string."""

XSAVE_FOR_FEATURE: Mapping[str, tuple[int, ...]] = {
    feature: tuple(sorted(i for i, f in XSAVE_FEATURE.items() if f == feature))
    for feature in sorted(set(XSAVE_FEATURE.values()))
}
"""Feature -> the XSAVE components a guest using it enables (avx: 2; mpx: 3, 4;
avx512f: 5-7; pku: 9; amx_tile: 17, 18; apx: 19), from requirement.XSAVE_FEATURE."""


class BaselineError(InputError):
    """A baseline name or vendor that does not resolve; the message names the fix."""


@dataclass(frozen=True)
class Baseline:
    """A named, resolved feature set."""

    name: str
    kind: str  # "level" or "model"
    vendor: str | None
    features: frozenset[str]
    xsave_mask: int
    ignored: tuple[tuple[str, str], ...] = ()  # (feature, class) mapped but not guest-visible
    unmapped: tuple[str, ...] = ()  # archspec names the feature table does not know
    source: str = ""
    physical_bits: int | None = None  # the guest's address width, when the baseline fixes one

    def requirement(self) -> Requirement:
        """A VM booted under this baseline; its SGX features count only with an EPC."""
        features, sgx = split_sgx(self.features, sgx_epc=False)
        return Requirement(
            mode=Mode.BASELINE,
            name=self.name,
            vendor=self.vendor,
            features=features,
            xsave_mask=self.xsave_mask,
            physical_bits=self.physical_bits,
            baseline=self.name,
            sgx_features=sgx,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "vendor": self.vendor,
            "features": sorted(self.features),
            "xsave_mask": f"0x{self.xsave_mask:x}",
            "ignored": [{"feature": f, "class": c} for f, c in self.ignored],
            "unmapped": list(self.unmapped),
            "source": self.source,
            "physical_bits": self.physical_bits,
        }


def xsave_mask_for(features: Iterable[str]) -> int:
    """User XSAVE components a guest with ``features`` may enable (x87 and SSE always)."""
    mask = LEGACY_XSAVE_MASK
    for f in features:
        for index in XSAVE_FOR_FEATURE.get(f, ()):
            mask |= 1 << index
    return mask


def normalize_vendor(vendor: str) -> str:
    """A CPUID vendor string from a short name ('intel') or the string itself."""
    key = vendor.strip().lower()
    full = VENDOR_ALIASES.get(key)
    if full is not None:
        return full
    known = sorted({k for k in VENDOR_ALIASES if k.isalpha() and len(k) < 8})
    raise BaselineError(f"unknown vendor {vendor!r}; use one of {', '.join(known)}")


# --- psABI levels --------------------------------------------------------------------------


LEVEL_NAMES = tuple(name for name, _ in LEVEL_FEATURES)


@memo("x86-64 level features", maxsize=16)
def level_features(level: str) -> frozenset[str]:
    """Guest-visible features of an x86-64 level, lower levels included."""
    wanted: set[str] = set()
    for name, needed in LEVEL_FEATURES:
        wanted |= needed
        if name == level:
            return map_feature_names(wanted)[0]
    raise BaselineError(f"unknown x86-64 level {level!r}; use one of {', '.join(LEVEL_NAMES)}")


def _level_baseline(level: str, vendor: str | None) -> Baseline:
    wanted: set[str] = set(X86_64_ARCHITECTURAL)
    for name, needed in LEVEL_FEATURES:
        wanted |= needed
        if name == level:
            break
    features, ignored, unmapped = map_feature_names(wanted)
    suffix = "" if vendor is None else f"@{_short_vendor(vendor)}"
    return Baseline(
        name=f"{LEVEL_PREFIX}{level}{suffix}",
        kind="level",
        vendor=vendor,
        features=features,
        xsave_mask=xsave_mask_for(features),
        ignored=ignored,
        unmapped=unmapped,
        source="x86-64 psABI (glibc)",
    )


def nearest_level(features: Iterable[str]) -> str | None:
    """The highest x86-64 level whose guest-visible features are all in ``features``.

    Only guest-visible level features count (OSXSAVE, say, reflects the OS,
    not the processor), so this can read higher than a host's own psABI
    level when the OS has not enabled XSAVE.
    """
    have = frozenset(features)
    best = None
    for level in LEVEL_NAMES:
        if not level_features(level) <= have:
            break
        best = level
    return best


# --- archspec microarchitectures -------------------------------------------------------


@memo("archspec targets", maxsize=1)
def _archspec_targets() -> dict[str, Any]:
    return archspec_targets()


@memo("archspec model features", maxsize=256)
def _model_parts(name: str) -> Parts:
    return target_parts(_archspec_targets()[name])


def model_names() -> tuple[str, ...]:
    """Every archspec x86-64 target name usable as ``model:<name>``."""
    return tuple(sorted(_archspec_targets()))


def unmapped_archspec_features() -> dict[str, tuple[str, ...]]:
    """archspec feature names the agent table cannot map, by target (empty when all map)."""
    out = {}
    for name in model_names():
        unmapped = _model_parts(name)[3]
        if unmapped:
            out[name] = unmapped
    return out


def _model_baseline(model: str, vendor: str | None) -> Baseline:
    arch_vendor, features, ignored, unmapped = _model_parts(model)
    if arch_vendor is not None and vendor is not None and vendor != arch_vendor:
        raise BaselineError(
            f"model:{model} is an {arch_vendor} microarchitecture, not {vendor.strip()}; "
            "drop the vendor or pick a model of that vendor"
        )
    chosen = arch_vendor or vendor
    suffix = "" if vendor is None or arch_vendor is not None else f"@{_short_vendor(vendor)}"
    return Baseline(
        name=f"{MODEL_PREFIX}{model}{suffix}",
        kind="model",
        vendor=chosen,
        features=features,
        xsave_mask=xsave_mask_for(features),
        ignored=ignored,
        unmapped=unmapped,
        source=f"archspec {getattr(archspec, '__version__', '?')}",
    )


def nearest_microarchitecture(features: Iterable[str], vendor: str | None) -> str | None:
    """The most specific archspec target (of ``vendor``, or generic) ``features`` cover.

    Most specific means most guest-visible features; ties prefer the vendor's
    own target over a generic one, then the name. Returns the archspec name
    (``model:`` + it resolves as a baseline); None only if not even the
    generic ``x86_64`` fits, which cannot happen.
    """
    if vendor is not None:
        vendor = VENDOR_ALIASES.get(vendor.strip().lower(), vendor)
    return nearest(features, vendor, {name: _model_parts(name)[:2] for name in model_names()})


# --- QEMU models -------------------------------------------------------------------------


def _qemu_baseline(name: str, vendor: str | None) -> Baseline:
    """``model:qemu/NAME``: the QEMU model's CPUID features, XSAVE state and phys-bits."""
    try:
        model = qemu_table().resolve(name)
    except QemuModelError as exc:
        close = [f"{MODEL_PREFIX}{QEMU_PREFIX}{c}" for c in exc.suggestions]
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise BaselineError(
            f"unknown QEMU CPU model {MODEL_PREFIX}{QEMU_PREFIX}{name}{hint} (QEMU "
            f"{qemu_table().qemu_version}'s x86 models, e.g. model:qemu/EPYC-Milan, "
            "model:qemu/Cascadelake-Server-v4; names are case-sensitive, as for qemu -cpu)"
        ) from None
    if model.vendor is not None and vendor is not None and vendor != model.vendor:
        raise BaselineError(
            f"model:{QEMU_PREFIX}{name} is an {model.vendor} model, not {vendor.strip()}; "
            "drop the vendor or pick a model of that vendor"
        )
    features, ignored, unmapped = map_feature_names(model.features)
    alias = "" if model.name == name else f" ({name} is {model.name})"
    return Baseline(
        name=f"{MODEL_PREFIX}{QEMU_PREFIX}{name}",
        kind="qemu-model",
        vendor=model.vendor or vendor,
        features=features,
        xsave_mask=sum(1 << i for i in model.xsave_components) | LEGACY_XSAVE_MASK,
        ignored=ignored,
        unmapped=unmapped,
        source=f"QEMU {qemu_table().qemu_version} CPU model {model.name}{alias}",
        physical_bits=model.phys_bits,
    )


# --- resolution ----------------------------------------------------------------------------


def _short_vendor(vendor: str) -> str:
    for short, full in VENDOR_ALIASES.items():
        if full == vendor and short.isalpha() and len(short) < 8:
            return short
    return vendor.strip()


def all_baseline_names() -> tuple[str, ...]:
    """Every resolvable name without a vendor suffix."""
    return (
        tuple(LEVEL_PREFIX + lv for lv in LEVEL_NAMES)
        + tuple(MODEL_PREFIX + m for m in model_names())
        + tuple(MODEL_PREFIX + m for m in qemu_model_names())
    )


def _unknown(name: str) -> BaselineError:
    names = all_baseline_names()
    bare = {n.split(":", 1)[1]: n for n in names}
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6) or [
        bare[b] for b in difflib.get_close_matches(name.split(":", 1)[-1], list(bare), n=3)
    ]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return BaselineError(
        f"unknown baseline {name!r}{hint} (names are level:x86-64-v1..v4, "
        "model:<archspec x86-64 target>, e.g. model:icelake, model:zen3, "
        "and model:qemu/<QEMU CPU model>, e.g. model:qemu/EPYC-Milan)"
    )


def resolve_baseline(name: str, vendor: str | None = None) -> Baseline:
    """Resolve ``level:...`` / ``model:...`` (optionally ``@vendor``) to a Baseline."""
    text = name.strip()
    suffix_vendor = None
    if "@" in text:
        text, _, tail = text.partition("@")
        suffix_vendor = normalize_vendor(tail)
    arg_vendor = normalize_vendor(vendor) if vendor else None
    if suffix_vendor and arg_vendor and suffix_vendor != arg_vendor:
        raise BaselineError(
            f"baseline {name!r} says vendor {suffix_vendor.strip()} but {arg_vendor.strip()} "
            "was also given; give one"
        )
    chosen = suffix_vendor or arg_vendor
    if text.startswith(LEVEL_PREFIX):
        level = text[len(LEVEL_PREFIX) :]
        if level in LEVEL_NAMES:
            return _level_baseline(level, chosen)
    elif text.startswith(MODEL_PREFIX):
        model = text[len(MODEL_PREFIX) :]
        if model.startswith(QEMU_PREFIX):
            return _qemu_baseline(model[len(QEMU_PREFIX) :], chosen)
        if model in _archspec_targets():
            return _model_baseline(model, chosen)
        if model in archspec.cpu.TARGETS:
            raise BaselineError(
                f"model:{model} is a {archspec.cpu.TARGETS[model].family.name} target, "
                "not x86-64; pick an x86-64 one such as model:icelake or model:zen3"
            )
    elif text in LEVEL_NAMES:
        return _level_baseline(text, chosen)
    raise _unknown(text)
