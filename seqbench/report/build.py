"""``build_report``: a report from record folders, each data set computed once (``section``) and
then written: the CSV tables, summary.md and report.html from one document, the LaTeX tables."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import SeqbenchError
from ..checkpoints import disk_words
from ..document import Document
from ..latex import write_summary
from ..results import data_key, data_labels, designs_under, load_records, long_table, slug, variant_labels
from .blocks import across_blocks, budget_curve_block, lead_blocks, memory_blocks, tuned_blocks, write_section
from .options import LEAD_TITLE, check_resamples, parse_compare
from .provenance import portable_command, portable_frame, private_paths, provenance, report_command, scrub
from .rows import summary_rows, tuned_table
from .section import DataSection, compute_section
from .tables import write_tables
from .terminal import terminal_lines


def build_report(folders: list[str | Path], out: str | Path, command: str | None = None, plots: bool = True,
                 studies: str | Path | None = None, statistics: bool = True, resamples: int = 9999,
                 ropes: dict[str, float] | None = None, compare: str | None = None,
                 study_figures: list[tuple[Path, str, str | None]] | None = None,
                 lead: list[str | Path] | None = None, lead_title: str = LEAD_TITLE) -> BuiltReport:
    """Write runs.csv, summary_<data>.csv, pairs_<data>.csv, summary.md, report.html and the figures
    under ``out``; both documents open with the verdict, one line per data set. ``ropes``: metric
    -> half-width of the region of practical equivalence on the test's scale (parse_ropes).
    ``lead``: record folders whose tables and verdicts open the documents, before the verdict of
    ``folders`` (a search's retrained runs: tuned against tuned, with the defaults second); they
    write no files of their own (their own report has them)."""
    resamples = check_resamples(resamples)
    records = _records(folders)
    # checked before anything is written: a bad --lead leaves --out as it was
    lead_records = _records(lead, flag="--lead: ") if lead else []
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SeqbenchError(f"cannot write the report to {out}: {error.strerror or error}; choose another folder "
                            f"with --out") from None
    frame = long_table(records)
    private = private_paths(records + lead_records)
    portable_frame(frame, out, private).to_csv(out / "runs.csv", index=False)
    labels = data_labels(records)
    adaptive = designs_under(folders)
    pairs = parse_compare(compare, sorted({v for key in labels for v in
                                           variant_labels([r for r in records if data_key(r) == key]).values()}))
    sections = []
    for key, label in sorted(labels.items(), key=lambda item: item[1]):
        group = [r for r in records if data_key(r) == key]
        section = compute_section(frame, group, label, slug(label), out, plots, statistics, resamples, ropes, pairs,
                                  adaptive)
        write_tables(section, out)
        write_summary(out, section.stem, section.label, section.task.metric, summary_rows(section),
                      tuned_table(section))  # summary_<data>.tex: the tables for a paper
        sections.append(section)
    doc = Document("seqbench comparison")
    if lead_records:
        lead_frame = long_table(lead_records)
        lead_sections = [compute_section(lead_frame, [r for r in lead_records if data_key(r) == key], label,
                                         slug(label), out, False, statistics, resamples, ropes, details=False)
                         for key, label in sorted(data_labels(lead_records).items(), key=lambda item: item[1])]
        lead_blocks(doc, lead_sections, lead_title, {s.label for s in sections})
    verdicts = [c.verdict for s in sections for c in s.comparisons]
    if verdicts:
        doc.heading("Verdict" + (" of the main folders" if lead_records else ""))
        doc.text(("One line per data set, the pairs named with --compare as the family (nothing about another "
                  "variant enters them): each pair's difference, its interval and the call. " if pairs else
                  "One line per data set: the best group (the top by mean and every variant not separated from it), "
                  "then each other variant's gap to the top with its interval (points for accuracy, a ratio for "
                  "errors). ")
                 + "Seeds as the unit (log scale for errors); 5% family-wise over the family named in each data set's "
                   "section, where the rule, what is undecided and what would decide it, and every pair are.")
        doc.bullets(verdicts)
    incomplete = [s.label for s in sections if not s.complete]
    if incomplete:
        doc.text(f"Incomplete data sets (runs missing or unfinished; never ranked, no verdict): "
                 f"{', '.join(incomplete)}.", css="warning")
    doc.heading("Provenance")
    shown = portable_command(command, out, private) if command else None
    again = report_command(folders, out, shown, plots, resamples, ropes, pairs, studies, lead, lead_title)
    doc.bullets(provenance(records + lead_records, shown, again, private,
                           disk_words([*folders, *(lead or [])], skip=out)))
    fingerprints = {r.get("code_fingerprint") for r in records + lead_records} - {None}
    if len(fingerprints) > 1:
        doc.text(f"These runs come from {len(fingerprints)} code fingerprints: each run's encoder, "
                 f"data set and the core training code (see runs.csv" + ("; the lead folders' runs are in their own "
                 "report's runs.csv)." if lead_records else ")."))
    if studies and Path(studies).is_file():
        doc.markdown(Path(studies).read_text().replace("# Hyper-parameter search", "## Hyper-parameter search"))
        budget_curve_block(doc, Path(studies).with_suffix(".json"), out, plots)
        for path, caption, caveat in study_figures or []:   # Optuna's plots (search.write_plots)
            if caveat:
                doc.text(f"{caption}: {caveat}.", css="warning")
            doc.figure(path, caption)
    for section in sections:
        write_section(doc, section)
        memory_blocks(doc, section.records, section.label, out, plots)
    tuned_blocks(doc, sections)
    across_blocks(doc, sections, out, plots, resamples)
    (out / "summary.md").write_text(scrub(doc.to_markdown(), private))
    (out / "report.html").write_text(scrub(doc.to_html(), private))
    for table in out.glob("*.csv"):   # what this report wrote: no data path of the user's in any of them
        if table.name == "runs.csv" or table.name.startswith(("summary_", "pairs_", "confusion_", "by_length_",
                                                               "factorial_")):
            text = table.read_text()
            if any(path in text for path in private):
                table.write_text(scrub(text, private))
    return BuiltReport(out, sections)


def _records(folders: list[str | Path], flag: str = "") -> list[dict]:
    """The records under ``folders``, or one line (``flag`` names the option they came from) where
    a folder is missing or holds none."""
    try:
        records = load_records(folders)
    except FileNotFoundError as error:
        raise SeqbenchError(f"{flag}{error}") from None
    if not records:
        raise SeqbenchError(f"{flag}no run record found under {', '.join(map(str, folders))}")
    return records


@dataclass
class BuiltReport:
    """What ``build_report`` wrote, and what a terminal shows of it."""
    out: Path
    sections: list[DataSection]

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {s.label: s.table for s in self.sections}

    def terminal(self) -> list[str]:
        return terminal_lines(self.sections, self.out)
