"""The one error every dump importer raises, and the checks they all share.

A dump file is user input: whatever is wrong with it must come back as a
:class:`DumpError` naming the file and line, never as a stray ValueError or
IndexError from deep inside a parser. The per-CPU bookkeeping that every
format shares lives in :mod:`.builder`.
"""

from __future__ import annotations

from ..raw import RawDataError

MAX_REG = 0xFFFF_FFFF
_QUOTE_LIMIT = 60


class DumpError(RawDataError):
    """A dump file that cannot be imported; the message names file, line and what was expected."""

    def __init__(self, origin: str, message: str, line: int | None = None) -> None:
        self.origin = origin
        self.line = line
        self.detail = message
        where = origin if line is None else f"{origin}:{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type[DumpError], tuple[str, str, int | None]]:
        # the default would call __init__ with the formatted message only
        return (DumpError, (self.origin, self.detail, self.line))


def quote(text: str) -> str:
    """A line as shown in an error: repr() so control bytes stay visible, cut when long."""
    text = text.strip()
    if len(text) > _QUOTE_LIMIT:
        text = text[:_QUOTE_LIMIT] + "..."
    return repr(text)


def expected(origin: str, line: int, what: str, got: str) -> DumpError:
    """The usual parse error: `file:12: expected 'X', got 'Y'`."""
    return DumpError(origin, f"expected {what!r}, got {quote(got)}", line)


def hex32(text: str, origin: str, line: int, what: str) -> int:
    """A hex field of a dump line; the regexes already admit only hex digits."""
    value = int(text, 16)
    if value > MAX_REG:
        raise DumpError(origin, f"{what} 0x{text} does not fit in 32 bits", line)
    return value


def split_lines(text: str) -> list[str]:
    """Lines numbered as an editor shows them, whatever the line endings."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.split("\n")


REG_DIGITS = 8


def reg32(text: str, origin: str, line: int, what: str) -> int:
    """A register field: every supported tool prints 8 hex digits, so fewer means a cut row."""
    value = hex32(text, origin, line, what)
    if len(text) != REG_DIGITS:
        raise DumpError(
            origin,
            f"{what} {text!r} has {len(text)} hex digit(s), expected {REG_DIGITS}: "
            "the row is cut short or damaged",
            line,
        )
    return value
