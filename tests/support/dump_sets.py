"""The dumps that property tests of the report forms run over: every loadable project
fixture, and the shared dumps when ../shared is there."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from cpucompat.agent.dumps import DumpError, load_dump
from cpucompat.agent.raw import RawCapture

from .paths import DUMPS, PROCESSORS, SHARED_DUMPS


def loadable(folder: Path) -> list[Path]:
    """The dumps in ``folder`` that load (the parsers' bad-input fixtures left out)."""
    out = []
    for path in sorted(folder.glob("*")):
        try:
            load_dump(path)
        except DumpError:
            continue
        out.append(path)
    return out


PROJECT_DUMPS = loadable(PROCESSORS) + loadable(DUMPS)
SHARED = sorted(SHARED_DUMPS.glob("*.txt")) if SHARED_DUMPS.is_dir() else []


def read(path: Path) -> RawCapture:
    """A dump as a client sends it: importer warnings are for the person running `probe`;
    no form sends them."""
    return replace(load_dump(path), warnings=())
