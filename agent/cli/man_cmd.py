"""`cpucompat man`: the cpucompat(1) manual page, written from the real parsers.

Every command in `main.COMMANDS` is loaded as `main` loads it and walked to its last
subcommand, so a new command, option or default reaches the page without anyone
editing it: the page cannot go stale. The daemons' settings are listed as their
`CPUCOMPAT_*` variables from the same config table `--print-config` uses.
Install: `cpucompat man > /usr/local/share/man/man1/cpucompat.1`; read now:
`cpucompat man | man -l -`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

WIDTH = 78  # usage lines are wrapped here, then kept as they are (.nf)


def roff(text: str) -> str:
    """``text`` safe in a roff line: backslashes, hyphens (options stay copyable), and a
    leading dot or quote that roff would take for a request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = [("\\&" + line if line[:1] in (".", "'") else line) for line in text.split("\n")]
    return "\n".join(lines)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The option's help with argparse's %(default)s and the like filled in."""
    if not action.help:
        return ""
    try:
        return str(parser._get_formatter()._expand_help(action))
    except (KeyError, TypeError, ValueError):
        return str(action.help).replace("%%", "%")


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(prog=parser.prog, width=WIDTH)  # usage: same in all
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    prefix = "usage: "
    first, *rest = formatter.format_help().strip().removeprefix(prefix).splitlines()
    return "\n".join([first, *(line.removeprefix(" " * len(prefix)) for line in rest)])


def _paragraphs(text: str | None, raw: bool) -> list[str]:
    """roff paragraphs of a description or epilog; raw text keeps its lines (.nf)."""
    if not text:
        return []
    out = []
    for block in text.strip().split("\n\n"):
        if raw:
            out.append(".nf\n" + roff(block) + "\n.fi")
        else:
            out.append(roff(" ".join(line.strip() for line in block.splitlines())))
    return out


def _invocation(action: argparse.Action) -> str:
    """`\\-\\-tls\\-cert PEM, ...` in bold with the value in italics."""
    if not action.option_strings:
        name = action.metavar if isinstance(action.metavar, str) else action.dest
        return f"\\fI{roff(str(name))}\\fR"
    metavar = ""
    if action.nargs != 0:
        if isinstance(action.metavar, str):
            metavar = action.metavar
        elif action.choices is not None:
            metavar = "{" + ",".join(str(c) for c in action.choices) + "}"
        else:
            metavar = action.dest.upper()
    parts = []
    for option in action.option_strings:
        part = f"\\fB{roff(option)}\\fR"
        if metavar:
            part += f" \\fI{roff(metavar)}\\fR"
        parts.append(part)
    return ", ".join(parts)


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str]]:
    """(path, parser, one-line help) of every command below ``parser``, depth first."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in action._choices_actions}
            for name, child in action.choices.items():
                yield (*path, name), child, str(helps.get(name, ""))
                yield from commands(child, (*path, name))


def _section(path: tuple[str, ...], p: argparse.ArgumentParser, summary: str) -> list[str]:
    raw = isinstance(p._get_formatter(), argparse.RawDescriptionHelpFormatter)
    lines = [f'.SS "cpucompat {roff(" ".join(path))}"']
    if summary:
        lines.append(roff(summary[:1].upper() + summary[1:]) + ".")
        lines.append(".PP")
    lines += [".nf", roff(_usage(p)), ".fi"]
    for paragraph in _paragraphs(p.description, raw):
        lines += [".PP", paragraph]
    for group in p._action_groups:
        shown = [
            a
            for a in group._group_actions
            if a.help != argparse.SUPPRESS and not isinstance(a, argparse._SubParsersAction)
        ]
        shown = [a for a in shown if not isinstance(a, argparse._HelpAction)]
        if not shown:
            continue
        if group.title and group.title not in ("options", "optional arguments"):
            lines += [".PP", f"\\fI{roff(group.title)}\\fR"]
        for action in shown:
            lines += [".TP", _invocation(action), roff(_help(p, action)) or "\\&"]
    for paragraph in _paragraphs(p.epilog, raw):
        lines += [".PP", paragraph]
    return lines


def _variables(parser: argparse.ArgumentParser) -> list[str]:
    """The daemons' CPUCOMPAT_* settings, from the config table each daemon parser holds."""
    lines = []
    for path, p, _ in commands(parser):
        settings = p._defaults.get("_settings")
        if not settings:
            continue
        names = ", ".join(f"\\fB{roff(s.env)}\\fR" for s in settings)
        lines += [
            ".TP",
            f"\\fBcpucompat {roff(' '.join(path))}\\fR",
            f"{names}, and \\fBCPUCOMPAT_CONFIG\\fR (the TOML file). Each variable sets "
            "the flag of the same name; a flag beats a variable, which beats the file.",
        ]
    return lines


def page(parser: argparse.ArgumentParser, version: str) -> str:
    """The whole page as roff (man(7) macros), deterministic for one parser and version."""
    from .common import EXIT_CODES_HELP

    description = parser.description or ""
    lines = [
        ".\\\" Generated by `cpucompat man` from the command's own parsers; do not edit.",
        f'.TH CPUCOMPAT 1 "" "cpucompat {roff(version)}" "User Commands"',
        ".nh",  # no hyphenation: options and names stay whole, searchable and copyable
        ".ad l",
        ".SH NAME",
        f"cpucompat \\- {roff(description[:1].lower() + description[1:].rstrip('.'))}",
        ".SH SYNOPSIS",
        ".B cpucompat",
        "[\\fB\\-\\-version\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]",
        ".SH DESCRIPTION",
        "An agent on every host reads the processors (CPUID on every logical CPU) and "
        "reports them to a coordinator, which answers where a VM's saved state may be "
        "restored and keeps each cluster's offline action (SAVE or SHUTDOWN). This page "
        "lists every command with its options; \\fBcpucompat \\fICOMMAND\\fB \\-\\-help\\fR "
        "prints the same for one command.",
        ".SH COMMANDS",
    ]
    for path, p, summary in commands(parser):
        lines += _section(path, p, summary)
    lines += [".SH EXIT STATUS"]
    for row in EXIT_CODES_HELP.splitlines()[1:]:
        text = row.strip()
        code, _, meaning = text.partition("  ")
        if code.isdigit():
            lines += [".TP", f"\\fB{code}\\fR", roff(meaning.strip())]
        else:  # a continued line of the previous meaning
            lines.append(roff(text))
    lines += [
        ".SH ENVIRONMENT",
        ".TP",
        "\\fBCPUCOMPAT_COORDINATOR\\fR",
        "The coordinator's address for the client commands (default 127.0.0.1:7443).",
        ".TP",
        "\\fBCPUCOMPAT_TLS_CERT\\fR, \\fBCPUCOMPAT_TLS_KEY\\fR, \\fBCPUCOMPAT_TLS_CA\\fR",
        "The client's certificate, key and CA when the flags are not given.",
        ".TP",
        "\\fBCPUCOMPAT_STATE_DIR\\fR",
        "Where the daemons keep their state (default /var/lib/cpucompat as root, else "
        "~/.local/state/cpucompat).",
        *_variables(parser),
        ".SH SEE ALSO",
        "\\fBsystemd.service\\fR(5), \\fBprometheus\\fR(1); README.md, "
        "docs/operations.md and docs/prometheus/alerts.yml in the cpucompat sources.",
    ]
    return "\n".join(lines) + "\n"


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Print the cpucompat(1) manual page (roff), made from this cpucompat's own "
            "commands and options. Read it with `cpucompat man | man -l -`; install it "
            "with `cpucompat man > /usr/local/share/man/man1/cpucompat.1`."
        ),
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .main import _version, build_parser

    sys.stdout.write(page(build_parser(), _version()))
    return 0
