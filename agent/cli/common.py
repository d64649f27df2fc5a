"""What every subcommand on both sides shares: exit codes, errors, output, options, daemons.

The one module the coordinator's commands import from the agent's CLI (the agent side
never imports the coordinator): exit codes and `CliError`, escaped tables and JSON,
argparse types, the TLS and address options, the state folder and the daemons'
signal handling.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import textwrap
import threading
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import EXIT_FAILURE as EXIT_FAILURE
from ..errors import EXIT_NO as EXIT_NO
from ..errors import EXIT_OK as EXIT_OK
from ..errors import EXIT_USAGE as EXIT_USAGE
from ..errors import CpucompatError
from .config import add_config_options as add_config_options
from .config import print_config as print_config
from .config import resolve_config as resolve_config
from .progress import Progress as Progress

TABLE_WIDTH = 100
BASELINE_PREFIXES = ("model:", "level:")
"""Host arguments that name a baseline (a CPU model or an x86-64 level), not a host or a dump."""
MORE = "\u2026 and {n} more"

EXIT_CODES_HELP = """exit codes:
  0  success (compatible, accepted, SAVE)
  1  operational failure (coordinator unreachable, internal error)
  2  usage or input error (bad arguments, malformed dump or stamp, unknown host or VM)
  3  a "no" verdict (incompatible, refused, SHUTDOWN; an unknown target is refused
     with UNKNOWN_HOST)"""

# Control characters, format characters (bidi overrides, zero-width joiners), line and
# paragraph separators and lone surrogates: none of them belongs on an operator's screen.
_ESCAPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


class CliError(CpucompatError):
    """A failure to report as one line on stderr with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def safe(value: object) -> str:
    """``value`` as text a terminal shows as-is: control characters become visible escapes.

    Brand strings come from CPUID leaves and names, reasons and versions from remote
    agents; an ESC in any of them would otherwise be obeyed by the operator's terminal.
    """
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(_escape(ch) if unicodedata.category(ch) in _ESCAPED else ch for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch in _SHORT:
        return _SHORT[ch]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def more(items: Sequence[object], shown: int, sep: str = " ") -> str:
    """The first ``shown`` items joined, and "… and N more" when some were cut."""
    head = sep.join(safe(i) for i in items[:shown])
    rest = len(items) - shown
    if rest <= 0:
        return head
    return f"{head}{sep}{MORE.format(n=rest)}" if head else MORE.format(n=rest)


def file_label(path: str) -> str:
    """A dump path as its file name (tables); `--json` keeps the full path. A baseline's
    name is shown whole: the slash of `model:qemu/EPYC` is part of the name, not a folder."""
    if path.startswith("dump:"):
        return "dump:" + file_label(path.removeprefix("dump:"))
    if path.startswith(BASELINE_PREFIXES):
        return path
    return path.rstrip("/").rsplit("/", 1)[-1] or path


def wrap(text: str, width: int = TABLE_WIDTH, indent: str = "") -> str:
    """``text`` escaped and wrapped to ``width`` columns, continuation lines indented."""
    lines = textwrap.wrap(
        safe(text),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
    )
    return "\n".join(lines) if lines else indent.rstrip()


def key_values(rows: Sequence[tuple[str, object]], width: int = TABLE_WIDTH) -> str:
    """``Key  value`` lines, values escaped and wrapped under themselves."""
    keys = max((len(k) for k, _ in rows), default=0)
    room = max(20, width - keys - 2)
    out = []
    for key, value in rows:
        parts = textwrap.wrap(safe(value), width=room, break_on_hyphens=False) or [""]
        out.append(f"{key.ljust(keys)}  {parts[0]}".rstrip())
        out.extend(f"{'':{keys}}  {p}" for p in parts[1:])
    return "\n".join(out)


def print_json(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")


def _fit(widths: list[int], passes: Sequence[tuple[set[int], list[int]]], width: int) -> list[int]:
    """Narrow columns until the row fits ``width``, one pass after another.

    A pass names the columns that may give way and the floor none goes below; within it
    every column is capped at one width C, the largest that fits, so no column is starved
    while another keeps its full width. What no longer fits in a cell wraps.
    """
    gaps = 2 * (len(widths) - 1)
    for pool, floors in passes:
        if sum(widths) + gaps <= width:
            break

        def capped(
            cap: int, base: list[int] = widths, pool: set[int] = pool, floors: list[int] = floors
        ) -> list[int]:
            return [min(w, max(cap, floors[i])) if i in pool else w for i, w in enumerate(base)]

        low, high = 0, max(widths)
        while low < high:  # the largest cap that fits, or 0 when none does
            mid = (low + high + 1) // 2
            if sum(capped(mid)) + gaps <= width:
                low = mid
            else:
                high = mid - 1
        widths = capped(low)
    return widths


COMFORTABLE = 16
"""Free text keeps this many columns (or its longest word) while other columns give way."""
WHOLE_WORD = 24
"""A word up to this long (a reason code, a time, a fingerprint) is not split while a
column can give way elsewhere; longer ones (a long file name) wrap anyway."""


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    width: int = TABLE_WIDTH,
    flex: Sequence[int] = (-1,),
) -> str:
    """An aligned text table no wider than ``width``: cells escaped, long ones wrapped.

    ``flex`` names the columns of free text (processor, reason) that give way first, down
    to a comfortable width; then every column gives way (long names wrap), and only when
    that is not enough does free text go narrower.
    """
    cells = [[safe(h) for h in headers]] + [[safe(c) for c in r] for r in rows]
    count = len(headers)
    natural = [max(len(row[i]) for row in cells) for i in range(count)]
    floors = [min(natural[i], max(len(cells[0][i]), 8)) for i in range(count)]
    free = {i % count for i in flex}
    words = [
        min(WHOLE_WORD, max((len(w) for row in cells[1:] for w in row[i].split()), default=0))
        for i in range(count)
    ]
    whole = [min(natural[i], max(floors[i], words[i])) for i in range(count)]
    comfortable = [
        min(natural[i], max(whole[i], COMFORTABLE)) if i in free else whole[i] for i in range(count)
    ]
    everything = set(range(count))
    widths = _fit(
        natural,
        [
            (free, comfortable),  # free text narrows to a comfortable width
            (everything, comfortable),  # then every column, words kept whole
            (everything, floors),  # then words split
            (everything, [1] * count),  # never wider than `width`
        ],
        width,
    )
    lines: list[str] = []
    for n, row in enumerate(cells):
        wrapped = [
            textwrap.wrap(c, width=w, break_on_hyphens=False) or [""]
            for c, w in zip(row, widths, strict=True)
        ]
        for k in range(max(len(part) for part in wrapped)):
            line = "  ".join(
                (part[k] if k < len(part) else "").ljust(w)
                for part, w in zip(wrapped, widths, strict=True)
            )
            lines.append(line.rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def number_in(low: float, high: float, integer: bool = False, unit: str = "") -> Any:
    """An argparse type: a finite number in [low, high], else a one-line usage error (exit 2)."""

    def parse(text: str) -> float | int:
        try:
            value: float | int = int(text) if integer else float(text)
        except ValueError:
            value = math.nan
        if not (isinstance(value, int) or math.isfinite(value)) or not low <= value <= high:
            kind = "a whole number" if integer else "a number"
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {kind} from {low:g} to {high:g}{unit}"
            )
        return value

    parse.__dict__["expects"] = "int" if integer else "number"  # for config files' types
    return parse


def add_tls_options(p: argparse.ArgumentParser, side: str) -> None:
    g = p.add_argument_group("TLS (each flag defaults to $CPUCOMPAT_TLS_CERT, _KEY, _CA)")
    env = os.environ.get
    g.add_argument(
        "--tls-cert",
        metavar="PEM",
        default=env("CPUCOMPAT_TLS_CERT") or None,
        help=f"this {side}'s certificate (enables TLS)",
    )
    g.add_argument(
        "--tls-key",
        metavar="PEM",
        default=env("CPUCOMPAT_TLS_KEY") or None,
        help=f"this {side}'s private key",
    )
    g.add_argument(
        "--tls-ca",
        metavar="PEM",
        default=env("CPUCOMPAT_TLS_CA") or None,
        help="CA certificate that signs the peers; on a server it turns on mutual TLS",
    )


def address_type(kind: str) -> Any:
    """An argparse type for --listen ("listen") or --coordinator ("dial", default port 7443)."""
    from ..addresses import dial_address, listen_address

    def parse(text: str) -> str:
        try:
            return listen_address(text) if kind == "listen" else dial_address(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def coordinators_type() -> Any:
    """An argparse type for --coordinator: ``HOST:PORT[,HOST:PORT...]`` as a tuple of dial
    addresses, in order (agent/coordinators.py); a bad entry is a usage error naming it."""
    from ..coordinators import parse_coordinators

    def parse(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
        try:
            return parse_coordinators(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__dict__["expects"] = "addresses"  # a config file may give a string or a list
    return parse


def tls_files(args: argparse.Namespace) -> Any:
    from ..tls import TlsFiles

    return TlsFiles(cert=args.tls_cert, key=args.tls_key, ca=args.tls_ca)


def default_state_dir() -> Path:
    """Where daemons keep their files: $CPUCOMPAT_STATE_DIR, /var/lib/cpucompat as root, else XDG."""
    env = os.environ.get("CPUCOMPAT_STATE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/cpucompat")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "cpucompat"


def on_stop_signal(stop: Callable[[], object] | None = None) -> threading.Event:
    """Catch SIGTERM and SIGINT from now on: set the returned event and call ``stop``.

    Daemons call it before they print their ready line, so a launcher's SIGTERM right
    after that line still stops them cleanly instead of killing them.
    """
    done = threading.Event()

    def handler(_signum: int, _frame: object) -> None:
        done.set()
        if stop is not None:
            stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return done


def on_reload_signal(reload: Callable[[], object]) -> None:
    """Call ``reload`` on SIGHUP (systemd's `ExecReload=kill -HUP $MAINPID`)."""
    signal.signal(signal.SIGHUP, lambda _signum, _frame: reload())
