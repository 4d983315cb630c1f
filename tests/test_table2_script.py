"""benchmarks/table2_reproduction.py: grid points, the quick run on Gowalla (results CSV,
resume, figure), Guideline 2 picks per weight decay, and importing earlier JSON runs."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.results import read_results

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------------------
# The Table 2 script, short version (the full grid is opt-in: hours)
# --------------------------------------------------------------------------------------
def test_table2_script_quick_run_resumes_and_draws(gowalla_path, tmp_path):
    """--quick: 1 epoch of BPR, DNS(1, 200), DNS(5, 200) and Softmax-v(1, 200) on Gowalla;
    one results row per configuration, a report next to the paper's numbers, the Figs. 8-11
    plot; a rerun computes nothing (every configuration is skipped)."""
    script = REPO / "benchmarks" / "table2_reproduction.py"
    results = tmp_path / "results" / "gowalla_mf.csv"
    cmd = [sys.executable, str(script), "--quick", "--no-progress", "--data", str(gowalla_path),
           "--results", str(results), "--figure", str(tmp_path / "fig8_gowalla.png")]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    rows = read_results(results)
    assert sorted(rows["sampler_label"]) == ["DNS(1,200)", "DNS(5,200)", "Softmax-v(1,200)",
                                             "Uniform(1)"]
    assert (rows["epochs"] == 1).all() and (rows["seed"] == 0).all()
    assert (rows["dataset"] == "gowalla").all() and (rows["model"] == "mf").all()
    assert rows["git_revision"].str.len().min() >= 7
    assert "0.2989" in first.stdout and "Guideline 2 on real data" in first.stdout
    assert (tmp_path / "fig8_gowalla.png").stat().st_size > 5000
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stdout.count("done, skipped") == 4, again.stdout
    assert read_results(results).equals(rows)


def test_import_json_runs_appends_each_run_once(tmp_path):
    """Runs saved as JSON by earlier versions of the script become results rows recording the
    revision that produced them; importing twice adds nothing."""
    t2 = _table2_script()
    folder = tmp_path / "json"
    folder.mkdir()
    base = {"sampler": "dns", "sampler_label": "DNS(5,200)", "m": 5, "n": 200, "rho": 1.0,
            "ddof": 0, "pool": "negatives", "weight_decay": 0.001, "seed": 0, "epochs": 200,
            "dim": 32, "batch_size": 4096, "lr": 0.001, "seconds_per_epoch": 2.2,
            "eval_seconds": 6.1, "recall@5": 0.08, "recall@20": 0.17, "recall@50": 0.29,
            "ndcg@5": 0.12, "ndcg@20": 0.14, "ndcg@50": 0.18, "history": []}
    (folder / "a.json").write_text(json.dumps(base))
    (folder / "b.json").write_text(json.dumps({**base, "sampler": "uniform", "m": 1, "n": 1,
                                               "sampler_label": "Uniform(1)"}))
    csv = tmp_path / "r.csv"
    assert t2.import_json_runs(folder, csv, "e41b197") == 2
    assert t2.import_json_runs(folder, csv, "e41b197") == 0
    rows = read_results(csv)
    assert list(rows["git_revision"]) == ["e41b197", "e41b197"]
    assert rows.loc[rows["sampler"] == "dns", "recall@50"].item() == 0.29
    with pytest.raises(SystemExit):  # --import-json needs the revision that ran them
        t2.main(["--import-json", str(folder), "--results", str(csv)])


def _table2_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "table2_reproduction", REPO / "benchmarks" / "table2_reproduction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table2_script_only_selects_grid_points_and_refuses_others():
    t2 = _table2_script()
    only = [t2.parse_only(text) for text in ("Softmax-v:0.01", "DNS:5.0", "BPR")]
    labels = [s.label() for _, s in t2.configurations(False, only)]
    assert labels == ["Uniform(1)", "DNS(5,200)", "Softmax-v(0.01,200)"]  # the grid's run order
    assert len(list(t2.configurations(False))) == len(t2.M_GRID) + len(t2.RHO_GRID) + 1
    for bad in ("DNS:7", "DNS:x", "DNS", "BPR:1", "softmax:1", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="not a point of the grid"):
            t2.parse_only(bad)
    with pytest.raises(SystemExit):  # argparse reports it as a usage error naming --only
        t2.main(["--only", "DNS:7", "--report-only"])


def test_table2_report_picks_guideline2_per_weight_decay(capsys):
    """Guideline 2 compares hardness at one weight decay: a grid point run at an extra weight
    decay must not take part in another weight decay's picks, nor in the figure's data."""
    t2 = _table2_script()
    rng = np.random.default_rng(0)

    def row(family, m, rho, wd):
        label = {"BPR": "Uniform(1)", "DNS": f"DNS({m},200)", "Softmax-v": f"Softmax-v({rho:g},200)"}
        r = {"family": family, "m": m, "rho": rho, "weight_decay": wd, "seed": 0,
             "sampler_label": label[family], "seconds_per_epoch": 1.0}
        r.update({f"{metric}@{k}": float(rng.uniform(0.05, 0.3))
                  for metric in ("recall", "ndcg") for k in t2.KS})
        return r

    rows = ([row("BPR", 1, 0.0, 0.01)] + [row("DNS", m, 0.0, 0.01) for m in t2.M_GRID]
            + [row("Softmax-v", 1, rho, 0.01) for rho in t2.RHO_GRID])
    extra = row("DNS", 5, 0.0, 0.001)
    for k in t2.KS:  # the extra point beats every wd=0.01 point at every K
        extra[f"recall@{k}"] = extra[f"ndcg@{k}"] = 0.9
    t2.report(rows + [extra], 200)
    out = capsys.readouterr().out
    for metric in ("recall", "ndcg"):
        dns = [r for r in rows if r["family"] == "DNS"]
        picks = ", ".join(f"{max(dns, key=lambda r: r[f'{metric}@{k}'])['m']:g}" for k in t2.KS)
        assert f"wd=0.01    {metric:<6} DNS       m   at K = 5, 20, 50: {picks}  (7 grid" in out
        assert f"wd=0.001   {metric:<6} DNS       m   at K = 5, 20, 50: 5, 5, 5  (1 grid" in out
    assert "DNS(5,200) wd=0.001" in out.split("Table 2")[1]  # Table 2 takes the tuned best
    assert t2.figure_weight_decay(rows + [extra]) == 0.01
    frame = t2.hardness_frame(rows + [extra], 0.01)
    assert len(frame) == (len(t2.M_GRID) + len(t2.RHO_GRID)) * len(t2.KS)
