"""The benchmark runs end to end on tiny synthetic data (numbers are not checked: timings
belong in the benchmark's own output, not in tests)."""
from seqbench import bench


def test_benchmark_writes_every_row_repeats_and_the_ratios(tmp_path):
    out = tmp_path / "bench.md"
    bench.main(["--synthetic", "--reviews", "200", "--questions", "80", "--max-len", "24", "--repeats", "3",
                "--warmup", "2", "--out", str(out)])
    text = out.read_text()
    for workload in ("imdb", "trec"):
        section = text.split(f"## {workload}")[1].split("##")[0]
        for row in ["| plain padded |", "| plain bucketed |", "| plain packed |", "| seqbench loop |", "| seqbench |",
                    "per-batch overhead on identical batches"]:
            assert row in section, (workload, row)
        seqbench_row = next(line for line in section.splitlines() if line.startswith("| seqbench |"))
        assert seqbench_row.count(",") >= 2  # three timings listed beside the median
    assert "median of 3" in text and "2 warm-up batches (untimed)" in text and "CPU cores" in text
    assert "| impl=native |" in text and "native / scratch speed ratio" in text
