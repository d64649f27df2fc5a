"""The README's quick start: one command brings the system up and shows the decision."""

from __future__ import annotations

import pytest

from .conftest import FIXTURES
from .daemons import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("require_x86")]


def test_quickstart_audits_and_shows_the_enforced_policy(tmp_path) -> None:
    twin = FIXTURES / "processors" / "dev-amd-epyc-kvm.cpuid-r.txt"
    result = run_cli(
        "quickstart", "--dump", str(twin), "--model", "model:icelake", "--state-dir", str(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "this-host" in out and "what-if-1 (replayed)" in out
    assert "== audit: cluster quickstart + model:icelake" in out
    assert "VENDOR_MISMATCH" in out  # the Intel what-if model against this AMD host
    # The cluster itself (this host and its twin) may save state.
    policy = out.split("== enforced policy", 1)[1]
    assert "quickstart  SAVE" in policy
    assert '"hyperv_offline_action": 1' in out
    assert (tmp_path / "coordinator.db").is_file()
