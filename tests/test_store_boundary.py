"""Only the repository layer talks to the stores: everything else goes through Repository's
methods (or, while setting a machine up, a repository.place.Place), so a store's objects are
read, written and deleted in one place."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import claude_sync
import claude_sync.repository
import claude_sync.store
from claude_sync.store.base import ObjectStore

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


def _layer_modules() -> list[ModuleType]:
    found = []
    for package in (claude_sync.store, claude_sync.repository):
        found.append(package)
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            found.append(importlib.import_module(info.name))
    return found


def _store_classes() -> set[str]:
    classes: set[str] = set()
    todo = [ObjectStore]
    while todo:
        cls = todo.pop()
        classes.add(cls.__name__)
        todo += cls.__subclasses__()
    return classes


def _names_in(annotation: object) -> set[str]:
    """The identifiers an annotation (a string: the modules use postponed evaluation) names."""
    if not isinstance(annotation, str):
        return set()
    return {n.id for n in ast.walk(ast.parse(annotation, mode="eval")) if isinstance(n, ast.Name)}


def _returns_a_store(member: object, classes: set[str]) -> bool:
    if isinstance(member, property):
        member = member.fget
    elif isinstance(member, (classmethod, staticmethod)):
        member = member.__func__
    if not inspect.isfunction(member):
        return False
    return bool(_names_in(inspect.get_annotations(member).get("return")) & classes)


def _attributes_holding_a_store(classes: set[str], givers: set[str]) -> set[str]:
    """`self.x = ...` in the layer where the value is a parameter typed as a store (or as
    something that returns one) or the result of a call that gives one."""
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        if not path.relative_to(SRC).as_posix().startswith(LAYER):
            continue
        for fn in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(fn, ast.FunctionDef):
                continue
            typed = {
                arg.arg
                for arg in fn.args.args + fn.args.kwonlyargs
                if arg.annotation is not None
                and {n.id for n in ast.walk(arg.annotation) if isinstance(n, ast.Name)} & classes
            }
            for node in ast.walk(fn):
                if not isinstance(node, ast.Assign):
                    continue
                value = node.value
                gives = (isinstance(value, ast.Name) and value.id in typed) or (
                    isinstance(value, ast.Call)
                    and (
                        (isinstance(value.func, ast.Name) and value.func.id in givers)
                        or (isinstance(value.func, ast.Attribute) and value.func.attr in givers)
                    )
                )
                if gives:
                    found |= {
                        t.attr
                        for t in node.targets
                        if isinstance(t, ast.Attribute)
                        and isinstance(t.value, ast.Name)
                        and t.value.id == "self"
                    }
    return found


def _reaching_a_store() -> set[str]:
    """Every name by which a module could get hold of a store: the store classes, whatever
    the repository layer defines that returns one (open_store, StoreAccess.store, ...), and
    the attributes it keeps one in (StoreAccess._store, Place._store, ...). Found from the
    code itself, so a new way to a store is covered the day it is written."""
    modules = _layer_modules()  # imported first: every store class is then known
    classes = _store_classes()
    givers: set[str] = set()
    for module in modules:
        for name, value in vars(module).items():
            if _returns_a_store(value, classes):
                givers.add(name)
            elif inspect.isclass(value) and value.__module__ == module.__name__:
                givers |= {
                    member
                    for member, attr in vars(value).items()
                    if _returns_a_store(attr, classes)
                }
    return classes | givers | _attributes_holding_a_store(classes, givers)


def test_the_check_below_knows_the_ways_to_a_store() -> None:
    """Guard against the search finding nothing (and so the boundary test passing vacuously)."""
    assert {
        "ObjectStore",
        "FolderStore",
        "GitStore",
        "open_store",
        "store",
        "_store",
        "_open_store",
        "_connect",
    } <= _reaching_a_store()


def test_no_module_outside_the_repository_holds_a_store() -> None:
    """A module can call a store's methods only on a store it got by naming something that
    gives one: a store class, a function or property that returns one, an attribute that
    keeps one. Outside the repository layer nothing may name any of them; set-up works on
    repository.place.Place, everything else on a Repository. _put and _get, the
    repository's raw reads and writes, are off limits too."""
    banned = _reaching_a_store() | {"_put", "_get"}
    offenders = []
    for name, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                found = {node.id}
            elif isinstance(node, ast.Attribute):
                found = {node.attr}
            elif isinstance(node, ast.ImportFrom):
                found = {alias.name for alias in node.names}
            elif isinstance(node, ast.arg):
                found = {node.arg}
            else:
                continue
            offenders += [f"{name}:{node.lineno} {word}" for word in sorted(found & banned)]
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
