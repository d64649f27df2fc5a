"""Coordinator domain logic: compatibility, baselines, audit and restore stamps.

Plain Python over the agent's decoded profiles; no protobuf, no gRPC (the
service layer converts wire <-> domain). Names are re-exported lazily so that
importing one submodule (hosts, say) does not load archspec and the engine.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Requirement": "requirement",
    "Mode": "requirement",
    "Reason": "compat",
    "Verdict": "compat",
    "TargetView": "compat",
    "TargetIndex": "compat",
    "check": "compat",
    "eligible_targets": "compat",
    "explain_feature": "compat",
    "unknown_host": "compat",
    "Baseline": "baselines",
    "BaselineError": "baselines",
    "resolve_baseline": "baselines",
    "nearest_level": "baselines",
    "nearest_microarchitecture": "baselines",
    "AuditReport": "audit",
    "AuditError": "audit",
    "HostInput": "audit",
    "audit": "audit",
    "StampError": "stamp",
    "make_stamp": "stamp",
    "load_stamp": "stamp",
    "read_stamp": "stamp",
    "stamp_text": "stamp",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
