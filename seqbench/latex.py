"""The report's tables as LaTeX, to ``\\input`` into a paper: ``summary_<data>.tex`` in each report
folder holds the data set's main table (variant, n, mean ± std, the 95% interval, the gap to the
best; the best mean in bold) and, where tuned runs are there, the tuned-beside-default table.
Booktabs rules (``\\usepackage{booktabs}``); every name escaped, so ``bilstm_attn_concat`` prints
as it is. The cells are the Markdown report's, so the two never disagree."""
from __future__ import annotations

from pathlib import Path

# LaTeX's special characters, and the report's Unicode signs in text-mode LaTeX every engine reads.
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "±": r"$\pm$", "×": r"$\times$", "−": r"$-$", "–": "--", "≥": r"$\geq$",
            "≤": r"$\leq$", "·": r"$\cdot$", "…": r"\ldots{}", "Δ": r"$\Delta$", "≈": r"$\approx$"}


def escape(text: object) -> str:
    """``text`` as LaTeX prints it literally."""
    words = str(text)
    return "".join(_SPECIAL.get(c, c) for c in words)


def cell(text: object) -> str:
    """A table cell: escaped, and a leading sign of a number set as a math sign (not a hyphen)."""
    words = escape(text)
    if len(words) > 1 and words[0] in "+-" and (words[1].isdigit() or words[1] == "."):
        words = f"${words[0]}${words[1:]}"
    return words


def tabular(header: list[str], rows: list[list[str]], bold: set[int] = frozenset(), italic: set[int] = frozenset(),
            align: str | None = None) -> str:
    """A booktabs tabular; rows in ``bold`` / ``italic`` (by position) set in \\textbf / \\textit."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = [rf"\begin{{tabular}}{{{align}}}", r"\toprule", " & ".join(escape(h) for h in header) + r" \\",
             r"\midrule"]
    for number, row in enumerate(rows):
        cells = [cell(value) for value in row]
        if number in bold:
            cells = [rf"\textbf{{{text}}}" for text in cells]
        elif number in italic:
            cells = [rf"\textit{{{text}}}" for text in cells]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines)


def table(header: list[str], rows: list[list[str]], caption: str, label: str, **options) -> str:
    return "\n".join([r"\begin{table}[t]", r"\centering", r"\small", tabular(header, rows, **options),
                      rf"\caption{{{escape(caption)}}}", rf"\label{{{label}}}", r"\end{table}"])


def summary_table(header: list[str], rows: list[list[str]], key: int, data: str, stem: str, metric: str) -> str:
    """The main table's key columns: the variant whose gap to the best is "best" in bold (the
    best mean), baselines (``*majority class*``) in italics."""
    kept = [row[:key] for row in rows]
    bold = {i for i, row in enumerate(kept) if len(row) > 4 and row[4] == "best"}
    italic = {i for i, row in enumerate(kept) if row[0].startswith("*")}
    kept = [[row[0].strip("*"), *row[1:]] for row in kept]
    caption = (f"{data}: test {metric}, mean ± standard deviation over n seeds, its 95% interval and the gap to the "
               f"best variant (best mean in bold).")
    return table(header[:key], kept, caption, f"tab:seqbench-{stem}", bold=bold, italic=italic)


def write_summary(out: Path, stem: str, data: str, metric: str, summary: tuple[list[str], list[list[str]], int],
                  tuned: tuple[list[str], list[list[str]]] | None = None) -> Path:
    """``summary_<stem>.tex``: the main table, and the tuned-beside-default table where given."""
    header, rows, key = summary
    parts = [f"% seqbench report: {data}. Needs \\usepackage{{booktabs}}; \\input{{summary_{stem}.tex}}.",
             summary_table(header, rows, key, data, stem, metric)]
    if tuned is not None:
        tuned_header, tuned_rows = tuned
        parts.append(table(tuned_header, tuned_rows, f"{data}: each model with its default settings and tuned, on "
                           f"the same seeds; the difference with its 95% seed-level interval (Welch).",
                           f"tab:seqbench-{stem}-tuned", align="l" + "r" * (len(tuned_header) - 2) + "l"))
    path = out / f"summary_{stem}.tex"
    path.write_text("\n\n".join(parts) + "\n")
    return path
