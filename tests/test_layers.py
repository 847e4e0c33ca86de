"""The package's layering: which parts may import which, checked from the source.

Lazy imports inside functions are allowed to point "up" (a CLI command importing a
subsystem on demand); module-level imports may not form a circle between sub-packages, and
some pairs may not meet at all. A failure names the importing file and line.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "sessionrec"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, module_level: bool) -> list[tuple[str, int]]:
    """(imported module, line) for every ``sessionrec`` import in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
    return [(name, line) for name, line in found if name.split(".")[0] == PACKAGE]


def _part(module: str) -> str:
    """The sub-package (or top-level module) a module belongs to: ``sessionrec.serving``."""
    return ".".join(module.split(".")[:2])


@cache
def _edges(module_level: bool) -> dict[tuple[str, str], list[str]]:
    """(from part, to part) -> the ``file:line`` places that make the edge."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        here = _part(_module_name(path))
        for name, line in _imports(path, module_level):
            there = _part(name)
            if there not in (here, PACKAGE):
                edges.setdefault((here, there), []).append(
                    f"{path.relative_to(SRC)}:{line}")
    return edges


def _circles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The strongly connected parts with more than one member (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                circles.append(sorted(members))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_the_circle_finder_finds_a_circle() -> None:
    edges = {("a", "b"): [], ("b", "c"): [], ("c", "a"): [], ("c", "d"): []}
    assert _circles(edges) == [["a", "b", "c"]]
    assert _circles({("a", "b"): [], ("b", "c"): []}) == []


def test_no_import_circle_between_sub_packages() -> None:
    edges = _edges(module_level=True)
    circles = _circles(edges)
    detail = [f"{a} -> {b}: {', '.join(edges[a, b][:3])}" for circle in circles
              for a in circle for b in circle if (a, b) in edges]
    assert not circles, "module-level import circles:\n" + "\n".join(detail)


@pytest.mark.parametrize(("lower", "upper"), [
    ("sessionrec.training", "sessionrec.models"),      # models use the trainer, not back
    ("sessionrec.experiments", "sessionrec.serving"),  # the API uses experiments, not back
    ("sessionrec.models", "sessionrec.serving"),
    ("sessionrec.data", "sessionrec.models"),
    ("sessionrec.evaluation", "sessionrec.serving"),
])
def test_lower_layer_never_imports_upper(lower: str, upper: str) -> None:
    places = _edges(module_level=False).get((lower, upper), [])
    assert not places, f"{lower} imports {upper} at: {', '.join(places)}"
