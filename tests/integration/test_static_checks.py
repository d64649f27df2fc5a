"""The code stays lint-clean and type-consistent: ruff and mypy over the sources."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.support.paths import PROJECT_ROOT


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    if shutil.which("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    pytest.importorskip("mypy", reason="mypy is not installed (pip install -e '.[dev]')")
    result = _run(sys.executable, "-m", "mypy", "agent", "coordinator")
    assert result.returncode == 0, result.stdout + result.stderr
