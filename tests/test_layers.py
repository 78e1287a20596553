"""The package's layers, read from its import statements: no module a run uses imports one that
imports it back (at module level or inside a function), and a run's execution imports no display
or tool code, so that what a run computes is what its code fingerprint covers."""
import sys
from pathlib import Path

from seqbench.imported_code import PACKAGE_DIR, _imported_names, imported_files


def package_modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules its import statements name (its own packages apart: importing
    ``seqbench.models.sequence`` runs ``seqbench/models/__init__.py`` first, which is no cycle)."""
    modules = package_modules()
    graph = {}
    for name, path in modules.items():
        named = _imported_names(path, name, path.stat().st_mtime_ns)
        graph[name] = {m for m in named if m in modules and m != name and not name.startswith(m + ".")
                       and m != "seqbench"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_a_run_uses_imports_one_that_imports_it_back():
    """Configuration and identity, run state, execution, every model and data set file: layers
    (``seqbench.run`` hands the execution the console and the dashboards, which are tools' code)."""
    from seqbench.registry import datasets, models
    used = set(imported_files("seqbench.identity", "seqbench.plan", "seqbench.train", *{e.module for e in models().values()},
                              *{e.module for e in datasets().values()}))
    graph = import_graph()
    assert cycles({m: graph[m] & used for m in used if m in graph}) == []


def test_a_run_s_execution_imports_no_display_or_tool_code():
    """Progress, loggers and dashboards are handed to the execution step (train.Presentation);
    reports, statistics and the other commands are above it."""
    executed = set(imported_files("seqbench.train"))
    assert {"seqbench.training", "seqbench.models.network", "seqbench.data.modules", "seqbench.config"} <= executed
    above = {"seqbench.console", "seqbench.dashboards", "seqbench.diagnostics", "seqbench.explain",
             "seqbench.report", "seqbench.results", "seqbench.stats", "seqbench.figures", "seqbench.search",
             "seqbench.sweep", "seqbench.evaluate", "seqbench.run", "seqbench.__main__"}
    # a package among them (seqbench.report) counts with every module in it
    reached = {m for m in executed if any(m == a or m.startswith(a + ".") for a in above)}
    assert not reached, reached


def test_every_command_ends_by_one_exit_policy():
    """seqbench itself (__main__) and every tool (runtime.entry_point) take their exit codes from
    runtime.exit_status: the user's to fix 2, SIGTERM 143, Ctrl-C 130, a bug 1."""
    import errno
    import signal

    from seqbench import SeqbenchError
    from seqbench.runtime import Interrupted, exit_status
    assert exit_status(SeqbenchError("dataset.train is missing")) == (2, "error: dataset.train is missing")
    assert exit_status(PermissionError(errno.EACCES, "Permission denied", "/out"))[0] == 2
    assert exit_status(Interrupted(signal.SIGTERM))[0] == 143
    assert exit_status(KeyboardInterrupt())[0] == 130
    code, line = exit_status(ValueError("bad\nsecond line"))
    assert code == 1 and line == "error: unexpected ValueError: bad (run again with --debug for the traceback)"
    for module in ("__main__.py", "runtime.py"):
        assert "exit_status(" in (PACKAGE_DIR / module).read_text()


def test_no_module_of_the_package_imports_one_that_imports_it_back():
    """Every module, imports inside functions included: no circle anywhere in the package, so each
    layer can be read (and moved) without the ones above it."""
    assert cycles(import_graph()) == []


def test_no_module_imports_the_command_line_entry_point():
    """``__main__`` is the command: composition (``seqbench.composition``) and everything a tool
    needs live below it, and only the console script and ``python -m`` start it."""
    graph = import_graph()
    assert [module for module, imported in graph.items() if "seqbench.__main__" in imported] == []


# The package's layers, top to bottom, by top-level module or package (docs/layout.md, "Layers"). A
# module imports from its own layer or those below it, never above: the run path reads without the
# comparisons, the comparisons without the commands.
LAYERS = {
    "commands": {"__main__", "run", "console", "dashboards", "diagnostics", "adaptive", "archive", "bench",
                 "calibration", "estimate", "evaluate", "explain", "export", "search", "sweep"},
    "comparison": {"report", "results", "stats", "aso", "survival", "budget_curves", "factorial", "figures",
                   "latex", "document"},
    "execution": {"train", "training", "checkpoints", "identity"},
    "models and data": {"models", "data", "datasets"},
    "foundation": {"seqbench", "config", "group_checks", "registry", "tasks", "optim", "plan", "record", "files",
                   "names", "runtime", "imported_code", "composition", "reference"},
}


def layer_of(module: str) -> str:
    part = module.split(".")[1] if "." in module else module
    return next(name for name, members in LAYERS.items() if part in members)


def test_every_module_has_one_layer_and_imports_only_its_own_or_those_below():
    order = list(LAYERS)
    unplaced = sorted(m for m in package_modules()
                      if not any((m.split(".")[1] if "." in m else m) in members for members in LAYERS.values()))
    assert unplaced == [], f"put these modules in a layer of tests/test_layers.py and docs/layout.md: {unplaced}"
    upward = sorted((module, imported) for module, names in import_graph().items() for imported in names
                    if order.index(layer_of(imported)) < order.index(layer_of(module)))
    assert upward == [], upward
