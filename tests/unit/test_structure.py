"""The package's shape, counted from the source: small modules, short functions, no
import cycles, imports at the top of their module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import grimp

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "bink_python"
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 80
#: module -> imports it may make inside functions (a heavy dependency deferred on purpose)
DEFERRED_IMPORTS: dict[str, int] = {}


def _modules() -> Iterator[tuple[str, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(PACKAGE).as_posix(), path.read_text()


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _imports_inside_functions(tree: ast.AST) -> list[int]:
    return sorted(
        {
            inner.lineno
            for function in _functions(tree)
            for inner in ast.walk(function)
            if isinstance(inner, ast.Import | ast.ImportFrom)
        }
    )


def test_no_module_is_over_the_limit() -> None:
    lines = {name: text.count("\n") for name, text in _modules()}
    assert {n: c for n, c in lines.items() if c > MAX_MODULE_LINES} == {}


def test_no_function_is_over_the_limit() -> None:
    long = {
        f"{name}:{f.name}": (f.end_lineno or f.lineno) - f.lineno + 1
        for name, text in _modules()
        for f in _functions(ast.parse(text))
        if (f.end_lineno or f.lineno) - f.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert long == {}


def test_imports_sit_at_the_top_of_their_module() -> None:
    found = {name: _imports_inside_functions(ast.parse(text)) for name, text in _modules()}
    counts = {name: len(lines) for name, lines in found.items() if lines}
    assert counts == DEFERRED_IMPORTS, {n: found[n] for n in counts}


def test_the_scan_sees_an_import_inside_a_function() -> None:
    text = "import os\n\ndef f():\n    import json\n    from x import y\n    return json, y\n"
    assert _imports_inside_functions(ast.parse(text)) == [4, 5]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_no_module_imports_itself_through_others() -> None:
    """Type-only imports count: they tie the modules as tightly for a reader."""
    graph = grimp.build_graph("bink_python", cache_dir=None)
    edges = {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    assert _cycles(edges) == []


def test_the_package_reads_as_the_pipeline() -> None:
    subpackages = [p.parent.name for p in PACKAGE.glob("*/__init__.py")]
    assert len(subpackages) >= 6
