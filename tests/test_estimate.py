"""A command's plan before it runs: how many runs, how many are already done, what the rest costs."""
from pathlib import Path

import pytest

from seqbench.estimate import describe, make_plan
from seqbench.run import run
from tests.conftest import CONFIG_DIR, TINY

MODEL_CONFIGS = sorted(p.stem for p in (Path(CONFIG_DIR) / "model").glob("*.yaml") if not p.stem.startswith("_"))


def test_plan_counts_done_runs_and_estimates_the_rest_from_finished_runs_or_a_probe(compose_config, tmp_path):
    sweep = [f"paths.output_root={tmp_path}", *TINY, "model=gru,rnn", "dataset=sincos", "seed=0,1"]
    plan = make_plan(sweep)
    assert len(plan.runs) == 4 and not any(r.done for r in plan.runs)
    assert all(r.seconds and r.seconds > 0 and "probe" in r.source for r in plan.runs)  # nothing finished yet
    record = run(compose_config(*TINY, "model=gru", "dataset=sincos", "seed=0"), tmp_path / "gru_s0")
    assert record["status"] == "done"
    plan = make_plan(sweep, probe=False)
    done = [r for r in plan.runs if r.done]
    assert [(r.variant, r.seed) for r in done] == [("gru", 0)]
    gru_1 = next(r for r in plan.runs if (r.variant, r.seed) == ("gru", 1))
    assert gru_1.seconds == record["wall_seconds"] and "1 finished run" in gru_1.source
    # no probe asked for: the first plan's probe, kept on this machine, estimates rnn
    assert all(r.seconds and "probe" in r.source for r in plan.runs if r.variant == "rnn")
    lines = describe(plan)
    assert lines[0].startswith("plan: 4 runs: 1 already done") and lines[0].endswith("3 to train")
    assert not any("no estimate" in line for line in lines)
    assert any(line.strip().startswith("gru on sincos, seed 1: about") for line in lines)


def test_dry_run_prints_the_plan_and_trains_nothing(tmp_path, capsys, monkeypatch):
    import sys

    from seqbench.__main__ import cli
    monkeypatch.setattr(sys, "argv", ["seqbench", "-m", "model=gru,lstm", "dataset=sincos", f"paths.output_root={tmp_path}",
                                      *TINY, "--dry-run"])
    cli()
    out = capsys.readouterr().out
    assert out.startswith("plan: 2 runs: 0 already done") and "lstm on sincos, seed 0: about" in out
    assert not any(tmp_path.rglob("record.json"))


def test_time_left_counts_only_runs_still_to_train(tmp_path):
    import json
    import time

    from seqbench.sweep import PROGRESS_NAME, progress_line
    sweep = tmp_path / "sweep"
    for number, record in enumerate([{"status": "done", "reused_from": "elsewhere"}, {"status": "done",
                                     "reused_from": "elsewhere"}, {"status": "done"}]):
        (sweep / f"{number}_job").mkdir(parents=True)
        (sweep / f"{number}_job" / "record.json").write_text(json.dumps(record))
    state = {"total": 6, "started": time.time() - 600, "to_train": 3}   # the plan: 3 reused, 3 to train
    (sweep / PROGRESS_NAME).write_text(json.dumps(state))
    # 600 s for the one run trained so far, two left to train: 20 min (counting the reused runs as work
    # done and left, as before, said 10; without a plan every unfinished run counts: 30)
    assert progress_line(sweep) == "sweep: 3 of 6 runs done (reused 2, failed 0), about 20 min left"
    state.pop("to_train")
    (sweep / PROGRESS_NAME).write_text(json.dumps(state))
    assert progress_line(sweep) == "sweep: 3 of 6 runs done (reused 2, failed 0), about 30 min left"


def test_time_left_of_a_resumed_sweep_uses_only_the_runs_trained_since_it_resumed(tmp_path):
    import json
    import time

    from seqbench.sweep import PROGRESS_NAME, progress_line, start_state
    sweep = tmp_path / "sweep"
    for number in range(4):   # 3 runs trained by an earlier invocation, 1 since this one started
        (sweep / f"{number}_job").mkdir(parents=True)
        (sweep / f"{number}_job" / "record.json").write_text(json.dumps({"status": "done"}))
    (sweep / "3_job" / "record.json").write_text(json.dumps({"status": "running"}))   # resumed now
    state = start_state(sweep, 6)
    assert state["trained_before"] == 3
    (sweep / "3_job" / "record.json").write_text(json.dumps({"status": "done"}))
    state.update(started=time.time() - 600, to_train=3)
    (sweep / PROGRESS_NAME).write_text(json.dumps(state))
    # 600 s for the one run trained since the resume, two left: 20 min (counting the earlier runs as
    # trained in these 600 s said "about 2 min")
    assert progress_line(sweep) == "sweep: 4 of 6 runs done (reused 0, failed 0), about 20 min left"


def test_a_probe_is_scaled_to_the_epochs_finished_runs_on_the_data_set_trained(compose_config, tmp_path):
    from seqbench.estimate import epochs_share
    assert epochs_share([]) is None
    assert epochs_share([{"epochs": 5, "config": {"trainer": {"max_epochs": 20}}},
                         {"epochs": 10, "config": {"trainer": {"max_epochs": 20}}},
                         {"epochs": 30, "config": {"trainer": {"max_epochs": 20}}}]) == 0.5
    record = run(compose_config(*TINY, "model=gru", "dataset=sincos", "trainer.max_epochs=2"), tmp_path / "gru")
    plan = make_plan([f"paths.output_root={tmp_path}", *TINY, "model=rnn", "dataset=sincos"])
    (rnn,) = plan.runs
    assert f"scaled to the {record['epochs'] / 2:.0%} of max_epochs that finished sincos runs trained" in rnn.source


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_every_shipped_model_can_be_probed(model, tmp_path, one_torch_thread):
    """A dry run times a few training steps of each run with no finished relative: that works for every
    model, including those that hand Lightning an optimiser with a scheduler (a warmup: bitransformer)
    or learning-rate factors (lru_deep)."""
    plan = make_plan([f"paths.output_root={tmp_path}", *TINY, f"model={model}", "dataset=sincos", "seed=0"])
    assert len(plan.runs) == 1 and plan.runs[0].seconds > 0 and "probe" in plan.runs[0].source
    assert 0 < plan.probe_cpu_share <= 1


def test_a_plan_whose_probe_was_starved_of_cpu_says_its_estimate_is_inflated(tmp_path):
    """A probe run under nice, or beside other jobs, gets a fraction of a core and times steps several
    times too slow: the plan says so instead of presenting the figure as this machine's."""
    from seqbench.estimate import Plan, PlannedRun
    runs = [PlannedRun(["model=gru"], "gru", "trec", 0, "abc", False, "gru", 600.0, "a timed probe (upper bound: every epoch)")]
    starved = describe(Plan(runs, 1, tmp_path, probe_cpu_share=0.2))
    assert any(line.startswith("caveat: a timed probe got only 20% of the CPU time") and "5.0x" in line for line in starved)
    assert not any(line.startswith("caveat") for line in describe(Plan(runs, 1, tmp_path, probe_cpu_share=0.95)))
