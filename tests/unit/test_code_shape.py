"""The shape the codebase promises a newcomer, checked on the source itself (ast, no imports):
small functions, one module that reads the environment, no `sys.path` tricks, a library that knows
nothing of Streamlit, and no code that branches on a registry entry's name."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("aecore", "app_pages")
MAX_FUNCTION_LINES = 60
# Config fields whose values are registry names: comparing them with a string literal is a fact
# that belongs in the entry's meta (aecore.registry).
NAME_FIELDS = {"corruption", "model", "dataset", "regularizer"}


def _modules(*folders: str) -> Iterator[tuple[Path, ast.Module]]:
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT), ast.parse(path.read_text(), filename=str(path))


def test_no_function_is_longer_than_a_screen():
    long = [
        f"{path}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path, tree in _modules(*LIBRARY)
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, "split these functions:\n" + "\n".join(long)


def _imports(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_the_library_knows_nothing_of_streamlit_or_the_pages():
    bad = [
        f"{path}: {name}"
        for path, tree in _modules("aecore")
        for name in _imports(tree)
        if name.split(".")[0] in ("streamlit", "app_pages", "experiments", "bench")
    ]
    assert not bad


def test_nothing_edits_sys_path():
    bad = [
        f"{path}:{node.lineno}"
        for path, tree in _modules(*LIBRARY, "bench", "experiments")
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr == "path"
        and isinstance(node.value, ast.Name)
        and node.value.id == "sys"
    ]
    assert not bad, "modules run with `python -m`, never by editing sys.path: " + ", ".join(bad)


def _reads_environment(node: ast.AST) -> bool:
    if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
        return isinstance(node.value, ast.Name) and node.value.id == "os"
    return False


@pytest.mark.parametrize(
    "allowed",
    [{"aecore/settings.py", "aecore/__init__.py", "aecore/threads.py", "aecore/allocator.py"}],
)
def test_one_module_reads_the_environment(allowed):
    """aecore.settings reads aecore's variables; aecore/__init__.py and aecore.threads only set
    OpenMP's (torch's, not aecore's) before torch loads; aecore.allocator only reads malloc's
    (glibc's), to leave them to a user who set them."""
    readers = {
        str(path)
        for path, tree in _modules(*LIBRARY)
        for node in ast.walk(tree)
        if _reads_environment(node)
    }
    assert readers <= allowed, sorted(readers - allowed)


def _names_compared(node: ast.Compare) -> Iterator[tuple[str, str]]:
    sides = [node.left, *node.comparators]
    fields = [s.attr if isinstance(s, ast.Attribute) else getattr(s, "id", None) for s in sides]
    literals = [s.value for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)]
    for field in fields:
        if field in NAME_FIELDS:
            yield from ((field, literal) for literal in literals)


def _startswith_on_a_name(node: ast.Call) -> bool:
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr == "startswith"):
        return False
    target = func.value
    field = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
    return field in NAME_FIELDS


def test_no_code_branches_on_an_entry_name():
    """`cfg.corruption == "none"` or `cfg.model.startswith("vae")` hide a fact about an entry in
    code; the fact belongs in the registry's meta, so a new entry needs no edit elsewhere."""
    bad = []
    for path, tree in _modules(*LIBRARY, "bench"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                bad += [f"{path}:{node.lineno} {f} vs {v!r}" for f, v in _names_compared(node)]
            elif isinstance(node, ast.Call) and _startswith_on_a_name(node):
                bad.append(f"{path}:{node.lineno} startswith")
    assert not bad, "\n".join(bad)
