"""The dependency rules of docs/architecture.md, enforced by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports() -> str:
    beside = Path(sys.executable).with_name("lint-imports")
    if beside.exists():
        return str(beside)
    found = shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is not installed (pip install -e .[dev])")
    return found


def test_import_contracts_are_kept():
    result = subprocess.run(
        [_lint_imports()], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "broken" in output and " 0 broken" in output


def _import_cycles(graph) -> list[list[str]]:  # graph: a grimp ImportGraph
    """Every set of modules that import each other in a circle (the strongly connected
    components of the module graph with more than one module, or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph.modules):  # Tarjan's algorithm, iterative (no recursion limit)
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            step = next(imported, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.find_modules_directly_imported_by(step)))))
                elif step in on_stack:
                    low[module] = min(low[module], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == module:
                        break
                if len(component) > 1 or module in graph.find_modules_directly_imported_by(module):
                    cycles.append(sorted(component))
    return cycles


def _grimp():
    return pytest.importorskip("grimp", reason="grimp comes with import-linter (the dev extra)")


def test_the_cycle_check_finds_a_cycle():
    grimp = _grimp()
    graph = grimp.ImportGraph()
    for importer, imported in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=importer, imported=imported)
    assert _import_cycles(graph) == [["p.a", "p.b", "p.c"]]


def test_no_import_cycle_in_the_core_or_the_plugins():
    """Every import counts, also one inside a function or under TYPE_CHECKING: a cycle hidden
    behind a local import is still two modules that cannot be read one after the other."""
    grimp = _grimp()
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    roots = config["tool"]["importlinter"]["root_packages"]
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    try:
        graph = grimp.build_graph(*roots, cache_dir=None)
    finally:
        del sys.path[:2]
    assert len(graph.modules) > 100  # the whole tree was read
    assert _import_cycles(graph) == []


def _lengths(path: Path, kinds: tuple[type, ...]) -> dict[str, int]:
    """'file:line name' -> lines, for every definition of ``kinds`` in the file."""
    import ast

    tree = ast.parse(path.read_text(), str(path))
    return {
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name}": node.end_lineno - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, kinds)
    }


def test_no_function_over_80_lines_in_the_core():
    """Issue 16: a function that long does several jobs; split it by job, not arbitrarily.
    (The core is photosearch/ without the GUI; the GUI holds the same limit today.)"""
    import ast

    core = [p for p in (ROOT / "photosearch").rglob("*.py") if "gui" not in p.parts]
    assert len(core) > 50
    too_long = [
        f"{name}: {lines} lines"
        for path in core
        for name, lines in _lengths(path, (ast.FunctionDef, ast.AsyncFunctionDef)).items()
        if lines > 80
    ]
    assert too_long == []


def test_the_library_facade_stays_thin():
    """Issue 16: Library under 250 lines; what is not the facade's job lives in the module
    that owns it (library/indexer, search, catalog.queries, ...)."""
    import ast

    classes = _lengths(ROOT / "photosearch" / "library" / "facade.py", (ast.ClassDef,))
    (library,) = [lines for name, lines in classes.items() if name.endswith(" Library")]
    assert library < 250
