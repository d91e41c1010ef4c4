"""The import graph: layers point one way and no module imports itself round a circle."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "rankgate"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import, also those inside functions and under ``if TYPE_CHECKING:``: a circle
    hidden there still ties the two modules together."""
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def import_graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        targets: set[str] = set()
        for stmt in _imports(tree):
            if isinstance(stmt, ast.Import):
                targets.update(a.name for a in stmt.names)
            elif isinstance(stmt, ast.ImportFrom):
                base = _resolve(name, stmt, path.name == "__init__.py")
                targets.add(base)
                targets.update(f"{base}.{a.name}" for a in stmt.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_no_import_cycles() -> None:
    graph = import_graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # A package importing its own submodules (``__init__`` re-exports) is not a cycle of concern.
    real = [
        c for c in cycles if not any(c[i + 1].startswith(c[i] + ".") for i in range(len(c) - 1))
    ]
    assert real == []


def test_the_engine_knows_no_http_and_no_upper_layer() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("rankgate.engine"):
            upper = {
                t
                for t in targets
                if t.split(".")[1] in {"server", "funnel", "insight", "learn", "cli"}
            }
            assert not upper, (name, upper)
    for path in (PACKAGE / "engine").rglob("*.py"):
        text = path.read_text()
        assert "fastapi" not in text and "starlette" not in text, path


def test_learning_sits_above_the_funnel_and_below_the_server_and_cli() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        layer = name.split(".")[1] if "." in name else ""
        if layer in {"backends", "funnel", "insight", "server"}:
            assert not {t for t in targets if t.startswith("rankgate.learn")}, name
        if layer == "learn":
            assert not {t for t in targets if t.split(".")[1] in {"server", "cli"}}, name


def test_protocol_modules_translate_to_the_engine_only() -> None:
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("rankgate.server.protocol"):
            server = {t for t in targets if t.startswith("rankgate.server.")}
            assert server <= {n for n in graph if n.startswith("rankgate.server.protocol")}, name
