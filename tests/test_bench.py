"""The benchmark on tiny synthetic data. Timings are the benchmark's own output, not asserted; what
is asserted is that its figures are computed from its measurements: every median is the median of
the listed repeats, tokens/s is tokens over that median, each ratio is the ratio of two rows, the
paths share their batches, and the reference results/bench.md is never written by default."""
import re
import statistics

import pytest
import torch


from seqbench import bench


def _numbers(cell: str) -> list[float]:
    return [float(x.replace(",", "")) for x in re.findall(r"[\d,]*\.?\d+", cell)]


@pytest.mark.slow
def test_benchmark_figures_follow_from_its_measurements(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench.main(["--synthetic", "--reviews", "200", "--questions", "80", "--max-len", "24", "--repeats", "3",
                "--warmup", "2", "--workload", "imdb", "trec", "models", "--lengths", "12", "--hidden", "8"])
    text = (tmp_path / "bench.md").read_text()   # the default: this folder, not results/
    for workload in ("imdb", "trec"):
        section = text.split(f"## {workload}")[1].split("##")[0]
        rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
                for line in section.splitlines() if line.startswith("| ") and "path" not in line and "---" not in line
                and not line.startswith("| impl") and not line.startswith("| LSTM")}
        assert set(rows) == {"plain padded", "plain bucketed", "plain packed", "seqbench loop", "seqbench"}
        speeds = {}
        for name, (batches, tokens, seconds, per_second, *_) in rows.items():
            median, *all_three = _numbers(seconds)
            assert len(all_three) == 3 and median == pytest.approx(statistics.median(all_three), abs=0.006)
            speeds[name] = _numbers(per_second)[0]
            # the median is printed to 0.01 s: tokens/s lies between tokens over its rounding bounds
            assert _numbers(tokens)[0] / (median + 0.005) - 1 <= speeds[name] <= _numbers(tokens)[0] / max(
                median - 0.005, 1e-9) + 1
        bucketed = {rows[name][1] for name in rows if name != "plain padded"}
        assert len(bucketed) == 1   # the bucketed paths are timed on the very same batches
        for name, cells in rows.items():
            assert _numbers(cells[4])[0] == pytest.approx(speeds[name] / speeds["plain padded"], abs=0.011)
    models = text.split("## models")[1]
    table = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in models.splitlines() if line.startswith("| ") and "---" not in line and "model" not in line}
    assert len(table) == len(bench.MODEL_CELLS)
    speed = {name: _numbers(cells[1])[0] for name, cells in table.items()}
    assert _numbers(table["lstm"][2])[0] == pytest.approx(speed["lstm"] / speed["gru"], abs=0.011)
    for cell in ("mingru", "minlstm", "lru"):
        ratio = _numbers(table[f"{cell} (parallel)"][4])[0]
        assert ratio == pytest.approx(speed[f"{cell} (parallel)"] / speed[f"{cell} (sequential)"], abs=0.011)


def test_a_busy_machine_gets_a_caveat_of_its_own():
    steady = [{"seconds": [1.0, 1.05, 1.02]}]
    assert bench.spread_caveat(steady) == ""
    assert "machine was busy" in bench.spread_caveat([{"seconds": [1.0, 3.4, 1.1]}])


def _rows(section: str) -> dict[str, list[str]]:
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in section.splitlines() if line.startswith("| ") and "---" not in line and "median" not in line}


def test_denormal_and_sparse_workloads_print_ratios_of_their_own_rows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench.main(["--workload", "denormal", "sparse", "--denormal-length", "30", "--hidden", "8", "--repeats", "1",
                "--synthetic", "--questions", "64", "--sparse-models", "gru"])
    text = (tmp_path / "bench.md").read_text()
    denormal = text.split("## denormal")[1].split("## sparse")[0]
    rows = _rows(denormal)
    assert set(rows) == {"plain PyTorch, denormals kept (torch's default)", "plain PyTorch, denormals flushed",
                         "seqbench (flush_denormal=true, the default)"}
    seconds = {name: _numbers(cells[0])[0] for name, cells in rows.items()}
    kept, flushed = seconds["plain PyTorch, denormals kept (torch's default)"], seconds["plain PyTorch, denormals flushed"]
    ratio = float(re.search(r"kept / flushed\): ([\d.]+)x", denormal)[1])
    assert ratio == pytest.approx(kept / flushed, rel=0.02)
    sparse = text.split("## sparse")[1]
    rows = _rows(sparse)
    assert len(rows) == 3
    dense = _numbers(rows["dense embedding, denormals flushed (default)"][0])[0]
    lazy = _numbers(rows["sparse embedding (optimizer.sparse_embedding=true), flushed"][0])[0]
    ratio = float(re.search(r"dense / sparse, both flushed\): ([\d.]+)x", sparse)[1])
    assert ratio == pytest.approx(dense / lazy, rel=0.02)


@pytest.mark.slow
def test_harness_workload_pairs_seqbench_with_the_plain_loop_quiet_and_beside_a_busy_process(tmp_path, monkeypatch):
    """Issue 44's harness figure: at least 10 interleaved repeats whatever --repeats says, a row per
    machine setting and the median of the per-repeat paired ratios, against the same network in a plain loop and nn.GRU."""
    from seqbench.bench import speed_settings
    calls = []
    real = speed_settings.measure_harness

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)
    monkeypatch.setattr("seqbench.bench.workloads.measure_harness", counted)
    monkeypatch.chdir(tmp_path)
    bench.main(["--workload", "harness", "--denormal-length", "12", "--hidden", "4", "--repeats", "1"])
    assert calls and calls[0][5] == 10  # repeats: at least 10
    rows = _rows((tmp_path / "bench.md").read_text().split("## harness")[1])
    rows.pop("machine")  # the header
    assert set(rows) == {"quiet", "beside one busy process"}
    for cells in rows.values():
        plain_gru, same_network, ours, versus_same, versus_gru = (_numbers(cell)[0] for cell in cells)
        assert min(plain_gru, same_network, ours, versus_same, versus_gru) > 0
        # paired medians: near the ratio of the medians, not equal to it
        assert versus_same == pytest.approx(same_network / ours, rel=0.5)


def test_threads_workload_times_each_thread_count_quiet_and_beside_a_busy_process(tmp_path, monkeypatch):
    import os
    monkeypatch.chdir(tmp_path)
    bench.main(["--workload", "threads", "--synthetic", "--questions", "48", "--repeats", "1", "--warmup", "1"])
    rows = _rows((tmp_path / "bench.md").read_text().split("## threads")[1])
    counts = sorted({1, min(2, os.cpu_count()), os.cpu_count()})
    assert len(rows) == 2 * len(counts)
    assert {name.split(", ")[1] for name in rows} == {"quiet", "one other busy process"}
    assert all(_numbers(cells[0])[0] > 0 for cells in rows.values())


@pytest.mark.parametrize("flags, message", [
    (["--device", "cuda"], "sees no CUDA GPU; use --device cpu"),
    (["--device", "gpu9"], "not a device torch knows"),
    (["--repeats", "0"], "argument --repeats: 0 must be at least 1"),
    (["--warmup", "-2"], "argument --warmup: -2 must be at least 1"),
])
def test_bad_bench_flags_are_one_line_and_exit_2(flags, message, capsys):
    import torch
    if flags[:2] == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(SystemExit) as ended:
        bench.main([*flags, "--workload", "denormal"])
    assert ended.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_loops_workload_times_the_sliced_and_the_unbind_loop_and_prints_their_ratio(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench.main(["--workload", "loops", "--lengths", "6", "--hidden", "8", "--repeats", "1"])
    section = (tmp_path / "bench.md").read_text().split("## loops")[1]
    rows = _rows(section)
    assert set(rows) == {"sliced x[:, t] (before)", "unbind (now)"}
    seconds = [_numbers(cells[0])[0] for cells in rows.values()]
    ratio = float(re.search(r"unbind against slicing: ([\d.]+)x", section)[1])
    assert ratio == pytest.approx(seconds[0] / seconds[1], rel=0.05)


def test_scan_workload_times_every_mode_of_every_scan_cell_at_two_widths_and_prints_their_ratios(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench.main(["--workload", "scan", "--lengths", "6", "--scan-widths", "4", "8", "--repeats", "1"])
    section = (tmp_path / "bench.md").read_text().split("## scan")[1]
    for cell in bench.SCAN_CELLS:
        for width in (4, 8):
            label = f"{cell}, width {width}, T = 6"
            rows = _rows(section.split(f"| {label} |")[1].split(f"{label}: fused")[0])
            assert set(rows) == {"sequential", "parallel", "fused"}
            seconds = {mode: _numbers(cells[0])[0] for mode, cells in rows.items()}
            found = re.search(rf"{label}: fused against sequential: ([\d.]+)x; fused against parallel: ([\d.]+)x", section)
            assert float(found[1]) == pytest.approx(seconds["sequential"] / seconds["fused"], rel=0.05)
            assert float(found[2]) == pytest.approx(seconds["parallel"] / seconds["fused"], rel=0.05)


def test_scan_workload_compares_one_function_in_every_mode():
    """The timed layers share parameters, so the ratios compare ways of computing one function."""
    for cell in bench.SCAN_CELLS:
        torch.manual_seed(0)
        layers = {mode: bench.scan_layer(cell, 8, mode) for mode in bench.SCAN_MODES}
        x = torch.randn(3, 11, 8)
        for layer in layers.values():
            layer.load_state_dict(layers["sequential"].state_dict())
            torch.testing.assert_close(layer(x), layers["sequential"](x), rtol=1e-4, atol=1e-5)


def test_lru_workload_times_the_strided_and_the_interleaved_products_and_prints_their_ratio(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bench.main(["--workload", "lru", "--lengths", "6", "--hidden", "8", "--repeats", "1"])
    section = (tmp_path / "bench.md").read_text().split("## lru")[1]
    for cell in ("lru", "lru_deep"):
        table = section.split(f"| {cell}, T = 6 |")[1].split(f"{cell}, T = 6: interleaved")[0]
        rows = _rows(table)
        assert set(rows) == {"strided Re/Im, torch.complex (before)", "interleaved products (now)"}
        seconds = [_numbers(cells[0])[0] for cells in rows.values()]
        ratio = float(re.search(rf"{cell}, T = 6: interleaved against strided: ([\d.]+)x", section)[1])
        assert ratio == pytest.approx(seconds[0] / seconds[1], rel=0.05)


@pytest.mark.parametrize("mode", ["parallel", "sequential"])
def test_lru_workload_compares_one_function_computed_two_ways(mode):
    """The timed 'before' path is the unit's function with its products laid out as they were."""
    from seqbench.models.lru import LinearRecurrentUnit
    torch.manual_seed(0)
    unit = LinearRecurrentUnit(8, 6, r_min=0.9, r_max=0.999, mode=mode)
    v = torch.randn(3, 11, 8)
    torch.testing.assert_close(bench.strided_lru_forward(unit, v), unit(v), rtol=1e-5, atol=1e-5)
