"""QEMU's named x86 CPU models as baselines: ``model:qemu/EPYC-Milan``, ``model:qemu/Cascadelake-Server-v4``.

The models come from ``qemu_models.json`` beside this module, a table
generated from a real QEMU (``python -m cpucompat.coordinator.qemu_models_gen``;
QEMU's own definitions live in target/i386/cpu.c, ``builtin_x86_defs``). Each
versioned model records its vendor, family/model/stepping, CPUID features in
the project's names, its MSR and hypervisor-leaf properties (kept, never
decided on), the physical address width a guest gets by default and the XSAVE
components its features enable.

Names: a versioned name (``EPYC-Milan-v2``) is that version; an unversioned
name or a named version (``EPYC-Milan``, ``Cascadelake-Server-noTSX``) is the
version QEMU's ``alias-of`` gives for it. QEMU resolves unversioned names with
``x86_cpu_model_resolve_version``: version 1 for every machine type since
QEMU 4.1 (``default_cpu_version``; older machine types use the "legacy"
definition, which is also version 1's), and the table records QEMU's answer
rather than assuming the rule.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cpucompat.agent.errors import InputError

from ..cache import memo

TABLE_PATH = Path(__file__).with_name("qemu_models.json")
QEMU_PREFIX = "qemu/"
"""``model:qemu/NAME`` names a QEMU model; the rest of ``model:`` is archspec's."""


class QemuModelError(InputError):
    """A QEMU model name that is not in the table; the message names the nearest ones."""

    def __init__(self, message: str, suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.suggestions = suggestions


@dataclass(frozen=True)
class QemuModel:
    """One versioned QEMU x86 CPU model, as the table records it."""

    name: str  # the versioned name, e.g. EPYC-Milan-v1
    vendor: str | None
    family: int | None
    model: int | None
    stepping: int | None
    model_id: str
    phys_bits: int
    features: frozenset[str]  # project (Linux) names of the CPUID features
    msr_features: tuple[str, ...]  # QEMU names of MSR-based properties (not CPUID)
    hypervisor_features: tuple[str, ...]  # QEMU names of hypervisor-leaf bits
    xsave_components: tuple[int, ...]


@dataclass(frozen=True)
class QemuTable:
    """The loaded table: models by versioned name, aliases, and the QEMU it reflects."""

    qemu_version: str
    qemu_package: str
    models: Mapping[str, QemuModel]
    aliases: Mapping[str, str]
    feature_names: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """QEMU spelling -> (kind, value) where QEMU located it: ("feature", project name),
    ("msr", "0x10a"), ("hypervisor", ...); every feature name QEMU lists, set in a model or not."""

    def names(self) -> tuple[str, ...]:
        """Every accepted name: versioned models and aliases."""
        return tuple(sorted({*self.models, *self.aliases}, key=str.lower))

    def resolve(self, name: str) -> QemuModel:
        """A model by any accepted name (exact spelling, as QEMU's ``-cpu`` wants it)."""
        model = self.models.get(self.aliases.get(name, name))
        if model is not None:
            return model
        names = self.names()
        by_lower = {n.lower(): n for n in names}
        close = [by_lower[c] for c in difflib.get_close_matches(name.lower(), list(by_lower), n=3)]
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise QemuModelError(
            f"unknown QEMU CPU model {name!r}{hint} (the table holds the {len(self.models)} "
            f"x86 models of QEMU {self.qemu_version}, e.g. EPYC-Milan, Cascadelake-Server-v4)",
            tuple(close),
        )


def _model(name: str, doc: Mapping[str, Any]) -> QemuModel:
    return QemuModel(
        name=name,
        vendor=doc.get("vendor") or None,
        family=doc.get("family"),
        model=doc.get("model"),
        stepping=doc.get("stepping"),
        model_id=str(doc.get("model_id") or ""),
        phys_bits=int(doc["phys_bits"]),
        features=frozenset(doc["features"]),
        msr_features=tuple(doc.get("msr_features", ())),
        hypervisor_features=tuple(doc.get("hypervisor_features", ())),
        xsave_components=tuple(doc["xsave_components"]),
    )


def load_table(path: Path = TABLE_PATH) -> QemuTable:
    """Read a table file (the shipped one by default)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    return QemuTable(
        qemu_version=str(doc["qemu_version"]),
        qemu_package=str(doc.get("qemu_package", "")),
        models={n: _model(n, m) for n, m in doc["models"].items()},
        aliases=dict(doc["aliases"]),
        feature_names=MappingProxyType(
            {
                name: (str(entry["kind"]), str(entry["value"]))
                for name, entry in doc.get("feature_names", {}).items()
            }
        ),
    )


@memo("QEMU model table", maxsize=1)
def table() -> QemuTable:
    """The shipped table, loaded once."""
    return load_table()


def qemu_model_names() -> tuple[str, ...]:
    """Every ``qemu/NAME`` usable after ``model:``."""
    return tuple(QEMU_PREFIX + n for n in table().names())
