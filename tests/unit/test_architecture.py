"""The package's shape, checked: short modules, a domain that imports no adapter, no package cycles.

The domain (what happens to an incident, how logs are diagnosed, what an alert says) works through the
Protocols of ``emr_triage.ports``; the adapters (DynamoDB, EMR, S3, SQS, Slack) and the wiring are
imported only by the wiring module, the handlers and the tools that run on people's machines.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "common" / "emr_triage"
MAX_LINES = 500
DOMAIN = ("incidents", "analysis", "alerts", "models", "logs")
ADAPTERS = ("aws", "slack", "runtime", "local", "cli")


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every emr_triage module a file imports, at its top or inside a function, type-only ones included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("emr_triage"):
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names if alias.name.startswith("emr_triage"))
    return names


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_reads_in_one_sitting(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines: split it by concern (at most {MAX_LINES})"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _package(m) in DOMAIN))
def test_the_domain_imports_no_adapter(module: str) -> None:
    adapters = sorted(name for name in _imports(MODULES[module]) if name in MODULES and _package(name) in ADAPTERS)
    assert not adapters, f"{module} imports {adapters}: ask for it through emr_triage.ports instead"


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in MODULES.items():
        for name in _imports(path):
            if name in MODULES and _package(name) != _package(module):
                graph[_package(module)].add(_package(name))
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, as the path around it, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def test_no_cycle_between_packages() -> None:
    cycle = _cycle(_package_graph())
    assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


def test_the_cycle_check_sees_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None
