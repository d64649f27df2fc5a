"""`cpucompat completion bash|zsh`: the printed scripts complete in the real shells."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from cpucompat.agent.cli.main import COMMANDS
from tests.support.daemons import run_cli


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_cli("completion", "bash")
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("completion") / "cpucompat.bash"
    path.write_text(result.stdout)
    return path


def complete(script: Path, words: list[str], cwd: Path, shell: str = "bash") -> list[str]:
    """COMPREPLY after `_cpucompat` with ``words`` on the line, the cursor in the last."""
    array = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    if shell == "bash":
        setup = f"source '{script}'"
        run = [shutil.which("bash") or "bash", "--norc", "--noprofile", "-c"]
    else:
        setup = f"autoload -U compinit && compinit -u && source '{script}'"
        run = [shutil.which("zsh") or "zsh", "-f", "-c"]
    code = (
        f"{setup}\nCOMP_WORDS=({array})\nCOMP_CWORD={len(words) - 1}\nCOMPREPLY=()\n"
        '_cpucompat\nprintf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run([*run, code], capture_output=True, text=True, cwd=cwd)
    assert result.returncode == 0 and not result.stderr, result.stderr
    return [line for line in result.stdout.splitlines() if line]


def test_bash_script_is_valid_bash(bash_script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(bash_script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["cpucompat", "che"], ["check"]),
        (["cpucompat", "check", "--hyp"], ["--hypervisor"]),
        (["cpucompat", "check", "--hypervisor", ""], ["generic", "kvm"]),
        (["cpucompat", "baseline", "--format", "l"], ["libvirt"]),
        (["cpucompat", "host", "maintenance", "node-1", ""], ["on", "off"]),
        (["cpucompat", "cluster", "baseline", "u"], ["unpin"]),
        (["cpucompat", "completion", ""], ["bash", "zsh"]),
        (["cpucompat", "probe", "--from-dump", "ne"], ["new-server.txt"]),
        (["cpucompat", "check", "mo"], ["model:"]),
        (["cpucompat", "check", "dump:ne"], ["dump:new-server.txt"]),
        # bash splits `dump:ne` at the colon (COMP_WORDBREAKS): only the part after it.
        (["cpucompat", "audit", "dump", ":", "ne"], ["new-server.txt"]),
    ],
)
def test_bash_completes_from_the_real_parsers(
    bash_script: Path, tmp_path: Path, words: list[str], expected: list[str]
) -> None:
    (tmp_path / "new-server.txt").write_text("")
    (tmp_path / "other.xml").write_text("")
    assert sorted(complete(bash_script, words, tmp_path)) == sorted(expected)


def test_options_with_values_are_stepped_over(bash_script: Path, tmp_path: Path) -> None:
    words = ["cpucompat", "baseline", "--cluster", "prod", "dump:a.txt", "--format", ""]
    assert sorted(complete(bash_script, words, tmp_path)) == ["hyperv", "json", "libvirt", "qemu"]


def test_every_command_is_in_the_script(bash_script: Path, tmp_path: Path) -> None:
    offered = complete(bash_script, ["cpucompat", ""], tmp_path)
    assert sorted(offered) == sorted(COMMANDS)
    for name in COMMANDS:
        options = complete(bash_script, ["cpucompat", name, "--"], tmp_path)
        subcommands = complete(bash_script, ["cpucompat", name, ""], tmp_path)
        assert options or subcommands, f"{name} completes nothing"


def test_zsh_script(tmp_path: Path) -> None:
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (Debian package zsh): the zsh script is not checked")
    result = run_cli("completion", "zsh")
    assert result.returncode == 0, result.stderr
    script = tmp_path / "cpucompat.zsh"
    script.write_text(result.stdout)
    syntax = subprocess.run(["zsh", "-n", str(script)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    # zsh filters by the typed prefix itself: the candidates must hold the right ones.
    (tmp_path / "new-server.txt").write_text("")
    assert {"generic", "kvm"} <= set(
        complete(script, ["cpucompat", "check", "--hypervisor", ""], tmp_path, "zsh")
    )
    assert "dump:new-server.txt" in complete(
        script, ["cpucompat", "check", "dump:new"], tmp_path, "zsh"
    )


def test_unknown_shell_is_a_usage_error() -> None:
    result = run_cli("completion", "fish")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr and len(result.stderr.strip().splitlines()) == 1
