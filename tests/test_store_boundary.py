"""Only the repository layer talks to the stores: everything else goes through Repository's
methods, so a store's objects are read, written and deleted in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import claude_sync

SRC = Path(claude_sync.__file__).parent
# The repository layer itself (the package, key epochs included) and the stores.
LAYER = ("repository/", "store/")


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


def test_only_the_repository_imports_the_stores() -> None:
    """Set-up opens a place through claude_sync.repository (open_store), never directly."""
    offenders = [
        name
        for name, tree in _modules()
        if any(
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


def _imported_by(prefix: str) -> set[str]:
    found: set[str] = set()
    for path in sorted(SRC.rglob("*.py")):
        if path.relative_to(SRC).as_posix().startswith(prefix):
            found |= _imports(ast.parse(path.read_text(), str(path)))
    return found


def _reaches(imports: set[str], module: str) -> bool:
    return any(m == module or m.startswith(module + ".") for m in imports)


def test_the_layers_below_the_repository_do_not_import_it() -> None:
    """The data model, chunking, the local state and the stores sit below the repository."""
    for below in ("model.py", "chunking.py", "state.py", "store/"):
        assert not _reaches(_imported_by(below), "claude_sync.repository"), below


def test_the_repository_does_not_import_the_machine_settings() -> None:
    """What the repository needs of this machine (a cache folder) is handed to it."""
    assert not _reaches(_imported_by("repository/"), "claude_sync.config")
