"""The README's quick start: one command brings the system up and shows the decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpucompat.agent.profile import Profile

from .daemons import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("require_x86")]


def test_quickstart_audits_and_shows_the_enforced_policy(
    tmp_path: Path, live_host_dump: Path, live_host_profile: Profile
) -> None:
    # The what-if model comes from the other vendor, whichever this host's is: saved state
    # never crosses vendors, so the audit must refuse it with VENDOR_MISMATCH.
    other = "model:zen3" if live_host_profile.vendor == "GenuineIntel" else "model:icelake"
    state = tmp_path / "state"
    result = run_cli(
        "quickstart", "--dump", str(live_host_dump), "--model", other, "--state-dir", str(state)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "this-host" in out and "what-if-1 (replayed)" in out
    assert f"== audit: cluster quickstart + {other}" in out
    audit = out.split("== audit", 1)[1].split("== enforced policy", 1)[0]
    assert any(other in line and "VENDOR_MISMATCH" in line for line in audit.splitlines())
    # The cluster itself (this host and its twin, recorded from it just now) may save state.
    policy = out.split("== enforced policy", 1)[1]
    assert "quickstart  SAVE" in policy
    assert '"hyperv_offline_action": 1' in out
    assert (state / "coordinator.db").is_file()
