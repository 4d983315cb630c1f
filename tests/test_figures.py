"""Every figure draws from its data; the figure data agree with independent computations."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from figures.catalog import FIGURES, draw_all
from figures import data as figure_data


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
