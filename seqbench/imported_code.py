"""Which source files a run's code imports: the input of its code fingerprint.

Read from the files themselves (their ``import`` statements, at module level and inside
functions), never from a hand-kept list: starting from a few modules (the execution step, the
run's encoder, its data set), every module of the package they import is followed, with the
packages around it (``seqbench/models/__init__.py`` runs before ``seqbench/models/sequence.py``).
A module outside the package (your own encoder) brings its own file and the files it imports from
its own folder. Nothing is imported to find out: the files are parsed.

What is not an ``import`` statement is not followed: the registry's discovery imports every model
file by name, so adding ``mamba.py`` changes no other model's runs.

Cheap to import: the standard library only.
"""
from __future__ import annotations

import ast
import hashlib
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

PACKAGE = __name__.partition(".")[0]
PACKAGE_DIR = Path(__file__).resolve().parent


def _package_file(name: str) -> Path | None:
    """The file of a module of this package, found without importing it."""
    base = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _outside_file(name: str) -> Path | None:
    """The file of a module outside the package (already imported, or findable on sys.path)."""
    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec is not None else None
    return Path(origin).resolve() if origin and origin.endswith(".py") else None


def _in_package(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _module_file(name: str) -> Path | None:
    return _package_file(name) if _in_package(name) else _outside_file(name)


@lru_cache(maxsize=512)
def _imported_names(path: Path, module: str, mtime_ns: int) -> tuple[str, ...]:
    """Every module name an ``import`` statement in the file names (relative ones resolved);
    ``from a import b`` names both ``a`` and ``a.b`` (``b`` may be a module)."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            if node.level:
                base = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            names.append(target)
            names.extend(f"{target}.{alias.name}" for alias in node.names if alias.name != "*")
    return tuple(dict.fromkeys(n for n in names if n))


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_files(*modules: str) -> dict[str, Path]:
    """``{module name: file}`` for ``modules`` and everything they import, within this package,
    and, for a module outside it, within its own folder."""
    found: dict[str, Path] = {}
    own_folders = set()
    for name in modules:
        if not _in_package(name):
            path = _module_file(name)
            if path is not None:  # the folder that holds the top-level package or module
                own_folders.add(path.parents[len(name.split(".")) - (0 if path.name == "__init__.py" else 1)])
    pending = list(modules)
    while pending:
        name = pending.pop()
        if name in found:
            continue
        path = _module_file(name)
        if path is None:
            continue
        if not _in_package(name) and not any(path.is_relative_to(folder) for folder in own_folders):
            continue  # a library the code uses (torch, numpy), not code of the run's own
        found[name] = path
        pending.extend(_parents(name))
        for imported in _imported_names(path, name, path.stat().st_mtime_ns):
            if _in_package(imported) or not _in_package(name):
                pending.append(imported)
    return found


def _label(name: str, path: Path) -> str:
    """A file's name in the fingerprint: the same in a checkout, an editable install and a wheel."""
    if _in_package(name):
        return path.relative_to(PACKAGE_DIR).as_posix()
    return f"{name}:{path.name}"


def code_fingerprint(*modules: str) -> str:
    """Hash of the files ``modules`` import (``imported_files``): a run's code identity."""
    hasher = hashlib.sha256()
    for label, path in sorted((_label(name, path), path) for name, path in imported_files(*modules).items()):
        hasher.update(label.encode() + b"\0" + path.read_bytes() + b"\0")
    return hasher.hexdigest()[:16]
