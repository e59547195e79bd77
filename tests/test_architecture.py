"""Structure rules of the package (the layering in docs/architecture.md):

- no file in minigrad/ has more than 600 lines;
- no import cycle between minigrad's own modules;
- the autograd core imports nothing above it (only ``minigrad.backend``), and the library
  never imports the app (``minigrad.app``: ``cli``, ``train*``, ``tools``, ``examples``);
- only the core (tensor*, autograd, ops, backend) touches ``Tensor._data`` / ``_version``;
  the rest uses ``minigrad.tensor.data_of`` / ``bump_version`` / ``set_data``.

The import graph is read from the AST of every module, so it sees what a reader sees:
module-level imports AND imports deferred into functions (a deferred import hides a cycle,
it does not remove it), and ``importlib.import_module("minigrad.x")`` with a literal name.
``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, else of
``pkg``. A package's ``__init__`` is the node ``pkg``; importing ``pkg.sub`` is an edge to
``pkg.sub`` only (Python also runs ``pkg/__init__``, but counting that would make every
package one cycle with its ``__init__``). Imports under ``if TYPE_CHECKING:`` never run and
are skipped.

KNOWN_CYCLES and KNOWN_REACH_INS can only shrink: each test also fails when a listed entry
is no longer true, so the list is deleted entry by entry as the code is fixed.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "minigrad"
MAX_LINES = 600
# Compiled extension modules (setup.py builds them; a source checkout may lack the files):
# importing them is an edge to no Python module.
EXTENSIONS = {"minigrad._C", "minigrad._cuda"}

# Cycles known today, each the sorted tuple of the modules of one strongly connected
# component. This list may only shrink: the test fails on a cycle not listed here AND on a
# listed cycle that no longer exists (delete its entry when you break it).
KNOWN_CYCLES: set[tuple[str, ...]] = set()

# Modules outside the core that still read or write ``._data`` / ``._version`` of tensors
# (move them to minigrad.tensor.data_of / bump_version / set_data, then delete the entry).
KNOWN_REACH_INS: set[str] = set()
# The app: minigrad/app/ (cli, train*, tools/, examples/), the ``python -m minigrad`` entry
# point and the old ``minigrad.cli`` entry-point path (a one-line re-export of the app's).
APP_PREFIXES = (
    "minigrad.app",
    "minigrad.cli",
    "minigrad.__main__",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute name ``from <dots><name>`` refers to, inside ``module``."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` (imports there are
    for annotations and never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_import_module_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
        and len(node.args) >= 1
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
        and not node.args[0].value.startswith(".")
    )


def import_graph(modules: dict[str, Path] | None = None) -> dict[str, set[str]]:
    """``{module: {modules it imports}}`` over minigrad's own modules."""
    modules = _modules() if modules is None else modules
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        edges = set()
        for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif _is_import_module_call(node):  # importlib.import_module("minigrad.x")
                targets = [node.args[0].value]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, name, is_package)
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.append(sub if sub in modules or sub in EXTENSIONS else base)
            for t in targets:
                if t in EXTENSIONS:
                    continue
                # ``import a.b.c`` of a non-module attribute path: keep the longest module
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    edges.add(t)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, ...]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(tuple(sorted(comp)))
    return sorted(found)


def _a_cycle_path(graph, comp) -> str:
    """One concrete loop through the component, for the failure message."""
    members = set(comp)
    start = comp[0]
    path, seen = [start], {start}
    node = start
    while True:
        nxt = sorted(w for w in graph[node] if w in members)
        back = [w for w in nxt if w == start]
        if back and len(path) > 1:
            return " -> ".join(path + [start])
        fresh = [w for w in nxt if w not in seen]
        if not fresh:
            return " -> ".join(path + [nxt[0]])
        node = fresh[0]
        seen.add(node)
        path.append(node)


def test_no_file_over_600_lines():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        n = len(path.read_text().splitlines())
        if n > MAX_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not too_long, f"files over {MAX_LINES} lines (split them):\n" + "\n".join(too_long)


def test_no_import_cycles():
    graph = import_graph()
    found = set(cycles(graph))
    new = sorted(found - KNOWN_CYCLES)
    gone = sorted(KNOWN_CYCLES - found)
    msg = []
    for comp in new:
        msg.append(f"new import cycle among {comp}:\n    {_a_cycle_path(graph, comp)}")
    for comp in gone:
        msg.append(f"KNOWN_CYCLES lists {comp}, which is no longer a cycle: delete the entry")
    assert not msg, "\n".join(msg)


def test_graph_sees_deferred_and_relative_imports(tmp_path):
    """The checker itself: a cycle made only by a deferred relative import is found."""
    pkg = tmp_path / "minigrad"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n    return a\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nimport minigrad.sub.b\n"
        "if TYPE_CHECKING:\n    from . import a\n"
    )
    mods = {
        ".".join(p.relative_to(tmp_path).with_suffix("").parts).removesuffix(".__init__"): p
        for p in pkg.rglob("*.py")
    }
    graph = import_graph(mods)
    assert graph["minigrad.a"] == {"minigrad.sub.b"}
    assert graph["minigrad.sub.b"] == {"minigrad.a"}
    assert graph["minigrad.c"] == {"minigrad.sub.b"}
    assert cycles(graph) == [("minigrad.a", "minigrad.sub.b")]


def _is_core(path: Path) -> bool:
    rel = path.relative_to(PACKAGE)
    return (
        len(rel.parts) == 1 and (rel.name.startswith("tensor") or rel.name == "backend.py")
    ) or rel.parts[0] in ("autograd", "ops")


def test_autograd_imports_nothing_above_it():
    graph = import_graph()
    bad = {
        m: sorted(
            e for e in edges if not e.startswith("minigrad.autograd") and e != "minigrad.backend"
        )
        for m, edges in graph.items()
        if m == "minigrad.autograd" or m.startswith("minigrad.autograd.")
    }
    bad = {m: e for m, e in bad.items() if e}
    assert not bad, f"the autograd core imports modules above it: {bad}"


def test_library_never_imports_the_app():
    graph = import_graph()
    bad = {
        m: sorted(e for e in edges if e.startswith(APP_PREFIXES))
        for m, edges in graph.items()
        if not m.startswith(APP_PREFIXES)
    }
    bad = {m: e for m, e in bad.items() if e}
    assert not bad, f"library modules import the app: {bad}"


def test_only_the_core_touches_tensor_storage():
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if _is_core(path):
            continue
        tree = ast.parse(path.read_text(), str(path))
        if any(
            isinstance(n, ast.Attribute) and n.attr in ("_data", "_version") for n in ast.walk(tree)
        ):
            found.add(str(path.relative_to(ROOT)))
    new, gone = sorted(found - KNOWN_REACH_INS), sorted(KNOWN_REACH_INS - found)
    assert not new, (
        f"{new} read or write Tensor._data/_version: use minigrad.tensor.data_of, "
        "bump_version or set_data"
    )
    assert not gone, (
        f"{gone} no longer touch Tensor._data/_version: delete them from KNOWN_REACH_INS"
    )


def test_storage_api_bumps_the_version_saved_tensors_check():
    import numpy as np
    import pytest

    import minigrad as mg
    from minigrad.tensor import bump_version, data_of, set_data, version_of

    x = mg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.detach()  # shares storage and version counter
    assert data_of(y) is data_of(x)
    w = mg.tensor([0.5, 0.5, 0.5])
    out = (x * w).sum()
    data_of(w)[...] = 2.0
    bump_version(w)
    assert version_of(w) == 1
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        out.backward()
    set_data(w, np.zeros(3, np.float32))
    assert version_of(w) == 2 and float(w.sum()) == 0.0
    with pytest.raises(ValueError, match="set_data"):
        set_data(w, np.zeros(4, np.float32))
