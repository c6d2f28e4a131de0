"""The layering of ../shared/ARCHITECTURE.md, checked on the source: every import (late ones included)
goes down a layer or stays inside one, never up or across a "never"; the import graph has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from potlib.provenance import REPO_ROOT

PACKAGE = REPO_ROOT / "potlib"
LEVEL = {"core": 0, "data": 1, "models": 1, "training": 2, "experiments": 3, "runner": 4, "verdicts": 4}
NEVER = {("models", "data"), ("data", "models"), ("runner", "verdicts"), ("verdicts", "runner"),
         ("verdicts", "experiments")}
NOTEBOOK_MACHINERY = ("nbformat", "papermill", "IPython", "myst_nb", "nbclient", "jupyter")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    sub = parts[1] if len(parts) > 1 else ""
    if sub in ("data", "models", "experiments"):
        return sub
    if sub in ("credit", "parser_train", "hrm_train", "hrm_eval"):
        return "training"
    if sub in ("cli", "sweep", "executors", "bench", "__main__"):
        return "runner"
    if sub in ("claims", "render"):
        return "verdicts"
    return "core"  # the package itself, config, results, provenance, memory, runtime, errors


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """potlib modules and top-level packages imported anywhere in the file."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES}
    return out


def test_every_module_is_mapped_and_the_package_is_found():
    assert len(MODULES) > 40 and "potlib.sweep" in MODULES and "potlib.runtime" in MODULES


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_respect_the_layers(module):
    here = layer(module)
    bad = []
    for target in sorted(imports(MODULES[module])):
        if target.split(".")[0] in NOTEBOOK_MACHINERY:
            bad.append(f"{target} (notebook machinery)")
        if not target.startswith("potlib.") or target not in MODULES:
            continue
        there = layer(target)
        if (here, there) in NEVER or (there != here and LEVEL[there] >= LEVEL[here]):
            bad.append(f"{target} ({here} -> {there})")
    assert not bad, f"{module} imports upward or across: {', '.join(bad)}"


def test_the_import_graph_has_no_cycle():
    graph = {m: {t for t in imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    # a package's __init__ that only re-exports its submodules is no cycle with them
    for m in graph:
        graph[m] = {t for t in graph[m] if not (m.startswith(t + ".") and MODULES[t].name == "__init__.py")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t):] + [t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_module_is_over_500_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, long
