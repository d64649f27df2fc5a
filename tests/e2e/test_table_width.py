"""Every table fits 100 columns, even with long dump paths, host names and VM names.

A real coordinator, replayed agents whose dumps sit deep in long-named folders, and every
table-printing command run against them: no line is wider than 100 columns, dump paths
show as their file name in tables (the full path in `--json`), and reason codes are not
broken across lines while a long name has room to wrap instead.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.support.daemons import run_cli, start_agent, start_coordinator, wait_until
from tests.support.hostile import DEV_DUMP, OTHER_DUMP

pytestmark = pytest.mark.e2e

WIDTH = 100


def narrow(result_stdout: str) -> list[str]:
    return [line for line in result_stdout.splitlines() if len(line) > WIDTH]


def test_every_table_fits_100_columns_with_long_paths_and_names(tmp_path: Path) -> None:
    deep = tmp_path / ("racks-" + "d" * 60) / ("delivery-" + "e" * 60)
    deep.mkdir(parents=True)
    long_dump = deep / ("new-server-rack-42-" + "x" * 90 + ".cpuid-r.txt")
    other_dump = deep / ("spare-" + "y" * 100 + ".txt")
    shutil.copy(DEV_DUMP, long_dump)
    shutil.copy(OTHER_DUMP, other_dump)
    host, vm = "node-" + "a" * 70, "vm-" + "b" * 60
    coord = start_coordinator(tmp_path, "--allow-replayed")
    c = ("--coordinator", coord.address)
    env = {"COLUMNS": "250"}  # a wide terminal does not widen the tables
    agents = [
        start_agent(tmp_path, coord.address, host, "--replay-dump", str(long_dump)),
        start_agent(tmp_path, coord.address, "h2", "--replay-dump", str(other_dump)),
    ]
    try:
        for name in (host, "h2"):
            wait_until(
                lambda n=name: run_cli("host", "show", n, *c).returncode == 0, what=f"{name}"
            )
        registered = run_cli("vm", "register", vm, "--cluster", "prod", "--boot-host", host, *c)
        assert registered.returncode == 0, registered.stderr
        admitted = run_cli("cluster", "admit", "prod", "node-" + "c" * 80, *c)
        assert admitted.returncode == 0, admitted.stderr
        dump_arg, other_arg = f"dump:{long_dump}", f"dump:{other_dump}"
        commands: list[tuple[str, ...]] = [
            ("hosts",),
            ("host", "show", host),
            ("host", "history", host),
            ("check", dump_arg, host),
            ("check", dump_arg, other_arg),
            ("targets", dump_arg),
            ("targets", host),
            ("audit", "--cluster", "prod", dump_arg, other_arg, "model:icelake"),
            ("audit", dump_arg, other_arg, "model:zen3"),
            ("events",),
            ("events", "--limit", "2"),
            ("policy", "show"),
            ("vm", "list"),
            ("vm", "targets", vm),
            ("failover", "plan", vm, "--to", "h2"),
            ("cluster", "admissions"),
            ("whatif", "--cluster", "prod", "--add", dump_arg, "--add", "model:icelake"),
            ("whatif", "--cluster", "prod", "--add", other_arg, "--remove", "h2"),
        ]
        for cmd in commands:
            result = run_cli(*cmd, *c, env=env)
            assert result.returncode in (0, 3), (cmd, result.stderr)
            assert result.stdout.strip(), cmd
            assert not narrow(result.stdout), (cmd, narrow(result.stdout))
            # Tables name a dump by its file, never by the folders it sits in.
            assert deep.name not in result.stdout, (cmd, result.stdout)
            # Times carry their zone.
            times = re.findall(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d[^\s,)]*", result.stdout)
            assert all(t.endswith("Z") for t in times), (cmd, times)
            if cmd[0] in ("hosts", "events", "cluster") or cmd[:2] in (
                ("host", "show"),
                ("host", "history"),
            ):
                assert times, (cmd, result.stdout)
        # Scripts get the full path.
        shown = json.loads(run_cli("host", "show", host, "--json", *c).stdout)
        assert str(long_dump) in json.dumps(shown)
        audited = json.loads(run_cli("audit", dump_arg, other_arg, "model:zen3", "--json").stdout)
        assert [h["name"] for h in audited["hosts"]] == [dump_arg, other_arg, "model:zen3"]

        # A long host name wraps; a reason code beside it stays whole on one line.
        targets = run_cli("targets", dump_arg, *c)
        doc = json.loads(run_cli("targets", dump_arg, "--json", *c).stdout)
        codes = {x["code"] for t in doc["targets"] for x in t["reasons"] + t["warnings"]}
        assert codes, doc
        for code in codes:
            assert code in targets.stdout, (code, targets.stdout)

        # The PowerShell export is a script, not a table: its lines stay short where they
        # can (the pipe continues a command) and a quoted VM name is never split.
        export = run_cli("policy", "export", "--cluster", "prod", *c)
        assert f"Get-ClusterResource -Name 'Virtual Machine {vm}' |" in export.stdout
        assert not [
            line
            for line in export.stdout.splitlines()
            if len(line) > WIDTH and "Virtual Machine" not in line
        ]
    finally:
        for agent in agents:
            agent.stop()
        coord.stop()


def test_a_long_processor_name_keeps_room_beside_a_long_dump_name(tmp_path: Path) -> None:
    """The audit table gives way on the long file name before squeezing reasons or brands."""
    from cpucompat.agent.cli.common import table

    rows = [
        (
            "dump:" + "new-server-" + "x" * 80 + ".txt",
            "AuthenticAMD",
            "x86-64-v3",
            0,
            52,
            "AMD Ryzen 7 5700U with Radeon Graphics",
        ),
    ]
    out = table(("HOST", "VENDOR", "LEVEL", "GROUP", "LOSES", "PROCESSOR"), rows)
    assert all(len(line) <= WIDTH for line in out.splitlines())
    lines = out.splitlines()[2:]
    assert len(lines) <= 4, out  # not one word of the brand per line
    for word in rows[0][5].split():  # no word of the brand is cut in two
        assert any(word in line.split() for line in lines), (word, out)
