"""The house rules of zoo/, checked on the source: layers that read top-down.

* no import cycle between zoo's modules, counting imports inside function bodies too;
* nothing outside zoo/cli imports zoo.cli (but ``zoo/__main__.py``, which is ``python -m zoo``);
* no module over 350 lines;
* ``zoo.runtime`` (the torch-free runtime) imports only card, preprocess, prediction, errors.
"""

from __future__ import annotations

import ast
from pathlib import Path

import zoo

ZOO = Path(zoo.__file__).parent
MAX_LINES = 350
RUNTIME_MAY_IMPORT = {"zoo.card", "zoo.preprocess", "zoo.prediction", "zoo.errors"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ZOO.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ZOO.rglob("*.py"))}


def _target(name: str) -> str | None:
    """The zoo module an imported name lives in (a module, or an attribute of a package)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports(module: str) -> set[str]:
    """zoo modules ``module`` imports anywhere in its body (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(MODULES[module].read_text())
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(filter(None, (_target(a.name) for a in child.names)))
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1] + [base]).strip(".")
                for alias in child.names:
                    target = _target(f"{base}.{alias.name}") or _target(base)
                    if target:
                        found.add(target)
            visit(child)

    visit(tree)
    found.discard(module)
    # A package's __init__ runs when any of its modules is imported: not an edge worth a cycle.
    return {m for m in found if not module.startswith(m + ".")}


GRAPH = {module: imports(module) for module in MODULES}


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                strongconnect(w)
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
                out.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            strongconnect(v)
    return out


def test_the_checker_sees_imports():
    assert "zoo.registry" in GRAPH["zoo.resolver"] and "zoo.card" in GRAPH["zoo.registry"]
    assert "zoo.preprocess" in GRAPH["zoo.runtime.predictor"]


def test_no_import_cycles():
    assert _cycles() == []


def test_only_the_cli_imports_the_cli():
    offenders = {m: sorted(t for t in targets if t == "zoo.cli" or t.startswith("zoo.cli."))
                 for m, targets in GRAPH.items() if not (m in ("zoo.cli", "zoo.__main__") or m.startswith("zoo.cli."))}
    assert {m: t for m, t in offenders.items() if t} == {}


def test_no_module_over_350_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_runtime_stays_torch_free_by_construction():
    for module, targets in GRAPH.items():
        if module.startswith("zoo.runtime"):
            outside = {t for t in targets if not t.startswith("zoo.runtime")}
            assert outside <= RUNTIME_MAY_IMPORT, (module, outside)
