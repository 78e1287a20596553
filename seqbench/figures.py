"""The report's figures, drawn from tables already computed: every seed's test metric with the
mean and its interval, learning curves, the metric against length for memory tasks, and the
confusion matrices of classifiers. Labels are the tables' labels (long ones are ``name [A]`` with
a legend in the report), fractions are shown in percent, epochs are whole numbers."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd

from .tasks import PERCENT_METRICS, POSITIVE_METRICS


def _figure(width, height, rows=1, cols=1, **kwargs):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt, *plt.subplots(rows, cols, figsize=(width, height), **kwargs)


def _save(plt, fig, path: Path) -> Path:
    """The PNG the reports show, and the same figure as PDF beside it (vector, for a paper)."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    fig.savefig(Path(path).with_suffix(".pdf"))
    plt.close(fig)
    return path


def _scale(metric: str) -> float:
    return 100.0 if metric in PERCENT_METRICS else 1.0


def _unit(metric: str) -> str:
    return " (%)" if metric in PERCENT_METRICS else ""


def _wrap(label: str, width: int = 18) -> str:
    """Break a long label at spaces and commas, never inside a word."""
    return "\n".join(textwrap.wrap(label.replace(",", ", "), width, break_long_words=False)) or label


def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_scores(runs: pd.DataFrame, table: pd.DataFrame, name: str, file_stem: str, metric: str,
                baselines: dict[str, float], out: Path, letters: dict[str, str] | None = None) -> Path | None:
    """Every seed as a dot, the mean (geometric for positive error measures) as a marker with
    its 95% interval; n under each variant's name; baselines as lines; the verdict's group letters
    above each variant (variants that share a letter are not separated). No bars: a bar's length
    claims a zero the axis may not show."""
    done = table[table["n"] > 0]
    if done.empty:
        return None
    positive, scale = metric in POSITIVE_METRICS, _scale(metric)
    plt, fig, ax = _figure(max(5.5, 1.05 * len(done) + 2.5), 4.6)
    finished = runs[runs["status"] == "done"]
    for x, row in enumerate(done.to_dict("records")):
        values = finished.loc[finished["config_hash"] == row["config_hash"], f"test_{metric}"].dropna()
        ax.scatter([x] * len(values), values * scale, s=14, color="#999999", zorder=2,
                   label="one seed" if x == 0 else None)
        centre = math.exp(values.map(math.log).mean()) if positive and (values > 0).all() else values.mean()
        low, high = row[f"test_{metric}_ci_low"], row[f"test_{metric}_ci_high"]
        if not (isinstance(low, float) and math.isnan(low)):
            ax.errorbar([x + 0.12], [centre * scale], yerr=[[(centre - low) * scale], [(high - centre) * scale]],
                        fmt="o", color="#1f4e8c", capsize=4, zorder=3, label="mean, 95% interval" if x == 0 else None)
        else:
            ax.scatter([x + 0.12], [centre * scale], marker="o", color="#1f4e8c", zorder=3,
                       label="mean (no interval)" if x == 0 else None)
    if letters:
        from matplotlib.transforms import blended_transform_factory
        above = blended_transform_factory(ax.transData, ax.transAxes)  # x in data, y in axes units
        for x, model in enumerate(done["model"]):
            if letters.get(model):
                ax.text(x + 0.06, 1.01, letters[model], transform=above, ha="center", va="bottom", fontsize=8,
                        fontweight="bold", color="#1f4e8c")
    if positive:
        ax.set_yscale("log")
    # The axis spans the seeds and intervals: a baseline far off (chance at 50% beside models at
    # 75-78%) is named in the legend rather than stretching the axis flat over the 1-2 point gaps.
    bottom, top = ax.get_ylim()
    styles = iter([("#b22222", "--"), ("#d2691e", ":"), ("#555555", "-.")])
    for label, value in baselines.items():
        colour, style = next(styles, ("#555555", "-."))
        shown = value * scale
        if bottom <= shown <= top:
            ax.axhline(shown, color=colour, linestyle=style, linewidth=1, label=label)
        else:
            ax.plot([], [], color=colour, linestyle=style, linewidth=1,
                    label=f"{label}: {shown:.3g}{_unit(metric).strip(' ()')} ({'below' if shown < bottom else 'above'} "
                          f"the axis)")
    ax.set_ylim(bottom, top)
    ax.set_xticks(range(len(done)), [f"{_wrap(m)}\nn = {n}" for m, n in zip(done["model"], done["n"])], fontsize=7,
                  rotation=30 if len(done) > 6 else 0, ha="right" if len(done) > 6 else "center")
    if positive:
        ax.set_ylabel(f"test {metric} (log scale; marker: geometric mean)")
    else:
        ax.set_ylabel(f"test {metric}{_unit(metric)}")
    ax.set_title(f"{name}: test {metric}, each seed and the mean"
                 + ("\nletters: groups not separated (Welch + Holm over seeds)" if letters else ""), fontsize=9,
                 pad=16 if letters else 6)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _save(plt, fig, out / f"{file_stem}_test_{metric}.png")


def plot_learning_curves(curves: dict[str, pd.DataFrame], name: str, file_stem: str, metric: str,
                         out: Path) -> Path | None:
    """Validation metric per epoch (mean over the seeds still training, band min-max), and under
    it how many seeds each mean covers: after early stopping a mean is over fewer seeds."""
    if not curves:
        return None
    scale = _scale(metric)
    plt, fig, (ax, counts) = _figure(7.5, 5.4, rows=2, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for label, frame in sorted(curves.items()):
        epochs = frame.index + 1
        line, = ax.plot(epochs, frame.mean(axis=1) * scale, marker="o", markersize=3, label=label)
        ax.fill_between(epochs, frame.min(axis=1) * scale, frame.max(axis=1) * scale, alpha=0.15,
                        color=line.get_color())
        counts.step(epochs, frame.notna().sum(axis=1), where="mid", color=line.get_color())
    ax.set_ylabel(f"validation {metric}{_unit(metric)}\n(mean; band: min-max over seeds)")
    if metric in POSITIVE_METRICS:
        ax.set_yscale("log")
    ax.set_title(f"{name}: learning curves")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    counts.set_ylabel("seeds still\ntraining")
    counts.set_xlabel("epoch")
    counts.set_ylim(bottom=0)
    _integer_epochs(counts)
    from matplotlib.ticker import MaxNLocator
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(plt, fig, out / f"{file_stem}_learning_curves.png")


def plot_memory(points: dict, names: dict, lengths: list[int], baselines: dict[int, float], name: str, metric: str,
                out: Path, file_stem: str) -> Path:
    """The test metric against the length T: every seed as a dot, the median as a line (outcomes
    are often bimodal: solved or not), the baseline of a model that learns nothing."""
    plt, fig, ax = _figure(7.5, 4.6)
    scale = _scale(metric)
    for key in sorted(points, key=lambda k: names[k]):
        xs, medians, seeds = [], [], []
        for t in lengths:
            values = [r["test"][metric] for r in points[key].get(t, []) if metric in (r.get("test") or {})]
            if values:
                xs.append(t)
                medians.append(float(pd.Series(values).median()) * scale)
                seeds.append([v * scale for v in values])
        line, = ax.plot(xs, medians, marker="o", label=names[key])
        for t, values in zip(xs, seeds):
            ax.scatter([t] * len(values), values, s=12, alpha=0.6, color=line.get_color())
    line = [(t, b * scale) for t, b in sorted(baselines.items()) if b is not None]
    if line:
        ax.plot(*zip(*line), color="black", linestyle="--", linewidth=1, label="baseline (learns nothing)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths, [str(t) for t in lengths])
    if metric in POSITIVE_METRICS:
        ax.set_yscale("log")
    ax.set_xlabel("length T (steps to remember across)")
    ax.set_ylabel(f"test {metric}{_unit(metric)} (dots: seeds; line: median)")
    ax.set_title(f"{name}: how long a span each model bridges")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(plt, fig, out / f"{file_stem}_memory_length.png")


def plot_confusion(matrices: dict[str, pd.DataFrame], name: str, file_stem: str, out: Path,
                   keep: list | None = None) -> Path | None:
    """One row-normalised confusion matrix per variant (pooled over its seeds), in the order given
    (the main table's: best first), with digits readable in the report at its width: each panel's
    cells are sized for 10-point digits, three panels to a row (about 1,100 px at 120 dpi).
    ``keep``: only these classes' rows and columns are drawn (each row still a share of its whole class)."""
    if not matrices:
        return None
    total = len(next(iter(matrices.values())))
    if keep is not None:
        matrices = {label: matrix.div(matrix.sum(axis=1).replace(0, 1), axis=0).loc[keep, keep]
                    for label, matrix in matrices.items()}
    count = len(matrices)
    cols = min(3, count)
    rows = math.ceil(count / cols)
    classes = len(next(iter(matrices.values())))
    size = min(3.0, max(2.2, 0.5 + 0.42 * classes))   # inches per panel: cells of 0.35-0.55 in hold 2-3 digits
    digits = 10 if classes <= 6 else 8
    plt, fig, axes = _figure(cols * (size + 0.7) + 0.3, rows * (size + 0.9), rows=rows, cols=cols, squeeze=False)
    for ax, (label, matrix) in zip(axes.flat, matrices.items()):
        share = matrix if keep is not None else matrix.div(matrix.sum(axis=1).replace(0, 1), axis=0)
        ax.imshow(share.to_numpy(), cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(share.columns)), share.columns, fontsize=9, rotation=45 if classes > 3 else 0,
                      ha="right" if classes > 3 else "center")
        ax.set_yticks(range(len(share.index)), share.index, fontsize=9)
        for i in range(len(share.index)):
            for j in range(len(share.columns)):
                value = share.iat[i, j]
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=digits,
                        color="white" if value > 0.6 else "black")
        ax.set_title(_wrap(label, 30), fontsize=10)
        ax.set_xlabel("predicted", fontsize=9)
        ax.set_ylabel("true", fontsize=9)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    shown = f"; the {len(keep)} of {total} classes with most examples" if keep is not None else ""
    fig.suptitle(f"{name}: confusion matrices\n(% of each true class, pooled over seeds; best variant first{shown})",
                 fontsize=11)
    return _save(plt, fig, out / f"{file_stem}_confusion.png")
