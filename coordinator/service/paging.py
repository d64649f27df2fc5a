"""Pages for list calls: no response may outgrow a client's message limit.

A page holds at most ``page_size`` entries and at most PAGE_BYTES of them (gRPC
clients refuse replies over 4 MiB by default). The token is the sort key of the
last entry sent, so pages stay consistent while entries come and go.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from google.protobuf.message import Message

from ..limits import LimitError

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 1000
HOSTS_PAGE_SIZE = 10_000
"""Default and most per page of the answers that list a cluster's hosts (Targets,
GetVmTargets, Audit): a client that sends no page_size gets every host of any cluster
that fits in PAGE_BYTES, as before these answers were paged."""
PAGE_BYTES = 2 * 1024 * 1024
"""Half of the 4 MiB a default gRPC client accepts: room for the envelope and any margin."""

T = TypeVar("T")
M = TypeVar("M", bound=Message)


def page_size(requested: int) -> int:
    """0 means the default; more than MAX_PAGE_SIZE is served as MAX_PAGE_SIZE."""
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def hosts_page_size(requested: int) -> int:
    """0 means HOSTS_PAGE_SIZE; more is served as HOSTS_PAGE_SIZE."""
    return min(requested or HOSTS_PAGE_SIZE, HOSTS_PAGE_SIZE)


def encode_token(cursor: Any) -> str:
    raw = json.dumps(cursor, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> Any:
    """The cursor inside a token this coordinator issued (LimitError for anything else)."""
    if not token:
        return None
    try:
        if len(token) > 4096:
            raise ValueError("too long")
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise LimitError(
            "page_token is not one this coordinator issued; start the listing again without it"
        ) from None


def cursor(token: str, fields: dict[str, type]) -> dict[str, Any] | None:
    """A decoded page token with exactly ``fields`` of those types (LimitError otherwise)."""
    decoded = decode_token(token)
    if decoded is None:
        return None
    if not isinstance(decoded, dict) or set(decoded) != set(fields):
        raise LimitError("page_token does not belong to this listing; start again without it")
    for key, kind in fields.items():
        value = decoded[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise LimitError("page_token does not belong to this listing; start again without it")
    return decoded


def fill(
    items: Sequence[T], size: int, convert: Callable[[T], M], budget: int = PAGE_BYTES
) -> tuple[list[M], bool]:
    """Converted entries of ``items[:size]`` that fit in ``budget`` bytes (always at least
    one).

    Returns (entries, whether items were left out).
    """
    out: list[M] = []
    used = 0
    for item in items[:size]:
        message = convert(item)
        cost = message.ByteSize() + 8  # tag and length prefix
        if out and used + cost > budget:
            return out, True
        out.append(message)
        used += cost
    return out, len(items) > len(out)
