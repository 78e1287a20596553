"""``python -m seqbench.report [FOLDERS...] [--out results]``: comparison tables and plots
from run records (also run at the end of every multirun)."""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import pandas as pd
from hydra.experimental.callback import Callback

from .results import PRIMARY_METRIC, learning_curves, load_records, long_table, summary_table

HIGHER_IS_BETTER = {"acc": True, "mse": False}


def _format(value, digits=4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.3g}"
        return f"{value:.{digits}g}"
    return str(value)


def markdown_summary(table: pd.DataFrame, metric: str) -> str:
    shown = table.copy()
    shown.insert(1, f"test {metric} (mean ± std)", [
        f"{_format(m)} ± {_format(s)}" for m, s in zip(shown[f"test_{metric}_mean"], shown[f"test_{metric}_std"])])
    shown.insert(2, "95% CI", [
        "–" if math.isnan(c) else f"[{_format(m - c)}, {_format(m + c)}]"
        for m, c in zip(shown[f"test_{metric}_mean"], shown[f"test_{metric}_ci95"])])
    shown = shown.drop(columns=[f"test_{metric}_mean", f"test_{metric}_std", f"test_{metric}_ci95", "config_hash"])
    if (shown["impl"] == "native").all():
        shown = shown.drop(columns=["impl"])
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "| " + " | ".join("---" for _ in shown.columns) + " |"
    body = ["| " + " | ".join(_format(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def provenance(records: list[dict], command: str | None) -> str:
    def distinct(getter):
        return ", ".join(sorted({str(getter(r)) for r in records if getter(r) is not None})) or "–"
    versions = distinct(lambda r: " ".join(f"{k} {v}" for k, v in (r.get("versions") or {}).items() if v))
    lines = [f"- command: `{command}`" if command else None,
             f"- generated: {time.strftime('%Y-%m-%d %H:%M %Z')}",
             f"- runs started: {distinct(lambda r: (r.get('started') or '')[:10])}",
             f"- hardware: {distinct(lambda r: (r.get('hardware') or {}).get('gpu') or (r.get('hardware') or {}).get('cpu'))}"
             f" ({distinct(lambda r: (r.get('hardware') or {}).get('cpu_count'))} CPU cores)",
             f"- versions: {versions}",
             f"- git commits: {distinct(lambda r: r.get('git_commit'))}"]
    return "\n".join(line for line in lines if line)


def plot_dataset(records: list[dict], table: pd.DataFrame, dataset: str, metric: str, out: Path) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    done = table[table["n"] > 0]
    if not done.empty:
        fig, ax = plt.subplots(figsize=(max(5, 1.1 * len(done)), 3.6))
        errors = done[f"test_{metric}_ci95"].fillna(0)
        ax.bar(done["model"], done[f"test_{metric}_mean"], yerr=errors, capsize=4, color="#4c72b0")
        ax.set_ylabel(f"test {metric} (mean, 95% CI)")
        ax.set_title(f"{dataset}: test {metric} over seeds")
        if metric == "mse":
            ax.set_yscale("log")
        else:
            low = (done[f"test_{metric}_mean"] - errors).min()
            ax.set_ylim(max(0.0, low - 0.05), min(1.0, (done[f"test_{metric}_mean"] + errors).max() + 0.02))
        ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        written.append(out / f"{dataset}_test_{metric}.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    curves = learning_curves(records, dataset)
    if curves:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for model, frame in sorted(curves.items()):
            epochs = frame.index + 1
            mean = frame.mean(axis=1)
            line, = ax.plot(epochs, mean, marker="o", markersize=3, label=model)
            ax.fill_between(epochs, frame.min(axis=1), frame.max(axis=1), alpha=0.2, color=line.get_color())
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {metric} (mean, band: min-max over seeds)")
        if metric == "mse":
            ax.set_yscale("log")
        ax.set_title(f"{dataset}: learning curves")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(out / f"{dataset}_learning_curves.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written


def build_report(folders: list[str | Path], out: str | Path, command: str | None = None, plots: bool = True) -> dict:
    """Write runs.csv, summary_<dataset>.csv, summary.md and plots under ``out``."""
    records = load_records(folders)
    if not records:
        raise SystemExit(f"no record.json found under {', '.join(map(str, folders))}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = long_table(records)
    frame.to_csv(out / "runs.csv", index=False)
    sections = ["# seqbench comparison", "", provenance(records, command), ""]
    tables = {}
    for dataset in sorted(frame["dataset"].dropna().unique()):
        metric = PRIMARY_METRIC["regression" if dataset == "sincos" else "classification"][0]
        table = summary_table(frame, dataset)
        tables[dataset] = table
        table.to_csv(out / f"summary_{dataset}.csv", index=False)
        better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
        sections += [f"## {dataset}", "", f"Test {metric} ({better} is better) over seeds; n = finished runs.", "",
                     markdown_summary(table, metric), ""]
        if plots:
            for path in plot_dataset(records, table, dataset, metric, out):
                sections += [f"![{path.stem}]({path.name})", ""]
    (out / "summary.md").write_text("\n".join(sections))
    return tables


class ReportAfterSweep(Callback):
    """Hydra callback: at the end of a multirun, write the report for its sweep folder."""

    def __init__(self, out: str | None = None):
        self.out = out

    def on_multirun_end(self, config, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        out = Path(self.out) if self.out else sweep_dir / "report"
        try:
            build_report([sweep_dir], out, command="python -m seqbench " + " ".join(config.hydra.overrides.task))
            print(f"report: {out / 'summary.md'}")
        except SystemExit as error:
            print(f"no report: {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seqbench.report", description=__doc__)
    parser.add_argument("folders", nargs="*", default=["outputs"], help="folders searched for record.json")
    parser.add_argument("--out", default="results", help="where the tables and plots go (default: results)")
    parser.add_argument("--command", help="the command that produced the runs, written into the header")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    tables = build_report(args.folders, args.out, args.command, plots=not args.no_plots)
    for dataset, table in tables.items():
        print(f"{dataset}: {len(table)} variants")
    print(f"report: {Path(args.out) / 'summary.md'}")


if __name__ == "__main__":
    main()
