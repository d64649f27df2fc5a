"""Escaping for text from hosts and dumps: nothing they say may become markup.

Brands, host names and dump paths come from processors and operators; a brand
may hold `<script>` or control bytes. Every string is passed through `text` or
`attr` before it is placed in HTML or SVG; characters XML 1.0 forbids
(most C0 controls, lone surrogates, U+FFFE/U+FFFF) become U+FFFD so the SVG
still parses as XML.
"""

from __future__ import annotations

import html
import re

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(value: object) -> str:
    """``value`` as a string XML accepts (forbidden characters replaced)."""
    return _NOT_XML.sub("\ufffd", str(value))


def text(value: object) -> str:
    """Escaped for element content (and safe in attributes too)."""
    return html.escape(clean(value), quote=True)


attr = text


def short(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters with an ellipsis (before escaping)."""
    return value if len(value) <= limit else value[: max(1, limit - 1)] + "\u2026"


def middle(value: str, limit: int) -> str:
    """``value`` cut in the middle: host names and dump files differ at both ends."""
    if len(value) <= limit:
        return value
    head = (limit - 1) // 2
    return value[:head] + "\u2026" + value[len(value) - (limit - 1 - head) :]


def host_label(name: str) -> str:
    """A host's display name: a dump path as its file name, as the CLI's tables show it."""
    if name.startswith("dump:"):
        path = name.removeprefix("dump:")
        return "dump:" + (path.rstrip("/").rsplit("/", 1)[-1] or path)
    return name
