"""Import hygiene of the `rexjax` package, read statically with `ast` (nothing is imported):

* every import edge, at module level or inside a function, goes to the same or a lower
  layer of LAYERS (so there is no upward dependency to trade for a lazy import);
* no import cycle between modules;
* no module imports a private (`_x`) module of another package;
* the scripts on top (`experiments/`, `benchmarks/`) import rexjax only by public names.

An import edge is an `import` statement, or a string constant naming a rexjax submodule (the
registries that `importlib.import_module` reads: `cli.COMMANDS`, `studies.STUDIES`).
"""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT = REPO / "rexjax"
SCRIPT_DIRS = ("experiments", "benchmarks")

# Lowest first. A module sits in the layer of its longest listed prefix (a package's entry
# covers its submodules); "rexjax" names the package facade only, so a new module that is
# not placed here fails `test_every_module_has_a_layer`.
LAYERS = (
    ("core", ("rexjax.types", "rexjax.checks", "rexjax.errors", "rexjax.keys", "rexjax.batching", "rexjax.io",
              "rexjax.data", "rexjax.provenance")),
    ("models", ("rexjax.models", "rexjax.jaxpr", "rexjax.compile_cache")),
    ("ad", ("rexjax.ad",)),
    ("masking", ("rexjax.masking", "rexjax.classifier", "rexjax.binary", "rexjax.black_box",
                 "rexjax.models.onnx.runtime")),  # an ONNX file as a black box
    ("explainers", ("rexjax.causal", "rexjax.saliency", "rexjax.methods", "rexjax.api")),
    ("metrics", ("rexjax.metrics", "rexjax.configs")),
    ("package", ("rexjax",)),
    ("evaluation", ("rexjax.evaluation",)),
    ("report", ("rexjax.report", "rexjax.viz", "rexjax.results_db")),
    ("studies", ("rexjax.studies",)),
    ("commands", ("rexjax.commands", "rexjax.cli")),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def layer_of(module: str, layers=LAYERS) -> int | None:
    """Index in `layers` of `module`'s longest matching prefix (the bare package name
    matches only itself); None when no entry covers it."""
    best, best_len = None, -1
    for rank, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            covers = module == p or ("." in p and module.startswith(p + "."))
            if covers and len(p) > best_len:
                best, best_len = rank, len(p)
    return best


def resolve(name: str, modules=MODULES) -> str | None:
    """The deepest existing module of dotted `name` ('rexjax.causal.RexConfig' -> 'rexjax.causal')."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


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
    return [m for m in map(resolve, names) if m]


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(imported(node, name))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "." in node.value \
                    and node.value in MODULES:
                deps.add(node.value)
        deps.discard(name)
        graph[name] = deps
    return graph


def upward_edges(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """'a (layer) imports b (higher layer)' for every edge that points up."""
    out = []
    for a in sorted(graph):
        for b in sorted(graph[a]):
            la, lb = layer_of(a, layers), layer_of(b, layers)
            if la is not None and lb is not None and lb > la:
                out.append(f"{a} ({layers[la][0]}) imports {b} ({layers[lb][0]})")
    return out


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
    """The walker finds known edges, function-level and registry ones included (so an empty
    graph cannot pass the layer and cycle tests)."""
    graph = import_graph()
    assert "rexjax.batching" in graph["rexjax.causal.search"]
    assert "rexjax.masking" in graph["rexjax.classifier"]
    assert "rexjax.masking" in graph["rexjax.commands.common"]  # imported inside a function
    assert "rexjax.studies.compare" in graph["rexjax.studies"]  # STUDIES registry
    assert len(MODULES) > 40


def test_every_module_has_a_layer():
    assert [m for m in sorted(MODULES) if layer_of(m) is None] == []


def test_every_layer_entry_names_a_module():
    assert [p for _, prefixes in LAYERS for p in prefixes if p not in MODULES] == []


def test_imports_point_down():
    assert upward_edges(import_graph()) == []


def test_layer_check_finds_an_upward_import():
    layers = (("low", ("p.a",)), ("high", ("p.b",)))
    assert upward_edges({"p.a": {"p.b"}, "p.b": {"p.a"}, "p.a.x": set()}, layers) == ["p.a (low) imports p.b (high)"]
    assert layer_of("p.a.x", layers) == 0 and layer_of("p", layers) is None
    assert layer_of("rexjax.studies.runner") > layer_of("rexjax.report.html") > layer_of("rexjax.evaluation")
    assert layer_of("rexjax") == 6 and layer_of("rexjax.newmodule") is None


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


def private_rexjax_imports(source: str, filename: str = "<script>") -> list[str]:
    """Where a script's imports of rexjax name a private part (`_x`) or no existing module."""
    bad = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            dotted = [a.name for a in node.names if a.name.split(".")[0] == "rexjax"]
        elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").split(".")[0] == "rexjax":
            dotted = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in dotted:
            if any(p.startswith("_") for p in name.split(".")):
                bad.append(f"{filename}:{node.lineno} imports private {name}")
            elif resolve(name) is None:
                bad.append(f"{filename}:{node.lineno} imports {name}, which is no rexjax module")
    return bad


def test_scripts_import_only_public_names():
    scripts = [p for d in SCRIPT_DIRS for p in sorted((REPO / d).rglob("*.py"))]
    assert scripts, "no scripts found"
    bad = [b for p in scripts for b in private_rexjax_imports(p.read_text(), str(p.relative_to(REPO)))]
    assert bad == []


def test_private_import_check_finds_one():
    source = "import rexjax._x\nfrom rexjax.causal import _helper, RexConfig\nfrom rexjax import causal\nimport numpy._y"
    assert private_rexjax_imports(source) == ["<script>:1 imports private rexjax._x",
                                              "<script>:2 imports private rexjax.causal._helper"]
