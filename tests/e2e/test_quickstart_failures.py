"""A quick start that cannot finish exits non-zero and names a log that still exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.daemons import run_cli


def test_a_bad_dump_is_refused_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("no processor here\n")
    result = run_cli("quickstart", "--dump", str(bad), "--state-dir", str(tmp_path / "s"))
    assert result.returncode == 2 and "not a CPUID dump" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "s" / "coordinator.db").exists()


@pytest.mark.e2e
@pytest.mark.usefixtures("require_x86")
def test_a_bad_model_exits_non_zero_and_keeps_its_log() -> None:
    result = run_cli("quickstart", "--model", "model:nonesuch")
    assert result.returncode == 2, result.stdout + result.stderr
    named = re.search(r"see (\S+)\)", result.stderr)
    assert named and "unknown baseline" in result.stderr
    log = Path(named[1])
    assert log.is_file() and "model:nonesuch" in log.read_text()
    kept = log.parent
    assert (kept / "coordinator.log").is_file()
    import shutil

    shutil.rmtree(kept)
