"""The shape of the house, read from the source: no import cycle, the library never imports the
command layer, and the light packages stay light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The command layer: what wires library calls to ``keras-clust`` commands.
COMMAND_LAYER = ("keras_clust.app", "keras_clust.cli", "keras_clust.apps")


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of keras_clust and of the apps (installed as keras_clust.apps)."""
    modules = {}
    for prefix, folder in (("keras_clust", ROOT / "keras_clust"), ("keras_clust.apps", ROOT / "apps")):
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([prefix, *parts])] = path
    return modules


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its file (inside functions too: a lazy
    import only hides a cycle). ``from package import name`` counts as the submodule when ``name``
    is one, else as the package."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {known(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else known(base))
        graph[name] = {t for t in targets if t and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_reader_finds_a_planted_cycle_and_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import thing\n")
    (package / "b.py").write_text("def f():\n    from . import a\n")
    (package / "c.py").write_text("from .a import thing\n")
    modules = {f"pkg.{p.stem}" if p.stem != "__init__" else "pkg": p for p in package.glob("*.py")}
    graph = import_graph(modules)
    assert graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_import_cycle():
    assert cycles(import_graph(_modules())) == []


def test_library_never_imports_the_command_layer():
    graph = import_graph(_modules())
    library = [m for m in graph if not m.startswith(COMMAND_LAYER)]
    assert len(library) > 50  # the reader saw the library
    offending = {
        m: sorted(t for t in graph[m] if t.startswith(COMMAND_LAYER))
        for m in library
        if any(t.startswith(COMMAND_LAYER) for t in graph[m])
    }
    assert offending == {}


def test_domain_packages_hold_their_pieces():
    graph = import_graph(_modules())
    data = [m for m in graph if m.startswith("keras_clust.data")]
    # data/ reads datasets: it does not reach into models, the domains or the CLI
    forbidden = ("keras_clust.models", "keras_clust.lj", "keras_clust.fields", *COMMAND_LAYER)
    assert {m: sorted(t for t in graph[m] if t.startswith(forbidden)) for m in data} == {m: [] for m in data}


@pytest.mark.parametrize(
    ("package", "absent"),
    [
        ("keras_clust.data", ("numba", "tensorflow", "keras")),
        ("keras_clust.fields", ("numba", "tensorflow", "keras")),
        ("keras_clust.lj", ("tensorflow", "keras")),
        ("keras_clust.cli", ("numba", "tensorflow", "keras")),
    ],
)
def test_light_packages_import_no_heavy_dependency(package, absent):
    code = f"import sys, {package}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
