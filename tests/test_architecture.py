"""The shape of the package (docs/architecture.md): layers, no import circles, a short top level.

Imports are read from the source (lazy ones inside functions too; those under
``if TYPE_CHECKING:`` are not imports at run time and do not count).
"""

import ast
import re

from conftest import ROOT

PKG = ROOT / "prov4ml"

#: Bottom to top: a package or top-level module imports only from its own layer's
#: peers' lower layers, never from a layer above it (docs/architecture.md draws them).
LAYERS = [
    {"exceptions"},
    {"_values", "_fs", "_optional", "_version", "_commands", "redact"},
    {"context"},
    {"collectors"},
    {"calls"},
    {"records"},
    {"metrics"},
    {"provenance"},
    {"storage"},
    {"run"},
    {"api"},
    {"sweep", "integrations", "runs"},
    {"analysis"},
    {"ui"},
    {"cli", "compat"},
    # the names users and the reference's code import: façades and re-exports
    {"__init__", "__main__", "prov2dot", "dot2svg", "prov_collection", "convert", "query",
     "constants", "functs", "utils", "datamodel"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}
SHIMS = ["prov2dot", "dot2svg", "prov_collection", "convert", "query"]
NOT_COUNTED = {"__init__", "__main__", "_version", "constants", "functs"}  # the reference's own paths


def modules():
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(name, path, known):
    """The prov4ml modules that ``name`` imports at run time."""
    tree = ast.parse(path.read_text())
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(block.test) for node in ast.walk(block)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph():
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges):
    """The strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def unit(module):
    """The top-level package or module a module belongs to (``__init__`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_no_import_circles_between_modules():
    edges = {m: {d for d in ds if d != "prov4ml"} for m, ds in graph().items()}
    assert cycles(edges) == []


def test_no_import_circles_between_packages():
    edges = {}
    for m, ds in graph().items():
        for d in ds:
            if unit(m) != unit(d) and "__init__" not in (unit(m), unit(d)):
                edges.setdefault(unit(m), set()).add(unit(d))
    assert cycles(edges) == []


def test_nothing_reaches_up_the_layers():
    upward = []
    for m, ds in graph().items():
        for d in ds:
            a, b = unit(m), unit(d)
            if a != b and b != "__init__" and LAYER[b] > LAYER[a]:
                upward.append(f"{m} -> {d}")
    assert upward == [], "a module imports from a layer above its own (tests/test_architecture.py LAYERS)"


def test_every_top_level_name_has_a_layer():
    names = {p.stem for p in PKG.glob("*.py")} | {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    assert names - set(LAYER) == set()


def test_a_short_top_level_with_distinct_names():
    top = sorted(p.stem for p in PKG.glob("*.py") if p.stem not in NOT_COUNTED)
    assert len(top) <= 15, top
    for folder in [PKG, *[p.parent for p in PKG.rglob("__init__.py")]]:
        names = [p.stem for p in folder.glob("*.py")] + [p.name for p in folder.iterdir() if (p / "__init__.py").exists()]
        stripped = [n.strip("_") for n in names]
        assert len(stripped) == len(set(stripped)), f"{folder}: names that differ only by underscores: {sorted(names)}"


def test_the_python_m_shims_are_short_and_name_the_same_module():
    import importlib

    for shim in SHIMS:
        assert len((PKG / f"{shim}.py").read_text().splitlines()) < 20, shim
        module = importlib.import_module(f"prov4ml.{shim}")
        assert module.__name__.startswith("prov4ml.provenance."), shim
        assert callable(module.main)


def test_the_run_class_is_small_and_its_methods_short():
    tree = ast.parse((PKG / "run" / "run.py").read_text())
    (run,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Run"]
    bases = [ast.unparse(b) for b in run.bases]
    assert bases == [], f"Run composes its parts, it does not inherit them: {bases}"
    assert run.end_lineno - run.lineno + 1 < 300
    long = [(f.name, f.end_lineno - f.lineno + 1) for f in run.body
            if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) and f.end_lineno - f.lineno + 1 > 60]
    assert long == []


def test_the_architecture_doc_names_every_package():
    text = (ROOT / "docs" / "architecture.md").read_text()
    packages = [p.name for p in PKG.iterdir() if (p / "__init__.py").exists()]
    missing = [p for p in packages if not re.search(rf"\b{p}/", text)]
    assert missing == []


def test_import_prov4ml_stays_light():
    """The recording side starts without the reading side, NumPy, pandas or torch (start-up time and memory)."""
    import subprocess
    import sys

    code = ("import sys, prov4ml; print(sorted(m for m in ('numpy', 'pandas', 'torch', 'prov4ml.runs', "
            "'prov4ml.analysis', 'prov4ml.ui', 'prov4ml.cli') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
