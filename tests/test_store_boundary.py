"""Only the repository layer talks to the stores: everything else goes through Repository's
methods, so a store's objects are read, written and deleted in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import claude_sync

SRC = Path(claude_sync.__file__).parent
# The repository layer itself (the package, key epochs included) and the stores.
LAYER = ("repository/", "store/")
# Modules that still open a store to hand it to Repository (init, the wizard, doctor's
# reachability check) or use its remote syntax; they may import claude_sync.store, but touch
# no repository's `.store`.
OPENERS = {"workspace.py", "wizard.py", "doctor.py", "cli/setup.py"}


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(SRC).as_posix(), ast.parse(path.read_text(), str(path)))
        for path in sorted(SRC.rglob("*.py"))
        if not path.relative_to(SRC).as_posix().startswith(LAYER)
    ]


def _imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            # redact() is a text helper (credentials out of URLs), not a way into a store.
            if {alias.name for alias in node.names} != {"redact"}:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_no_module_outside_the_repository_touches_a_repository_store() -> None:
    offenders = [
        f"{name}:{node.lineno}"
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr in ("store", "_put", "_get")
    ]
    assert offenders == []


def test_only_the_repository_and_store_openers_import_the_stores() -> None:
    offenders = [
        name
        for name, tree in _modules()
        if name not in OPENERS
        and any(
            m == "claude_sync.store" or m.startswith("claude_sync.store.") for m in _imports(tree)
        )
    ]
    assert offenders == []


def test_no_module_imports_a_private_name_of_another() -> None:
    offenders = [
        f"{name}: {node.module}.{alias.name}"
        for name, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("claude_sync")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert offenders == []
