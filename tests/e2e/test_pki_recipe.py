"""docs/operations.md's TLS recipe, run verbatim, then a coordinator and agent under mutual TLS."""

from __future__ import annotations

import re
import shlex
import stat
from pathlib import Path

import pytest

from tests.support.daemons import CLI, Daemon, run_cli, wait_until
from tests.support.paths import DEV_DUMP, PROJECT_ROOT

pytestmark = pytest.mark.e2e


def recipe(marker: str = "pki-recipe") -> list[list[str]]:
    text = (PROJECT_ROOT / "docs" / "operations.md").read_text()
    block = re.search(rf"<!-- {marker} -->\n```sh\n(.*?)```", text, re.S)
    assert block, f"docs/operations.md lost its {marker}"
    commands = [shlex.split(line) for line in block[1].splitlines() if line.strip()]
    assert all(c[0] == "cpucompat" for c in commands)
    return commands


def test_the_documented_recipe_makes_working_mutual_tls(tmp_path: Path) -> None:
    import subprocess

    for command in recipe():
        done = subprocess.run(CLI + command[1:], cwd=tmp_path, capture_output=True, text=True)
        assert done.returncode == 0, (command, done.stderr)
    pki = tmp_path / "pki"
    for key in ("ca.key", "coordinator.key", "hv01.key", "ops.key"):
        assert stat.S_IMODE((pki / key).stat().st_mode) == 0o600, key
    ca = str(pki / "ca.pem")
    coord = Daemon(
        [
            "coordinator",
            "--listen",
            "127.0.0.1:0",
            "--db",
            str(tmp_path / "c.db"),
            "--allow-replayed",
            "--admin",
            "ops",
            "--tls-cert",
            str(pki / "coordinator.pem"),
            "--tls-key",
            str(pki / "coordinator.key"),
            "--tls-ca",
            ca,
        ],
        tmp_path / "coordinator.log",
    )
    admin = {
        "CPUCOMPAT_TLS_CERT": str(pki / "ops.pem"),
        "CPUCOMPAT_TLS_KEY": str(pki / "ops.key"),
        "CPUCOMPAT_TLS_CA": ca,
    }
    # The documented admission step: without it the host's certificate alone cannot join.
    for command in recipe("admit-recipe"):
        done = run_cli(*command[1:], "--coordinator", coord.address, env=admin)
        assert done.returncode == 0, (command, done.stderr)
    agent = Daemon(
        [
            "agent",
            "--coordinator",
            coord.address.replace("127.0.0.1", "localhost"),
            "--cluster",
            "prod",
            "--host-id",
            "hv01",
            "--listen",
            "127.0.0.1:0",
            "--replay-dump",
            str(DEV_DUMP),
            "--tls-cert",
            str(pki / "hv01.pem"),
            "--tls-key",
            str(pki / "hv01.key"),
            "--tls-ca",
            ca,
        ],
        tmp_path / "agent.log",
    )
    try:
        listed = wait_until(
            lambda: (
                "hv01" in (r := run_cli("hosts", "--coordinator", coord.address, env=admin)).stdout
                and r
            ),
            what="hv01 listed under mutual TLS",
        )
        assert listed
        # The host's certificate is no administrator; no certificate at all is refused.
        as_host = run_cli(
            "hosts",
            "--coordinator",
            coord.address,
            "--tls-ca",
            ca,
            "--tls-cert",
            str(pki / "hv01.pem"),
            "--tls-key",
            str(pki / "hv01.key"),
        )
        assert as_host.returncode == 2 and "not an administrator" in as_host.stderr
        # Running init again would orphan every certificate: refused without --force.
        again = run_cli("pki", "init", "--dir", str(pki))
        assert again.returncode == 2 and "exists" in again.stderr
    finally:
        agent.stop()
        coord.stop()
