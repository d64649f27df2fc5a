"""The layer contract, read from the source with `ast`: who may import whom.

- Reading processors (`agent/`) never imports deciding (`cpucompat.coordinator`), not
  even inside a function or under TYPE_CHECKING. The one place the agent's side names
  the coordinator is the `cpucompat` entry point's lazy command table
  (`agent/cli/main.py` COMMANDS), by module-name strings loaded with importlib.
- The coordinator's domain (`coordinator/domain/`) and storage (`coordinator/storage/`)
  import no transport: neither grpc, protobuf, the generated `cpucompat.v1` code, nor
  the coordinator's service, CLI, server or wire conversion; nor does anything they
  import at module level.
- The service layer (`coordinator/service/`) never imports a CLI; no module outside a
  `cli` package imports one. The coordinator's commands take the CLI plumbing both sides
  share (exit codes, output, options) from one module, `agent/cli/common.py`.
- No import cycles among the project's modules. The graph holds the imports a module
  runs when it is loaded (module level, including inside try/if and class bodies);
  imports under TYPE_CHECKING never run and are left out. Imports inside functions are
  how commands load lazily and are allowed, but one that closes a cycle with the
  module-level graph fails too: the cycle is real the first time that function runs.
  Package `__init__` modules are nodes like any other, but the implicit import of a
  parent package that every submodule import performs is not an edge (it would make
  every package that imports its own submodules a cycle).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import PROJECT_ROOT

# Source folder -> the package it is installed as (pyproject.toml package-dir).
PACKAGES = {
    PROJECT_ROOT / "agent": "cpucompat.agent",
    PROJECT_ROOT / "coordinator": "cpucompat.coordinator",
}
ENTRY_POINT = "cpucompat.agent.cli.main"
SHARED_CLI = "cpucompat.agent.cli.common"  # the CLI plumbing both sides use
COMMAND_TABLE = "COMMANDS"
TRANSPORT = ("grpc", "grpc_health", "grpc_reflection", "google.protobuf", "cpucompat.v1")
# Metrics are exported by one module per daemon (and the endpoint both share); the rules
# and the storage only offer hooks (PolicyEngine.on_publish) and never name Prometheus.
METRICS = "prometheus_client"
METRICS_MODULES = {
    "cpucompat.coordinator.metrics",
    "cpucompat.agent.daemon.metrics",
    "cpucompat.agent.metrics_http",
}
DOMAIN_MUST_NOT_REACH = (
    *TRANSPORT,
    METRICS,
    "cpucompat.coordinator.metrics",
    "cpucompat.coordinator.service",
    "cpucompat.coordinator.cli",
    "cpucompat.coordinator.server",
    "cpucompat.coordinator.convert",
)


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (a project module, or the external name as written)
    line: int
    scope: str  # "module", "function" or "type-checking"

    def where(self, files: dict[str, Path]) -> str:
        path = files[self.source].relative_to(PROJECT_ROOT)
        return f"{path}:{self.line} imports {self.target} ({self.scope} level)"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root, package in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


FILES = _modules()


def _is_package(module: str) -> bool:
    return FILES[module].name == "__init__.py"


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = module if _is_package(module) else module.rpartition(".")[0]
    base = package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, scope: str) -> Iterator[tuple[ast.AST, str]]:
    """Every node below ``node`` with the scope its imports run in."""
    for child in ast.iter_child_nodes(node):
        inner = scope
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            inner = "function" if scope == "module" else scope
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            yield child.test, scope
            for stmt in child.body:
                yield stmt, "type-checking"
                yield from _walk(stmt, "type-checking")
            for stmt in child.orelse:
                yield stmt, scope
                yield from _walk(stmt, scope)
            continue
        yield child, inner
        yield from _walk(child, inner)


def imports_of(module: str) -> list[Import]:
    tree = ast.parse(FILES[module].read_text(), filename=str(FILES[module]))
    out: list[Import] = []
    for node, scope in _walk(tree, "module"):
        if isinstance(node, ast.Import):
            out.extend(Import(module, a.name, node.lineno, scope) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in FILES else base
                out.append(Import(module, target, node.lineno, scope))
    return out


IMPORTS = {module: imports_of(module) for module in FILES}


def _within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _project_target(name: str) -> str | None:
    """The project module an import loads (``import a.b.c`` of a project module)."""
    while name:
        if name in FILES:
            return name
        name = name.rpartition(".")[0]
    return None


def _graph(scopes: tuple[str, ...]) -> dict[str, dict[str, Import]]:
    graph: dict[str, dict[str, Import]] = {m: {} for m in FILES}
    for module, found in IMPORTS.items():
        for imp in found:
            target = _project_target(imp.target)
            if imp.scope in scopes and target and target != module:
                graph[module].setdefault(target, imp)
    return graph


def _cycles(graph: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for nxt in edges:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph[nxt]))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _describe(component: list[str], graph: dict[str, dict[str, Import]]) -> str:
    members = set(component)
    edges = [
        imp.where(FILES)
        for module in component
        for target, imp in sorted(graph[module].items())
        if target in members
    ]
    return "import cycle among " + ", ".join(component) + ":\n    " + "\n    ".join(edges)


def test_the_contract_sees_every_layer() -> None:
    """The walk finds the modules and the imports the rules below speak of."""
    assert ENTRY_POINT in FILES
    assert "cpucompat.coordinator.cli.coordinator_cmd" in FILES
    assert "cpucompat.coordinator.cli.quickstart_cmd" in FILES
    assert not any(
        _within(m, "cpucompat.agent") and m.endswith("_cmd") and "coordinator" in m for m in FILES
    )
    domain = [m for m in FILES if _within(m, "cpucompat.coordinator.domain")]
    assert len(domain) > 5
    reporter = {i.target for i in IMPORTS["cpucompat.agent.daemon.reporter"]}
    assert "grpc" in reporter and "cpucompat.agent.wire" in reporter
    lazy = [i for i in IMPORTS["cpucompat.agent.cli.probe"] if i.scope == "function"]
    assert lazy, "function-level imports are seen"


def test_the_agent_never_imports_the_coordinator() -> None:
    offending = [
        imp.where(FILES)
        for module, found in IMPORTS.items()
        if _within(module, "cpucompat.agent")
        for imp in found
        if _within(imp.target, "cpucompat.coordinator")
    ]
    assert offending == [], "agent/ must not import the coordinator:\n" + "\n".join(offending)


def _names_the_coordinator(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and (
        isinstance(node.value, str) and "cpucompat.coordinator" in node.value
    )


def _command_table(tree: ast.Module) -> ast.AST:
    for stmt in tree.body:
        targets = [stmt.target] if isinstance(stmt, ast.AnnAssign) else getattr(stmt, "targets", [])
        if any(isinstance(t, ast.Name) and t.id == COMMAND_TABLE for t in targets):
            return stmt
    raise AssertionError(f"{FILES[ENTRY_POINT]} has no {COMMAND_TABLE} table")


def test_the_agent_names_the_coordinator_only_in_the_lazy_command_table() -> None:
    """No dynamic import smuggles the coordinator in: strings and importlib are checked too."""
    trees = {m: ast.parse(p.read_text()) for m, p in FILES.items() if _within(m, "cpucompat.agent")}
    table = _command_table(trees[ENTRY_POINT])
    allowed = {id(n) for n in ast.walk(table)}
    in_table = [n for n in ast.walk(table) if _names_the_coordinator(n)]
    assert in_table, "the entry point loads the coordinator's commands by name"
    offending = []
    for module, tree in trees.items():
        for node in ast.walk(tree):
            where = f"{FILES[module].relative_to(PROJECT_ROOT)}:{getattr(node, 'lineno', '?')}"
            if _names_the_coordinator(node) and id(node) not in allowed:
                offending.append(f"{where} names {node.value!r}")  # type: ignore[attr-defined]
            dynamic = isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("__import__", "import_module")
                )
            )
            if dynamic and module != ENTRY_POINT:
                offending.append(f"{where} imports a module by name")
    assert offending == [], (
        f"only {COMMAND_TABLE} in agent/cli/main.py may name the coordinator:\n"
        + "\n".join(offending)
    )


@pytest.mark.parametrize("layer", ["cpucompat.coordinator.domain", "cpucompat.coordinator.storage"])
def test_domain_and_storage_import_no_transport(layer: str) -> None:
    domain = [m for m in FILES if _within(m, layer)]
    assert domain, f"{layer} has modules"
    folder = layer.removeprefix("cpucompat.").replace(".", "/")
    direct = [
        imp.where(FILES)
        for module in domain
        for imp in IMPORTS[module]
        if _within(imp.target, DOMAIN_MUST_NOT_REACH)
    ]
    assert direct == [], f"{folder} must not import transport:\n" + "\n".join(direct)
    # Nor through what it loads: follow the module-level imports from every module.
    graph = _graph(("module",))
    reached: list[str] = []
    for start in domain:
        seen, todo, via = {start}, [start], {start: [start]}
        while todo:
            module = todo.pop()
            for imp in IMPORTS[module]:
                if imp.scope != "module":
                    continue
                if _within(imp.target, DOMAIN_MUST_NOT_REACH):
                    reached.append(" -> ".join(via[module]) + f": {imp.where(FILES)}")
            for target in graph[module]:
                if target not in seen:
                    seen.add(target)
                    via[target] = [*via[module], target]
                    todo.append(target)
    assert reached == [], f"{folder} loads transport indirectly:\n" + "\n".join(reached)


def test_only_command_line_modules_import_the_command_line() -> None:
    offending = [
        imp.where(FILES)
        for module, found in IMPORTS.items()
        if ".cli" not in module and module != "cpucompat.coordinator.cli"
        for imp in found
        if _within(imp.target, ("cpucompat.agent.cli", "cpucompat.coordinator.cli"))
    ]
    assert offending == [], "only cli packages import cli modules:\n" + "\n".join(offending)
    service = [
        imp.where(FILES)
        for module, found in IMPORTS.items()
        if _within(module, "cpucompat.coordinator.service")
        for imp in found
        if ".cli" in imp.target
    ]
    assert service == [], "coordinator/service must not import a CLI:\n" + "\n".join(service)


def test_the_coordinator_shares_cli_plumbing_through_one_module() -> None:
    """Exit codes, output and options come from agent/cli/common.py; no agent command."""
    offending = [
        imp.where(FILES)
        for module, found in IMPORTS.items()
        if _within(module, "cpucompat.coordinator")
        for imp in found
        if _within(imp.target, "cpucompat.agent.cli") and imp.target != SHARED_CLI
    ]
    assert offending == [], f"the coordinator imports only {SHARED_CLI} of the agent's CLI:\n" + (
        "\n".join(offending)
    )
    assert any(
        imp.target == SHARED_CLI for imp in IMPORTS["cpucompat.coordinator.cli.coordinator_cmd"]
    )


def test_no_import_cycle_at_module_level() -> None:
    graph = _graph(("module",))
    cycles = _cycles(graph)
    assert cycles == [], "\n".join(_describe(c, graph) for c in cycles)


def test_no_function_level_import_closes_a_cycle() -> None:
    graph = _graph(("module",))
    lazy = _graph(("function",))
    closing = []
    for module, targets in sorted(lazy.items()):
        for target, imp in sorted(targets.items()):
            if target in graph[module]:
                continue
            # A path back from target to module over module-level imports closes a cycle.
            seen, todo, via = {target}, [target], {target: [target]}
            while todo:
                node = todo.pop()
                if node == module:
                    closing.append(
                        f"{imp.where(FILES)}, which imports back: " + " -> ".join(via[node])
                    )
                    break
                for nxt in graph[node]:
                    if nxt not in seen:
                        seen.add(nxt)
                        via[nxt] = [*via[node], nxt]
                        todo.append(nxt)
    assert closing == [], "function-level imports that close a cycle:\n" + "\n".join(closing)


def test_the_cycle_finder_finds_cycles() -> None:
    """The contract's own checker: a two-module loop and a self-contained chain."""
    edge = Import("a", "b", 1, "module")
    loop = {"a": {"b": edge}, "b": {"c": edge}, "c": {"a": edge}, "d": {"a": edge}}
    assert _cycles(loop) == [["a", "b", "c"]]
    assert _cycles({"a": {"b": edge}, "b": {}, "c": {"a": edge}}) == []


# The coordinator's own modules that speak the wire or start processes; every other
# module directly in coordinator/ is a domain service and loads no transport.
TRANSPORT_MODULES = {
    "cpucompat.coordinator",
    "cpucompat.coordinator.metrics",
    "cpucompat.coordinator.convert",
    "cpucompat.coordinator.security",
    "cpucompat.coordinator.server",
}


def test_domain_services_import_no_transport() -> None:
    """Registry, decisions, policy, VMs, admissions, cache: the rules, free of gRPC."""
    services = [
        m
        for m in FILES
        if m.count(".") == 2
        and m.startswith("cpucompat.coordinator.")
        and m not in TRANSPORT_MODULES
    ]
    assert "cpucompat.coordinator.registry" in services
    direct = [
        imp.where(FILES)
        for module in services
        for imp in IMPORTS[module]
        if imp.scope == "module" and _within(imp.target, DOMAIN_MUST_NOT_REACH)
    ]
    assert direct == [], "domain services must not import transport:\n" + "\n".join(direct)


def test_prometheus_is_named_by_the_metrics_modules_alone() -> None:
    """One module per daemon defines every metric; everything else calls its hooks."""
    users = {
        module for module, found in IMPORTS.items() for imp in found if _within(imp.target, METRICS)
    }
    assert users == METRICS_MODULES, f"prometheus_client imported by {sorted(users)}"
