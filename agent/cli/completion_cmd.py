"""`cpucompat completion bash|zsh`: a shell completion script made from the real parsers.

Generated from every command in `main.COMMANDS` (each loaded as `main` loads it), so a
new command, option or choice completes without anyone editing a script by hand. The
standard library only: the script is static text, so completion never starts Python.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any

SHELLS = ("bash", "zsh")
SPEC_PREFIXES = ("dump:", "model:", "libvirt:", "level:")
_FILE_METAVARS = frozenset({"FILE", "PEM", "PATH", "PATH|URL"})
_SPEC_METAVARS = frozenset({"SOURCE", "TARGET"})
# Arguments that take a processor specification (dump:/model:/...) under another metavar.
_SPEC_ARGS = frozenset({("audit", "hosts"), ("check", "boot_host"), ("whatif", "add")})


@dataclass
class Node:
    """One command path (``host maintenance``): what may follow it on the line."""

    subcommands: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)  # option -> completion kinds
    positional: list[str] = field(default_factory=list)  # completion kinds


def _kinds(action: argparse.Action, command: str) -> str:
    """How a value completes: ``+word`` choices, ``file``, ``dir``, ``spec`` or nothing."""
    if action.choices is not None:
        return " ".join(f"+{c}" for c in action.choices)
    metavar = action.metavar if isinstance(action.metavar, str) else ""
    if metavar in _SPEC_METAVARS or (command, action.dest) in _SPEC_ARGS:
        return "spec"
    if metavar in _FILE_METAVARS:
        return "file"
    return "dir" if metavar == "DIR" else ""


def walk(parser: argparse.ArgumentParser) -> dict[str, Node]:
    """Every command path of ``parser`` (the empty path is `cpucompat` itself)."""
    nodes: dict[str, Node] = {}

    def visit(p: argparse.ArgumentParser, path: list[str]) -> None:
        node = nodes.setdefault(" ".join(path), Node())
        command = path[0] if path else ""
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    node.subcommands.append(name)
                    visit(child, [*path, name])
            elif action.option_strings:
                node.options.extend(action.option_strings)
                if action.nargs != 0:
                    for option in action.option_strings:
                        node.values[option] = _kinds(action, command)
            else:
                kinds = _kinds(action, command)
                if kinds:
                    node.positional.append(kinds)

    visit(parser, [])
    return nodes


def _case(arms: list[tuple[str, str]]) -> str:
    lines = ['    case "$1" in']
    lines += [f"        {_quote(k)}) echo {_quote(v)} ;;" for k, v in arms if v]
    lines.append("    esac")
    return "\n".join(lines)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


_BODY = r"""
_cpucompat() {
    [[ -n ${ZSH_VERSION-} ]] && setopt localoptions ksharrays shwordsplit
    local cword=$COMP_CWORD start=$COMP_CWORD cmdpath="" pending="" word i cur=""
    # bash splits dump:a.txt at the colon (COMP_WORDBREAKS): join the pieces again.
    while (( start > 1 )) && [[ ${COMP_WORDS[start]} == ":" || ${COMP_WORDS[start-1]} == ":" ]]; do
        (( start-- ))
    done
    for (( i = start; i <= cword; i++ )); do cur+="${COMP_WORDS[i]}"; done
    for (( i = 1; i < start; i++ )); do
        word="${COMP_WORDS[i]}"
        if [[ $word == ":" || ( $i -gt 1 && ${COMP_WORDS[i-1]} == ":" ) ]]; then continue; fi
        if [[ -n $pending ]]; then pending=""; continue; fi
        if [[ $word == -* ]]; then
            _cpucompat_takes "$cmdpath" "$word" && pending="$word"
            continue
        fi
        if [[ " $(_cpucompat_subs "$cmdpath") " == *" $word "* ]]; then cmdpath="${cmdpath:+$cmdpath }$word"; fi
    done
    local kinds cands="" files="" dirs="" spec="" k
    if [[ -n $pending ]]; then
        kinds="$(_cpucompat_value "$cmdpath" "$pending")"
    elif [[ $cur == -* ]]; then
        cands="$(_cpucompat_opts "$cmdpath")"
        kinds=""
    else
        cands="$(_cpucompat_subs "$cmdpath")"
        kinds="$(_cpucompat_pos "$cmdpath")"
    fi
    for k in $kinds; do
        case "$k" in
            +*) cands+=" ${k#+}" ;;
            file) files=1 ;;
            dir) dirs=1 ;;
            spec) spec=1 ;;
        esac
    done
    COMPREPLY=()
    local IFS=$'\n' prefix=""
    if [[ -n $spec && $cur == *:* ]]; then
        prefix="${cur%%:*}:"
        case "$prefix" in dump:|libvirt:) files=1 ;; *) files="" ;; esac
        dirs=""
        cands=""
    elif [[ -n $spec ]]; then
        cands+=" SPEC_PREFIXES"
    fi
    IFS=$' \t\n'
    COMPREPLY+=( $(compgen -W "$cands" -- "$cur") )
    if [[ -n $files || -n $dirs ]]; then
        local flag="-f" found
        [[ -z $files ]] && flag="-d"
        IFS=$'\n'
        for found in $(compgen $flag -- "${cur#"$prefix"}"); do
            COMPREPLY+=( "$prefix$found" )
        done
        IFS=$' \t\n'
        type compopt >/dev/null 2>&1 && compopt -o filenames 2>/dev/null
    fi
    # Give back only what follows the part of the word bash split off at a colon.
    local strip=$(( ${#cur} - ${#COMP_WORDS[cword]} ))
    if (( strip > 0 )); then
        for (( i = 0; i < ${#COMPREPLY[@]}; i++ )); do COMPREPLY[i]="${COMPREPLY[i]:strip}"; done
    fi
    [[ -n $spec && $cur != *:* && ${#COMPREPLY[@]} -gt 0 ]] && type compopt >/dev/null 2>&1 \
        && compopt -o nospace 2>/dev/null
    return 0
}
"""


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    """The completion script for ``shell`` ("bash" or "zsh")."""
    nodes = walk(parser)
    paths = sorted(nodes)
    parts = ["# cpucompat shell completion, generated by `cpucompat completion " + shell + "`."]
    if shell == "zsh":
        # bashcompinit needs compinit's compdef; start it when ~/.zshrc has not.
        parts.append("(( $+functions[compdef] )) || { autoload -U compinit && compinit; }")
        parts.append("autoload -U +X bashcompinit && bashcompinit")
    parts.append(
        "_cpucompat_subs() {\n"
        + _case([(p, " ".join(nodes[p].subcommands)) for p in paths])
        + "\n}"
    )
    parts.append(
        "_cpucompat_opts() {\n" + _case([(p, " ".join(nodes[p].options)) for p in paths]) + "\n}"
    )
    parts.append(
        "_cpucompat_pos() {\n" + _case([(p, " ".join(nodes[p].positional)) for p in paths]) + "\n}"
    )
    value_arms = [(f"{p}|{o}", k or "none") for p in paths for o, k in nodes[p].values.items()]
    parts.append('_cpucompat_value() {\n    set -- "$1|$2"\n' + _case(value_arms) + "\n}")
    parts.append(
        '_cpucompat_takes() {\n    set -- "$1|$2"\n'
        + '    case "$1" in\n'
        + "".join(f"        {_quote(k)}) return 0 ;;\n" for k, _ in value_arms)
        + "    esac\n    return 1\n}"
    )
    parts.append(_BODY.strip().replace("SPEC_PREFIXES", " ".join(SPEC_PREFIXES)))
    parts.append("complete -F _cpucompat cpucompat")
    return "\n\n".join(parts) + "\n"


def add_parser(sub: Any, name: str, help_text: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=(
            "Print a completion script for bash or zsh, made from this cpucompat's own "
            "commands and options. Install: cpucompat completion bash > "
            "/etc/bash_completion.d/cpucompat (or source it from ~/.bashrc); zsh: "
            "cpucompat completion zsh > ~/.zsh/cpucompat.zsh and source it from ~/.zshrc."
        ),
    )
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from .main import build_parser

    sys.stdout.write(script(args.shell, build_parser()))
    return 0
