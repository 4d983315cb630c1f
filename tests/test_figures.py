"""Every figure draws from its data; the figure data agree with independent computations;
importing or drawing a figure leaves the user's matplotlib state alone."""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from figures import data as figure_data
from figures.catalog import FIGURES, README_FIGURES, draw_all

REPO = Path(__file__).resolve().parents[1]


def test_every_figure_is_written_as_png_and_pdf(tmp_path):
    drawn = draw_all(tmp_path / "data", tmp_path / "figs")
    assert [f.name for f, _ in drawn] == [f.name for f in FIGURES]
    for _, paths in drawn:
        assert sorted(p.suffix for p in paths) == [".pdf", ".png"]
        for p in paths:
            assert p.stat().st_size > 5000
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "data").glob("*.csv")}
    draw_all(tmp_path / "data", tmp_path / "figs")  # second call: data from the cache
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "data").glob("*.csv")} == stamps
    # Atomic writes: no temporary file left beside the outputs.
    assert not [p for p in tmp_path.rglob(".*")]


def test_readme_figures_are_one_palette_png_each(tmp_path):
    # The README figures at toy sizes (the real ones take minutes): same data functions,
    # plots and saving as `python -m figures --readme`.
    small = {"fig6_uniform": {"n_rankings": 300, "ks": (5, 20)},
             "score_models": {"mus": (0.0, 2.0), "n_rankings": 200, "spread": 1.0}}
    figures = [dataclasses.replace(f, data_kwargs=small[f.name]) for f in README_FIGURES]
    drawn = draw_all(tmp_path / "data", tmp_path / "docs", figures=figures)
    assert [(f.name, [p.name for p in paths]) for f, paths in drawn] == [
        ("fig6_uniform", ["fig6_uniform.png"]), ("score_models", ["score_models.png"])]
    for _, (path,) in drawn:
        with Image.open(path) as image:  # quantised: a palette image of at most 256 colours
            assert image.mode == "P" and len(image.getcolors(256)) <= 256
    data = figure_data.score_model_peaks(**small["score_models"])
    # spread = 1 appends the binormal model with mu varying per ranking (the last row).
    assert list(dict.fromkeys(zip(data.model, data.spread))) == [
        ("binormal", 0.0), ("student_t", 0.0), ("mixture", 0.0), ("binormal", 1.0)]


# Run in a fresh interpreter (an import done earlier in this process would hide a change made
# at import time).  Prints a JSON record of what changed in matplotlib's global state.
STATE_PROBE = r"""
import importlib, json, pkgutil, sys, tempfile
import matplotlib, matplotlib.colors, matplotlib.pyplot as plt

def state():
    return {"rc": matplotlib.rcParams.copy(), "backend": matplotlib.get_backend(auto_select=False),
            "k": matplotlib.colors.to_rgb("k"), "b": matplotlib.colors.to_rgb("b")}

def changes(before):
    now = state()
    rc = [k for k in before["rc"] if k != "backend" and matplotlib.rcParams[k] != before["rc"][k]]
    other = [k for k in ("backend", "k", "b") if now[k] != before[k]]
    return {"rc": rc, "other": other, "open_figures": plt.get_fignums(),
            "backend": now["backend"]}

before = state()
import figures
for info in pkgutil.iter_modules(figures.__path__):
    importlib.import_module(f"figures.{info.name}")
after_import = changes(before)

from figures import data, roc
from figures.catalog import FIGURES, draw
fig = roc.plot_roc_opauc(data.roc_example(seed=0))
grid_in_figure = fig.axes[0].xaxis.get_gridlines()[0].get_visible()
written = draw(FIGURES[0], data.roc_example(seed=0), tempfile.mkdtemp())
print(json.dumps({"import": after_import, "draw": changes(before),
                  "themed": grid_in_figure, "written": len(written)}))
"""


def _probe(script, env_update=None):
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env.update(env_update or {})
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_and_drawing_figures_leaves_matplotlib_state_alone():
    record = _probe(STATE_PROBE)
    unchanged = {"rc": [], "other": [], "open_figures": [], "backend": record["import"]["backend"]}
    assert record["import"] == unchanged
    assert record["draw"] == unchanged
    # ... while the figure itself was drawn in the house style (whitegrid: grid lines on;
    # matplotlib's default has none), and the catalog wrote its PNG and PDF.
    assert record["themed"] is True and record["written"] == 2


@pytest.mark.parametrize("user_backend, expected", [(None, "agg"), ("svg", "svg")])
def test_cli_selects_agg_only_when_the_user_chose_no_backend(user_backend, expected):
    script = ("import json, matplotlib\nfrom figures.style import use_agg_backend\n"
              "use_agg_backend()\nprint(json.dumps(matplotlib.get_backend(auto_select=False)))")
    got = _probe(script, {"MPLBACKEND": user_backend} if user_backend else None)
    assert got.lower() == expected


def test_equal_auc_pair_really_has_equal_auc():
    data = figure_data.equal_auc_pair(n_candidates=500, seed=1)
    aucs = []
    for _, part in data.groupby("ranking"):
        labels = np.array([c == "+" for c in part["labels"].iloc[0]])
        scores = -np.arange(labels.size)
        aucs.append(roc_auc_score(labels, scores))
    assert aucs[0] == pytest.approx(aucs[1], abs=1e-12)
    opaucs = data.groupby("ranking")["opauc"].first()
    assert opaucs["A"] > opaucs["B"]


def test_theorem3_envelope_counts_every_ranking_and_respects_bounds():
    from math import comb
    data = figure_data.theorem3_envelope(n_pos=4, n_neg=5, k=2)
    points = data[data["kind"] == "ranking"]
    assert points["count"].sum() == comb(9, 4)
    bound = data[data["kind"] == "bound"].sort_values("opauc")
    for row in points.itertuples():
        # the bounds are step functions of the OPAUC count: evaluate at the point's count
        at = bound[np.isclose(bound["opauc"], row.opauc)].iloc[0]
        assert at.recall_low - 1e-12 <= row.recall <= at.recall_high + 1e-12


def test_dns_laws_are_distributions_and_harder_settings_rise_faster():
    data = figure_data.dns_sampling_laws(n_neg=300, settings=((1, 20), (5, 20)))
    for _, part in data.groupby(["m", "n"]):
        assert part["probability"].sum() == pytest.approx(1.0, abs=1e-12)
    easy = data[(data.m == 5)]["cdf"].to_numpy()
    hard = data[(data.m == 1)]["cdf"].to_numpy()
    assert np.all(hard >= easy - 1e-12)
