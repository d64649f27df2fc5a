"""How a profile's raw leaves are stored: compressed JSON, the same bytes in every backend."""

from __future__ import annotations

import json
import zlib
from typing import Any

from cpucompat.agent.raw import RawCapture
from cpucompat.agent.rawjson import capture_from_json, capture_to_json


def pack_raw(doc: dict[str, Any]) -> bytes:
    """Raw leaves compress well (CPUs repeat each other); keep the file small."""
    return zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)


def unpack_raw(blob: bytes) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(zlib.decompress(blob))
    return result


def pack_capture(capture: RawCapture) -> bytes:
    """A capture as stored: its leaves, and the dump file it was replayed from (if any)."""
    doc = capture_to_json(capture)
    if capture.origin:
        doc["origin"] = capture.origin
    return pack_raw(doc)


def unpack_capture(blob: bytes) -> RawCapture:
    doc = unpack_raw(blob)
    origin = doc.get("origin") if isinstance(doc, dict) else None
    return capture_from_json(doc, origin=origin if isinstance(origin, str) else None)
