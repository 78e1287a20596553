"""``seqbench search hparams_search=trec [overrides...]``: the same tuning budget for every
model variant, then retraining over seeds and a report with tuned beside default figures.

The protocol (Melis et al. 2018; Lucic et al. 2018: rankings change once every model gets the
same tuning budget):

1. The search space (``conf/hparams_search/<name>.yaml``, in Hydra's override syntax:
   ``optimizer.lr: tag(log, interval(1e-4, 1e-2))``, ``model.hidden_size: choice(64, 128, 256)``)
   is checked before anything runs: unknown keys (with the nearest valid one), an empty space,
   reversed or non-positive log intervals, ``trials < 1`` are one line and exit 2.
2. For each variant, an Optuna study runs the same number of *distinct, finished* trials over the
   same space (the keys that apply to the variant). A study's identity is the data (name and file
   fingerprint), the variant's base config, the space itself and the budget settings: a changed
   space or other data is a new study, never a continuation of an old one. The objective is always
   the best *validation* metric of a seqbench run (seed ``search_seed``); the test split is never
   read. A seeded TPE sampler, each variant's from its own stream (``sampler_seed`` and the
   variant's name), so no two variants start from the same random points; at most a third of the
   trials are random startup trials; hopeless trials are pruned on the per-epoch validation metric
   (median rule). Equal compute: ``budget_epochs`` bounds the training epochs of each study, pruned
   trials and the choice's re-runs included (a trial that would overrun it is cut to what is left),
   beside ``trials`` as a cap; the report says which bound each study and its seconds.
   The choice is robust to seed noise: the ``choice_top`` best trials are re-run on ``choice_seeds``
   more seeds within ``choice_epochs`` of the budget, and the best mean wins (a re-run cut by the
   budget counts its epochs, not its score).
3. A study lives in a database (SQLite in the search folder by default, or any SQL URL Optuna
   accepts), and one process at a time works on it (a lock beside it; a second search waits). A
   killed search resumes: a trial left running by a dead process is failed and asked again with
   its own parameters (its seqbench run resumes from its checkpoint), never counted twice;
   proposals equal to a finished trial are not run again; failures count against
   ``max_failed_trials`` and a variant that reaches it is reported as failed, never "tuned".
4. Each variant's best configuration is retrained over ``retrain_seeds`` (by default the seeds of
   the default grid, so tuned and default runs pair up) into folders keyed by the study, and tested
   once; the report sets the tuned figures beside the default ones. Optuna's own plots
   (optimisation history, parameter importances, slices) are in report.html, importances with a
   caveat when there are too few trials for them to mean anything.
5. SIGINT/SIGTERM stop the search cleanly: what finished is reported, the command says how to
   resume, and it exits 130/143.
6. It can be watched: trial k of N per variant with its value (pruned, failed), the best so far
   and the time left (from the trials trained here, reused ones left out); one rounded line per
   variant at the end, then the verdict and table in the terminal.

Why Optuna directly (through Hydra's compose API) and not Hydra's optuna sweeper plugin: the
plugin (1.3.0) pins optuna<3, and its sweeper runs one study per command line; here each
variant needs its own study with an equal budget, a pruner fed from inside the Lightning loop,
and resumption of killed trials, which a current Optuna's ask/tell interface gives directly.
"""
from __future__ import annotations

from .cli import main, search_command
from .plots import importance_caveat, write_plots
from .progress import TrialWatch, search_plan_line
from .retraining import retrain
from .space import (SearchSpaceError, applies, budget_warnings, check_settings, checked_params, choice_reserve,
                    compose, distributions, flatten_space, in_space, space_overrides, startup_trials, variant_seed)
from .storage import StudyLock, open_storage, open_study, prepare_storage
from .study import PruneOnValidation, choose_robustly, search_variant, study_identity, study_name
from .summary import summarise, write_study_summaries

__all__ = ["PruneOnValidation", "SearchSpaceError", "StudyLock", "TrialWatch", "applies", "budget_warnings",
           "check_settings", "checked_params", "choice_reserve", "choose_robustly", "compose", "distributions",
           "flatten_space", "importance_caveat", "in_space", "main", "open_storage", "open_study", "prepare_storage",
           "retrain", "search_command", "search_plan_line", "search_variant", "space_overrides", "startup_trials",
           "study_identity", "study_name", "summarise", "variant_seed", "write_plots", "write_study_summaries"]
