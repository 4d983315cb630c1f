"""Checks of the samplers and the trainer (paper Sections 3, 5 Fig. 7 and 6).

S*: sampling laws of training.sampling (Fig. 7); E*: the estimator gaps measured on the
trainer's own loss kernels (Theorems 1-2, DNS(M, N) as an estimator of OPAUC(M/N)) and
training on planted data; G2: Guideline 2 on planted data.  Every check draws from ``seed``;
``full=True`` uses more repeats / sizes.  Default sizes run in well under 30 s together once
the numba kernels are compiled.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import special, stats

from checks import check
from checks import mutants as X
from checks import oracles as O
from checks.compare import Tally, within
from theory import estimators as E
from training import hardness as H
from training import sampling as S
from training import trainer as T
from training.evaluation import evaluate_full_ranking
from training.models import MF
from training.planted import planted_dataset

_S = "training.sampling."
_BLG = "training.trainer.batch_loss_and_grad"
_EV = "training.evaluation.evaluate_full_ranking"


def _rng(seed, salt):
    return np.random.default_rng([int(seed), salt])


def _model(rng, n_users, n_items, dim=8, scale=0.5):
    return MF((rng.standard_normal((n_users, dim)) * scale).astype(np.float32),
                     (rng.standard_normal((n_items, dim)) * scale).astype(np.float32))


# --------------------------------------------------------------------------------------
# Sampling laws (Fig. 7)
# --------------------------------------------------------------------------------------
@check("S1", "Alg. 1, Fig. 7",
       "DNS(M,N) sampler's empirical law over negative ranks = the exact order-statistics law",
       oracle="the binomial / hypergeometric order-statistics law (checks.oracles.dns_mn_law): "
       "chi-square for pick-one, cumulative z-scores for the weighted variant",
       verifies=(_S + "dns", _S + "empirical_rank_distribution"),
       mutants=[(_S + "dns", "m+1", X.with_argument("m", X.plus(1))),
                (_S + "empirical_rank_distribution", "nan", X.nan()),
                (_S + "empirical_rank_distribution", "nan-row", X.nan_row())])
def _dns_law(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 101)
    reps = 200_000 if full else 40_000
    n_neg = 200
    scores = rng.normal(size=n_neg)
    tally, p_values, z_max = Tally(), [], []
    for m, n, replace in [(1, 10, True), (5, 50, True), (3, 30, False), (10, 200, True)]:
        exact = O.dns_mn_law(n_neg, m, n, replace)
        pick = S.empirical_rank_distribution(S.dns(m, n, variant="pick_one"), scores,
                                             n_repeats=reps, seed=int(rng.integers(2**31)),
                                             replace=replace)
        counts = np.round(pick * reps)
        keep = exact * reps >= 5
        obs = np.r_[counts[keep], counts[~keep].sum()]
        exp = np.r_[exact[keep], exact[~keep].sum()] * reps
        if exp[-1] == 0:
            obs, exp = obs[:-1], exp[:-1]
        p_value = stats.chisquare(obs, exp).pvalue
        # Four laws tested: a correct sampler fails p > 1e-4 at the rate 4e-4.
        tally.within(p_value, low=1e-4, where=f"pick-one chi-square p (M,N)=({m},{n})")
        p_values.append(p_value)
        weighted = S.empirical_rank_distribution(S.dns(m, n), scores, n_repeats=reps,
                                                 seed=int(rng.integers(2**31)), replace=replace)
        F, F_hat = np.cumsum(exact), np.cumsum(weighted)
        ok = np.minimum(F, 1 - F) * reps >= 10
        z = np.abs(F_hat - F)[ok] / np.sqrt(np.clip(F * (1 - F), 0, None) / reps)[ok]
        # Binomial SE of each cumulative frequency; 4.5 SE over ~200 correlated ranks.
        tally.within(z, high=4.5, where=f"weighted cumulative z (M,N)=({m},{n}) rank")
        z_max.append(np.max(z, initial=0.0))
    passed = tally.ok
    return (f"pick-one chi-square min p = {np.min(p_values):.3f}; weighted cumulative max |z| = "
            f"{np.max(z_max):.2f} (4 (M,N) cases, {reps} repeats)"), passed


def _top_mass(sampler, scores, q, reps, seed, pos_score=1.0):
    law = S.empirical_rank_distribution(sampler, scores, pos_score, n_repeats=reps, seed=seed)
    return float(law[: int(q * scores.size)].sum())


@check("S2", "Fig. 7",
       "harder = more mass on the top ranks: smaller M, larger N (DNS), larger rho (Softmax-v); "
       "WEAK: orderings with a 0.04 margin, they detect a reversed hardness parameter or NaN, "
       "not a wrong amount of mass (S1 tests the DNS law exactly)",
       oracle="none beyond the orderings (Monte Carlo top-rank mass)",
       verifies=(_S + "score_softmax", _S + "softmax_v", _S + "empirical_rank_distribution"),
       mutants=[(_S + "score_softmax", "tau -> 1/tau", X.with_argument("tau", lambda v: 1 / v)),
                (_S + "softmax_v", "rho -> 1/rho", X.with_argument("rho", lambda v: 1 / v)),
                (_S + "empirical_rank_distribution", "nan", X.nan())])
def _hardness_orderings(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 102)
    reps = 50_000 if full else 10_000
    scores = rng.normal(size=400)
    curves = {
        "M=25,5,1 (N=50)": [_top_mass(S.dns(m, 50), scores, 0.1, reps, seed) for m in (25, 5, 1)],
        "N=10,40,160 (M=4)": [_top_mass(S.dns(4, n), scores, 0.05, reps, seed)
                              for n in (10, 40, 160)],
        "rho=0.01,1,3 (N=50)": [_top_mass(S.softmax_v(r, 50), scores, 0.1, reps, seed)
                                for r in (0.01, 1.0, 3.0)],
        "tau=2,0.5,0.1 (N=50)": [_top_mass(S.score_softmax(t, 50), scores, 0.1, reps, seed)
                                 for t in (2.0, 0.5, 0.1)],
    }
    tally = Tally()
    for name, c in curves.items():
        # 10,000 repeats: SE of a mass <= 0.005, so the 0.04 margins are > 8 SE.
        tally.within([c[1] - c[0], c[2] - c[1]], low=0.04, where=f"{name} step")
    passed = tally.ok
    text = "; ".join(f"{k}: " + ", ".join(f"{v:.2f}" for v in c) for k, c in curves.items())
    return f"top-rank mass {text}", passed


# --------------------------------------------------------------------------------------
# Estimator gaps on the trainer's kernels
# --------------------------------------------------------------------------------------
def _one_user(rng, n_items=300, n_pos=5):
    model = _model(rng, 1, n_items)
    pos = np.arange(n_pos)
    train = sp.csr_matrix((np.ones(n_pos, bool), (np.zeros(n_pos, int), pos)), shape=(1, n_items))
    s = model.user_factors[0].astype(float) @ model.item_factors.astype(float).T
    return model, train, s, pos, np.arange(n_pos, n_items)


@check("E1", "Thm 1, Eq. 14",
       "trainer's DNS loss, pool = all negatives, M = beta*n_neg, summed over positives = "
       "n_pos x OPAUC(beta) surrogate",
       oracle="sort the user's negatives, sum over positives of the mean numpy BPR loss of the "
       "top M (checks.oracles)",
       verifies=(_BLG, "training.sampling.dns"),
       mutants=[(_BLG, "nan-row", X.nan_row(field=0)), (_BLG, "nan", X.nan(field=0)),
                ("training.sampling.dns", "m+1", X.with_argument("m", X.plus(1)))])
def _e1(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 103)
    data = planted_dataset(100 if full else 30, 200, seed=int(rng.integers(2**31)),
                             density=0.05)
    model = _model(rng, *data.shape)
    tally, cases = Tally(), 0
    for u in range(data.shape[0]):
        n_neg = data.shape[1] - data.matrix[u].nnz
        ms = sorted({1, 3, n_neg // 10, n_neg // 2, n_neg})
        tally.add(theorem1_gap(model, data.matrix, u, ms))
        cases += len(ms)
    gap = tally.gap
    return f"{gap.text('max |diff|')} over {cases} (user, M) cases", gap.ok


def theorem1_gap(model, interactions, user, ms):
    """Theorem 1 on the trainer's own kernel, for one user of a frozen model: a
    :class:`checks.compare.Gap` over the given M between the DNS(M, n_neg) loss with the pool
    = all of the user's negatives, per positive, and the OPAUC(M/n_neg) surrogate computed
    independently (sort the negatives, mean numpy BPR loss of the top M)."""
    s = model.user_factors[user].astype(float) @ model.item_factors.astype(float).T
    pos = interactions[user].indices
    neg = np.setdiff1d(np.arange(s.size), pos)
    top = np.sort(s[neg])[::-1]
    tally = Tally()
    for m in ms:
        got = T.batch_loss_and_grad(model, np.full(pos.size, user), pos, S.dns(m, neg.size),
                                    pools=np.tile(neg, (pos.size, 1))).losses
        want = O.bpr(s[pos][:, None] - top[None, :m]).mean(axis=1)
        # Both in float64 from the same float32 factors; a mean of up to 40,988 losses:
        # 1e-9 relative is ~1e4 x the rounding of the sums.
        tally.compare(got, want, rtol=1e-9, where=f"user {user} M={m} positive")
    return tally.gap


@check("E2", "Alg. 1 vs Eq. 9",
       "mean DNS(M,N) loss (random pools) = exact DNS(M,N) objective, and its gap to the "
       "OPAUC(M/N) surrogate shrinks as N grows at fixed M/N",
       oracle="the DNS(M,N) objective from the order-statistics law (checks.oracles.dns_mn_law) "
       "for the exact value; a z-test of the trainer's Monte Carlo mean against it; the "
       "shrinking gap is a trend",
       verifies=(_BLG, "theory.estimators.dns_mn_objective", "training.sampling.dns"),
       mutants=[(_BLG, "nan-row", X.nan_row(field=0)),
                ("theory.estimators.dns_mn_objective", "nan", X.nan()),
                ("training.sampling.dns", "m+1", X.with_argument("m", X.plus(1)))])
def _e2(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 104)
    model, train, s, pos, neg = _one_user(rng)
    reps = 20_000 if full else 4_000
    surrogate = E.opauc_surrogate(s[pos], s[neg], 0.1, reduction="sum")
    gaps, zs, exact_gaps, tally = [], [], [], Tally()
    top = np.sort(s[neg])[::-1]
    grid = [(1, 10), (4, 40), (16, 160)] + ([(64, 640)] if full else [])
    for m, n in grid:
        res = T.batch_loss_and_grad(model, np.zeros(pos.size * reps, int), np.tile(pos, reps),
                                    S.dns(m, n), train=train, seed=int(rng.integers(2**31)))
        per_draw = res.losses.reshape(reps, pos.size).sum(axis=1)
        mc, se = per_draw.mean(), per_draw.std(ddof=1) / np.sqrt(reps)
        exact = E.dns_mn_objective(s[pos], s[neg], m, n, reduction="sum")
        oracle = float(np.sum(O.bpr(s[pos][:, None] - top[None, :]) @ O.dns_mn_law(top.size, m, n)))
        tally.compare(exact, oracle, rtol=1e-10, where=f"exact objective (M,N)=({m},{n})")
        zs.append((mc - oracle) / se)
        gaps.append(abs(mc - surrogate) / surrogate)
        exact_gaps.append(abs(exact - surrogate) / surrogate)
    # 3-4 z-scores of a correct trainer: |z| < 4 fails at the rate ~2e-4.
    tally.within(zs, -4.0, 4.0, where="MC vs exact z (M,N) case")
    tally.within(np.array(exact_gaps[:-1]) - 2 * np.array(exact_gaps[1:]), low=0.0,
                 where="exact gap halves as N grows, step")  # trend
    tally.within(np.diff(gaps), high=0.0, where="MC gap shrinks as N grows, step")  # trend
    passed = tally.ok
    text = ", ".join(f"N={n}: {g:.4f}" for (_, n), g in zip(grid, gaps))
    return (f"M/N = 0.1, rel. gap MC mean vs surrogate {text}; MC vs exact max |z| = "
            f"{np.max(np.abs(zs)):.2f}"), passed


@check("E3", "Thm 2, Eqs. 23-25",
       "trainer's Softmax-v loss (pool = all negatives) equals the Eq. 25 softmax with "
       "tau = sqrt(Var_0(L)/(2 rho)) (population variance, ddof 0), and approaches the exact "
       "KL-DRO value as rho -> 0",
       oracle="Eq. 25 in numpy (np.var with ddof 0, scipy softmax) for the value, at every rho; "
       "the approach to kl_dro is a trend",
       verifies=(_S + "softmax_v", _BLG, "theory.estimators.kl_dro",
                 "theory.estimators.softmax_v_objective", "theory.estimators.softmax_v_tau"),
       mutants=[(_S + "softmax_v", "ddof 0 -> 1", X.with_argument("ddof", lambda d: 1 - d)),
                ("theory.estimators.softmax_v_objective", "nan", X.nan()),
                ("theory.estimators.softmax_v_objective", "nan-row", X.nan_row()),
                ("theory.estimators.softmax_v_objective", "ddof 0 -> 1",
                 X.with_argument("ddof", lambda d: 1 - d)),
                ("theory.estimators.softmax_v_tau", "nan-row", X.nan_row()),
                (_BLG, "nan-row", X.nan_row(field=0)),
                ("theory.estimators.kl_dro", "nan", X.nan(field=0))])
def _e3(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 105)
    model, _, s, pos, neg = _one_user(rng)
    L = E.bpr_loss(s[pos][:, None] - s[neg][None, :])
    rhos = (1.0, 0.1, 0.01, 0.001, 1e-4) + ((1e-5,) if full else ())
    gaps, tally, eq25_tally = [], Tally(), Tally()
    for rho in rhos:
        got = T.batch_loss_and_grad(model, np.zeros(pos.size, int), pos,
                                    S.softmax_v(rho, neg.size),
                                    pools=np.tile(neg, (pos.size, 1))).losses
        tau = np.sqrt(L.var(axis=1, ddof=0) / (2 * rho))
        eq25 = np.sum(special.softmax(L / tau[:, None], axis=1) * L, axis=1)
        # Measured agreement ~1e-15; ddof 1 would move the loss by >= 2e-5 (relative) at
        # these rho: 1e-10 separates the two conventions by five orders of magnitude.
        tally.add(eq25_tally.compare(got, eq25, rtol=1e-10, where=f"Eq. 25 rho={rho:g} positive"))
        tally.add(eq25_tally.compare(E.softmax_v_objective(L, rho), eq25, rtol=1e-10,
                                     where=f"softmax_v_objective rho={rho:g} positive"))
        exact = np.array([E.kl_dro(row, rho)[0] for row in L])
        gaps.append(np.max(np.abs(got - exact) / (exact - L.mean(axis=1))))
    small = np.array(gaps[1:])
    # Trend: the gap to KL-DRO at least halves per decade of rho, and is < 2% at the end.
    tally.within(small[:-1] - 2 * small[1:], low=0.0, where="halving per decade, step")
    tally.within(gaps[-1], high=0.02, where="final gap")
    passed = tally.ok
    text = ", ".join(f"rho={r:g}: {g:.3f}" for r, g in zip(rhos, gaps))
    return (f"vs Eq. 25 with ddof 0: {eq25_tally.gap.text()}; max relative gap to KL-DRO of the "
            f"excess over the mean loss: {text}"), passed


# --------------------------------------------------------------------------------------
# Training on planted data
# --------------------------------------------------------------------------------------
N_POOL = 50  # pool size of the planted DNS(M, N) runs (training.hardness.GRIDS["M"])


def _planted_seeds(seed: int, full: bool):
    """The planted-data checks use one seed, or three (seed, seed + 1, seed + 2) with --full,
    on 600 users x 400 items.  (At 1200 x 800 with the same training options, the DNS(1, 50)
    model trains poorly -- worst at every beta, even its own -- and E4 fails for M = 1; with
    lr 0.01 it comes within 0.012 of the best, still not best.  The claim needs a
    well-optimized model, so --full adds seeds rather than size.)"""
    return [seed + i for i in range(3 if full else 1)]


def _own_beta_deficits(seed: int):
    """For M = 1, 5, 25 of N = 50: (deficit / SE of the model's OPAUC(M/N) against the best
    model at that beta, with the mean deficit and its paired SE) on the training
    interactions and on the held-out split."""
    train, test, models = H.planted_models(seed, "M")
    levels = (1, 5, 25)
    betas = [m / N_POOL for m in levels]
    out = {}
    for label, tr, te in (("train", sp.csr_matrix(train.shape, dtype=bool), train),
                          ("held-out", train, test)):
        op = np.array([evaluate_full_ranking(models[m].user_factors, models[m].item_factors,
                                             tr, te, betas=betas).opauc for m in levels])
        rows = []
        for b in range(len(levels)):
            best = int(np.argmax(op[:, :, b].mean(axis=1)))
            diff = op[best, :, b] - op[b, :, b]
            se = diff.std(ddof=1) / np.sqrt(diff.size)
            rows.append((diff.mean() / se if se > 0 else 0.0, diff.mean(), se))
        out[label] = rows
    return out


@check("E4", "Thm 1, Corollary 1",
       "DNS(M,N) training targets beta = M/N: each model has the best training OPAUC at its "
       "own beta (planted data, within 2 paired SE; --full: in each of 3 seeds); WEAK: a "
       "ranking of trained models, it detects a trainer or evaluation that loses the M/N "
       "targeting (or NaN), not a small error in either (E1-E3 test the loss exactly)",
       oracle="none beyond the comparison of models (paired SE over users)",
       verifies=(_EV,),
       mutants=[(_EV, "opauc nan", X.map_output(lambda ev: ev._replace(
                    opauc=np.full_like(ev.opauc, np.nan)))),
                (_EV, "opauc columns reversed", X.map_output(lambda ev: ev._replace(
                    opauc=ev.opauc[:, ::-1])))])
def _e4(seed: int, full: bool) -> tuple[str, bool]:
    texts, passed = [], True
    for s in _planted_seeds(seed, full):
        deficits = _own_beta_deficits(s)
        gap = within([mean - 2 * se for _, mean, se in deficits["train"]], high=0.0,
                     where=f"seed {s} deficit - 2 SE, M index")
        passed &= gap.ok
        texts.append(f"seed {s}: " + "; ".join(
            f"{label} " + ", ".join(f"{z:.1f}" for z, _, _ in rows)
            for label, rows in deficits.items()))
    return ("M = 1, 5, 25 of N = 50, own-beta deficit vs best in SE: " + " | ".join(texts)
            + " (held-out not asserted)"), passed


def guideline2_verdict(best: dict) -> bool:
    """Guideline 2 at K = 5 vs K = 50 (paper: "Top-5 vs Top-50 always follows the trend"):
    for every grid the best sampler at K = 5 is strictly harder than the best at K = 50.
    ``best`` maps grid -> [best value at K = 5, 20, 50]."""
    return bool(best) and all(H.hardness_index(g, b[0]) > H.hardness_index(g, b[-1])
                              for g, b in best.items())


#: Grids of the G2 check.  The mutation suite (tests/test_mutations.py) sets ("M",): the M
#: grid's models are the ones E4 trains (shared through training.hardness.planted_models),
#: so a mutant costs an evaluation, not 15 trainings.
G2_GRIDS = tuple(H.GRIDS)


@check("G2", "Guideline 2, Figs. 8-11",
       "the smaller K, the harder the best sampler: at K = 5 vs 50 the best M is smaller, the "
       "best N and rho larger (planted data, Recall on the training interactions; --full: in "
       "each of 3 seeds); WEAK: the identity of the best sampler, it detects a reversed "
       "hardness order, a lost K dependence or NaN, not small metric errors (M6, E1-E3)",
       oracle="none beyond the comparison of trained models",
       verifies=(_EV, "training.hardness.hardness_index"),
       mutants=[(_EV, "recall nan", X.map_output(lambda ev: ev._replace(
                    recall=np.full_like(ev.recall, np.nan)))),
                ("training.hardness.hardness_index", "hardness order reversed",
                 lambda right: (lambda grid, value: len(H.GRIDS[grid]) - 1 - right(grid, value)))])
def _g2(seed: int, full: bool) -> tuple[str, bool]:
    texts, passed = [], True
    for s in _planted_seeds(seed, full):
        sweep = H.hardness_sweep(s, grids=G2_GRIDS, ks=(5, 20, 50))
        best = {}
        for split in ("train", "held-out"):
            table = H.best_per_k(sweep, "recall", split)
            best[split] = {g: [float(v) for v in table[table.grid == g].sort_values("k")["best"]]
                           for g in G2_GRIDS}
        passed &= guideline2_verdict(best["train"])
        texts.append(f"seed {s}: train {_fmt_best(best['train'])}; held-out "
                     f"{_fmt_best(best['held-out'])}")
    return "best at K = 5/20/50: " + " | ".join(texts) + " (held-out not asserted)", passed


def _fmt_best(best):
    return ", ".join(f"{g} {'/'.join(f'{v:g}' for v in vals)}" for g, vals in best.items())
