"""`cpucompat man`: cpucompat(1) rendered by the real man/groff, checked against the parser.

The page is made from the parsers at run time, so this checks what a reader sees: every
command path has its section, every option of it appears there whole (no hyphenation),
the exit codes are listed, and groff finds nothing to warn about.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cpucompat.agent.cli.main import build_parser
from cpucompat.agent.cli.man_cmd import commands
from tests.support.daemons import run_cli

HEADING = re.compile(r"^ {2,3}cpucompat (\S.*)$")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_cli("man")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('.\\"') and "\n.TH CPUCOMPAT 1 " in result.stdout
    path = tmp_path_factory.mktemp("man") / "cpucompat.1"
    path.write_text(result.stdout)
    return path


def _render(path: Path) -> str:
    """The page as a reader sees it: `man -l`, else groff, else skip (with why)."""
    env = {**os.environ, "MANWIDTH": "100", "MANPAGER": "cat", "PAGER": "cat", "LC_ALL": "C.UTF-8"}
    if shutil.which("man"):
        cmd = ["man", "-l", str(path)]
    elif shutil.which("groff"):
        cmd = ["groff", "-man", "-Tutf8", "-rLL=100n", "-P-cbou", str(path)]
    else:
        pytest.skip("neither man nor groff is installed (Debian packages man-db, groff-base)")
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return re.sub(r".\x08", "", result.stdout)  # overstrike bold/underline, if any


def _sections(text: str) -> dict[str, str]:
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        m = HEADING.match(line)
        if m and not line.startswith("    "):
            current = found.setdefault(m[1].strip(), [])
        elif re.match(r"^[A-Z][A-Z ]+$", line):  # the next top-level section
            current = None
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in found.items()}


def test_groff_finds_nothing_to_warn_about(page_file: Path) -> None:
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed (Debian package groff-base)")
    result = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", "-z", str(page_file)], capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stderr == ""


def test_every_command_and_option_is_on_the_page(page_file: Path) -> None:
    text = _render(page_file)
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "EXIT STATUS", "ENVIRONMENT"):
        assert re.search(rf"^{heading}$", text, re.M), heading
    sections = _sections(text)
    paths = list(commands(build_parser()))
    assert {"coordinator", "agent", "host maintenance", "pki issue", "man"} <= {
        " ".join(path) for path, _, _ in paths
    }
    for path, parser, _ in paths:
        name = " ".join(path)
        assert name in sections, f"no section for `cpucompat {name}`"
        body = sections[name]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
                continue  # -h/--help is on every command and said once in DESCRIPTION
            for option in action.option_strings:
                if option.startswith("--"):
                    assert option in body, f"`cpucompat {name}` section lacks {option}"
    assert "--metrics-listen ADDR" in sections["coordinator"]
    assert "--metrics-listen ADDR" in sections["agent"]
    assert "CPUCOMPAT_METRICS_LISTEN" in text


def test_exit_codes_are_listed(page_file: Path) -> None:
    text = _render(page_file)
    exit_status = text.split("EXIT STATUS", 1)[1].split("ENVIRONMENT", 1)[0]
    for code, meaning in (
        ("0", "success"),
        ("1", "operational failure"),
        ("2", "usage or input error"),
        ("3", 'a "no" verdict'),
    ):
        assert re.search(rf"^\s+{code}\s+{re.escape(meaning)}", exit_status, re.M), code
