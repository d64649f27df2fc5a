"""`--coordinator A,B,C`: the list in order, and a bad entry named in a one-line usage error.

The same parsing serves the agent's flag, its config key (a string or a TOML list) and
`CPUCOMPAT_COORDINATOR`, and every CLI command's `--coordinator`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from cpucompat.agent.cli.config import ConfigError, resolve_config
from cpucompat.agent.cli.main import build_parser
from cpucompat.agent.coordinators import parse_coordinators


def test_the_list_keeps_its_order_and_gets_the_default_port() -> None:
    assert parse_coordinators("10.0.0.2:7000, coord-b ,[::1]:9") == (
        "10.0.0.2:7000",
        "coord-b:7443",
        "[::1]:9",
    )
    assert parse_coordinators(["a:1,b:2", "c"]) == ("a:1", "b:2", "c:7443")
    assert parse_coordinators("dns:///coordinators.example:7443") == (
        "dns:///coordinators.example:7443",
    )


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("a:1,,b:2", "'a:1,,b:2' has an empty entry"),
        ("a:1,", "has an empty entry"),
        ("a:1,:7443", "':7443' has no host name"),
        ("a:1,b:99999", "'b:99999': the port must be a number 1-65535"),
        ("a:1,b:x", "'b:x': the port must be"),
        ("a:1,b:2,a:1", "coordinator 'a:1' is listed twice"),
    ],
)
def test_a_bad_entry_is_named(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_coordinators(text)


@pytest.mark.parametrize("command", [["hosts"], ["policy", "show", "--cluster", "prod"]])
def test_cli_commands_exit_2_with_one_line_naming_the_entry(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*command, "--coordinator", "127.0.0.1:7443,bad:port"]
    with pytest.raises(SystemExit) as exit_info:
        build_parser(only=command[0]).parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'bad:port'" in err, err


def test_the_agent_flag_exits_2_naming_the_entry(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["agent", "--cluster", "prod", "--coordinator", "a:1,,b:2"]
    with pytest.raises(SystemExit) as exit_info:
        build_parser(only="agent").parse_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'a:1,,b:2' has an empty entry" in err, err


def agent_args(*argv: str) -> argparse.Namespace:
    return build_parser(only="agent").parse_args(["agent", *argv])


def test_config_file_takes_a_toml_list_or_a_comma_string(tmp_path: Path) -> None:
    listed = tmp_path / "list.toml"
    listed.write_text('coordinator = ["a:1", "b"]\ncluster = "prod"\n')
    args = resolve_config(agent_args("--config", str(listed)), environ={})
    assert args.coordinator == ("a:1", "b:7443")
    comma = tmp_path / "comma.toml"
    comma.write_text('coordinator = "a:1,b"\ncluster = "prod"\n')
    assert resolve_config(agent_args("--config", str(comma)), environ={}).coordinator == (
        "a:1",
        "b:7443",
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('coordinator = ["a:1", "b:0"]\ncluster = "prod"\n')
    with pytest.raises(ConfigError, match=r"key 'coordinator'.*'b:0'"):
        resolve_config(agent_args("--config", str(bad)), environ={})
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('coordinator = 7443\ncluster = "prod"\n')
    with pytest.raises(ConfigError, match="must be a string"):
        resolve_config(agent_args("--config", str(wrong)), environ={})


def test_environment_variable_takes_a_comma_string() -> None:
    environ = {"CPUCOMPAT_COORDINATOR": "a:1,b:2", "CPUCOMPAT_CLUSTER": "prod"}
    assert resolve_config(agent_args(), environ=environ).coordinator == ("a:1", "b:2")
    with pytest.raises(
        ConfigError, match="environment CPUCOMPAT_COORDINATOR: coordinator 'b:2' is listed twice"
    ):
        resolve_config(agent_args(), environ={**environ, "CPUCOMPAT_COORDINATOR": "b:2,b:2"})
