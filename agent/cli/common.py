"""What every subcommand shares: exit codes, errors, output helpers."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NO = 3

EXIT_CODES_HELP = """exit codes:
  0  success (compatible, accepted, SAVE)
  1  operational failure (coordinator unreachable, internal error)
  2  usage or input error (bad arguments, malformed dump or stamp, unknown host or VM)
  3  a "no" verdict (incompatible, refused, SHUTDOWN; an unknown target is refused
     with UNKNOWN_HOST)"""


class CliError(Exception):
    """A failure to report as one line on stderr with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def print_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table, readable in a terminal and in logs."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
