"""The layout rules, read from the product's own import statements (pure AST, no Django needed).

Apps depend one way: tasks → relay → billing → accounts → newapi_site (the platform floor). A module
imports its own app and lower-ranked ones only, except the composition roots that wire every app
together. No cross-app import hides inside a function, no two modules import each other (directly
or round a loop), and no module grows past 500 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RANK = {"newapi_site": 0, "accounts": 1, "billing": 2, "relay": 3, "tasks": 4}
# The only modules that import every app: Django's URLconf, the ASGI entry point and the /api hub.
COMPOSITION_ROOTS = {"newapi_site/urls.py", "newapi_site/asgi.py", "newapi_site/api/urls.py"}
MAX_LINES = 500


@dataclass(frozen=True)
class Import:
    path: str  # file, relative to the repository
    line: int
    target: str  # the module named by the statement (resolved if relative)
    names: tuple[str, ...]  # for `from target import a, b`
    local: bool  # inside a function body

    def where(self) -> str:
        return f"{self.path}:{self.line} imports {self.target}"


def product_files() -> list[Path]:
    return sorted(p for app in RANK for p in (ROOT / app).rglob("*.py") if "migrations" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(path: Path) -> Iterator[Import]:
    rel = path.relative_to(ROOT).as_posix()
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)

    def walk(node: ast.AST, local: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(rel, child.lineno, alias.name, (), local)
            elif isinstance(child, ast.ImportFrom):
                names = tuple(alias.name for alias in child.names)
                yield Import(rel, child.lineno, _resolve(path, child), names, local)
            inner = local or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            yield from walk(child, inner)

    yield from walk(tree, False)


def app_of(module: str) -> str | None:
    top = module.split(".")[0]
    return top if top in RANK else None


def all_imports() -> list[Import]:
    return [imp for path in product_files() for imp in imports_of(path)]


def test_apps_depend_one_way() -> None:
    upward = []
    for imp in all_imports():
        own, other = app_of(imp.path.replace("/", ".")), app_of(imp.target)
        if own and other and RANK[other] > RANK[own] and imp.path not in COMPOSITION_ROOTS:
            upward.append(imp.where())
    assert not upward, "imports from a higher-ranked app:\n" + "\n".join(upward)


def test_no_function_local_cross_app_imports() -> None:
    hidden = [
        imp.where()
        for imp in all_imports()
        if imp.local and app_of(imp.target) not in (None, app_of(imp.path.replace("/", ".")))
    ]
    assert not hidden, "cross-app imports inside functions (move them to the module top):\n" + "\n".join(
        hidden
    )


def test_nothing_imports_a_composition_root() -> None:
    roots = {module_name(ROOT / path) for path in COMPOSITION_ROOTS}
    found = [imp.where() for imp in all_imports() if imp.target in roots]
    assert not found, "a composition root is imported by a product module:\n" + "\n".join(found)


def module_graph() -> dict[str, set[str]]:
    """module → the product modules its import statements load (module-level or local)."""
    files = product_files()
    known = {module_name(path) for path in files}
    graph: dict[str, set[str]] = {name: set() for name in known}
    for path in files:
        source = module_name(path)
        for imp in imports_of(path):
            targets = [f"{imp.target}.{name}" for name in imp.names if f"{imp.target}.{name}" in known]
            if not targets and imp.target in known:
                targets = [imp.target]
            graph[source].update(t for t in targets if t != source)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles() -> None:
    loops = cycles(module_graph())
    assert not loops, "modules that import each other:\n" + "\n".join(" <-> ".join(c) for c in loops)


def test_cycle_finder_sees_a_loop() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_over_500_lines() -> None:
    long = []
    for path in product_files():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            long.append(f"{path.relative_to(ROOT).as_posix()}: {lines} lines")
    assert not long, f"modules over {MAX_LINES} lines (split them by domain):\n" + "\n".join(long)
