"""No ``evaluators`` module imports another in a circle (issue 23).

The graph is read from the AST of ``evaluators/*.py``, imports inside
functions included: a lazy import hides a circle from Python, not from a
reader. Run as a script to print the graph's cycles.
"""

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "evaluators"


def import_graph(package: Path) -> dict[str, set[str]]:
    """``module -> modules of the same package it imports`` (``__init__`` left out).

    ``__init__`` re-exports every module, so it would close a loop with any
    module that imports ``package.x``; the modules themselves must not.
    """
    name = package.name
    modules = {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for module in sorted(modules):
        tree = ast.parse((package / f"{module}.py").read_text(encoding="utf-8"))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.level == 0 and node.module.startswith(name + "."):
                    targets.add(node.module.split(".")[1])
                elif node.level == 0 and node.module == name:
                    targets.update(alias.name for alias in node.names)
                elif node.level == 1:
                    targets.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                targets.update(a.name.split(".")[1] for a in node.names if a.name.startswith(name + "."))
        graph[module] = (targets & modules) - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle found by a depth-first walk, each as ``[a, b, ..., a]``."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                found.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_evaluators_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    assert len(graph) > 10 and graph["grade"], graph  # the walk did read the package
    assert cycles(graph) == []


def test_the_check_finds_a_lazy_cycle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg.a import f\n")
    (package / "a.py").write_text("from pkg.b import g\n\ndef f():\n    return g()\n")
    (package / "b.py").write_text("def g():\n    from pkg.a import f\n    return f\n")
    (package / "c.py").write_text("from pkg import a\n")
    graph = import_graph(package)
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert cycles(graph) == [["a", "b", "a"]]


if __name__ == "__main__":
    found = cycles(import_graph(PACKAGE))
    for cycle in found:
        print(" -> ".join(cycle))
    sys.exit(1 if found else 0)
