"""Every paper check can fail: each declared wrong version of a function it verifies, patched
in at every binding, makes it report FAIL (``passed`` False, or an exception, which
paper_checks reports as FAIL).

A check without a mutant fails the suite, and so does a metric, estimator or bound whose
NaN / one-NaN-row mutant no check catches.  The checks run at their reduced size; the Gowalla
checks D1-D4 are skipped when gowalla.mat is absent (they report SKIP there, never PASS).
"""
from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import checks
from checks import all_checks, run_check
from checks import compare as compare_module
from checks import mutants as X

CHECKS = all_checks()
PAIRS = [(c, m) for c in CHECKS for m in c.mutants]

#: The public metrics, estimators and bounds whose "nan" and "nan-row" mutants (the second
#: only where the function returns a batch) some check must declare and catch.
MUST_CATCH_NAN = {
    "theory.metrics": ("auc", "opauc", "opauc_curve", "tpauc", "llpauc", "precision_at_k",
                       "recall_at_k", "ndcg_at_k", "hit_rate_at_k"),
    "theory.estimators": ("bpr_loss", "pair_losses", "opauc_surrogate", "dns_objective", "cvar",
                          "kl_dro", "softmax_v_tau", "softmax_v_objective",
                          "dns_mn_rank_probabilities", "dns_mn_objective", "dns_mn_beta_mixture"),
    "theory.bounds": ("topk_bounds", "hit_bounds"),
}
#: Functions that never return a batch (one context / one loss vector): no "nan-row" mutant.
SCALAR_ONLY = {"theory.estimators.opauc_surrogate", "theory.estimators.dns_objective",
               "theory.estimators.dns_mn_objective", "theory.estimators.kl_dro"}


def test_every_check_declares_a_mutant_of_what_it_verifies():
    bare = [c.id for c in CHECKS if not c.mutants or not c.verifies]
    assert not bare, f"checks without a declared mutant: {bare}"
    for c in CHECKS:
        for target in c.verifies:
            X.resolve(target)  # the dotted name exists
        assert c.oracle, f"check {c.id} does not name its independent reference"


def test_nan_mutants_of_every_metric_estimator_and_bound_are_declared():
    declared = {(m.target, m.name) for _, m in PAIRS}
    missing = []
    for module, names in MUST_CATCH_NAN.items():
        for name in names:
            target = f"{module}.{name}"
            kinds = ("nan",) if target in SCALAR_ONLY else ("nan", "nan-row")
            missing += [f"{target}:{k}" for k in kinds
                        if (target, k) not in declared]
    assert not missing, f"no check declares these mutants: {missing}"


def test_patching_reaches_by_name_bindings():
    # checks.simulations binds topk_correlations by name; the patch must replace it there too.
    import checks.simulations as cs
    import simulations.correlation as sc

    original = sc.topk_correlations
    mutant = checks.Mutant("simulations.correlation.topk_correlations", "nan", X.nan())
    with X.patched(mutant) as wrong:
        assert sc.topk_correlations is wrong and cs.topk_correlations is wrong
    assert sc.topk_correlations is original and cs.topk_correlations is original


def test_generic_mutants_do_what_they_say():
    import numpy as np

    def f(x, k=2):
        return np.arange(4.0) * k

    assert np.isnan(X.nan()(f)(1)).all()
    row = X.nan_row()(f)(1)
    assert np.isnan(row).sum() == 1 and np.isnan(row[2])
    assert list(X.with_argument("k", X.plus(1))(f)(1)) == [0, 3, 6, 9]
    assert inspect.signature(X.nan()(f)) == inspect.signature(f)


def test_compare_fails_on_nan_or_inf_and_names_where():
    import numpy as np

    from checks.compare import Tally, compare, within, worst

    assert compare([1.0, 2.0], [1.0, 2.0 + 1e-13], atol=1e-12).ok
    gap = compare(np.array([[0.0, 1.0], [np.nan, 0.0]]), 0.0, atol=1.0, where="row")
    assert not gap.ok and gap.nonfinite and gap.at == "row(1, 0)"
    assert not compare(1.0, np.inf, atol=1.0).ok           # inf on the expected side too
    assert not compare(1.0, 1.0 + 1e-15).ok                 # zero tolerance demands equality
    g = compare([1.0, 1.1], [1.0, 1.0], rtol=0.05, where="x")
    assert not g.ok and g.at == "x[1]" and abs(g.worst - 0.1) < 1e-12
    assert within([0.5, 1.0], 0.0, 1.0).ok and not within([np.nan], 0.0, 1.0).ok
    assert not within([1.2], high=1.0, atol=0.1).ok and within([1.05], high=1.0, atol=0.1).ok
    # Merging keeps a NaN gap even after a larger finite one (max() would drop the NaN).
    merged = worst([compare(5.0, 0.0, atol=1.0), compare(np.nan, 0.0, atol=1.0, where="b")])
    assert merged.nonfinite and merged.at == "b"
    assert not worst([]).ok and not Tally().ok             # nothing compared is not a pass


def _data_absent(c):
    return c.id.startswith("D") and not (checks.data_dir() / "gowalla.mat").exists()


#: Checks whose unmutated run is too slow for this suite (D3 and D4 train three Gowalla models
#: each, minutes on 2 cores); their PASS is asserted by test_paper_checks' full run.
SLOW_BASELINE = {"D3", "D4"}
_BASELINE: dict = {}


@pytest.fixture(autouse=True)
def _reduced_sizes(monkeypatch, request):
    """The sizes of the mutation run: G2 on the M grid only (the models E4 trains too); the
    Gowalla checks D2 / D3 on 1 / 2,000 users (the D3 baseline is not run here, see
    SLOW_BASELINE)."""
    import checks.data
    import checks.training

    monkeypatch.setattr(checks.training, "G2_GRIDS", ("M",))
    slow = "D3" in request.node.name or "D4" in request.node.name
    monkeypatch.setattr(checks.data, "SUBSET_USERS", 2000 if slow else 1)


def _baseline(check_):
    """The unmutated verdict at the same settings, computed once: a FAIL under a mutant
    proves nothing if the check fails without it."""
    if check_.id not in _BASELINE:
        X.clear_caches()
        _BASELINE[check_.id] = run_check(check_, 0, False)
    return _BASELINE[check_.id]


@pytest.mark.parametrize("check_", [c for c in CHECKS if c.id not in SLOW_BASELINE],
                         ids=[c.id for c in CHECKS if c.id not in SLOW_BASELINE])
def test_unmutated_check_passes(check_):
    if _data_absent(check_):
        pytest.skip("gowalla.mat absent: the data checks report SKIP")
    measured, passed = _baseline(check_)
    assert passed is True, f"{check_.id} fails unmutated: {measured}"


@pytest.mark.parametrize("check_, mutant", PAIRS, ids=[f"{c.id}-{m.label}" for c, m in PAIRS])
def test_mutant_makes_the_check_fail(check_, mutant, monkeypatch):
    if _data_absent(check_):
        pytest.skip("gowalla.mat absent: the data checks report SKIP")
    if check_.id not in SLOW_BASELINE:
        measured, passed = _baseline(check_)
        assert passed is True, f"{check_.id} fails unmutated, so its mutants prove nothing: {measured}"
    # Stop a check at its first failed comparison (a FAIL either way): keeps the suite fast.
    monkeypatch.setattr(compare_module, "FAIL_FAST", True)
    with X.patched(mutant):
        measured, passed = run_check(check_, 0, False)
    assert passed is False, f"{check_.id} still reports {passed} under {mutant.label}: {measured}"


# --------------------------------------------------------------------------------------
# The test suite's main oracle tests fail too under NaN output (run in a subprocess with
# tests/mutation_plugin.py patching the mutant in at every binding, test modules included).
# --------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
ORACLE_TESTS = {
    ("theory.metrics.auc", "nan-row"): ["test_metrics.py::test_auc_equals_pair_count_and_sklearn"],
    ("theory.metrics.opauc", "nan"): ["test_metrics.py::test_opauc_integer_cut_equals_eq8_pair_count"],
    ("theory.metrics.opauc_curve", "nan-row"): [
        "test_metrics.py::test_opauc_fractional_equals_exact_roc_area_and_sklearn_mcclish"],
    ("theory.metrics.tpauc", "nan"): ["test_metrics.py::test_tpauc_llpauc_exact_segment_integration"],
    ("theory.metrics.ndcg_at_k", "nan"): ["test_metrics.py::test_ndcg_equals_sklearn_ndcg_score_with_ties"],
    ("theory.estimators.cvar", "nan-value"): [
        "test_estimators.py::test_lemma1_cvar_equals_dro_primal_linear_program"],
    ("theory.estimators.kl_dro", "nan-value"): [
        "test_estimators.py::test_theorem2_kl_value_at_least_cvar_value"],
    ("theory.estimators.dns_mn_rank_probabilities", "uniform-law"): [
        "test_estimators.py::test_dns_mn_law_against_scipy_distributions"],
    ("theory.bounds.topk_bounds", "nan"): [
        "test_bounds.py::test_theorem3_every_ranking_satisfies_the_bounds"],
}


def test_oracle_tests_fail_under_their_mutants():
    """One pytest subprocess runs every listed oracle test with its mutant patched in around
    the test's call; each must FAIL."""
    plan = {node: f"{target}|{kind}" for (target, kind), nodes in ORACLE_TESTS.items()
            for node in nodes}
    env = dict(os.environ, HNSLAB_MUTANTS="\n".join(f"tests/{n}={s}" for n, s in plan.items()),
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "mutation_plugin",
                           "-p", "no:cacheprovider", "-p", "no:randomly",
                           *[f"tests/{n}" for n in plan]],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    failed = set(re.findall(r"^FAILED tests/([^\s\[]+)", proc.stdout, re.MULTILINE))
    survivors = [f"{n} ({plan[n]})" for n in plan if n not in failed]
    assert not survivors, (f"oracle tests still passing under their mutant: {survivors}\n"
                           + proc.stdout[-3000:] + proc.stderr[-2000:])
