"""The classroom notebooks (notebooks/*.py, marimo): they run, and show hnslab's numbers.

Each lesson is run in-process with ``app.run(defs=...)``, which replaces the cell that reads
the controls by chosen values (every lesson keeps its control values in one plain-variable
cell for this).  The numbers a lesson computes are then compared with

* direct calls of hnslab's functions with the same arguments (the notebook must not
  compute anything itself), and
* an independent computation written here (pair counting, sorting, scikit-learn, a grid
  search of a dual, numpy's corrcoef, a brute-force top-K of the trained model), so that a
  wrong wiring in a notebook (a swapped normalisation, beta = M / N instead of M / N-) fails.

and the displayed output is searched for the formatted numbers.  Bad control values must
give a callout, never an exception.  Finally every notebook runs as a script and through
``marimo export html`` (subprocesses, two at a time).
"""
from __future__ import annotations

import html
import importlib.util
import itertools
import math
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("marimo", reason="the notebooks need marimo: pip install -e '.[notebooks]'")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
LESSONS = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def load(name):
    """Import a lesson file as a module (its name starts with a digit) and return its app."""
    if str(NOTEBOOKS) not in sys.path:
        sys.path.insert(0, str(NOTEBOOKS))
    spec = importlib.util.spec_from_file_location(f"lesson_{name[:2]}", NOTEBOOKS / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def run(name, **controls):
    """Run a lesson with the given control values; (outputs, definitions, displayed HTML)."""
    outputs, defs = load(name).run(defs=controls or None)
    html = "\n".join(getattr(o, "text", "") for o in outputs if o is not None)
    return outputs, defs, html


def callouts(outputs):
    """The plain text of every callout in the outputs (also those nested in a stack)."""
    text = "\n".join(getattr(o, "text", "") for o in outputs if o is not None)
    found = []
    for raw in re.findall(r"<marimo-callout-output data-html='([^']*)'", text):
        # The attribute holds a JSON string of HTML, escaped once more for the attribute:
        # undo the attribute escaping, then the JSON \\uXXXX escapes, drop the tags, and
        # only then turn the text's entities (&lt;) back into characters.
        inner = html.unescape(raw)
        inner = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), inner)
        found.append(html.unescape(re.sub(r"<[^>]+>", "", inner)).strip('"'))
    return found


def fmt(x):
    return f"{x:.4f}"  # the lessons' number format (notebooks/_lesson.py, fmt)


def test_six_lessons_exist():
    assert len(LESSONS) >= 6, LESSONS


# --------------------------------------------------------------------------------------
# Lesson 1: ranking metrics on one ranking
# --------------------------------------------------------------------------------------
L1 = "01_ranking_metrics.py"


def brute_force_metrics(labels, beta, k):
    """Eqs. 6, 8 and Appendix C by counting, for a tie-free ranking given best first."""
    labels = np.asarray(labels, dtype=bool)
    pos = np.flatnonzero(labels)  # positions, 0 = best
    neg = np.flatnonzero(~labels)
    above = pos[:, None] < neg[None, :]  # positive i ranked above negative j
    n_pos, n_neg = pos.size, neg.size
    top = round(n_neg * beta)
    assert abs(top - n_neg * beta) < 1e-9, "choose beta with n_neg * beta an integer"
    hits = labels[:k].sum()
    dcg = sum(1 / math.log2(p + 2) for p in range(k) if labels[p])
    ideal = sum(1 / math.log2(p + 2) for p in range(min(n_pos, k)))
    return {"auc": above.mean(), "opauc_raw": above[:, :top].sum() / (n_pos * n_neg),
            "precision": hits / k, "recall": hits / n_pos, "ndcg": dcg / ideal}


@pytest.mark.parametrize("ranking, seed, beta, k", [
    ("++-+-+--+---+--------", 0, 0.2, 5),  # 15 negatives: n_neg * beta = 3
    ("-+--+---+-+----+--+--", 0, 0.4, 3),  # 6 of 15
    ("+-+-+-+-+-+-+-+-+-+-", 7, 0.1, 10),  # shuffled with seed 7; 1 of 10
])
def test_lesson1_numbers(ranking, seed, beta, k):
    from sklearn.metrics import roc_auc_score

    from theory.metrics import auc, ndcg_at_k, opauc, precision_at_k, recall_at_k

    outputs, defs, html = run(L1, ranking_text=ranking, shuffle_seed=seed, beta=beta, k=k)
    labels = defs["labels"]
    typed = np.array([c == "+" for c in ranking])
    expected_labels = np.random.default_rng(seed).permutation(typed) if seed else typed
    np.testing.assert_array_equal(labels, expected_labels)
    scores = -np.arange(labels.size, dtype=float)
    shown = defs["numbers"] | defs["topk_numbers"]
    # Direct calls of hnslab with the same arguments: exactly equal.
    direct = {"auc": auc(labels, scores), "opauc_raw": opauc(labels, scores, beta),
              "opauc_beta": opauc(labels, scores, beta, "beta"),
              "opauc_mcclish": opauc(labels, scores, beta, "mcclish"),
              "precision": precision_at_k(labels, scores, k),
              "recall": recall_at_k(labels, scores, k), "ndcg": ndcg_at_k(labels, scores, k)}
    assert shown == direct
    # Independent: counting pairs and hits; scikit-learn for McClish.  1e-12: rounding of
    # sums of at most a few hundred terms of size <= 1.
    oracle = brute_force_metrics(labels, beta, k)
    oracle["opauc_beta"] = oracle["opauc_raw"] / beta
    oracle["opauc_mcclish"] = roc_auc_score(labels, scores, max_fpr=beta)
    for key, value in oracle.items():
        assert shown[key] == pytest.approx(value, abs=1e-12), key
    for key, value in shown.items():
        assert fmt(value) in html, f"{key} = {fmt(value)} not displayed"
    assert not callouts(outputs)


def test_lesson1_fig3_pair_same_auc_different_opauc():
    from figures.data import equal_auc_pair
    from theory.metrics import opauc

    _, defs, html = run(L1, ranking_text="+-", shuffle_seed=0, beta=0.2, k=1)  # any ranking
    pair = defs["fig3_numbers"]
    assert pair["A"]["auc"] == pytest.approx(pair["B"]["auc"], abs=1e-12)
    assert pair["A"]["opauc_raw"] > pair["B"]["opauc_raw"]
    data = equal_auc_pair(n_pos=6, n_neg=20, beta=0.2, seed=0)
    for name, part in data.groupby("ranking"):
        labels = np.array([c == "+" for c in part["labels"].iloc[0]])
        value = opauc(labels, -np.arange(labels.size, dtype=float), 0.2)
        assert pair[name]["opauc_raw"] == value
        assert brute_force_metrics(labels, 0.2, 1)["opauc_raw"] == pytest.approx(value, abs=1e-12)
        assert fmt(value) in html


@pytest.mark.parametrize("ranking, k, words", [
    ("", 5, "empty"),
    ("   ", 5, "empty"),
    ("------", 3, "no positive"),
    ("+++", 2, "no negative"),
    ("+-x-", 2, "may only hold"),
    ("+--+-", 9, "larger than the ranking"),
])
def test_lesson1_bad_input_gives_a_callout(ranking, k, words):
    outputs, _, _ = run(L1, ranking_text=ranking, shuffle_seed=0, beta=0.3, k=k)
    found = callouts(outputs)
    assert len(found) == 1 and words in found[0], found


# --------------------------------------------------------------------------------------
# Lesson 2: OPAUC tracks Top-K (Fig. 6)
# --------------------------------------------------------------------------------------
L2 = "02_opauc_tracks_topk.py"


def test_lesson2_correlations():
    from simulations.correlation import peak_betas, ranking_sample, topk_correlations

    n_pos, n_neg, k, n_rankings = 50, 200, 5, 20_000
    _, defs, html = run(L2, n_pos=n_pos, n_neg=n_neg, k=k, n_rankings=n_rankings,
                        model_name="uniform", mu=1.0)
    table = defs["table"]
    direct = topk_correlations(n_pos, n_neg, n_rankings, ks=[k], metrics=("recall", "ndcg"),
                               seed=0)
    np.testing.assert_array_equal(table["r"].to_numpy(), direct["r"].to_numpy())
    peaks = peak_betas(direct)
    np.testing.assert_array_equal(defs["peaks"]["peak_r"].to_numpy(), peaks["peak_r"].to_numpy())
    # Independent: numpy's two-pass Pearson (corrcoef) on the per-ranking values of the same
    # draws (ranking_sample), against the notebook's streamed correlations: agree to 1e-10.
    sample = ranking_sample(n_pos, n_neg, n_rankings, ks=[k], metrics=("recall",), seed=0)
    recall_table = table[table["metric"] == "recall"]
    for b, beta in enumerate(sample.betas):
        x = sample.partial["opauc"][:, b]
        r = np.corrcoef(x, sample.topk["recall"][:, 0])[0, 1] if x.std() > 0 else np.nan
        got = recall_table.loc[np.isclose(recall_table["beta"], beta), "r"].iloc[0]
        assert (np.isnan(r) and np.isnan(got)) or got == pytest.approx(r, abs=1e-10), beta
    # The exact AUC correlation beside the simulated one: sqrt(3K(N-K)/(N^2-1)) for Recall;
    # the Pearson r of 20,000 rankings has standard error (1 - r^2)/sqrt(n) ~ 0.007: 5 SE.
    n = n_pos + n_neg
    assert defs["exact_auc_r"] == pytest.approx(math.sqrt(3 * k * (n - k) / (n * n - 1)), rel=1e-12)
    simulated = peaks.loc[peaks["metric"] == "recall", "r_auc"].iloc[0]
    assert abs(simulated - defs["exact_auc_r"]) < 5 * (1 - simulated**2) / math.sqrt(n_rankings)
    assert f"{defs['exact_auc_r']:.3f}" in html
    for _, row in peaks.iterrows():
        assert f"{row['peak_r']:.3f}" in html


def test_lesson2_score_model_and_bad_k():
    from simulations.correlation import topk_correlations
    from simulations.rankings import Binormal

    _, defs, _ = run(L2, n_pos=20, n_neg=100, k=5, n_rankings=2_000, model_name="binormal",
                     mu=1.5)
    direct = topk_correlations(20, 100, 2_000, ks=[5], metrics=("recall", "ndcg"),
                               model=Binormal(1.5, 1.5), seed=0)
    np.testing.assert_array_equal(defs["table"]["r"].to_numpy(), direct["r"].to_numpy())
    assert defs["exact_auc_r"] is None  # the exact value holds for uniform rankings only
    outputs, _, _ = run(L2, n_pos=20, n_neg=30, k=40, n_rankings=2_000, model_name="uniform",
                        mu=1.0)
    assert "larger than N−" in callouts(outputs)[0]


# --------------------------------------------------------------------------------------
# Lesson 3: Theorem 3
# --------------------------------------------------------------------------------------
L3 = "03_topk_bounds.py"


@pytest.mark.parametrize("n_pos, n_neg, k, count", [(6, 8, 3, 9), (4, 6, 2, 3), (5, 5, 5, 12)])
def test_lesson3_bounds(n_pos, n_neg, k, count):
    from theory.bounds import topk_bounds

    _, defs, html = run(L3, n_pos=n_pos, n_neg=n_neg, k=k, count=count)
    picked = count / (n_pos * n_neg)
    assert defs["picked"] == picked
    assert tuple(defs["bounds"]) == tuple(topk_bounds(picked, n_pos, n_neg, k))
    assert tuple(defs["tight"]) == tuple(topk_bounds(picked, n_pos, n_neg, k, tight=True))
    # Independent: Eq. 19 with math, and every ranking enumerated here.
    s = n_pos + k
    low = math.floor((s - math.sqrt(s * s - 4 * count)) / 2) / n_pos
    high = math.ceil(math.sqrt(count)) / n_pos
    assert (defs["bounds"].recall_low, defs["bounds"].recall_high) == pytest.approx((low, high))
    recalls = []
    for positions in itertools.combinations(range(n_pos + n_neg), n_pos):
        labels = np.zeros(n_pos + n_neg, dtype=bool)
        labels[list(positions)] = True
        negs = np.flatnonzero(~labels)[:k]  # the top K negatives (beta = K / N-)
        pairs = sum(int((np.flatnonzero(labels) < j).sum()) for j in negs)
        if pairs == count:
            recalls.append(labels[:k].sum() / n_pos)
    if recalls:
        assert defs["reached"] == pytest.approx((min(recalls), max(recalls)), abs=1e-12)
        assert low - 1e-12 <= min(recalls) and max(recalls) <= high + 1e-12
    else:
        assert defs["reached"] is None
    assert fmt(defs["bounds"].recall_low) in html and fmt(defs["bounds"].recall_high) in html


def test_lesson3_k_above_n_neg_gives_a_callout():
    outputs, defs, _ = run(L3, n_pos=3, n_neg=2, k=4, count=1)
    assert "larger than N−" in callouts(outputs)[0]
    assert "bounds" not in defs


# --------------------------------------------------------------------------------------
# Lesson 4: DNS is OPAUC
# --------------------------------------------------------------------------------------
L4 = "04_dns_is_opauc.py"


@pytest.mark.parametrize("n_neg, pos_score, seed, m, pool", [(100, 1.0, 0, 5, 50),
                                                              (37, -0.5, 3, 11, 20)])
def test_lesson4_dns_equals_opauc_surrogate(n_neg, pos_score, seed, m, pool):
    from theory.estimators import (
        cvar,
        dns_mn_objective,
        dns_mn_rank_probabilities,
        dns_objective,
        opauc_surrogate,
    )

    outputs, defs, html = run(L4, n_neg=n_neg, pos_score=pos_score, seed=seed, m=m, pool=pool)
    neg = np.random.default_rng(seed).standard_normal(n_neg)
    np.testing.assert_array_equal(defs["neg_scores"], neg)
    beta = m / n_neg  # Theorem 1's level
    assert defs["beta"] == beta
    assert defs["dns_loss"] == dns_objective([pos_score], neg, m)
    assert defs["surrogate"] == opauc_surrogate([pos_score], neg, beta)
    value, eta = cvar(defs["losses"], beta)
    assert (defs["cvar_value"], defs["eta"]) == (value, eta)
    # Independent: the mean loss of the M highest-scored negatives, and the CVaR dual
    # minimised over the loss values (its minimum is attained at one of them).  1e-12:
    # rounding of a mean of <= 100 losses of size ~1.
    losses = np.log1p(np.exp(-(pos_score - neg)))
    top_mean = np.sort(losses)[::-1][:m].mean()
    dual = min(t + np.maximum(losses - t, 0).sum() / (n_neg * beta) for t in losses)
    for shown in (defs["dns_loss"], defs["surrogate"], defs["cvar_value"]):
        assert shown == pytest.approx(top_mean, abs=1e-12)
    assert dual == pytest.approx(top_mean, abs=1e-12)
    assert defs["eta"] == pytest.approx(np.sort(losses)[::-1][m - 1], abs=1e-12)
    assert f"{defs['dns_loss']:.10f}" in html
    # DNS(M, N): exact law and objective from hnslab; the sampled law within Monte Carlo
    # error: each cumulative weight is a mean of 5,000 pools' shares in [0, 1], SE <= 0.5 /
    # sqrt(5000) = 0.007; 0.04 is over 5 SE.
    np.testing.assert_array_equal(defs["law_exact"], dns_mn_rank_probabilities(n_neg, m, pool))
    assert defs["dns_mn_loss"] == dns_mn_objective([pos_score], neg, m, pool)
    assert np.abs(np.cumsum(defs["law_exact"]) - np.cumsum(defs["law_sampled"])).max() < 0.04
    assert fmt(defs["dns_mn_loss"]) in html
    assert not callouts(outputs)


def test_lesson4_m_above_pool_gives_a_callout():
    outputs, defs, _ = run(L4, n_neg=100, pos_score=1.0, seed=0, m=30, pool=10)
    assert "needs M <= N" in callouts(outputs)[0]
    assert "dns_loss" in defs and "law_exact" not in defs  # Theorem 1 part still shown


# --------------------------------------------------------------------------------------
# Lesson 5: softmax sampling is KL-DRO
# --------------------------------------------------------------------------------------
L5 = "05_softmax_is_kl_dro.py"


@pytest.mark.parametrize("rho", [0.01, 1.0, 3.0, 10.0])
def test_lesson5_kl_dro(rho):
    from scipy.special import logsumexp

    from theory.estimators import cvar, kl_dro, softmax_v_objective, softmax_v_tau

    n, pos_score, seed = 200, 1.0, 0
    _, defs, html = run(L5, rho=rho, n=n, pos_score=pos_score, seed=seed)
    neg = np.random.default_rng(seed).standard_normal(n)
    losses = np.log1p(np.exp(-(pos_score - neg)))
    np.testing.assert_allclose(defs["losses"], losses, rtol=1e-13)
    value, lam, _ = kl_dro(defs["losses"], rho)
    assert (defs["kl_value"], defs["lam"]) == (value, lam)
    assert defs["tau"] == softmax_v_tau(defs["losses"], rho)
    assert defs["softmax_v_value"] == softmax_v_objective(defs["losses"], rho)
    assert defs["cvar_value"] == cvar(defs["losses"], math.exp(-rho))[0]
    # Independent: the KL dual (Eq. 21) minimised on a log grid of lambda, and Eq. 25 by
    # numpy.  The grid (4,000 points per decade) bounds the dual's excess by ~1e-6 relative.
    if rho >= math.log(n):
        assert defs["kl_value"] == losses.max()
    else:
        lams = np.geomspace(1e-4, 1e3, 28_000)
        dual = (lams * (logsumexp(losses[None, :] / lams[:, None], axis=1) - math.log(n)
                        + rho)).min()
        assert defs["kl_value"] == pytest.approx(dual, rel=1e-6)
    assert defs["tau"] == pytest.approx(math.sqrt(losses.var() / (2 * rho)), rel=1e-12)
    w = np.exp((losses - losses.max()) / defs["tau"])
    assert defs["softmax_v_value"] == pytest.approx((w * losses).sum() / w.sum(), rel=1e-12)
    # Theorem 2's ordering: mean <= CVaR(e^-rho) <= KL-DRO <= max.
    assert losses.mean() <= defs["cvar_value"] + 1e-12 <= defs["kl_value"] + 2e-12
    assert defs["kl_value"] <= losses.max() + 1e-12
    for key in ("kl_value", "cvar_value", "softmax_v_value"):
        assert fmt(defs[key]) in html


# --------------------------------------------------------------------------------------
# Lesson 6: train with hard negatives
# --------------------------------------------------------------------------------------
L6 = "06_train_hard_negatives.py"


def _trainer():
    from training.trainer import train_model

    return train_model


def test_lesson6_training_curves():
    from training import sampling as S
    from training.hardness import TRAIN_OPTIONS, planted_split

    specs = {"A": {"kind": "uniform", "m": 5, "n": 50, "rho": 1.0},
             "B": {"kind": "dns", "m": 5, "n": 50, "rho": 1.0}}
    epochs, k = 3, 20
    outputs, defs, html = run(L6, spec_a=specs["A"], spec_b=specs["B"], epochs=epochs, k=k,
                              run_request=True)
    train, test = planted_split(0)
    options = {key: v for key, v in TRAIN_OPTIONS.items() if key != "epochs"}
    for name, sampler in (("A", S.uniform(1)), ("B", S.dns(5, 50))):
        got_sampler, result, _ = defs["results"][name]
        assert got_sampler == sampler
        direct = _trainer()(train, test, sampler, epochs=epochs, ks=(k,), eval_every=1, seed=0,
                            handle_sigint=False, **options)
        for metric in ("recall", "ndcg"):
            np.testing.assert_array_equal(defs["curves"][name][metric],
                                          [h[f"{metric}@{k}"] for h in direct.history])
        # Independent: Recall@K of the trained model by numpy, training items masked,
        # averaged over users with test items.  1e-9: float32 factors, float64 scores.
        model = result.model
        users, items = (model.embeddings() if hasattr(model, "embeddings")
                        else (model.user_factors, model.item_factors))
        scores = np.asarray(users, dtype=np.float64) @ np.asarray(items, dtype=np.float64).T
        scores[train.toarray().astype(bool)] = -np.inf
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        truth = test.toarray().astype(bool)
        has = truth.sum(axis=1) > 0
        hits = np.take_along_axis(truth, top, axis=1).sum(axis=1)
        recall = (hits[has] / truth.sum(axis=1)[has]).mean()
        assert result.metrics[f"recall@{k}"] == pytest.approx(recall, abs=1e-9)
        assert fmt(result.metrics[f"recall@{k}"]) in html
    assert not callouts(outputs)


def test_lesson6_waits_for_the_button_and_refuses_m_above_n():
    outputs, defs, html = run(L6, spec_a={"kind": "uniform", "m": 5, "n": 50, "rho": 1.0},
                              spec_b={"kind": "dns", "m": 5, "n": 50, "rho": 1.0}, epochs=5,
                              k=20, run_request=False)
    assert "results" not in defs and "Press" in html
    outputs, defs, _ = run(L6, spec_a={"kind": "dns", "m": 60, "n": 50, "rho": 1.0},
                           spec_b={"kind": "uniform", "m": 5, "n": 50, "rho": 1.0}, epochs=5,
                           k=20, run_request=True)
    assert "needs M <= N" in callouts(outputs)[0]
    assert "results" not in defs


# --------------------------------------------------------------------------------------
# Every lesson runs headless: as a script and through `marimo export html`
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def headless_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("notebook_exports")
    # Run copies: marimo writes a session cache (__marimo__/) next to the notebook it runs.
    copies = tmp_path_factory.mktemp("notebooks")
    for path in NOTEBOOKS.glob("*.py"):
        shutil.copy(path, copies / path.name)
    env = dict(os.environ, MPLBACKEND="Agg")
    marimo = [sys.executable, "-m", "marimo"]

    def go(job):
        name, kind = job
        if kind == "script":
            cmd = [sys.executable, str(copies / name)]
        else:
            cmd = marimo + ["export", "html", str(copies / name), "-o",
                            str(out / name.replace(".py", ".html"))]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        return job, done

    jobs = [(name, kind) for name in LESSONS for kind in ("script", "export")]
    with ThreadPoolExecutor(max_workers=2) as pool:  # the CI machine has 2 cores
        return dict(pool.map(go, jobs)), out


@pytest.mark.parametrize("name", LESSONS)
@pytest.mark.parametrize("kind", ["script", "export"])
def test_lesson_runs_headless(headless_runs, name, kind):
    results, out = headless_runs
    done = results[(name, kind)]
    assert done.returncode == 0, f"{kind} of {name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert "Traceback" not in done.stderr
    if kind == "export":
        html = (out / name.replace(".py", ".html")).read_text()
        assert "<html" in html.lower() and len(html) > 10_000
