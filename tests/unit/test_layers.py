"""The import rules of docs/architecture.md, checked on the source (every import statement,
module-level or inside a function): a module that imports across the layers, or a cycle, fails."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "kestra_ops"
CLIENTS = ("kubernetes", "minio", "requests", "urllib3", "psycopg", "pyhelm3")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (absolute names; relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            for alias in node.names:  # `from kestra_ops.x import y` may import module x.y
                if f"{base}.{alias.name}" in MODULES:
                    found.add(f"{base}.{alias.name}")
    return found


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _violations(rule) -> list[str]:
    return sorted(f"{m} imports {i}" for m, found in IMPORTS.items() for i in found
                  if rule(m, i))


def _ours(target: str) -> bool:
    return target == "kestra_ops" or target.startswith("kestra_ops.")


def test_only_adapters_import_the_client_libraries():
    assert _violations(lambda m, i: _layer(m) != "adapters"
                       and i.split(".")[0] in CLIENTS) == []


@pytest.mark.parametrize("layer, forbidden", [
    ("cli", ("adapters",)),
    ("workflows", ("cli", "output")),
    ("checks", ("cli", "output", "workflows")),
    ("adapters", ("cli", "output", "workflows", "values", "checks", "wiring")),
    ("values", ("cli", "workflows", "checks", "adapters")),
    ("output", ("cli", "workflows", "adapters", "checks")),
])
def test_layers_import_only_downwards(layer, forbidden):
    assert _violations(lambda m, i: _layer(m) == layer and _ours(i)
                       and _layer(i) in forbidden) == []


def test_no_import_cycles():
    graph = {m: {i for i in found if i in MODULES and i != m} for m, found in IMPORTS.items()}
    # a package's __init__ importing its own submodules is not a cycle of design
    graph = {m: {i for i in deps if not i.startswith(m + ".")} for m, deps in graph.items()}
    cycles, state, stack = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []
