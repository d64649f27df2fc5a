"""The decision code's shape: no import cycles in the domain, sides built in one module."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import PROJECT_ROOT

DOMAIN = PROJECT_ROOT / "coordinator" / "domain"
COORDINATOR = PROJECT_ROOT / "coordinator"
SIDES = DOMAIN / "sides.py"


def _domain_imports(path: Path) -> set[str]:
    """Sibling domain modules ``path`` imports anywhere (function bodies and TYPE_CHECKING too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 and module:
                out.add(module.split(".")[0])
            elif node.level == 1:
                out.update(alias.name for alias in node.names)
            elif module.startswith("cpucompat.coordinator.domain."):
                out.add(module.split(".")[3])
    return out


def test_the_domain_has_no_import_cycle() -> None:
    graph = {p.stem: _domain_imports(p) for p in DOMAIN.glob("*.py") if p.stem != "__init__"}
    assert {"requirement", "baselines", "compat", "sides", "audit"} <= set(graph)
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done or module not in graph:
            return
        for dep in sorted(graph[module]):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def _side_builders(path: Path) -> list[str]:
    """Calls that build a requirement or a target view from a processor or a baseline."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        func = node.func
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        if (owner, func.attr) in (("Requirement", "from_profile"), ("TargetView", "from_profile")):
            found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} {owner}.{func.attr}")
        elif func.attr == "requirement" and not node.args and not node.keywords:
            found.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno} .requirement()")
    return found


def test_requirements_and_views_are_built_only_in_sides() -> None:
    builders = [
        call
        for path in sorted(COORDINATOR.rglob("*.py"))
        if path != SIDES
        for call in _side_builders(path)
    ]
    assert builders == [], "build sides with domain.sides.requirement_of/target_of"
    assert _side_builders(SIDES), "sides.py builds both sides"
