"""The shape of the ``escalation`` package, checked on its source (nothing is imported).

1. No import cycle: the graph of imports between escalation's modules has no strongly connected
   component of more than one module. Every import counts, function-local ones included (a lazy
   import is still a dependency, only a hidden one), and relative imports are resolved.
2. Layers: ``escalation.core`` imports nothing from escalation outside the core and
   ``escalation.agreement`` (the agreement format it compiles); ``escalation.agreement`` imports
   nothing from escalation outside itself. (The purity of the core, no I/O and no wall clock,
   is tests/unit/test_core_purity.py.)
3. Sizes: no module over 400 lines, no function over 50, except the entries of ``ALLOWED``,
   each with the reason it is allowed. An entry that no longer exceeds its limit must go.

How an import becomes edges: ``import a.b`` depends on ``a.b``; ``from a.b import c`` depends on
``a.b`` and, when ``a.b.c`` is a module, on ``a.b.c`` too. The parent packages of a module are
not counted (``import a.b`` runs ``a/__init__.py`` too, but then every module would depend on its
own package, and a package that re-exports a name from one of its modules would be a cycle with
it): the edges are what the code names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import escalation

PACKAGE_DIR = Path(escalation.__file__).parent
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50

# "module" or "module:qualified.function" -> why it may be longer than the limit.
ALLOWED: dict[str, str] = {
}


# --- the modules and their imports ---------------------------------------------------------


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every module of the package (packages by their
    ``__init__.py``)."""
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = ("escalation", *path.relative_to(PACKAGE_DIR).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


MODULES = module_files()


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module name a ``from ... import`` names, relative levels resolved."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(module: str) -> set[str]:
    """The escalation modules ``module`` imports, anywhere in its source (see the docstring)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    named: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            named.add(source)
            named.update(f"{source}.{alias.name}" for alias in node.names)
    return {name for name in named if name in MODULES and name != module}


def import_graph() -> dict[str, set[str]]:
    return {module: imported_modules(module) for module in MODULES}


def strongly_connected_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit): every component, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


# --- 1. no cycle -----------------------------------------------------------------------------


def test_the_cycle_finder_finds_cycles():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert sorted(strongly_connected_components(graph)) == [["a", "b", "c"], ["d"], ["e"]]


def test_no_import_cycle():
    cycles = [c for c in strongly_connected_components(import_graph()) if len(c) > 1]
    assert not cycles, "modules that import each other (directly or in a circle):\n" + "\n".join(
        "  " + " <-> ".join(c) for c in cycles)


# --- 2. layers -------------------------------------------------------------------------------


def _outside(layer: str, allowed: tuple[str, ...]) -> list[str]:
    """``module -> imported`` for every import of a module of ``layer`` outside ``allowed``."""
    def inside(name: str, packages: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for p in packages)

    graph = import_graph()
    return [f"{module} -> {target}" for module in sorted(graph) if inside(module, (layer,))
            for target in sorted(graph[module]) if not inside(target, allowed)]


def test_core_imports_only_core_and_agreement():
    assert _outside("escalation.core", ("escalation.core", "escalation.agreement")) == []


def test_agreement_imports_only_itself():
    assert _outside("escalation.agreement", ("escalation.agreement",)) == []


# --- 3. sizes --------------------------------------------------------------------------------


def functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """``(qualified name, lines)`` of every function and method, nested ones included (a nested
    function's lines also count in the function around it)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield prefix + node.name, node.end_lineno - node.lineno + 1
            yield from functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, f"{prefix}{node.name}.")
        else:
            yield from functions(node, prefix)


def oversized() -> dict[str, int]:
    """Every module over MAX_MODULE_LINES and function over MAX_FUNCTION_LINES, with its lines."""
    found = {}
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        if (lines := len(text.splitlines())) > MAX_MODULE_LINES:
            found[module] = lines
        for name, lines in functions(ast.parse(text)):
            if lines > MAX_FUNCTION_LINES:
                found[f"{module}:{name}"] = lines
    return found


def test_modules_and_functions_are_small():
    too_big = {name: lines for name, lines in oversized().items() if name not in ALLOWED}
    assert not too_big, (f"over {MAX_MODULE_LINES} lines per module / {MAX_FUNCTION_LINES} per function "
                         f"(split it, or add it to ALLOWED with the reason): {too_big}")


def test_the_allowlist_names_only_what_is_still_too_big():
    stale = sorted(set(ALLOWED) - set(oversized()))
    assert not stale, f"no longer too big (or gone): remove from ALLOWED: {stale}"


def test_every_allowance_says_why():
    assert all(reason.strip() and "\n" not in reason for reason in ALLOWED.values())
