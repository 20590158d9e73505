"""Every child process kestra-ops starts gets an explicit, allowlisted environment (issue 12,
item 13): a new ``subprocess.run``/``Popen``/``create_subprocess_*`` without ``env=`` (which
would hand the child all of ours, KESTRA_OPS_* secrets included) fails here."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "kestra_ops"
SPAWNERS = {"subprocess": {"run", "Popen", "call", "check_call", "check_output"},
            "asyncio": {"create_subprocess_exec", "create_subprocess_shell"}}


def _spawns(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Name) \
                and node.func.attr in SPAWNERS.get(node.func.value.id, ()):
            yield node


def test_every_child_process_gets_an_explicit_environment():
    missing, found = [], 0
    for path in sorted(PACKAGE.rglob("*.py")):
        for call in _spawns(ast.parse(path.read_text(encoding="utf-8"))):
            found += 1
            if not any(k.arg == "env" for k in call.keywords):
                missing.append(f"{path.relative_to(PACKAGE.parent)}:{call.lineno}")
    assert found >= 4 and missing == []


def test_no_os_level_spawn_bypasses_it():
    names = ("system", "popen", "execv", "execve", "execvp", "spawnv", "posix_spawn")
    hits = [f"{p.relative_to(PACKAGE.parent)}:{n.lineno}" for p in sorted(PACKAGE.rglob("*.py"))
            for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr in names and isinstance(n.func.value, ast.Name)
            and n.func.value.id == "os"]
    assert hits == []
