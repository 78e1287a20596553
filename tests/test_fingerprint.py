"""The code fingerprint hashes what computes (``seqbench.imported_code``): a cleanup (comments,
docstrings, formatting, a file moved with its imports fixed) reuses finished runs; a changed
constant or statement, or a name taken from another module, trains again.

Each case edits a copy of the package and fingerprints it in a fresh interpreter, since the
fingerprint reads the package from beside its own file (no training: a second each)."""
import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY

# A run's code roots, as identity.prepare passes them: the execution step, lstm's encoder
# (classic.py) and the sin->cos data set.
ROOTS = ("seqbench.train", "seqbench.models.classic", "seqbench.datasets.sincos")


def fingerprint_of(package_parent: Path) -> str:
    script = ("import json, sys; from seqbench.imported_code import code_fingerprint, imported_files; "
              f"roots = {ROOTS!r}; "
              "print(json.dumps([code_fingerprint(*roots), sorted(str(p) for p in imported_files(*roots).values())]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=package_parent, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package_parent)}, timeout=60)
    assert done.returncode == 0, done.stderr
    fingerprint, files = json.loads(done.stdout.splitlines()[-1])
    assert all(f.startswith(str(package_parent)) for f in files)   # the copy, not the installed package
    return fingerprint


@pytest.fixture
def package_copy(tmp_path) -> Path:
    shutil.copytree(REPO / "seqbench", tmp_path / "seqbench", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def modules(root: Path) -> list[Path]:
    return sorted((root / "seqbench").rglob("*.py"))


def reword_docstrings(source: str) -> str:
    """The same code with every docstring (module, class, function) replaced by another text."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                spans.append((first.lineno, first.end_lineno, first.col_offset))
    for start, end, column in sorted(spans, reverse=True):
        lines[start - 1:end] = [" " * column + '"""Reworded by a cleanup:\n' + " " * column + 'two lines now."""\n']
    return "".join(lines)


def test_comments_docstrings_and_formatting_keep_the_fingerprint(package_copy):
    before = fingerprint_of(package_copy)
    for path in modules(package_copy):
        source = reword_docstrings(path.read_text())
        source = source.replace("\n\n\n", "\n\n\n\n")                       # formatting
        source = re.sub(r"^(\s*)(return )", r"\1# why, not what\n\1\2", source, flags=re.M)   # comments
        path.write_text(source + "\n# a comment appended by a cleanup\n")
    assert fingerprint_of(package_copy) == before


def test_a_module_moved_with_its_imports_fixed_keeps_the_fingerprint(package_copy):
    """tasks.py moved to a new folder core/, every import of it rewritten: no path enters the hash
    (nor the new folder's ``__init__.py``, which computes nothing)."""
    before = fingerprint_of(package_copy)
    package = package_copy / "seqbench"
    (package / "core").mkdir()
    (package / "core" / "__init__.py").write_text('"""Settings every layer reads."""\n')
    (package / "tasks.py").rename(package / "core" / "tasks.py")
    for path in modules(package_copy):
        depth = len(path.relative_to(package).parts) - 1
        source = path.read_text()
        if path.parent == package / "core":
            source = re.sub(r"from \.(\w)", r"from ..\1", source)   # its own imports, one floor deeper
        else:
            source = source.replace(f"from {'.' * (depth + 1)}tasks import", f"from {'.' * (depth + 1)}core.tasks import")
        path.write_text(source)
    assert fingerprint_of(package_copy) == before


@pytest.mark.parametrize("edit", ["statement", "constant", "source of a name"])
def test_what_computes_changes_the_fingerprint(package_copy, edit):
    before = fingerprint_of(package_copy)
    classic = package_copy / "seqbench" / "models" / "classic.py"
    source = classic.read_text()
    if edit == "statement":
        source += "\n_EDITED = 1\n"
    elif edit == "constant":
        number = next(node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant)
                      and type(node.value) in (int, float) and node.lineno == node.end_lineno)
        lines = source.splitlines(keepends=True)
        line = lines[number.lineno - 1]
        lines[number.lineno - 1] = (line[:number.col_offset] + repr(number.value + 1)
                                    + line[number.end_col_offset:])
        source = "".join(lines)
    else:  # the same name, bound from another module that defines it too
        (package_copy / "seqbench" / "models" / "twin.py").write_text(
            (package_copy / "seqbench" / "models" / "sequence.py").read_text() + "\n_TWIN = True\n")
        assert "from .sequence import" in source
        source = source.replace("from .sequence import", "from .twin import", 1)
    classic.write_text(source)
    assert fingerprint_of(package_copy) != before, edit


@pytest.mark.slow
def test_a_cleanup_of_every_module_reuses_the_finished_run_and_a_statement_retrains(package_copy, tmp_path):
    """Done-when of the fingerprint, through the real command in a copy of the package: a comment
    appended to every module, the run is reused; a statement appended to lstm's module, it trains."""
    def seqbench(*overrides):
        done = subprocess.run([sys.executable, "-m", "seqbench", "model=lstm", "dataset=sincos", *TINY,
                               f"paths.output_root={tmp_path / 'out'}", *overrides],
                              cwd=package_copy, capture_output=True, text=True, timeout=600,
                              env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package_copy),
                                   "HOME": str(tmp_path)})
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout + done.stderr
    shutil.copytree(REPO / "conf", package_copy / "conf")
    seqbench()
    for path in modules(package_copy):
        path.write_text(path.read_text() + "\n# a comment appended by a cleanup\n")
    assert "plan: reuse:" in seqbench()
    classic = package_copy / "seqbench" / "models" / "classic.py"
    classic.write_text(classic.read_text() + "\n_EDITED = 1\n")
    retrained = seqbench()
    assert "plan: fresh:" in retrained and "other code" in retrained, retrained
