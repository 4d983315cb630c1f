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
    rows = _rows(_block("grid-gowalla-mf"))
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
    # Training runs (training.results' layout); the early-learning records have their own.
    files = sorted({R.RESULTS_DIR / name for name, _ in tables.TABLES.values()
                    if (R.RESULTS_DIR / name).exists()})
    assert files, "no committed results file"
    assert {p.name for p in R.RESULTS_DIR.glob("*.csv")} <= (
        {p.name for p in files} | {name for name, _ in tables.RAW_TABLES.values()}), \
        "a results file that no README table reads"
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


def _append_seeds(path, seeds):
    for seed in seeds:
        R.append_result(path, R.result_row(_summary(seed=seed), dataset="toy", revision="abcdef1234"))


def test_processes_appending_at_once_keep_every_row(tmp_path):
    """Four processes append 25 rows each to one CSV at the same time: all 100 are there.
    Without the folder lock, two appends that read the same old file drop a row: with
    ``folder_lock`` made a no-op this test lost rows in every one of 5 tries."""
    import multiprocessing

    path = tmp_path / "r.csv"
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_append_seeds, args=(path, range(25 * w, 25 * (w + 1))))
               for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
        assert w.exitcode == 0
    assert sorted(R.read_results(path)["seed"]) == list(range(100))


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


# --------------------------------------------------------------------------------------
# Blocks per data set and model, stand-ins, Table 3, the Guideline 2 seed-noise verdict
# --------------------------------------------------------------------------------------
def _write(path, rows, dataset, model="mf"):
    for row in rows:
        R.append_result(path, R.result_row(_summary(**row), dataset=dataset, model=model,
                                           revision="abcdef1234"))


def _dns_grid(values, wd=0.001):
    """Rows of a DNS grid: values[metric][k] is an (n_seeds, n_m) array over M = 1, 5, 20."""
    rows = []
    for s in range(values["recall"][5].shape[0]):
        for j, m in enumerate((1, 5, 20)):
            row = {"sampler": "dns", "sampler_label": f"DNS({m},200)", "m": m, "seed": s,
                   "weight_decay": wd}
            row.update({f"{metric}@{k}": float(values[metric][k][s, j])
                        for metric in ("recall", "ndcg") for k in (5, 20, 50)})
            rows.append(row)
    return rows


def _expected_verdict(v5, v50, ms=(1, 5, 20)):
    """Brute force: per-seed picks, mean picks, gains and pooled seed sd (ddof = 1)."""
    count = sum(ms[int(np.argmax(a))] <= ms[int(np.argmax(b))] for a, b in zip(v5, v50))
    p5, p50 = int(np.argmax(v5.mean(0))), int(np.argmax(v50.mean(0)))
    gain5 = v5[:, p5].mean() - v5[:, p50].mean()
    gain50 = v50[:, p50].mean() - v50[:, p5].mean()
    sd5 = math.sqrt((np.var(v5[:, p5], ddof=1) + np.var(v5[:, p50], ddof=1)) / 2)
    sd50 = math.sqrt((np.var(v50[:, p5], ddof=1) + np.var(v50[:, p50], ddof=1)) / 2)
    return count, ms[p5], ms[p50], gain5, sd5, gain50, sd50


@pytest.mark.parametrize("case", ["guideline", "noise"])
def test_guideline2_seed_noise_verdict_against_brute_force(tmp_path, case):
    """Three seeds of a DNS grid: in how many seeds the best M at K = 5 is at most the best
    at K = 50, and whether the K = 5 pick's gain at K = 5 (and the K = 50 pick's at K = 50)
    exceed the pooled seed-to-seed standard deviation, against a numpy brute force."""
    # Seed 12: the picks differ at K = 5 and 50 for both metrics, within seed noise.
    rng = np.random.default_rng(3 if case == "guideline" else 12)
    values = {metric: {k: rng.uniform(0.1, 0.2, (3, 3)) for k in (5, 20, 50)}
              for metric in ("recall", "ndcg")}
    if case == "guideline":  # M = 1 clearly best at K = 5, M = 20 at K = 50, small noise
        for metric in ("recall", "ndcg"):
            values[metric][5] = np.array([0.30, 0.20, 0.10]) + rng.normal(0, 0.002, (3, 3))
            values[metric][50] = np.array([0.10, 0.20, 0.30]) + rng.normal(0, 0.002, (3, 3))
    _write(tmp_path / "ml-1m_mf.csv", _dns_grid(values), "ml-1m")
    block = tables.render("guideline2-ml-1m", tmp_path)
    assert block.startswith("_MovieLens-1M is a stand-in, not the paper's data set")
    rows = {r[3]: r for r in _rows(block)}
    for metric in ("recall", "ndcg"):
        row = rows[tables.METRIC_NAMES[metric]]
        count, p5, p50, gain5, sd5, gain50, sd50 = _expected_verdict(values[metric][5],
                                                                     values[metric][50])
        assert row[4] == f"M = {p5}" and row[6] == f"{p50}" and row[7] == "3" and row[8] == "3"
        assert row[9] == f"{count} of 3 seeds"
        if p5 == p50:
            assert row[10] == "same pick at K = 5 and 50"
            continue
        verdict = "beyond" if gain5 > sd5 and gain50 > sd50 else "within"
        assert row[10] == (f"K=5: +{gain5:.4f} (sd {sd5:.4f}); K=50: +{gain50:.4f} "
                           f"(sd {sd50:.4f}): {verdict} seed noise"), row[10]
    if case == "guideline":
        assert rows["Recall"][9] == "3 of 3 seeds" and "beyond seed noise" in rows["Recall"][10]
    else:
        assert rows["Recall"][10].endswith("within seed noise")


def test_guideline2_with_one_seed_and_softmax_hardness(tmp_path):
    """One seed: the picks alone ("yes"/"no"); Softmax-v is harder at larger rho."""
    rows = []
    for rho, r5, r50 in ((0.1, 0.10, 0.30), (1.0, 0.20, 0.20), (10.0, 0.30, 0.10)):
        rows.append({"sampler": "softmax_v", "sampler_label": f"Softmax-v({rho:g},200)",
                     "rho": rho, "recall@5": r5, "recall@50": r50, "ndcg@5": r50,
                     "ndcg@50": r5})
    _write(tmp_path / "gowalla_mf.csv", rows, "gowalla")
    got = {r[3]: r for r in _rows(tables.render("guideline2-gowalla", tmp_path))}
    assert got["Recall"][2] == "Softmax-v" and got["Recall"][4] == "ρ = 10"
    assert got["Recall"][6] == "0.1" and got["Recall"][9] == "yes (one seed)"
    assert got["NDCG"][4] == "ρ = 0.1" and got["NDCG"][9] == "no (one seed)"
    assert got["Recall"][10] == "no seed spread (one seed)"


def test_guideline2_one_seed_grid_uses_the_spread_of_configurations_with_seeds(tmp_path):
    """A DNS grid with one complete seed, plus seeds 1-2 of BPR and of DNS(5): the gains of
    the picks (means over each configuration's seeds) against the root mean of those two
    configurations' seed variances (ddof = 1), against a numpy brute force."""
    rng = np.random.default_rng(5)
    values = {metric: {k: rng.uniform(0.1, 0.2, (1, 3)) for k in (5, 20, 50)}
              for metric in ("recall", "ndcg")}
    values["recall"][5][0] = [0.30, 0.20, 0.10]  # Recall: M = 1 at K = 5, M = 20 at K = 50
    values["recall"][50][0] = [0.10, 0.20, 0.30]
    values["ndcg"][5][0] = [0.151, 0.05, 0.150]  # NDCG: the same, by 0.001 (within the spread)
    values["ndcg"][50][0] = [0.150, 0.05, 0.151]
    rows = _dns_grid(values)
    extra = {metric: {k: rng.uniform(0.1, 0.2, (2, 2)) for k in (5, 20, 50)}
             for metric in ("recall", "ndcg")}  # [seed - 1, (BPR, DNS(5))]
    for k in (5, 50):
        extra["ndcg"][k] -= 0.1  # keeps DNS(5) out of NDCG's picks
    bpr = {metric: {k: rng.uniform(0.1, 0.2, 3) for k in (5, 20, 50)}
           for metric in ("recall", "ndcg")}
    for s in range(3):
        row = {"sampler": "uniform", "sampler_label": "Uniform(1)", "seed": s}
        row.update({f"{metric}@{k}": float(bpr[metric][k][s])
                    for metric in ("recall", "ndcg") for k in (5, 20, 50)})
        rows.append(row)
    for s in (1, 2):
        row = {"sampler": "dns", "sampler_label": "DNS(5,200)", "m": 5, "seed": s}
        row.update({f"{metric}@{k}": float(extra[metric][k][s - 1, 1])
                    for metric in ("recall", "ndcg") for k in (5, 20, 50)})
        rows.append(row)
    _write(tmp_path / "gowalla_mf.csv", rows, "gowalla")
    got = {r[3]: r for r in _rows(tables.render("guideline2-gowalla", tmp_path))}
    for metric in ("recall", "ndcg"):
        row = got[tables.METRIC_NAMES[metric]]
        # mean over seeds of each M, and each metric's variance over seeds of BPR and DNS(5)
        means = {k: values[metric][k][0].copy() for k in (5, 50)}
        dns5 = {k: np.r_[values[metric][k][0, 1], extra[metric][k][:, 1]] for k in (5, 50)}
        for k in (5, 50):
            means[k][1] = dns5[k].mean()
        p5, p50 = int(np.argmax(means[5])), int(np.argmax(means[50]))
        assert row[4] == f"M = {(1, 5, 20)[p5]}" and row[6] == f"{(1, 5, 20)[p50]}"
        assert row[8] == "1" and row[9] == ("yes" if p5 <= p50 else "no") + " (one seed)"
        if p5 == p50:
            assert row[10] == "same pick at K = 5 and 50"
            continue
        sd = {k: math.sqrt((np.var(bpr[metric][k], ddof=1) + np.var(dns5[k], ddof=1)) / 2)
              for k in (5, 50)}
        gain5 = means[5][p5] - means[5][p50]
        gain50 = means[50][p50] - means[50][p5]
        verdict = "beyond" if gain5 > sd[5] and gain50 > sd[50] else "within"
        assert row[10] == (f"K=5: +{gain5:.4f} (sd {sd[5]:.4f}); K=50: +{gain50:.4f} "
                           f"(sd {sd[50]:.4f}): {verdict} seed noise (sd from 2 "
                           f"configurations with 3 seeds)"), row[10]
    assert got["Recall"][4] == "M = 1" and got["Recall"][6] == "20"
    assert got["Recall"][10].startswith("K=5: +0.2000") and "beyond seed noise" in got["Recall"][10]
    assert got["NDCG"][10].startswith("K=5: +0.0010") and "within seed noise" in got["NDCG"][10]


def test_table3_and_stand_in_blocks(tmp_path):
    """table3-gowalla: LightGCN's best of each family next to the paper's Table 3; a stand-in
    data set's Table 2 says so and has no paper column; no runs: a one-line block."""
    _write(tmp_path / "gowalla_lightgcn.csv", [
        {"sampler": "uniform", "sampler_label": "Uniform(1)", "m": 1, "n": 1, "recall@50": 0.25},
        {"sampler": "dns", "sampler_label": "DNS(5,200)", "m": 5, "recall@50": 0.31},
        {"sampler": "dns", "sampler_label": "DNS(10,200)", "m": 10, "recall@50": 0.32},
        {"sampler": "softmax_v", "sampler_label": "Softmax-v(1,200)", "rho": 1.0,
         "recall@50": 0.30}], "gowalla", model="lightgcn")
    rows = _rows(tables.render("table3-gowalla", tmp_path))
    assert [r[2] for r in rows] == ["BPR", "DNS(M,N)", "Softmax-v(rho,N)"]
    assert rows[1][3] == "DNS(10,200)" and rows[1][4] == "0.3200"
    # The paper's Table 3 (Gowalla, LightGCN): Recall@50, NDCG@50, typed from the paper.
    paper = {"BPR": (0.2470, 0.1469), "DNS(M,N)": (0.3176, 0.1954),
             "Softmax-v(rho,N)": (0.3209, 0.1991)}
    for r in rows:
        assert (float(r[5]), float(r[7])) == paper[r[2]]
    _write(tmp_path / "yelp2018_mf.csv", [
        {"sampler": "uniform", "sampler_label": "Uniform(1)", "m": 1, "n": 1, "recall@50": 0.1}],
        "yelp2018")
    block = tables.render("table2-yelp2018", tmp_path)
    assert block.startswith("_Yelp2018 is a stand-in, not the paper's data set")
    assert "paper |" not in block and _rows(block)[0][2:5] == ["BPR", "Uniform(1)", "0.1000"]
    assert tables.render("grid-yelp2018-mf", tmp_path).startswith("_Yelp2018 is a stand-in")
    for name in ("table2-ml-1m", "grid-ml-1m-mf", "guideline2-ml-1m", "grid-gowalla-mf"):
        text = tables.render(name, tmp_path)
        assert text.startswith("_No runs yet (") and "\n" not in text, (name, text)
    assert "stand-in" in tables.render("table2-ml-1m", tmp_path)


def test_every_block_renders_from_the_committed_results():
    for name in tables.TABLES:
        text = tables.render(name)
        assert text.strip(), name
        filename = tables.TABLES[name][0]
        if R.read_results(R.RESULTS_DIR / filename).empty:
            assert text.startswith("_No runs yet ("), name


def test_early_learning_rows_equal_the_records():
    """Each row of the early-learning block is the mean (sd) over seeds of the committed
    records with that sampler, split, trainer and epoch (recomputed here with pandas)."""
    frame = pd.read_csv(R.RESULTS_DIR / "early_learning_gowalla.csv")
    sides = {"hnslab": "hnslab", "PyTorch (authors' step)": "torch"}
    rows = _rows(_block("early-learning-gowalla"))
    assert len(rows) == frame.groupby(["sampler_label", "split", "side", "epoch"]).ngroups
    for label, split, side, epoch, seeds, recall, ndcg, _ in rows:
        runs = frame[(frame["sampler_label"] == label) & (frame["split"] == split)
                     & (frame["side"] == sides[side]) & (frame["epoch"] == int(epoch))]
        assert sorted(runs["seed"]) == [int(x) for x in seeds.split(", ")]
        for cell, column in ((recall, "recall@50"), (ndcg, "ndcg@50")):
            mean, sd, n = _mean_sd(cell)
            assert n == len(runs) and _close(mean, runs[column].mean())
            if sd is not None:
                assert _close(sd, runs[column].std(ddof=1))


def _plain_convergence(curve):
    """(first epoch with Recall@20 and NDCG@20 both >= 99% of their best, epoch of the best
    Recall@20) of one curve sorted by epoch, with plain loops."""
    best = {m: max(r[m] for r in curve) for m in ("recall@20", "ndcg@20")}
    first = max(next(r["epochs"] for r in curve if r[m] >= 0.99 * best[m]) for m in best)
    return first, max(curve, key=lambda r: r["recall@20"])["epochs"]


def test_converged_epochs_against_a_plain_loop():
    """The convergence rule on random curves: first epoch with every metric >= 99% of its
    curve's best, the slowest curve decides; recomputed here with plain Python loops."""
    rng = np.random.default_rng(5)
    rows = []
    for label in ("Uniform(1)", "DNS(5,200)"):
        for seed in (0, 1):
            level = rng.uniform(0.1, 0.3)
            for epoch in range(25, 401, 25):  # a noisy saturating curve
                rise = 1.0 - np.exp(-epoch / rng.uniform(20, 60))
                rows.append(_summary(sampler_label=label, seed=seed, epochs=epoch,
                                     **{"recall@20": level * rise + rng.normal(0, 3e-4),
                                        "ndcg@20": 0.6 * level * rise + rng.normal(0, 3e-4)}))
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # any row order
    table, chosen = tables.converged_epochs(frame)
    expected = {}
    for r in rows:
        expected.setdefault((r["sampler_label"], r["seed"]), []).append(r)
    slowest = 0
    for (label, seed), curve in expected.items():
        curve.sort(key=lambda r: r["epochs"])
        first, top = _plain_convergence(curve)
        got = table[(table["sampler_label"] == label) & (table["seed"] == seed)].iloc[0]
        assert (got["converged at"], got["best recall@20 at"]) == (first, top)
        slowest = max(slowest, first)
    assert chosen == slowest and 25 < chosen < 400
    assert tables.converged_epochs(frame.iloc[:0])[1] is None


def test_rounding_check_rows_equal_the_records():
    """The rounding-check block: each run's metrics and the difference row, recomputed from the
    committed CSV (two runs of one configuration and seed, before and after)."""
    frame = pd.read_csv(R.RESULTS_DIR / "rounding_check_gowalla.csv")
    assert len(frame) == 2 and frame["sampler_label"].nunique() == 1
    assert frame["seed"].nunique() == 1 and frame["git_revision"].nunique() == 2
    metrics = [f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 20, 50)]
    rows = _rows(_block("rounding-check-gowalla"))
    assert len(rows) == 3
    for row, record in zip(rows[:2], frame.to_dict("records")):
        assert row[1] == str(record["git_revision"])
        assert all(_close(cell, record[m]) for cell, m in zip(row[2:], metrics))
    diffs = frame[metrics].iloc[1].to_numpy(float) - frame[metrics].iloc[0].to_numpy(float)
    assert all(_close(cell, d) for cell, d in zip(rows[2][2:], diffs))


def test_lightgcn_convergence_block_equals_the_committed_curves():
    """The Gowalla LightGCN curves block: per curve, the first evaluated epoch with Recall@20 and
    NDCG@20 within 1% of their best and the epoch of the best Recall@20, recomputed with plain
    loops from the committed curves; no training length is chosen for Gowalla."""
    path = R.RESULTS_DIR / "gowalla_lightgcn_curves.csv"
    if not path.exists():
        pytest.skip("no LightGCN curves committed")
    block = _block("convergence-gowalla-lightgcn")
    assert "Chosen training length" not in block
    curves = {}
    for r in R.read_results(path).to_dict("records"):
        curves.setdefault((r["sampler_label"], r["weight_decay"], r["seed"]), []).append(r)
    rows = _rows(block)
    assert len(rows) == len(curves)
    for label, wd, seed, last, converged, top in rows:
        curve = sorted(curves[(label, float(wd), int(seed))], key=lambda r: r["epochs"])
        first, best_at = _plain_convergence(curve)
        assert (int(last), int(converged)) == (curve[-1]["epochs"], first)
        assert int(top) == best_at


def test_append_rows_adds_only_new_keys(tmp_path):
    """append_rows: rows whose key is already there are skipped; the count is of rows added;
    other rows and columns survive unchanged."""
    path = tmp_path / "study.csv"
    first = [{"a": 1, "b": "x", "v": 0.5}, {"a": 2, "b": "x", "v": 0.25}]
    assert R.append_rows(path, first, ["a", "b"]) == 2
    again = [{"a": 2, "b": "x", "v": 9.0}, {"a": 2, "b": "y", "v": 0.125}]
    assert R.append_rows(path, again, ["a", "b"]) == 1
    got = pd.read_csv(path)
    assert got.to_dict("records") == [first[0], first[1], again[1]]
    assert not list(tmp_path.glob("*.tmp*"))  # no temporary file left behind


def test_false_negatives_rows_against_a_plain_loop(tmp_path):
    """false-negatives-ml-1m: each (configuration, epoch) row pairs the run whose pools exclude
    train with the one that also excludes test, and the gain is their difference; the pairing
    is checked with a plain loop over records written in shuffled order."""
    rng = np.random.default_rng(7)
    records = []
    for label in ("DNS(5,200)", "DNS(20,200)"):
        for excluded in ("train", "train + test"):
            for epoch in (5, 10):
                records.append({"dataset": "ml-1m", "sampler_label": label, "excluded": excluded,
                                "weight_decay": 0.001, "seed": 0, "epoch": epoch,
                                "recall@20": rng.uniform(0, 0.3), "ndcg@20": rng.uniform(0, 0.4),
                                "recall@50": 0.0, "ndcg@50": 0.0, "git_revision": "abc"})
    frame = pd.DataFrame(records).sample(frac=1.0, random_state=1).reset_index(drop=True)
    frame.to_csv(tmp_path / "false_negatives_ml-1m.csv", index=False)
    rows = _rows(tables.render("false-negatives-ml-1m", tmp_path))
    assert len(rows) == 4
    for row in rows:
        found = {}
        for r in records:
            if r["sampler_label"] == row[0] and r["epoch"] == int(row[3]):
                found[r["excluded"]] = r
        plain, oracle = found["train"], found["train + test"]
        for col, metric in ((4, "recall@20"), (7, "ndcg@20")):
            assert row[col] == f"{plain[metric]:.4f}"
            assert row[col + 1] == f"{oracle[metric]:.4f}"
            assert row[col + 2] == f"{oracle[metric] - plain[metric]:+.4f}"
