"""What a computed audit depends on, as the key it is cached under (`Region.AUDIT`).

An audit is a function of its cluster's name, the hypervisor rules and its inputs in
order: each registered member's (host id, cluster, profile version, status, replayed
flag, maintenance), each dump's name and the digest of its capture as sent, each model's
name and vendor. Profile versions are never reused and a version's leaves never change,
so equal keys mean equal audits: a member that changed, joined or left gives another key,
and an older audit can never answer for it even if a tag was missed.

The inputs are folded into one SHA-256 digest (with their count beside it), so a key
of 100,000 members costs 32 bytes to hold and a tuple compare to look up, not a
second copy of the member list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from .domain.hosts import HostRecord
from .domain.kvm_offerable import Hypervisor


@dataclass(frozen=True)
class AuditKey:
    """The cache key of one audit (an audit naming a dump without a digest has none)."""

    cluster: str | None
    rules: Hypervisor
    inputs: int
    digest: str


def member_state(record: HostRecord) -> tuple[str, str, int, str, bool, str]:
    """Everything about a registered host an audit of it may depend on."""
    return (
        record.host_id,
        record.cluster,
        record.profile_version,
        str(record.status),
        record.replayed,
        record.maintenance,
    )


InputState = tuple[object, ...]
"""One audited input as it enters the key: ("host", *member_state), ("dump", label,
content digest) or ("model", label, vendor)."""


def audit_key(cluster: str | None, rules: Hypervisor, inputs: Sequence[InputState]) -> AuditKey:
    """The key of an audit of ``inputs`` (in audit order) of ``cluster`` under ``rules``."""
    text = json.dumps(inputs, separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return AuditKey(cluster, rules, len(inputs), digest)
