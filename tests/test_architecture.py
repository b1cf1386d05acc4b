"""The codebase's shape: no import cycles, short functions, no module reaching into another's
private names (read from the source with ast, imports inside functions included)."""

import ast
import os

import pytest
from helpers import ROOT

PACKAGES = ("zero", "rnns")
MAX_FUNCTION_LINES = 60


def _modules():
    """{module name: path} of every module of zero/ and rnns/."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    parts = os.path.relpath(path, ROOT)[:-3].split(os.sep)
                    if parts[-1] == "__init__":
                        parts = parts[:-1]
                    found[".".join(parts)] = path
    return found


MODULES = _modules()


def _tree(name):
    with open(MODULES[name], encoding="utf-8") as f:
        return ast.parse(f.read(), MODULES[name])


def _imports(name):
    """The project modules `name` imports anywhere in its file (`from zero import data` counts
    as importing zero.data when that is a module)."""
    out = set()
    is_package = MODULES[name].endswith("__init__.py")
    for node in ast.walk(_tree(name)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return {m for m in out if m in MODULES and m != name}


def _cycle(graph):
    """One import cycle of {module: imported modules} as a list, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_no_import_cycles():
    graph = {name: _imports(name) for name in MODULES}
    # A package's __init__ importing its own modules is how a registry is filled: not a cycle
    # unless one of them imports the package back for something other than a submodule.
    for name in graph:
        for dep in list(graph[name]):
            if name.startswith(dep + ".") and MODULES[dep].endswith("__init__.py"):
                graph[name].discard(dep)
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_functions_are_short():
    long = []
    for name in MODULES:
        for node in ast.walk(_tree(name)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{MODULES[name]}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_no_module_uses_another_modules_private_names():
    found = []
    for name in MODULES:
        tree = _tree(name)
        aliases = {}  # local name -> project module
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{name} imports {node.module}.{alias.name}")
                    full = f"{node.module}.{alias.name}"
                    if full in MODULES:
                        aliases[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in MODULES and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{name} uses {aliases[node.value.id]}.{node.attr}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("module", ["zero.translate", "zero.modes.translate", "zero.preprocess"])
def test_translation_does_not_load_the_corpus_pipeline(module):
    """Translating raw text needs the tokenizer and BPE, not the corpus preparation."""
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(_imports(current))
    assert not {"zero.prepare", "zero.stages", "zero.pool"} & seen
