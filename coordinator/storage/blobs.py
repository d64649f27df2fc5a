"""How a profile's raw leaves are stored: compressed JSON, the same bytes in every backend.

A capture is stored in two parts (schema version 8 on): each distinct class of logical
CPUs (``agent.cpu_classes``) once, in ``leaf_classes`` under the sha256 of its
canonical encoding, shared by every version and host that has it; and the version's
own part in ``profiles.raw``: the capture's other fields, the digests of its classes
and each CPU's class and own registers. Versions stored before keep their whole
capture in ``profiles.raw`` (format version 1) and unpack as before.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cpucompat.agent.cpu_classes import ClassMember, SplitCpus, expand_classes, split_of
from cpucompat.agent.raw import LeafKey, RawCapture, RawDataError, Regs
from cpucompat.agent.rawjson import FORMAT_NAME, capture_from_json, capture_to_json

SPLIT_FORMAT = "cpucompat-stored-split"
"""Marks a version's own part (its classes are in ``leaf_classes``)."""


def pack_raw(doc: dict[str, Any]) -> bytes:
    """Raw leaves compress well (CPUs repeat each other); keep the file small."""
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def unpack_raw(blob: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(zlib.decompress(blob))
    return result


def canonical_leaves(leaves: Mapping[LeafKey, Regs]) -> bytes:
    """One class's leaves as the bytes its digest is taken over: sorted, decimal, no spaces."""
    rows = [[leaf, sub, *regs] for (leaf, sub), regs in sorted(leaves.items())]
    return json.dumps(rows, separators=(",", ":")).encode()


def class_digest(canonical: bytes) -> str:
    return hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class PackedCapture:
    """A capture as stored: the version's own bytes and its classes (digest -> stored bytes)."""

    own: bytes
    classes: Mapping[str, bytes]


def pack_capture(capture: RawCapture) -> PackedCapture:
    """A capture as stored: its classes once each, and the dump file it came from (if any)."""
    split = split_of(capture)  # a report's own classes, when it was sent split this way
    digests: list[str] = []
    classes: dict[str, bytes] = {}
    for leaves in split.classes:
        canonical = canonical_leaves(leaves)
        key = class_digest(canonical)
        digests.append(key)
        classes[key] = zlib.compress(canonical, 6)
    doc = capture_to_json(replace(capture, cpus=()))
    doc["format"] = SPLIT_FORMAT
    doc["classes"] = digests
    doc["cpus"] = [
        [m.index, m.cpu_class, m.xcr0, [list(o) for o in m.overrides]] for m in split.members
    ]
    if capture.origin:
        doc["origin"] = capture.origin
    return PackedCapture(pack_raw(doc), classes)


def unpack_capture(own: bytes, classes: Mapping[str, bytes] | None = None) -> RawCapture:
    """The stored capture back; raises on damaged bytes or a class that is not stored."""
    doc = unpack_raw(own)
    origin = doc.get("origin") if isinstance(doc, dict) else None
    origin = origin if isinstance(origin, str) else None
    if not isinstance(doc, dict) or doc.get("format") != SPLIT_FORMAT:
        return capture_from_json(doc, origin=origin)  # stored before schema version 8
    found = classes or {}
    leaves = []
    for key in doc["classes"]:
        blob = found.get(key)
        if blob is None:
            raise RawDataError(f"leaf class {key[:12]} is not stored")
        canonical = zlib.decompress(blob)
        if class_digest(canonical) != key:
            raise RawDataError(f"leaf class {key[:12]} does not match its digest")
        leaves.append({(r[0], r[1]): (r[2], r[3], r[4], r[5]) for r in json.loads(canonical)})
    members = tuple(
        ClassMember(index, cpu_class, xcr0, tuple((o[0], o[1], o[2], o[3]) for o in overrides))
        for index, cpu_class, xcr0, overrides in doc["cpus"]
    )
    expanded = expand_classes(SplitCpus(tuple(leaves), members))
    doc["format"] = FORMAT_NAME
    capture = capture_from_json(doc, origin=origin, cpus=expanded.cpus)
    return replace(capture, classes=expanded)  # decoded, or packed again, class by class
