"""The shareable report: one self-contained report.html (figures embedded, tables sortable,
verdict first, budget, provenance and config differences), looked at in headless chromium as a
person would open it from an e-mail: a file, offline."""
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqbench.record import write_json_atomic
from seqbench.report import build_report
from tests.conftest import browser_or_skip, import_or_skip


def _runs(root: Path) -> None:
    rng = np.random.default_rng(0)
    target = rng.integers(0, 3, 300)
    for model, hidden, accuracy in (("gru", 8, 0.9), ("gru", 16, 0.8), ("lstm", 8, 0.6)):
        for seed in range(5):
            folder = root / f"{model}{hidden}_s{seed}"
            folder.mkdir(parents=True)
            correct = rng.random(300) < accuracy + rng.normal(0, 0.01)
            predicted = np.where(correct, target, (target + 1) % 3)
            pd.DataFrame({"index": range(300), "target": target, "predicted": predicted}).to_csv(
                folder / "predictions.csv", index=False)
            write_json_atomic(folder / "record.json", {
                "status": "done", "model": model, "dataset": "trec", "seed": seed, "task": "classification",
                "config_hash": f"{model}{hidden}", "data_fingerprint": "d1", "predictions": "predictions.csv",
                "label_names": ["ABBR", "DESC", "ENTY"], "test": {"acc": float(correct.mean()), "f1": 0.5},
                "val_best": {"acc": 0.8}, "best_epoch": 2, "epochs": 4, "epoch_seconds": [1.0] * 4,
                "history": [{"epoch": e, "val/acc": 0.5 + 0.1 * e} for e in range(4)], "git_commit": "abc123",
                "config": {"model": {"name": model, "hidden_size": hidden}, "dataset": {"name": "trec", "batch_size": 16},
                           "trainer": {"max_epochs": 4, "patience": 2}, "optimizer": {"_target_": "torch.optim.Adam",
                                                                                       "lr": 0.003}}})


@pytest.mark.slow
def test_report_html_is_self_contained_and_reads_as_a_page(tmp_path):
    chromium = browser_or_skip()
    playwright = import_or_skip("playwright.sync_api", reason="pip install -e '.[dev]' brings playwright")
    _runs(tmp_path / "runs")
    build_report([tmp_path / "runs"], tmp_path / "out", command="seqbench -m model=gru,lstm", resamples=499)
    page_file = tmp_path / "out" / "report.html"
    html = page_file.read_text()
    assert "data:image/png;base64," in html and "<img" in html and 'src="http' not in html  # nothing to fetch
    shutil.copy(page_file, tmp_path / "mailed.html")   # as attached to an e-mail: alone, no folder beside it
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        page.route("**/*", lambda route: route.abort() if not route.request.url.startswith(("file:", "data:"))
                   else route.continue_())   # offline
        page.goto((tmp_path / "mailed.html").as_uri())
        headings = page.locator("h1, h2").all_inner_texts()
        assert headings[:3] == ["seqbench comparison", "Verdict", "Provenance"]  # the verdict first
        body = page.inner_text("body")
        # the verdict's answer first: the best, then each other variant's gap to it with its interval
        assert "trec (5 seeds each): best: gru (model.hidden_size=8); behind: gru (model.hidden_size=16) -8.9" in body
        assert "lstm -30.5" in body
        assert "Budget: up to 4 epochs" in body
        assert "git commits: abc123" in body and "seqbench -m model=gru,lstm" in body
        images = page.locator("img")
        assert images.count() >= 3
        assert all(page.evaluate("img => img.naturalWidth", images.nth(i).element_handle()) > 300
                   for i in range(images.count()))          # every figure decoded from the page itself
        table = page.locator("table.sortable").first
        first_column = lambda: table.locator("tbody tr td:first-child").all_inner_texts()
        before = first_column()
        table.locator("th", has_text="n").first.click()                       # sortable by a click
        table.locator("th", has_text="test acc (%) mean ± std").click()
        ascending = first_column()
        assert ascending != before and ascending[0].startswith(("lstm", "chance", "majority"))   # baselines in italics
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert (tmp_path / "report.png").stat().st_size > 50_000
    keep = os.environ.get("SEQBENCH_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "report.png", Path(keep) / "report_html.png")
