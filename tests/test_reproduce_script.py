"""benchmarks/reproduce.py: the quick run on Gowalla (results CSV, resume, report, figure),
grid points and presets (Table 3 reads the best M and rho of MF), seed-major resumable runs
that lose only the interrupted run, LightGCN through the runner, Guideline 2 per weight
decay, and importing earlier JSON runs."""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training import results as R
from training.loaders import save_lightgcn_txt
from training.planted import planted_dataset
from training.split import split_per_user

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "reproduce.py"


def _script():
    spec = importlib.util.spec_from_file_location("reproduce", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _summary(sampler, label, m, rho, recall50, **over):
    row = {f"{metric}@{k}": 0.1 for metric in ("recall", "ndcg") for k in (5, 20, 50)}
    row.update({"sampler": sampler, "sampler_label": label, "m": m, "n": 200, "rho": rho,
                "ddof": 0, "pool": "negatives", "weight_decay": 0.001, "seed": 0,
                "epochs": 200, "dim": 32, "batch_size": 4096, "lr": 1e-3,
                "seconds_per_epoch": 1.0, "eval_seconds": 1.0, "recall@50": recall50})
    row.update(over)
    return row


# --------------------------------------------------------------------------------------
# The quick run on Gowalla (the full grid is opt-in: hours)
# --------------------------------------------------------------------------------------
def test_quick_run_on_gowalla_resumes_reports_and_draws(gowalla_path, tmp_path):
    """--quick: 1 epoch of BPR, DNS(1, 200), DNS(5, 200) and Softmax-v(1, 200) on Gowalla;
    one results row per run, a report next to the paper's numbers, the Figs. 8-11 plot; a
    rerun computes nothing (every run is skipped)."""
    results = tmp_path / "results" / "gowalla_mf.csv"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--no-progress", "--dataset", "gowalla",
           "--data", str(gowalla_path), "--results", str(results),
           "--figure", str(tmp_path / "fig8_gowalla.png")]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    rows = R.read_results(results)
    assert sorted(rows["sampler_label"]) == ["DNS(1,200)", "DNS(5,200)", "Softmax-v(1,200)",
                                             "Uniform(1)"]
    assert (rows["epochs"] == 1).all() and (rows["seed"] == 0).all()
    assert (rows["dataset"] == "gowalla").all() and (rows["model"] == "mf").all()
    assert rows["git_revision"].str.len().min() >= 7
    assert "0.2989" in first.stdout and "Guideline 2 on real data" in first.stdout
    assert (tmp_path / "fig8_gowalla.png").stat().st_size > 5000
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0 and again.stdout.count("done, skipped") == 4, again.stdout
    assert R.read_results(results).equals(rows)


def test_the_committed_gowalla_rows_are_found_by_the_run_key(tmp_path, capsys):
    """The rows already in results/gowalla_mf.csv are skipped (same run key), without
    loading any data."""
    committed = R.read_results(R.RESULTS_DIR / "gowalla_mf.csv")
    assert len(committed), "results/gowalla_mf.csv has no row"
    copy = tmp_path / "gowalla_mf.csv"
    shutil.copy(R.RESULTS_DIR / "gowalla_mf.csv", copy)
    rep = _script()
    family = {"uniform": "BPR", "dns": "DNS", "softmax_v": "Softmax-v"}
    for row in committed.to_dict("records"):
        param = {"BPR": None, "DNS": row["m"], "Softmax-v": row["rho"]}[family[row["sampler"]]]
        point = rep.point_key(family[row["sampler"]], param)
        argv = ["--only", point, "--weight-decays", str(row["weight_decay"]), "--seeds",
                str(row["seed"]), "--epochs", str(row["epochs"]), "--results", str(copy),
                "--data", str(tmp_path / "absent.mat"), "--no-progress"]
        assert rep.main(argv) == 0
        assert "done, skipped" in capsys.readouterr().out
    assert R.read_results(copy).equals(committed)


# --------------------------------------------------------------------------------------
# Grid points and presets
# --------------------------------------------------------------------------------------
def test_points_parse_and_refuse():
    rep = _script()
    assert [rep.parse_point(t) for t in ("BPR", "DNS:7", "Softmax-v:0.01", "Softmax-v:1e2")] == [
        ("BPR", None), ("DNS", 7), ("Softmax-v", 0.01), ("Softmax-v", 100.0)]
    for bad in ("DNS:x", "DNS", "DNS:0", "DNS:1.5", "DNS:201", "BPR:1", "softmax:1",
                "Softmax-v:0", "Softmax-v:-1", "Softmax-v:nan", "Softmax-v:inf", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="not a grid point"):
            rep.parse_point(bad)
    with pytest.raises(SystemExit):  # argparse reports it as a usage error naming --only
        rep.main(["--only", "DNS:0", "--report-only"])
    labels = [rep.sampler_of(*p).label() for p in rep.PRESETS["yelp"]]
    assert sorted(labels) == sorted(["Uniform(1)", "DNS(1,200)", "DNS(3,200)", "DNS(5,200)",
                                     "DNS(10,200)", "Softmax-v(0.1,200)", "Softmax-v(1,200)",
                                     "Softmax-v(10,200)"])
    table2 = {rep.sampler_of(*p).label() for p in rep.PRESETS["table2"]}
    assert len(table2) == len(rep.M_GRID) + len(rep.RHO_GRID) + 1


def test_table3_preset_reads_the_best_m_and_rho_of_mf(tmp_path):
    """Best = highest mean Recall@50 over seeds among MF runs at the same epochs, over every
    weight decay; explicit --best-m / --best-rho win; none recorded: a clear error."""
    rep = _script()
    mf = tmp_path / "gowalla_mf.csv"
    rows = [  # DNS(5): mean 0.30 over two seeds beats DNS(10)'s single 0.29 ...
        _summary("dns", "DNS(5,200)", 5, 1.0, 0.31), _summary("dns", "DNS(5,200)", 5, 1.0, 0.29, seed=1),
        _summary("dns", "DNS(10,200)", 10, 1.0, 0.295, weight_decay=0.01),
        # ... but not a run of another length
        _summary("dns", "DNS(2,200)", 2, 1.0, 0.5, epochs=20),
        _summary("softmax_v", "Softmax-v(10,200)", 1, 10.0, 0.28),
        _summary("softmax_v", "Softmax-v(1,200)", 1, 1.0, 0.305, weight_decay=0.01)]
    for row in rows:
        R.append_result(mf, R.result_row(row, dataset="gowalla", revision="abcdef1234"))
    (m, rho), note = rep.best_mf_points(mf, "gowalla", 200)
    assert (m, rho) == (5, 1.0) and "weight decay 0.01" in note
    args = argparse.Namespace(only=None, quick=False, preset="table3", best_m=None,
                              best_rho=None, results=tmp_path / "gowalla_lightgcn.csv",
                              dataset="gowalla", epochs=200)
    assert rep.grid_points(args) == [("BPR", None), ("DNS", 5), ("Softmax-v", 1.0)]
    args.best_rho = 3.0
    assert rep.grid_points(args)[2] == ("Softmax-v", 3.0)
    args.epochs, args.best_rho = 50, None
    with pytest.raises(SystemExit, match="--best-m and --best-rho"):
        rep.grid_points(args)


# --------------------------------------------------------------------------------------
# Runs: seed-major order, resumable, an interruption loses only the run in progress
# --------------------------------------------------------------------------------------
def test_runs_resume_and_lose_only_the_interrupted_run(tmp_path, monkeypatch, capsys):
    rep = _script()
    calls, loads = [], []

    class Result:
        def __init__(self, sampler, seed, wd, interrupted):
            self.interrupted = interrupted
            self.s = _summary(sampler.kind, sampler.label(), sampler.m, sampler.rho, 0.2,
                              seed=seed, epochs=3, weight_decay=wd)

        def summary(self):
            return dict(self.s)

    def fake_train(train, test, sampler, *, seed, weight_decay, model, epochs, **kw):
        calls.append((seed, sampler.label(), weight_decay, model, epochs, kw.get("layers")))
        return Result(sampler, seed, weight_decay, interrupted=len(calls) == 3 and stop["now"])

    class Split:  # what the runner reads of a split (it prints the sizes)
        shape, nnz = (10, 20), 30

    def fake_load(spec, seed):
        loads.append((spec, seed))
        return Split, Split

    monkeypatch.setattr(rep.T, "train_model", fake_train)
    monkeypatch.setattr(rep, "load_dataset", fake_load)
    results = tmp_path / "r.csv"
    base = ["--dataset", "ml-1m", "--only", "DNS:5", "BPR", "--seeds", "0", "1",
            "--weight-decays", "0.01", "0.001", "--epochs", "3", "--results", str(results),
            "--no-progress"]
    stop = {"now": True}
    assert rep.main(base) == 130
    assert len(R.read_results(results)) == 2  # the third run was interrupted: not saved
    # Seed-major, then the points as given, then weight decay.
    assert [c[:3] for c in calls] == [(0, "DNS(5,200)", 0.01), (0, "DNS(5,200)", 0.001),
                                      (0, "Uniform(1)", 0.01)]
    stop["now"] = False
    calls.clear()
    assert rep.main(base) == 0
    out = capsys.readouterr().out
    assert out.count("done, skipped") == 2 and len(calls) == 6
    frame = R.read_results(results)
    assert len(frame) == 8 and not frame.duplicated(list(R.RUN_KEY)).any()
    assert (frame["dataset"] == "ml-1m").all() and set(frame["seed"]) == {0, 1}
    assert loads == [("ml-1m", 0), ("ml-1m", 0), ("ml-1m", 1)]  # one load per seed and call
    assert "stand-in" in out  # ml-1m's tables say it is not the paper's data set
    assert rep.main(base) == 0 and len(calls) == 6  # all done: nothing trains


def test_lightgcn_runs_through_the_runner(tmp_path, capsys):
    """--model lightgcn --preset table3 with explicit M and rho on a small LightGCN-format data
    set: three rows in <dataset>_lightgcn.csv with the model recorded, the Table 3 report."""
    data = planted_dataset(120, 90, seed=0, density=0.08)
    train, test = split_per_user(data.matrix, 0.8, 0)
    save_lightgcn_txt(train, tmp_path / "train.txt")
    save_lightgcn_txt(test, tmp_path / "test.txt")
    rep = _script()
    results = tmp_path / "gowalla_lightgcn.csv"
    argv = ["--model", "lightgcn", "--layers", "2", "--best-m", "2", "--best-rho", "1",
            "--epochs", "1", "--data", str(tmp_path / "train.txt"), "--results", str(results),
            "--no-progress"]
    assert rep.main(argv) == 0
    frame = R.read_results(results)
    assert list(frame["sampler_label"]) == ["Uniform(1)", "DNS(2,200)", "Softmax-v(1,200)"]
    assert (frame["model"] == "lightgcn").all() and (frame["dataset"] == "gowalla").all()
    out = capsys.readouterr().out
    assert "Table 3" in out and "0.3176" in out  # next to the paper's LightGCN numbers


def test_learning_curves_are_the_models_of_shorter_runs(tmp_path, capsys):
    """--eval-every E writes one curve row per evaluation; the row at epoch E of a longer run
    has exactly the metrics of an E-epoch run (independent check of the docstring's claim);
    a rerun adds no duplicate."""
    data = planted_dataset(120, 90, seed=1, density=0.08)
    train, test = split_per_user(data.matrix, 0.8, 0)
    save_lightgcn_txt(train, tmp_path / "train.txt")
    save_lightgcn_txt(test, tmp_path / "test.txt")
    rep = _script()
    common = ["--data", str(tmp_path / "train.txt"), "--dataset", "ml-1m", "--only", "DNS:5",
              "--weight-decays", "0.001", "--no-progress"]
    curves = tmp_path / "curves.csv"
    long = [*common, "--epochs", "4", "--eval-every", "2", "--curves", str(curves),
            "--results", str(tmp_path / "long.csv")]
    assert rep.main(long) == 0
    short = [*common, "--epochs", "2", "--results", str(tmp_path / "short.csv")]
    assert rep.main(short) == 0
    frame = R.read_results(curves)
    assert list(frame["epochs"]) == [2, 4]
    metrics = list(R.METRIC_COLUMNS)
    at = {e: frame[frame["epochs"] == e][metrics].to_numpy(float)[0] for e in (2, 4)}
    assert np.array_equal(at[2], R.read_results(tmp_path / "short.csv")[metrics].to_numpy(float)[0])
    assert np.array_equal(at[4], R.read_results(tmp_path / "long.csv")[metrics].to_numpy(float)[0])
    assert not np.array_equal(at[2], at[4])  # the curve moved: the check above can fail
    Path(tmp_path / "long.csv").unlink()  # the run again (its row was lost): same curve rows
    assert rep.main(long) == 0
    assert len(R.read_results(curves)) == 2


# --------------------------------------------------------------------------------------
# Guideline 2 per weight decay, the figure's data, JSON import
# --------------------------------------------------------------------------------------
def test_guideline2_picks_per_weight_decay_and_figure_data(tmp_path):
    """Guideline 2 compares hardness at one weight decay: a grid point run at an extra weight
    decay must not take part in another weight decay's picks, nor in the figure's data; the
    figure averages each configuration over its seeds."""
    rep = _script()
    from figures import tables

    rng = np.random.default_rng(0)
    path = tmp_path / "gowalla_mf.csv"

    def add(kind, label, m, rho, wd, seed=0, value=None):
        row = _summary(kind, label, m, rho, 0.0, weight_decay=wd, seed=seed)
        row.update({f"{metric}@{k}": float(rng.uniform(0.05, 0.3)) if value is None else value
                    for metric in ("recall", "ndcg") for k in rep.KS})
        R.append_result(path, R.result_row(row, dataset="gowalla", revision="abcdef1234"))
        return row

    dns = [add("dns", f"DNS({m},200)", m, 1.0, 0.01) for m in rep.M_GRID]
    for rho in rep.RHO_GRID:
        add("softmax_v", f"Softmax-v({rho:g},200)", 1, rho, 0.01)
    add("dns", "DNS(5,200)", 5, 1.0, 0.001, value=0.9)  # beats every wd=0.01 point
    add("dns", "DNS(5,200)", 5, 1.0, 0.01, seed=1, value=0.5)
    frame = R.read_results(path)
    block = tables.guideline2(frame, "gowalla")
    for metric in ("recall", "ndcg"):
        picks = []
        for k in rep.KS:
            vals = {r["m"]: r[f"{metric}@{k}"] for r in dns}
            vals[5] = (vals[5] + 0.5) / 2  # DNS(5) at wd 0.01 has two seeds: their mean
            picks.append(max(vals, key=vals.get))
        assert (f"| 0.01 | 200 | DNS | {tables.METRIC_NAMES[metric]} | M = {picks[0]} | {picks[1]} | "
                f"{picks[2]} | 7 |") in block
    assert "| 0.001 |" not in block  # a single grid point: no Guideline 2 row
    rows = tables.select_runs(frame, "gowalla", "mf").to_dict("records")
    assert rep.figure_weight_decay(rows) == 0.01
    fig = rep.hardness_frame(rows, 0.01)
    assert len(fig) == (len(rep.M_GRID) + len(rep.RHO_GRID)) * len(rep.KS)
    five = fig[(fig["grid"] == "M") & (fig["value"] == 5) & (fig["k"] == 50)]
    assert five["recall"].item() == pytest.approx((dns[4]["recall@50"] + 0.5) / 2)
    assert five["seeds"].item() == 2


def test_import_json_runs_appends_each_run_once(tmp_path):
    """Runs saved as JSON by earlier versions of the script become results rows recording the
    revision that produced them; importing twice adds nothing."""
    rep = _script()
    folder = tmp_path / "json"
    folder.mkdir()
    base = {**_summary("dns", "DNS(5,200)", 5, 1.0, 0.29), "history": []}
    (folder / "a.json").write_text(json.dumps(base))
    (folder / "b.json").write_text(json.dumps({**base, "sampler": "uniform", "m": 1, "n": 1,
                                               "sampler_label": "Uniform(1)"}))
    csv = tmp_path / "r.csv"
    assert rep.import_json_runs(folder, csv, "e41b197") == 2
    assert rep.import_json_runs(folder, csv, "e41b197") == 0
    rows = R.read_results(csv)
    assert list(rows["git_revision"]) == ["e41b197", "e41b197"]
    assert rows.loc[rows["sampler"] == "dns", "recall@50"].item() == 0.29
    with pytest.raises(SystemExit):  # --import-json needs the revision that ran them
        rep.main(["--import-json", str(folder), "--results", str(csv)])
