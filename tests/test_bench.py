"""The benchmark runs end to end on tiny synthetic data (numbers are not checked: timings
belong in the benchmark's own output, not in tests)."""
from seqbench import bench


def test_benchmark_writes_every_row_and_the_ratios(tmp_path):
    out = tmp_path / "bench.md"
    bench.main(["--synthetic", "--reviews", "40", "--max-len", "24", "--batch-size", "8", "--out", str(out)])
    text = out.read_text()
    for row in ["| plain padded |", "| plain packed |", "| seqbench loop |", "| seqbench |",
                "| lstm impl=native |", "| lstm impl=scratch |", "Lightning overhead", "native / scratch speed ratio"]:
        assert row in text
    assert "vs plain packed" in text and "1.00x" in text  # each baseline against itself
