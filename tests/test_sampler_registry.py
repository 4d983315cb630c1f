"""training.sampling's registry: the dispatch, the hardness metadata, the CLI and the Sampler API.

The hardness test is statistical (fixed seeds); its margin is stated where it is used.
"""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from simulations.rng import chunk_states
from theory import estimators as E
from training import cli
from training import sampling as S

# One sampler of each registered kind (and the DNS variants), with pools they accept.
EXAMPLES = [S.uniform(7), S.dns(3, 12), S.dns(3, 12, reduction="sum"),
            S.dns(3, 12, variant="pick_one"), S.softmax_v(0.7, 12), S.softmax_v(2.0, 12, ddof=1),
            S.score_softmax(0.4, 12)]


def test_every_registered_sampler_has_an_example_here():
    assert {s.kind for s in EXAMPLES} == set(S.SAMPLERS)


@pytest.mark.parametrize("sampler", EXAMPLES, ids=lambda s: s.label() + s.reduction)
def test_dispatch_runs_the_registered_kernel(sampler):
    """pool_loss_weights' branch for the spec's kernel_id calls the spec's own kernel: the
    same loss, used positions, weights and derivatives as calling the kernel directly (a
    missing or crossed branch gives another sampler's weights or a NaN loss)."""
    rng = np.random.default_rng(3)
    scores = rng.normal(size=sampler.n)
    out = []
    for call in (S.pool_loss_weights, None):
        scratch = S.new_scratch(sampler.n)
        state = chunk_states(5, 1)[0]
        if call is None:
            res = sampler.spec.kernel(sampler.kernel.params, 0.3, scores, state, scratch)
        else:
            res = call(sampler.kernel, 0.3, scores, state, scratch)
        n_used = res[1]
        out.append((res[0], n_used, scratch.sel[:n_used].copy(), scratch.weights[:n_used].copy(),
                    scratch.dls[:n_used].copy()))
    (l1, n1, s1, w1, d1), (l2, n2, s2, w2, d2) = out
    assert np.isfinite(l1) and l1 == l2 and n1 == n2 == sampler.n_used(sampler.n)
    for a, b in ((s1, s2), (w1, w2), (d1, d2)):
        np.testing.assert_array_equal(a, b)


def test_unknown_kernel_id_gives_nan_not_weights():
    scratch = S.new_scratch(4)
    loss, n_used = S.pool_loss_weights(S.KernelSampler(99, np.zeros(1)), 0.0, np.zeros(4),
                                       chunk_states(0, 1)[0], scratch)
    assert np.isnan(loss) and n_used == 0


def _top_mass(sampler, scores, reps=6000):
    """Expected weight on the top 10% of ranks, numpy reference of the sampling law.

    Pools of sampler.n uniform draws with replacement over ``scores``; the weights of each
    pool from plain numpy (theory.estimators' numpy functions), independent of the kernels.
    """
    rng = np.random.default_rng(11)
    n_neg = scores.size
    top = np.argsort(-scores, kind="stable")[: n_neg // 10]
    is_top = np.zeros(n_neg, bool)
    is_top[top] = True
    mass = np.empty(reps)
    for r in range(reps):
        idx = rng.integers(0, n_neg, sampler.n)
        s = scores[idx]
        losses = E.bpr_loss(0.0 - s)
        if sampler.kind == "dns":
            w = np.zeros(s.size)
            w[np.argsort(-s, kind="stable")[: sampler.m]] = 1.0 / sampler.m
        elif sampler.kind == "softmax_v":
            w = E.softmax_weights(losses, E.softmax_v_tau(losses, sampler.rho, ddof=sampler.ddof))
        elif sampler.kind == "score_softmax":
            w = E.score_softmax_probabilities(s, sampler.tau)
        else:
            w = np.full(s.size, 1.0 / s.size)
        mass[r] = w[is_top[idx]].sum()
    return mass.mean(), mass.std(ddof=1) / np.sqrt(reps)  # mean and its standard error


# (kind, parameter, easier value, harder value according to the paper / the definitions)
HARDNESS_CASES = [("dns", "m", 8, 2), ("dns", "n", 10, 40), ("softmax_v", "rho", 0.05, 3.0),
                  ("softmax_v", "n", 10, 40), ("score_softmax", "tau", 2.0, 0.2),
                  ("score_softmax", "n", 10, 40)]


@pytest.mark.parametrize("kind,param,easier,harder", HARDNESS_CASES)
def test_registered_hardness_direction_matches_the_sampling_law(kind, param, easier, harder):
    """SAMPLERS[kind].hardness says which way a knob makes the sampler harder; the harder
    value must put more weight on the top 10% of negatives (numpy reference of the law),
    by more than 5 standard errors of the difference (taken as for independent estimates;
    both use the same pools, which only makes the true error smaller)."""
    base = {"dns": dict(m=4, n=20), "softmax_v": dict(rho=1.0, n=20),
            "score_softmax": dict(tau=1.0, n=20)}[kind]
    scores = np.random.default_rng(0).normal(size=200)
    masses = {}
    for value in (easier, harder):
        opts = dict(base, **{param: value})
        masses[value] = _top_mass(S.Sampler(kind, opts.pop("n"), **opts), scores)
    direction = S.hardness_direction(kind, param)
    assert direction == (1 if harder > easier else -1)
    (m_hard, se_hard), (m_easy, se_easy) = masses[harder], masses[easier]
    assert m_hard - m_easy > 5 * np.hypot(se_hard, se_easy)


def test_hardness_direction_rejects_non_knobs():
    with pytest.raises(ValueError, match="param"):
        S.hardness_direction("dns", "reduction")
    with pytest.raises(ValueError, match="kind"):
        S.hardness_direction("bogus", "m")
    assert S.SAMPLERS["uniform"].hardness == ()


def test_cli_choices_and_options_come_from_the_registry(capsys):
    parser = cli._parser()
    sampler_action = next(a for a in parser._actions if a.dest == "sampler")
    assert tuple(sampler_action.choices) == tuple(S.SAMPLERS)
    options = {a.dest for a in parser._actions}
    for spec in S.SAMPLERS.values():
        for param in spec.params:
            assert param.name in options
    with pytest.raises(SystemExit) as exc:  # an option of another sampler is refused
        cli.main(["--data", "planted", "--sampler", "dns", "--rho", "2", "--json"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--rho" in err and "--m" in err  # names the option and what dns takes


def test_sampler_attributes_equality_pickle_and_columns():
    s = S.dns(5, 50, reduction="sum")
    assert (s.m, s.n, s.reduction, s.variant, s.pool) == (5, 50, "sum", "weighted", "negatives")
    # parameters of other samplers read as their defaults (the results tables' values)
    assert (s.rho, s.tau, s.ddof) == (1.0, 1.0, 0)
    assert S.uniform().to_dict() == {"kind": "uniform", "n": 1, "pool": "negatives", "m": 1,
                                     "reduction": "mean", "variant": "weighted", "rho": 1.0,
                                     "ddof": 0, "tau": 1.0}
    assert s == S.Sampler("dns", 50, m=5, reduction="sum") and s != S.dns(5, 50)
    assert hash(s) == hash(S.Sampler("dns", 50, m=5, reduction="sum"))
    assert pickle.loads(pickle.dumps(s)) == s
    with pytest.raises(AttributeError):
        s.m = 3
    with pytest.raises(AttributeError):
        _ = s.bogus
    # a parameter of another sampler is accepted at its default only (the old full-spec calls)
    assert S.Sampler("uniform", 1, m=1, rho=1.0, ddof=0) == S.uniform()
    with pytest.raises(ValueError, match="rho"):
        S.Sampler("uniform", rho=2.0)
    with pytest.raises(ValueError, match="m"):
        S.dns(3, 10).check_pool(2)


def test_register_sampler_refuses_clashes():
    spec = S.SAMPLERS["dns"]
    with pytest.raises(ValueError, match="name"):
        S.register_sampler(spec)
    from dataclasses import replace
    with pytest.raises(ValueError, match="kernel_id"):
        S.register_sampler(replace(spec, name="dns2"))
    clash = S.SamplerParam("m", 7, spec.params[0].check, "other default")
    with pytest.raises(ValueError, match="'m'"):
        S.register_sampler(replace(spec, name="dns3", kernel_id=999, params=(clash,)))
    assert "dns2" not in S.SAMPLERS and "dns3" not in S.SAMPLERS
