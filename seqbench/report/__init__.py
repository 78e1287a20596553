"""``seqbench report``: comparison tables, figures and the statistical verdict, built only from run
records. Runs are grouped by data identity (the data set's name and the fingerprint of its files),
then by variant (the config, labelled by everything that differs); each data set's tables, figures
and statistics are computed once (``section.DataSection``) and then written.

One job per module, top to bottom (each imports only those below it):

- ``cli``         the command: options parsed, ``build_report`` called, the terminal lines printed
- ``build``       ``build_report``: records -> sections -> the files and the document
- ``terminal``    what a terminal shows;  ``tables``: the CSV files;  ``provenance``: where runs come from
- ``blocks``      the document, block by block;  ``rows``: each table as column specs -> (header, rows)
- ``words``       the report's sentences;  ``options``: ``--resamples``, ``--rope``, ``--compare`` checked
- ``section``     what is computed per data set (``DataSection``, comparisons, verdicts)
- ``confusion``   a classifier's confusion matrices and baselines;  ``lengths``: text lengths
"""
from .blocks import budget_curve_block
from .build import BuiltReport, build_report
from .cli import main
from .confusion import class_baselines, confusion_matrices, per_class_table, run_confusion
from .lengths import TextLengths, length_buckets, length_table, text_lengths
from .options import check_resamples, parse_compare, parse_ropes
from .provenance import private_paths, provenance, scrub
from .rows import summary_rows
from .section import (Comparison, DataSection, completeness, compute_section, example_scores_of, holm_adjusted,
                      seed_scores)
from .terminal import terminal_lines
from .words import cap_words, parameter_words

__all__ = ["BuiltReport", "Comparison", "DataSection", "TextLengths", "budget_curve_block", "build_report", "cap_words",
           "check_resamples", "class_baselines", "completeness", "compute_section", "confusion_matrices",
           "example_scores_of", "holm_adjusted", "length_buckets", "length_table", "main", "parameter_words",
           "parse_compare", "parse_ropes", "per_class_table", "private_paths", "provenance", "run_confusion",
           "scrub", "seed_scores", "summary_rows", "terminal_lines", "text_lengths"]
