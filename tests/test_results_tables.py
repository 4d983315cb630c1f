"""The committed results files and the README tables generated from them.

Every number in a README results block must equal the committed results: the blocks are
regenerated and compared, and, independently of the renderer, every table row is parsed back
and looked up in the CSV with pandas (a wrong "best" pick or a mistyped number fails).
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from figures import tables
from training import results as R

README_TEXT = tables.README.read_text(encoding="utf-8")


def _block(name, text=README_TEXT):
    match = re.search(rf"<!-- results:{name} -->\n(.*?)\n<!-- /results:{name} -->", text, re.S)
    assert match, f"README has no results block {name}"
    return match.group(1)


def _rows(block):
    """Markdown table rows (after the header and rule) as lists of cell strings."""
    lines = [line for line in block.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]


def _mean_sd(cell):
    """'0.2909' -> (0.2909, None, 1); '0.29 ± 0.01 (n=3)' -> (0.29, 0.01, 3)."""
    m = re.fullmatch(r"([0-9.]+)(?: ± ([0-9.]+) \(n=(\d+)\))?", cell)
    assert m, cell
    return float(m[1]), (float(m[2]) if m[2] else None), int(m[3] or 1)


def _close(shown, value):
    return math.isclose(float(shown), round(float(value), 4), abs_tol=1e-12)


@pytest.fixture(scope="module")
def gowalla():
    frame = R.read_results(R.RESULTS_DIR / "gowalla_mf.csv")
    frame = frame[(frame["dataset"] == "gowalla") & (frame["model"] == "mf")]
    return frame


def test_readme_blocks_equal_the_committed_results():
    assert tables.update_readme(check=True) == [], \
        "README tables differ from results/: run `python -m figures.tables`"


def test_every_grid_number_is_in_the_results(gowalla):
    rows = _rows(_block("grid-gowalla"))
    assert len(rows) == gowalla.groupby(["sampler_label", "weight_decay", "epochs"]).ngroups
    for wd, epochs, label, n_seeds, recall, ndcg, _, _ in rows:
        runs = gowalla[(gowalla["sampler_label"] == label)
                       & np.isclose(gowalla["weight_decay"], float(wd))
                       & (gowalla["epochs"] == int(epochs))]
        assert len(runs) == int(n_seeds) > 0
        for cell, column in ((recall, "recall@50"), (ndcg, "ndcg@50")):
            mean, sd, n = _mean_sd(cell)
            assert n == len(runs) and _close(mean, runs[column].mean()), (label, wd, column)
            if sd is not None:
                assert _close(sd, runs[column].std(ddof=1))


def test_table2_rows_are_the_best_of_their_family(gowalla):
    family = gowalla["sampler"].map(tables.FAMILY)
    for wd, epochs, method, label, recall, paper_r, ndcg, paper_n in _rows(_block("table2-gowalla")):
        at = gowalla[np.isclose(gowalla["weight_decay"], float(wd))
                     & (gowalla["epochs"] == int(epochs))]
        fam = {"BPR": "BPR", "DNS (M=1)": "DNS", "DNS(M,N)": "DNS", "Softmax-v(rho,N)": "Softmax-v"}
        cands = at[family[at.index] == fam[method]]
        if method == "DNS (M=1)":
            cands = cands[cands["m"] == 1]
        means = cands.groupby("sampler_label")["recall@50"].mean()
        assert label == means.idxmax(), (method, wd)
        assert _close(_mean_sd(recall)[0], means.max())
        assert _close(_mean_sd(ndcg)[0], cands[cands["sampler_label"] == label]["ndcg@50"].mean())
        assert (float(paper_r), float(paper_n)) == tables.PAPER_GOWALLA_MF[method]


def test_results_files_have_the_required_columns_and_finite_metrics():
    files = sorted(R.RESULTS_DIR.glob("*.csv"))
    assert files, "no committed results file"
    for path in files:
        frame = R.read_results(path)
        assert set(R.RESULT_COLUMNS) <= set(frame.columns), path
        assert np.isfinite(frame[list(R.METRIC_COLUMNS)].to_numpy(float)).all(), path
        assert not frame.duplicated(list(R.RUN_KEY)).any(), path
        assert (frame["git_revision"].astype(str).str.len() >= 7).all(), path


def _summary(**over):
    row = {c: 0.1 for c in R.METRIC_COLUMNS}
    row.update(sampler="dns", sampler_label="DNS(5,200)", m=5, n=200, rho=1.0, ddof=0,
               pool="negatives", weight_decay=0.001, seed=0, epochs=3, dim=32, batch_size=4096,
               lr=1e-3, seconds_per_epoch=2.0, eval_seconds=1.0)
    row.update(over)
    return row


def test_append_result_refuses_duplicates_and_untrustworthy_rows(tmp_path):
    path = tmp_path / "r.csv"
    R.append_result(path, R.result_row(_summary(), dataset="toy", revision="abcdef1234"))
    R.append_result(path, R.result_row(_summary(seed=1), dataset="toy", revision="abcdef1234"))
    frame = R.read_results(path)
    assert list(frame["seed"]) == [0, 1] and list(frame.columns) == list(R.RESULT_COLUMNS)
    assert R.has_run(path, dataset="toy", model="mf", sampler_label="DNS(5,200)",
                     weight_decay=0.001, seed=1, epochs=3)
    assert not R.has_run(path, dataset="toy", model="mf", sampler_label="DNS(5,200)",
                         weight_decay=0.01, seed=1, epochs=3)
    with pytest.raises(ValueError, match="already recorded"):
        R.append_result(path, R.result_row(_summary(), dataset="toy", revision="abcdef1234"))
    with pytest.raises(ValueError, match="non-finite recall@50"):
        R.result_row(_summary(**{"recall@50": float("nan")}), dataset="toy", revision="x")
    with pytest.raises(ValueError, match="missing seed"):
        R.result_row({k: v for k, v in _summary().items() if k != "seed"}, dataset="toy")
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_update_readme_rewrites_only_the_blocks(tmp_path):
    results = tmp_path / "results"
    for seed, recall in enumerate((0.30, 0.32, 0.31)):
        R.append_result(results / "gowalla_mf.csv", R.result_row(
            _summary(seed=seed, **{"recall@50": recall}), dataset="gowalla", revision="abcdef1234"))
    R.append_result(results / "gowalla_mf.csv", R.result_row(
        _summary(sampler="uniform", sampler_label="Uniform(1)", m=1, n=1), dataset="gowalla",
        revision="abcdef1234"))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:table2-gowalla -->\nstale\n<!-- /results:table2-gowalla -->\nend\n")
    assert tables.update_readme(readme, results) == ["table2-gowalla"]
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("end\n")
    rows = _rows(_block("table2-gowalla", text))
    dns = [r for r in rows if r[2] == "DNS(M,N)"][0]
    values = pd.Series([0.30, 0.32, 0.31])
    assert dns[4] == f"{values.mean():.4f} ± {values.std(ddof=1):.4f} (n=3)"
    assert tables.update_readme(readme, results) == []  # idempotent
    readme.write_text("<!-- results:nope -->\nx\n<!-- /results:nope -->\n")
    with pytest.raises(ValueError, match="unknown table 'nope'"):
        tables.update_readme(readme, results)
