"""Which source files a run's code imports: the input of its code fingerprint.

Read from the files themselves (their ``import`` statements, at module level and inside
functions), never from a hand-kept list: starting from a few modules (the execution step, the
run's encoder, its data set), every module of the package they import is followed, with the
packages around it (``seqbench/models/__init__.py`` runs before ``seqbench/models/sequence.py``).
A module outside the package (your own encoder) brings its own file and the files it imports from
its own folder. Nothing is imported to find out: the files are parsed.

What is not an ``import`` statement is not followed: the registry's discovery imports every model
file by name, so adding ``mamba.py`` changes no other model's runs.

The fingerprint hashes what computes, not bytes: each file's syntax tree with comments,
docstrings and formatting out, and with no file's path or module name in it. An import is
hashed as the names it binds and the tree of the module they come from, so moving a file (and
fixing the imports that name it) or rewording a docstring reuses finished runs, while a changed
constant or statement, or a name now taken from another module, trains again.

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
        if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", None) != "__future__":
            for _, target, attribute in _import_bindings(node, module, is_package):
                names.append(target)
                if attribute is not None and attribute != "*":
                    names.append(f"{target}.{attribute}")
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


def _import_bindings(node: ast.Import | ast.ImportFrom, module: str, is_package: bool
                     ) -> list[tuple[str, str, str | None]]:
    """``[(bound name, module, attribute)]`` for an import statement of ``module``: ``import a.b``
    binds ``a`` to module ``a.b`` (whose file runs), ``from .c import d as e`` binds ``e`` to
    attribute ``d`` of module ``<package>.c`` (or to module ``<package>.c.d``, if that is a file)."""
    if isinstance(node, ast.Import):
        return [(alias.asname or alias.name.partition(".")[0], alias.name, None) for alias in node.names]
    if node.level:
        base = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    return [(alias.asname or alias.name, target, alias.name) for alias in node.names]


def _canonical(node, out: list[str], imports: list) -> None:
    """Write a syntax tree as text that depends only on what it computes: no positions, no
    comments (the parser drops them), no docstrings, no empty fields (so that a Python version
    that adds an always-empty field, as 3.12 added ``type_params``, keeps the same text). Import
    statements are written as a placeholder and collected in ``imports``, in order."""
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        out.append("<import>")
        imports.append(node)
        return
    if isinstance(node, ast.AST):
        out.append(type(node).__name__ + "(")
        for field, value in ast.iter_fields(node):
            if value is None or value == []:
                continue
            if field == "body" and isinstance(node, _WITH_DOCSTRING) and _is_docstring(value[0]):
                value = value[1:]
                if not value:
                    continue
            out.append(field + "=")
            _canonical(value, out, imports)
            out.append(",")
        out.append(")")
    elif isinstance(node, list):
        out.append("[")
        for item in node:
            _canonical(item, out, imports)
            out.append(",")
        out.append("]")
    else:  # a constant, an identifier, an operator's name
        out.append(f"{type(node).__name__}:{node!r}")


_WITH_DOCSTRING = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


@lru_cache(maxsize=512)
def _own_tree(source: bytes, module: str, is_package: bool) -> tuple[str, tuple]:
    """``(hash of a file's tree with its imports as placeholders, its imports' bindings)``; cached
    by content, so a sweep's many plans parse each file once."""
    tree = ast.parse(source)
    out: list[str] = []
    imports: list = []
    _canonical(tree, out, imports)
    bindings = tuple(tuple(_import_bindings(node, module, is_package)) for node in imports)
    return hashlib.sha256("".join(out).encode()).hexdigest(), bindings


_EMPTY_MODULE = hashlib.sha256(b"Module()").hexdigest()


def code_fingerprint(*modules: str) -> str:
    """Hash of what the files ``modules`` import (``imported_files``) compute: a run's code
    identity. Each file counts as its own tree plus, for every name it imports, the tree of the
    module that name comes from (or, for a library, the module's name); no path enters it."""
    files = imported_files(*modules)
    own = {name: _own_tree(path.read_bytes(), name, path.name == "__init__.py") for name, path in files.items()}

    def source(target: str, attribute: str | None) -> str:
        """What an imported name is bound to, without naming a file of the package."""
        if attribute is not None and f"{target}.{attribute}" in own:
            return "module " + own[f"{target}.{attribute}"][0]
        if target in own:
            return "module " + own[target][0] + (f" .{attribute}" if attribute else "")
        return f"library {target}" + (f" .{attribute}" if attribute else "")

    per_file = []
    for tree_hash, bindings in own.values():
        if tree_hash == _EMPTY_MODULE and not bindings:
            continue  # a package's __init__.py with nothing but a docstring: moving into a folder is no edit
        statements = [";".join(f"{bound}={source(target, attribute)}" for bound, target, attribute in statement)
                      for statement in bindings]
        per_file.append(hashlib.sha256("\n".join([tree_hash, *statements]).encode()).hexdigest())
    hasher = hashlib.sha256()
    for digest in sorted(per_file):
        hasher.update(digest.encode())
    return hasher.hexdigest()[:16]
