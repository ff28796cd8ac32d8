"""Import hygiene of the `rexjax` package (issue 10): no import cycle between its modules (every
import counted, module level and function level alike), and no module importing a private
(`_x`) module of another package. Static: reads the source with `ast`, imports nothing."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "rexjax"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imported(node, here: str) -> list[str]:
    """Modules named by one import statement (resolved to the deepest existing module)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = here if MODULES[here].name == "__init__.py" else here.rsplit(".", 1)[0]
            for _ in range(node.level - 1):
                pkg = pkg.rsplit(".", 1)[0]
            base = f"{pkg}.{base}" if base else pkg
        # `from pkg import mod` names the module; `from pkg import name` names pkg itself
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    out = []
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name:
            out.append(name)
    return out


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(d for d in imported(node, name) if d != name)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_the_package():
    """The walker finds known edges (so an empty graph cannot pass the cycle test)."""
    graph = import_graph()
    assert "rexjax.batching" in graph["rexjax.causal.search"]
    assert "rexjax.masking" in graph["rexjax.classifier"]
    assert len(MODULES) > 40


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_cycle_detector_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_module_of_a_sibling_package():
    bad = []
    for name, deps in import_graph().items():
        for dep in deps:
            private = [p for p in dep.split(".") if p.startswith("_") and p != "__init__"]
            if private and dep.rpartition(".")[0] != name.rpartition(".")[0]:
                bad.append(f"{name} imports {dep}")
    assert bad == []


def test_types_imports_nothing_from_rexjax():
    assert import_graph()["rexjax.types"] == set()
