"""The README's quick start: one command brings the system up and shows the decision."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest

from cpucompat.agent.profile import Profile
from tests.support.daemons import run_cli

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("require_x86")]


def test_quickstart_audits_what_if_hosts_without_joining_them(
    tmp_path: Path, live_host_dump: Path, live_host_profile: Profile
) -> None:
    # The what-if model comes from the other vendor, whichever this host's is: saved state
    # never crosses vendors, so the audit must refuse it with VENDOR_MISMATCH.
    other = "model:zen3" if live_host_profile.vendor == "GenuineIntel" else "model:icelake"
    state = tmp_path / "state"
    result = run_cli(
        "quickstart",
        "--dump",
        str(live_host_dump),
        "--model",
        other,
        "--state-dir",
        str(state),
        "--keep",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    address = out.split("CPUCOMPAT_COORDINATOR=", 1)[1].split()[0]
    pids = [int(p) for p in out.split("stop them with: kill ", 1)[1].split("\n", 1)[0].split()]
    try:
        assert "== audit: cluster quickstart + what-if hosts" in out
        assert "but NOT joined (not in `cpucompat hosts`" in " ".join(out.split())
        audit = out.split("== audit", 1)[1].split("== enforced policy", 1)[0]
        dump_row = f"dump:{live_host_dump.name} (what-if)"
        assert any(line.startswith(dump_row) for line in audit.splitlines()), audit
        assert any(other in line and "VENDOR_MISMATCH" in line for line in audit.splitlines())
        assert str(live_host_dump.parent) not in audit  # tables show file names, not paths
        # Only this host joined: the what-if dump and model are not registered hosts...
        hosts = run_cli("hosts", "--json", "--coordinator", address)
        assert hosts.returncode == 0, hosts.stderr
        assert [h["host_id"] for h in json.loads(hosts.stdout)] == ["this-host"]
        # ...and do not move the policy: the other vendor's model would force SHUTDOWN.
        policy = out.split("== enforced policy", 1)[1]
        assert "quickstart  SAVE" in policy
        assert '"hyperv_offline_action": 1' in out
        shown = json.loads(
            run_cli(
                "policy", "show", "--cluster", "quickstart", "--json", "--coordinator", address
            ).stdout
        )
        assert shown["action"] == "SAVE" and shown["host_count"] == 1
        assert (state / "coordinator.db").is_file()
    finally:
        for pid in pids:  # the daemons this test's --keep left running
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def test_quickstart_help_says_what_if_hosts_are_not_joined() -> None:
    result = run_cli("quickstart", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "audited against the cluster but not joined to it" in text
