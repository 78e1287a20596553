"""summary_<data>.tex: each data set's tables for a paper (booktabs, best mean in bold, names escaped)."""
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from seqbench.latex import escape, tabular
from seqbench.record import write_json_atomic
from seqbench.report import build_report

from .test_results import _classifier_runs


def test_every_special_character_is_escaped():
    assert escape("bilstm_attn_concat") == r"bilstm\_attn\_concat"
    assert escape("50% & $5 #1 {a} ~x ^y \\") == (r"50\% \& \$5 \#1 \{a\} \textasciitilde{}x \textasciicircum{}y "
                                                 r"\textbackslash{}")
    assert escape("81.2 ± 0.4 – ×1.02 −3") == r"81.2 $\pm$ 0.4 -- $\times$1.02 $-$3"


def test_a_tabular_has_booktabs_rules_and_bolds_the_rows_asked():
    text = tabular(["variant", "n"], [["a_b", "3"], ["c", "3"]], bold={0})
    assert text.splitlines()[:4] == [r"\begin{tabular}{lr}", r"\toprule", r"variant & n \\", r"\midrule"]
    assert r"\textbf{a\_b} & \textbf{3} \\" in text and r"c & 3 \\" in text and text.endswith("\\end{tabular}")


def _report_with_underscored_names(tmp_path, plots=False):
    _classifier_runs(tmp_path / "runs", {"bilstm_attn_concat": [0.90, 0.91, 0.92], "gru": [0.80, 0.82, 0.81]})
    build_report([tmp_path / "runs"], tmp_path / "out", plots=plots, resamples=199)
    return (tmp_path / "out" / "summary_trec.tex").read_text()


def test_the_report_writes_each_data_sets_table_with_the_best_mean_in_bold(tmp_path):
    tex = _report_with_underscored_names(tmp_path)
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    best = next(line for line in tex.splitlines() if "bilstm" in line)
    assert best.startswith(r"\textbf{bilstm\_attn\_concat} & \textbf{3} & \textbf{91.0 $\pm$ 1.0}"), best
    assert r"\textbf{[" in best   # its interval, in bold with it
    other = next(line for line in tex.splitlines() if line.startswith("gru"))
    assert "textbf" not in other and r"\label{tab:seqbench-trec}" in tex
    body = re.sub(r"\\label\{[^}]*\}", "", tex.split("\n", 1)[1])   # labels are keys; the first line a comment
    assert not re.search(r"(?<!\\)[_%#]", body), body   # every name and sign escaped
    assert r"& $-$10.0 \\" in other   # a minus sign, not a hyphen


def test_the_tuned_beside_default_table_is_there_where_tuned_runs_are(tmp_path):
    rng = np.random.default_rng(3)
    target = rng.integers(0, 2, 200)
    for accuracy, tuned in ((0.70, None), (0.85, {"study": "s", "trials": 4, "params": {"model.hidden_size": 16}})):
        for seed in range(3):
            folder = tmp_path / f"runs/lstm_fb1{accuracy}{seed}"
            folder.mkdir(parents=True)
            correct = rng.random(200) < accuracy
            pd.DataFrame({"index": range(200), "target": target, "predicted": np.where(correct, target, 1 - target)}
                         ).to_csv(folder / "predictions.csv", index=False)
            write_json_atomic(folder / "record.json", {
                "status": "done", "model": "lstm_fb1", "dataset": "my_data", "seed": seed, "task": "classification",
                "config_hash": f"h{accuracy}", "data_fingerprint": "d", "predictions": "predictions.csv",
                "test": {"acc": float(correct.mean()), "f1": 0.5}, "val_best": {"acc": 0.8}, "best_epoch": 1,
                "epochs": 2, **({"tuned": tuned} if tuned else {}),
                "config": {"model": {"name": "lstm_fb1", "hidden_size": 8 if tuned is None else 16},
                           "dataset": {"name": "my_data"}}})
    build_report([tmp_path / "runs"], tmp_path / "out", plots=False, resamples=199)
    tex = (tmp_path / "out" / "summary_my_data.tex").read_text()
    assert r"\label{tab:seqbench-my_data-tuned}" in tex and r"my\_data: each model with its default" in tex
    assert r"lstm\_fb1 & " in tex and "tuned $-$ default [95\\% CI]" in tex


def test_figures_come_as_pdf_beside_the_png(tmp_path):
    _report_with_underscored_names(tmp_path, plots=True)
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert pngs and all(png.with_suffix(".pdf").is_file() for png in pngs)


@pytest.mark.slow
def test_the_tables_compile_with_pdflatex(tmp_path):
    if not shutil.which("pdflatex"):
        from .conftest import required_in_ci
        if required_in_ci():
            pytest.fail("pdflatex is missing; .ci/run installs texlive-latex-base and texlive-latex-recommended")
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base texlive-latex-recommended)")
    _report_with_underscored_names(tmp_path)
    (tmp_path / "out" / "paper.tex").write_text(
        "\\documentclass{article}\n\\usepackage[utf8]{inputenc}\n\\usepackage{booktabs}\n\\begin{document}\n"
        "\\input{summary_trec.tex}\n\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"],
                            cwd=tmp_path / "out", capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert (tmp_path / "out" / "paper.pdf").stat().st_size > 1000
