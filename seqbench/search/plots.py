"""Optuna's own figures of each study (optimisation history, parameter importances, slices) for
the report, importances with a caveat when too few trials stand behind them."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from .storage import open_storage

log = logging.getLogger(__name__)


TRIALS_PER_PARAMETER_FOR_IMPORTANCES = 10


def importance_caveat(complete: int, parameters: int) -> str | None:
    """Why a study's parameter importances may mean nothing: Optuna fits a random forest (fANOVA)
    to the completed trials; with fewer than about ten trials per searched parameter (a common
    rule of thumb for such fits) it describes noise."""
    wanted = TRIALS_PER_PARAMETER_FOR_IMPORTANCES * max(parameters, 1)
    if complete >= wanted:
        return None
    return (f"{complete} completed trial{'s' if complete != 1 else ''} for {parameters} parameter"
            f"{'s' if parameters != 1 else ''}: importances from so few trials mean little (about "
            f"{wanted}, {TRIALS_PER_PARAMETER_FOR_IMPORTANCES} per parameter, before they are worth reading)")


def write_plots(study_names: list[str], settings: dict, root: Path, dataset: str,
                out: Path | None = None) -> list[tuple[Path, str, str | None]]:
    """Optuna's own figures per study (optimisation history, parameter importances, slices) in
    ``out`` (the report's folder, whose report.html shows them): (path, caption, caveat or None).
    Drawing warnings (matplotlib's layout and category notices) stay out of the terminal."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as plots
    out = Path(out or root)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("matplotlib", "matplotlib.category"):   # "Using categorical units..." is logged at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    written = []
    storage = open_storage(settings, root, dataset, heartbeat=False)
    for name in study_names:
        study = optuna.load_study(study_name=name, storage=storage)
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        if not complete:
            continue
        parameters = len({key for t in complete for key in t.params})
        variant = study.user_attrs.get("variant") or name
        for kind, draw, caption in (
                ("history", plots.plot_optimization_history, f"{variant}: validation value of each trial"),
                ("importances", plots.plot_param_importances, f"{variant}: parameter importances (fANOVA)"),
                ("slices", plots.plot_slice, f"{variant}: each parameter against the validation value")):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    axes = draw(study)
                    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
                    if kind == "slices":  # a panel per parameter, wide enough that the colour bar covers none
                        figure.set_size_inches(max(6.0, 3.2 * parameters + 1.6), 3.8)
                        from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator
                        for panel in figure.axes:   # a narrow log axis: its minor labels overprint each other
                            if panel.get_xscale() == "log":
                                panel.xaxis.set_major_locator(MaxNLocator(3))
                                panel.xaxis.set_minor_locator(NullLocator())
                                panel.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2g}"))
                    else:
                        figure.set_size_inches(max(6.0, figure.get_size_inches()[0]), 4.5)
                        figure.tight_layout()
                    path = out / f"{name}_{kind}.png"
                    figure.savefig(path, dpi=100, bbox_inches="tight")
                plt.close(figure)
                caveat = importance_caveat(len(complete), parameters) if kind == "importances" else None
                written.append((path, caption, caveat))
            except (RuntimeError, ValueError) as error:  # e.g. importances need two completed trials
                log.info("%s: no %s plot (%s)", name, kind, error)
    return written
