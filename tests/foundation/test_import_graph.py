"""The house's floors: a package imports only from its own floor's rooms or lower ones, and no
two modules import each other in a circle (imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("memshare", "memshare_cli", "evaluators")
# Lowest first. A room may import any room on a lower floor, never one on a higher floor.
FLOORS = (
    ("memshare.errors", "memshare.core"),
    ("memshare.data", "memshare.models", "memshare.results", "memshare.replay", "memshare.workload", "evaluators"),
    ("memshare.engine", "memshare.analysis"),
    ("memshare.bench",),
    ("memshare.experiments",),
    ("memshare_cli",),
)
FLOOR_OF = {room: i for i, rooms in enumerate(FLOORS) for room in rooms}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module -> the project modules it imports (``from pkg import name`` counts ``pkg.name``
    when that is a module)."""
    files = {_module_name(f): f for pkg in PACKAGES for f in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            found.update(n for n in names if n in files and n != mod)
        graph[mod] = found
    return graph


def _room(mod: str) -> str:
    parts = mod.split(".")
    return ".".join(parts[:2]) if parts[0] == "memshare" and len(parts) > 1 else parts[0]


def test_every_room_has_a_floor():
    rooms = {_room(m) for m in _imports()} - {"memshare"}  # the top package holds only __version__
    assert rooms <= set(FLOOR_OF), f"rooms without a floor: {sorted(rooms - set(FLOOR_OF))}"


def test_no_import_runs_up_a_floor():
    upward = sorted(f"{a} -> {b}" for a, deps in _imports().items() for b in deps
                    if _room(a) in FLOOR_OF and _room(b) in FLOOR_OF and FLOOR_OF[_room(b)] > FLOOR_OF[_room(a)])
    assert not upward, "imports from a lower floor to a higher one:\n" + "\n".join(upward)


def test_no_import_circle():
    graph = _imports()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(mod: str, path: list[str]) -> None:
        state[mod] = 1
        for dep in sorted(graph.get(mod, ())):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod, [mod])
    # A package's __init__ re-exporting its own modules is not a circle between rooms of the house.
    real = [c for c in cycles if not all(m == c[0] or m.startswith(c[0] + ".") or c[0].startswith(m + ".")
                                         for m in c)]
    assert not real, "import circles:\n" + "\n".join(" -> ".join(c) for c in real)


def test_the_checks_see_a_planted_circle(tmp_path, monkeypatch):
    """The circle check is not vacuous: two modules importing each other are found."""
    pkg = tmp_path / "evaluators"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from evaluators.b import g\n")
    (pkg / "b.py").write_text("from evaluators import a\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__, fromlist=["x"]), "PACKAGES", ("evaluators",))
    graph = _imports()
    assert graph["evaluators.a"] == {"evaluators.b"} and "evaluators.a" in graph["evaluators.b"]
    try:
        test_no_import_circle()
    except AssertionError as exc:
        assert "evaluators.a -> evaluators.b -> evaluators.a" in str(exc)
    else:
        raise AssertionError("the planted circle was not found")
