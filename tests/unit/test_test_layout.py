"""The tests stay in layers (tests/conftest.py): each module in the layer its heaviest part needs.

A unit test that quietly starts a daemon makes the fast layer slow and flaky; a test module
that imports another couples two files that should move on their own. Read from the source
with ``ast``, so a violation fails here whatever the test would do when run.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from tests.support.paths import PROJECT_ROOT

TESTS = PROJECT_ROOT / "tests"
LAYERS = ("unit", "integration", "e2e")

# What starts a cpucompat daemon or CLI as a subprocess (tests/support/daemons.py, quickstart's
# launcher, the fixtures that run `cpucompat probe --raw`).
DAEMON_HELPERS = frozenset(
    {"run_cli", "start_agent", "start_coordinator", "Daemon", "CLI", "Launched", "hostile_dump"}
)
DAEMON_FIXTURES = frozenset({"live_host_dump", "live_host_profile"})
DAEMON_MODULES = frozenset({"tests.support.hostile_dump", "cpucompat.coordinator.cli.launch"})
# What serves gRPC or opens a database: not for unit tests.
SERVER_MODULES = frozenset(
    {"cpucompat.coordinator.server", "tests.support.inprocess", "sqlite3", "subprocess"}
)
SERVER_FIXTURES = frozenset({"live_coordinator"})


@dataclass(frozen=True)
class Module:
    path: Path
    tree: ast.Module

    @property
    def layer(self) -> str:
        return self.path.relative_to(TESTS).parts[0]

    @property
    def name(self) -> str:
        return ".".join(self.path.relative_to(PROJECT_ROOT).with_suffix("").parts)

    def imports(self) -> list[tuple[str, str | None]]:
        """(module, imported name or None) for every import, relative ones resolved."""
        found: list[tuple[str, str | None]] = []
        package = self.name.rsplit(".", 1)[0].split(".")
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                found += [(alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                module = ".".join([*base, *([node.module] if node.module else [])])
                found += [(module, alias.name) for alias in node.names]
                found += [(f"{module}.{alias.name}", None) for alias in node.names]
        return found

    def names(self) -> set[str]:
        """Every name and attribute the module reads, and every test argument (fixtures)."""
        used: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                used |= {arg.arg for arg in node.args.args}
            elif isinstance(node, ast.ImportFrom):
                used |= {alias.name for alias in node.names}
        return used


@cache
def modules() -> tuple[Module, ...]:
    return tuple(
        Module(path, ast.parse(path.read_text(), filename=str(path)))
        for path in sorted(TESTS.rglob("test_*.py"))
    )


def in_layer(layer: str) -> list[Module]:
    return [m for m in modules() if m.layer == layer]


def test_every_test_module_sits_in_a_layer() -> None:
    stray = [str(m.path.relative_to(TESTS)) for m in modules() if m.layer not in LAYERS]
    assert stray == [], (
        "move these into tests/unit, tests/integration or tests/e2e (rule in tests/conftest.py): "
        + ", ".join(stray)
    )


def test_each_layer_holds_tests() -> None:
    assert all(in_layer(layer) for layer in LAYERS)


def test_no_test_module_imports_another_or_conftest() -> None:
    offending = [
        f"{m.path.relative_to(TESTS)} imports {module}"
        for m in modules()
        for module, _ in m.imports()
        if module.rsplit(".", 1)[-1].startswith("test_") or module.endswith("conftest")
    ]
    assert offending == [], "move what they share into tests/support/:\n" + "\n".join(offending)


@pytest.mark.parametrize("module", in_layer("unit"), ids=lambda m: m.path.name)
def test_unit_tests_start_no_server_and_no_subprocess(module: Module) -> None:
    imported = {name for name, _ in module.imports()}
    heavy = sorted(
        (imported & (SERVER_MODULES | DAEMON_MODULES))
        | {n for n in imported if n.startswith("tests.support.daemons")}
        | (module.names() & (DAEMON_HELPERS | DAEMON_FIXTURES | SERVER_FIXTURES | {"Popen"}))
    )
    assert heavy == [], f"{module.path.name} uses {heavy}: it belongs in integration or e2e"


@pytest.mark.parametrize("module", in_layer("integration"), ids=lambda m: m.path.name)
def test_integration_tests_start_no_daemon(module: Module) -> None:
    imported = {name for name, _ in module.imports()}
    heavy = sorted(
        (imported & DAEMON_MODULES)
        | (module.names() & (DAEMON_HELPERS | DAEMON_FIXTURES | {"Popen"}))
    )
    assert heavy == [], f"{module.path.name} uses {heavy}: it belongs in e2e"


@pytest.mark.parametrize("module", in_layer("e2e"), ids=lambda m: m.path.name)
def test_e2e_tests_run_a_daemon_or_the_cli(module: Module) -> None:
    """A module here that runs nothing as a subprocess belongs in a lighter layer."""
    assert module.names() & (DAEMON_HELPERS | DAEMON_FIXTURES), (
        f"{module.path.name} starts no cpucompat subprocess: move it to integration or unit"
    )


def test_the_checks_see_a_daemon_and_a_test_module_import() -> None:
    """The detectors catch what they are for (else every check above would pass vacuously)."""
    source = (
        "import subprocess\n"
        "from tests.support.daemons import run_cli\n"
        "from .test_other import helper\n"
        "def test_x(live_coordinator): run_cli('probe')\n"
    )
    fake = Module(TESTS / "unit" / "test_fake.py", ast.parse(source))
    imported = {name for name, _ in fake.imports()}
    assert {"subprocess", "tests.support.daemons", "tests.unit.test_other"} <= imported
    assert {"run_cli", "live_coordinator"} <= fake.names()
