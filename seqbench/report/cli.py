"""``seqbench report [FOLDERS...] [--out DIR]``: comparison tables, figures and the statistical
verdict, built only from run records (also run at the end of every multirun, into
``<sweep>/report``). Written twice from one document: ``summary.md`` and a self-contained
``report.html``."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .. import SeqbenchError
from ..files import check_regular
from ..runtime import entry_point
from .build import build_report
from .options import LEAD_TITLE, MIN_RESAMPLES, check_resamples, parse_ropes


@entry_point
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seqbench report", description=__doc__)
    parser.add_argument("folders", nargs="*", default=["outputs"], help="folders searched for record.json")
    parser.add_argument("--out", default="report", help="where the tables and plots go (default: ./report)")
    parser.add_argument("--command", help="the command that produced the runs, written into the header")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--resamples", default="9999",
                        help=f"bootstrap and permutation resamples (at least {MIN_RESAMPLES}; default 9999)")
    parser.add_argument("--rope", action="append", metavar="METRIC=VALUE",
                        help="region of practical equivalence: acc=0.5 (points, the default), mse=10 or ce=10 "
                             "(percent of the error, the default); repeat for several metrics")
    parser.add_argument("--studies", help="a search's studies.md (studies.json beside it): its table, and the budget "
                                          "curves (budget_curves.csv and figure) in the report")
    parser.add_argument("--compare", metavar="A:B[,C:D...]",
                        help="make these pairs of variants the family: their intervals and p do not depend on the "
                             "other variants in the folders")
    parser.add_argument("--lead", action="append", metavar="FOLDER",
                        help="record folders whose tables and verdicts open the report, before the main folders' "
                             "verdict (a search's retrained runs: tuned against tuned first, the defaults second); "
                             "repeat for several")
    parser.add_argument("--lead-title", default=LEAD_TITLE, help=f"the headline's words (default: {LEAD_TITLE!r})")
    args = parser.parse_args(argv)
    if args.studies:
        check_regular(args.studies, "--studies")
        if not Path(args.studies).is_file():
            raise SeqbenchError(f"--studies {args.studies}: no such file; give the studies.md a search wrote")
    resamples = check_resamples(args.resamples)
    ropes = parse_ropes(args.rope)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    built = build_report(args.folders, args.out, args.command, plots=not args.no_plots, resamples=resamples,
                         ropes=ropes, compare=args.compare, studies=args.studies, lead=args.lead,
                         lead_title=args.lead_title)
    print("\n".join(built.terminal()))
