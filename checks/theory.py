"""Checks of the paper's theory (Sections 2-3): Lemma 1, Theorems 1-3, the DNS(M, N) law.

Each check measures a gap on random data drawn from ``seed`` and reports it; ``full=True``
uses larger sizes.  Ids: L1, T1*, T2*, T3*, DNS-law*, SYM*.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import optimize, special, stats

from checks import check
from theory import bounds as B
from theory import estimators as E


def _rng(seed, salt):
    return np.random.default_rng([int(seed), salt])


def _context(rng, n_pos=None, n_neg=None):
    n_pos = n_pos or int(rng.integers(1, 8))
    n_neg = n_neg or int(rng.integers(5, 120))
    return rng.normal(0.5, 1.0, size=n_pos), rng.normal(size=n_neg)


def _rel(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


# --------------------------------------------------------------------------------------
# Lemma 1, Theorem 1
# --------------------------------------------------------------------------------------
@check("L1", "Lemma 1, Eqs. 13-16",
       "CVaR-DRO primal (dQ/dP0 <= 1/beta, a linear program) = CVaR dual = OPAUC(beta) surrogate")
def _lemma1(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 1)
    gap = 0.0
    n_cases = 200 if full else 40
    for _ in range(n_cases):
        pos, neg = _context(rng, n_pos=1, n_neg=int(rng.integers(3, 60)))
        beta = float(rng.uniform(0.02, 1.0))
        losses = E.bpr_loss(pos[0] - neg)
        n = losses.size
        res = optimize.linprog(-losses, A_eq=np.ones((1, n)), b_eq=[1.0],
                               bounds=[(0, 1 / (n * beta))] * n, method="highs")
        dual = E.cvar(losses, beta)[0]
        surrogate = E.opauc_surrogate(pos, neg, beta)
        gap = max(gap, _rel(-res.fun, dual), _rel(dual, surrogate))
    return f"max rel. gap {gap:.1e} over {n_cases} (context, fractional beta)", gap < 1e-8


@check("T1", "Thm 1, Eqs. 1-2, 9, 14",
       "BPR under DNS with M = beta*n_neg equals the OPAUC(beta) surrogate")
def _theorem1(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 2)
    n_cases = 2000 if full else 200
    gap = 0.0
    for _ in range(n_cases):
        pos, neg = _context(rng)
        m = int(rng.integers(1, neg.size + 1))
        beta = m / neg.size
        dns = E.dns_objective(pos, neg, beta * neg.size)
        surrogate = E.opauc_surrogate(pos, neg, beta)
        cv = float(np.mean(E.cvar(E.pair_losses(pos, neg), beta)[0]))
        gap = max(gap, _rel(dns, surrogate), _rel(dns, cv))
    return f"max rel. gap {gap:.1e} over {n_cases} contexts", gap < 1e-10


@check("T1b", "Thm 1, Eqs. 15-16",
       "the CVaR dual is minimized at eta = the beta upper quantile of the losses")
def _theorem1_eta(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 3)
    n_cases = 1000 if full else 200
    gap, wrong = 0.0, 0
    for _ in range(n_cases):
        losses = rng.gamma(1.5, size=int(rng.integers(1, 80)))
        beta = float(rng.uniform(1e-3, 1.0))
        value, eta = E.cvar(losses, beta)
        n = losses.size
        dual = [t + np.maximum(losses - t, 0).sum() / (n * beta) for t in losses]
        gap = max(gap, _rel(min(dual), value),
                  _rel(eta + np.maximum(losses - eta, 0).sum() / (n * beta), value))
        k = n * beta
        j = round(k) if abs(k - round(k)) <= 1e-9 * max(1, k) else math.ceil(k)
        wrong += eta != np.sort(losses)[::-1][max(j, 1) - 1]
    ok = gap < 1e-10 and wrong == 0
    return (f"min over kinks vs value: max rel. gap {gap:.1e}; "
            f"eta != quantile in {wrong}/{n_cases}"), ok


# --------------------------------------------------------------------------------------
# Theorem 2
# --------------------------------------------------------------------------------------
def _loss_vectors(rng, count, n=200):
    return [E.bpr_loss(rng.normal(0.5, 1.5) - rng.normal(size=n)) for _ in range(count)]


def _kl(w):
    nz = w > 0
    return float(np.sum(w[nz] * np.log(w[nz] * w.size)))


@check("T2a", "Thm 2, Eqs. 21-22",
       "at the solved lambda the fixed point (Eq. 22) holds and KL(Q*||P0) = rho")
def _theorem2_fixed_point(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 4)
    eq22 = klgap = 0.0
    count = 0
    for losses in _loss_vectors(rng, 40 if full else 10):
        losses = losses * float(rng.choice([1.0, 100.0]))  # also losses in the hundreds
        for rho in (1e-4, 0.01, 0.3, 1.0, 3.0, 5.0):
            value, lam, w = E.kl_dro(losses, rho)
            lhs = lam * (special.logsumexp(losses / lam) - math.log(losses.size) + rho)
            eq22 = max(eq22, _rel(lhs, float(w @ losses)))
            klgap = max(klgap, abs(_kl(w) - rho) / rho)
            count += 1
    ok = eq22 < 1e-8 and klgap < 1e-8
    return f"Eq. 22 max rel. residual {eq22:.1e}, |KL-rho|/rho {klgap:.1e} ({count} cases)", ok


@check("T2b", "Thm 2, Eq. 23",
       "the KL-DRO value equals the softmax-weighted loss at temperature lambda")
def _theorem2_softmax(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 5)
    gap = 0.0
    count = 0
    for losses in _loss_vectors(rng, 40 if full else 10):
        for rho in (1e-3, 0.1, 1.0, 4.0):
            value, lam, _ = E.kl_dro(losses, rho)
            gap = max(gap, _rel(value, float(special.softmax(losses / lam) @ losses)))
            count += 1
    return f"max rel. gap {gap:.1e} ({count} cases)", gap < 1e-8


@check("T2c", "Thm 2 vs Lemma 1",
       "KL-DRO value at rho >= CVaR value at beta = exp(-rho) (the KL ball holds the CVaR ball)")
def _theorem2_contains(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 6)
    margins = []
    for losses in _loss_vectors(rng, 40 if full else 10):
        for rho in (0.01, 0.1, 0.5, 1.0, 2.0, 4.0):
            kl_value = E.kl_dro(losses, rho)[0]
            cvar_value = E.cvar(losses, math.exp(-rho))[0]
            margins.append((kl_value - cvar_value) / max(1.0, abs(cvar_value)))
    worst = min(margins)
    return (f"min (KL - CVaR)/CVaR {worst:.1e}, median {np.median(margins):.2f} "
            f"({len(margins)} cases)", worst >= -1e-12)


@check("T2d", "Thm 2",
       "rho >= log(pool size): the KL-DRO value is the maximum loss (DNS with M = 1)")
def _theorem2_degenerate(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 7)
    gap = 0.0
    near = 0.0
    for losses in _loss_vectors(rng, 40 if full else 10, n=int(rng.integers(2, 300))):
        n = losses.size
        for rho in (math.log(n), math.log(n) + 1.0):
            gap = max(gap, abs(E.kl_dro(losses, rho)[0] - losses.max()))
        near = max(near, (losses.max() - E.kl_dro(losses, math.log(n) - 1e-6)[0]) / losses.max())
    return f"|value - max| = {gap:.1e}; at log n - 1e-6: rel. gap {near:.1e}", gap == 0.0


@check("T2e", "Thm 2, Eqs. 24-25",
       "Eq. 25's tau tends to the exact lambda as rho -> 0 (lambda - tau -> kappa3/(3 Var))")
def _theorem2_limit(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 8)
    rel_err = corr_err = 0.0
    for losses in _loss_vectors(rng, 20 if full else 5):
        z = losses - losses.mean()
        predicted = np.mean(z**3) / (3 * np.mean(z**2))
        lam = E.kl_dro(losses, 1e-8)[1]
        tau = E.softmax_v_tau(losses, 1e-8)
        rel_err = max(rel_err, abs(tau / lam - 1))
        corr_err = max(corr_err, abs((lam - tau) - predicted) / abs(predicted))
    ok = rel_err < 1e-3 and corr_err < 1e-2
    return (f"rho=1e-8: |tau/lam-1| <= {rel_err:.1e}; "
            f"rel. error of the correction {corr_err:.1e}"), ok


@check("T2f", "Thm 2, Eq. 25",
       "the Eq. 25 expansion is accurate only for small rho (measured direction of its error)")
def _theorem2_direction(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 9)
    rhos = (0.01, 0.1, 1.0, 3.0)
    ratios = np.array([[E.softmax_v_tau(L, rho) / E.kl_dro(L, rho)[1] for rho in rhos]
                       for L in _loss_vectors(rng, 40 if full else 10)])
    med = np.median(ratios, axis=0)
    err = np.abs(med - 1)
    ok = bool(np.all(np.diff(err[:3]) > 0))
    text = ", ".join(f"{r:g}: {m:.2f}" for r, m in zip(rhos, med))
    return f"median tau/lambda at rho {text} (<1: Softmax-v harder)", ok


# --------------------------------------------------------------------------------------
# Theorem 3
# --------------------------------------------------------------------------------------
def _count(labels, k):
    neg = np.flatnonzero(~labels)[:k]
    pos = np.flatnonzero(labels)
    return int((k - np.searchsorted(neg, pos)).sum())


def _enumerate(n_pos, n_neg):
    for pos in itertools.combinations(range(n_pos + n_neg), n_pos):
        labels = np.zeros(n_pos + n_neg, dtype=bool)
        labels[list(pos)] = True
        yield labels


_SMALL = ((4, 5, 2), (5, 6, 3), (6, 7, 3), (5, 8, 4), (7, 7, 2))


@check("T3a", "Thm 3, Eqs. 19-20",
       "every ranking of small (N+, N-, K) satisfies the Recall@K and Precision@K bounds")
def _theorem3_enumerated(seed: int, full: bool) -> tuple[str, bool]:
    settings = _SMALL + (((8, 8, 3), (6, 10, 5)) if full else ())
    total = violations = inexact = 0
    for n_pos, n_neg, k in settings:
        seen: dict[int, set[int]] = {}
        for labels in _enumerate(n_pos, n_neg):
            c, i = _count(labels, k), int(labels[:k].sum())
            b = B.topk_bounds(c / (n_pos * n_neg), n_pos, n_neg, k)
            violations += not (b.recall_low <= i / n_pos <= b.recall_high
                               and b.precision_low <= i / k <= b.precision_high)
            seen.setdefault(c, set()).add(i)
            total += 1
        for c, hits in seen.items():
            lo, hi = B.hit_bounds(c / (n_pos * n_neg), n_pos, n_neg, k, tight=True)
            inexact += hits != set(range(int(lo), int(hi) + 1))
    return (f"{violations} violations in {total} rankings; sharpened bounds = achievable range "
            f"except {inexact} cases"), violations == 0 and inexact == 0


@check("T3b", "Thm 3 (proof)",
       "the extremal arrangements attain the OPAUC extremes with i hits, and the bounds there")
def _theorem3_attained(seed: int, full: bool) -> tuple[str, bool]:
    bad = cases = 0
    for n_pos, n_neg, k in _SMALL:
        extremes: dict[int, list[int]] = {}
        for labels in _enumerate(n_pos, n_neg):
            extremes.setdefault(int(labels[:k].sum()), []).append(_count(labels, k))
        for i in range(min(k, n_pos) + 1):
            ext = B.extremal_rankings(n_pos, n_neg, k, i)
            lo = B.topk_bounds(ext.max_count / (n_pos * n_neg), n_pos, n_neg, k).recall_low
            hi = B.topk_bounds(ext.min_count / (n_pos * n_neg), n_pos, n_neg, k).recall_high
            bad += not (_count(ext.max_labels, k) == ext.max_count == max(extremes[i])
                        and _count(ext.min_labels, k) == ext.min_count == min(extremes[i])
                        and lo == hi == i / n_pos)
            cases += 1
    return f"{cases - bad}/{cases} (setting, i) attained", bad == 0


@check("T3c", "Thm 3, Eqs. 19-20",
       "random rankings with N+ = 200, N- = 800 satisfy the bounds (K = 5, 20, 50)")
def _theorem3_random(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 10)
    n_pos, n_neg = 200, 800
    base = np.r_[np.ones(n_pos, bool), np.zeros(n_neg, bool)]
    n_rank = 2000 if full else 300
    violations = 0
    widths = []
    for k in (5, 20, 50):
        rankings = [rng.permutation(base) for _ in range(n_rank)]
        for i in rng.integers(0, k + 1, size=n_rank // 3):  # near-extremal rankings too
            ext = B.extremal_rankings(n_pos, n_neg, k, int(i))
            labels = (ext.max_labels if rng.random() < 0.5 else ext.min_labels).copy()
            a, b = rng.integers(0, n_pos + n_neg, size=2)
            labels[[a, b]] = labels[[b, a]]
            rankings.append(labels)
        raw = np.array([_count(lab, k) for lab in rankings]) / n_pos / n_neg
        hits = np.array([lab[:k].sum() for lab in rankings])
        b = B.topk_bounds(raw, n_pos, n_neg, k)
        violations += int(np.sum((hits / k < b.precision_low) | (hits / k > b.precision_high)))
        widths.append(float(np.mean(b.precision_high - b.precision_low)))
    width_text = "/".join(f"{w:.2f}" for w in widths)
    return (f"{violations} violations; mean Precision@K interval width {width_text} "
            f"(K = 5/20/50)"), violations == 0


# --------------------------------------------------------------------------------------
# DNS(M, N)
# --------------------------------------------------------------------------------------
def _dns_mn_sample(n_neg, m, n, replace, draws, rng):
    if replace:
        pool = rng.integers(0, n_neg, size=(draws, n))
    else:
        pool = np.argsort(rng.random((draws, n_neg)), axis=1)[:, :n]
    pool.sort(axis=1)
    return pool[np.arange(draws), rng.integers(0, m, size=draws)]


def _chi2_p(counts, probs):
    expected = probs * counts.sum()
    obs, exp = [], []
    o = e = 0.0
    for c, x in zip(counts, expected):
        o, e = o + c, e + x
        if e >= 5:
            obs.append(o)
            exp.append(e)
            o = e = 0.0
    obs[-1] += o
    exp[-1] += e
    return float(stats.chisquare(obs, exp).pvalue)


def _law_check(seed, full, replace):
    rng = _rng(seed, 11 + replace)
    n_neg, m, n = 30, 3, 10
    draws = 1_000_000 if full else 200_000
    counts = np.bincount(_dns_mn_sample(n_neg, m, n, replace, draws, rng), minlength=n_neg)
    p = E.dns_mn_rank_probabilities(n_neg, m, n, replace=replace)
    pval = _chi2_p(counts.astype(float), p)
    p_other = _chi2_p(counts.astype(float), E.dns_mn_rank_probabilities(n_neg, m, n,
                                                                         replace=not replace))
    return (f"chi-square p = {pval:.2f} ({draws:,} draws; the other pool mode: p = "
            f"{p_other:.0e})"), pval > 1e-4 and p_other < 1e-6


@check("DNS-law1", "Alg. 1, Fig. 7",
       "exact DNS(M,N) rank law (pool with replacement) matches a Monte Carlo of the sampler")
def _dns_law_replace(seed: int, full: bool) -> tuple[str, bool]:
    return _law_check(seed, full, True)


@check("DNS-law2", "Alg. 1, Fig. 7",
       "exact DNS(M,N) rank law (pool without replacement) matches a Monte Carlo of the sampler")
def _dns_law_no_replace(seed: int, full: bool) -> tuple[str, bool]:
    return _law_check(seed, full, False)


@check("DNS-law3", "Alg. 1 (beta ~ M/N)",
       "mean sampled score quantile is (M+1)/(2(N+1)) (exact without replacement)")
def _dns_law_mean(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 13)
    exact_gap = 0.0
    bounded = True
    cases = 30 if full else 10
    for _ in range(cases):
        n = int(rng.integers(1, 60))
        m = int(rng.integers(1, n + 1))
        n_neg = int(rng.integers(n, 500))
        r = np.arange(1, n_neg + 1)
        target = (m + 1) / (2 * (n + 1))
        wo = E.dns_mn_rank_probabilities(n_neg, m, n, replace=False) @ r / (n_neg + 1)
        exact_gap = max(exact_gap, abs(wo - target))
        w = E.dns_mn_rank_probabilities(n_neg, m, n) @ r / n_neg
        bounded &= bool(target - 1e-12 <= w < target + 1 / n_neg)
    return (f"without repl.: max |E[r]/(n_neg+1) - target| {exact_gap:.1e}; with repl. within "
            f"[target, target + 1/n_neg): {bounded}"), exact_gap < 1e-10 and bounded


@check("DNS-law4", "Alg. 1 vs Eq. 9",
       "DNS(M,N) = an exact mixture of OPAUC(beta) surrogates; measured gap to OPAUC(M/N)")
def _dns_gap(seed: int, full: bool) -> tuple[str, bool]:
    rng = _rng(seed, 14)
    identity = 0.0
    gaps = []
    n_neg = 2000 if full else 500
    for m, n in ((1, 20), (5, 50), (5, 200)):
        betas, c = E.dns_mn_beta_mixture(n_neg, m, n)
        for _ in range(3):
            pos, neg = rng.normal(1.0, 1.0, size=5), rng.normal(size=n_neg)
            exact = E.dns_mn_objective(pos, neg, m, n)
            used = c > 0
            mixture = sum(ck * E.opauc_surrogate(pos, neg, b)
                          for b, ck in zip(betas[used], c[used]))
            identity = max(identity, _rel(exact, mixture))
            gaps.append((exact - E.opauc_surrogate(pos, neg, m / n)) / exact)
    gap_text = f"{min(gaps):+.2f}..{max(gaps):+.2f}"
    return (f"mixture identity rel. gap {identity:.1e}; (DNS(M,N) - OPAUC(M/N))/DNS in "
            f"{gap_text} for (M,N) in (1,20),(5,50),(5,200)"), identity < 1e-10


# --------------------------------------------------------------------------------------
# Sympy derivations against the numeric functions
# --------------------------------------------------------------------------------------
@check("SYM1", "Thm 3 (sympy)",
       "bounds solved symbolically from the extremal arrangements equal topk_bounds")
def _sym_theorem3(seed: int, full: bool) -> tuple[str, bool]:
    import sympy as sp

    from theory.symbolic import theorem3_derivation

    d = theorem3_derivation()
    rng = _rng(seed, 15)
    bad = 0
    cases = 500 if full else 100
    for _ in range(cases):
        k = int(rng.integers(1, 50))
        n_pos, n_neg = int(rng.integers(k + 1, 300)), k + int(rng.integers(1, 300))
        ext = B.extremal_rankings(n_pos, n_neg, k, int(rng.integers(0, k + 1)))
        for c in (ext.max_count, ext.min_count):  # at the extremes, where rounding matters
            point = {d.n_pos: n_pos, d.n_neg: n_neg, d.k: k,
                     d.opauc: sp.Rational(c, n_pos * n_neg)}
            sym = [e.xreplace(point) for e in (d.recall_low, d.recall_high)]  # exact rationals
            num = B.topk_bounds(c / (n_pos * n_neg), n_pos, n_neg, k)
            bad += [float(s) for s in sym] != [num.recall_low, num.recall_high]
    return f"{2 * cases - bad}/{2 * cases} exact matches at extremal counts", bad == 0


@check("SYM2", "Thm 2, Eqs. 24-25 (sympy)",
       "the reverted series lambda = sqrt(Var/(2 rho)) + kappa3/(3 Var) + O(sqrt rho) "
       "matches kl_dro")
def _sym_theorem2(seed: int, full: bool) -> tuple[str, bool]:
    from theory.symbolic import theorem2_expansion

    d = theorem2_expansion()
    rng = _rng(seed, 16)
    worst = 0.0
    for losses in _loss_vectors(rng, 10 if full else 4):
        z = losses - losses.mean()
        subs = {d.mean: losses.mean(), d.var: np.mean(z**2), d.kappa3: np.mean(z**3),
                d.kappa4: np.mean(z**4) - 3 * np.mean(z**2) ** 2}
        for rho in (1e-6, 1e-4):
            lam = E.kl_dro(losses, rho)[1]
            series = float(d.lam_series.subs({**subs, d.rho: rho}))
            worst = max(worst, abs(series - lam) / lam)
    return f"max rel. gap {worst:.1e} at rho in (1e-6, 1e-4)", worst < 1e-3


@check("SYM3", "Lemma 1 / Thm 1 (sympy)",
       "piecewise CVaR dual: the minimizer is l_ceil(n beta), the value matches cvar")
def _sym_cvar(seed: int, full: bool) -> tuple[str, bool]:
    import sympy as sp

    from theory.symbolic import cvar_dual_derivation

    d = cvar_dual_derivation(5)
    n = d.n
    ok = all(d.pieces_verified) and all(
        d.minimizer_intervals[j - 1] == sp.Interval.Lopen(sp.Rational(j - 1, n), sp.Rational(j, n))
        for j in range(1, n + 1))
    rng = _rng(seed, 17)
    gap = 0.0
    for _ in range(50 if full else 20):
        losses = np.sort(rng.gamma(2.0, size=n))[::-1]
        beta = float(rng.uniform(0.01, 1.0))
        j = math.ceil(n * beta)
        point = {**dict(zip(d.losses, losses.tolist())), d.beta: beta}
        gap = max(gap, _rel(float(d.values[j - 1].subs(point)), E.cvar(losses, beta)[0]))
    return f"pieces and intervals verified: {ok}; max rel. gap {gap:.1e}", ok and gap < 1e-12


@check("SYM4", "Alg. 1 (sympy)",
       "DNS(M,N) law by exhaustive enumeration = closed form = dns_mn_rank_probabilities")
def _sym_dns(seed: int, full: bool) -> tuple[str, bool]:
    import sympy as sp

    from theory.symbolic import dns_mn_continuous_limit, dns_mn_law_enumerated

    gap = 0.0
    cases = [(5, 2, 3), (6, 1, 4), (4, 3, 3), (6, 2, 5)] + ([(7, 3, 6)] if full else [])
    for n_neg, m, n in cases:
        for replace in (True, False):
            law = dns_mn_law_enumerated(n_neg, m, n, replace)
            num = E.dns_mn_rank_probabilities(n_neg, m, n, replace=replace)
            gap = max(gap, float(np.max(np.abs(num - np.array([float(p) for p in law])))))
    lim = dns_mn_continuous_limit(3, 9)
    mean_ok = lim.mean == sp.Rational(4, 20) and sp.simplify(lim.beta_mixture_density
                                                             - lim.beta_pdf) == 0
    return (f"max abs gap {gap:.1e} over {2 * len(cases)} cases; continuous limit (M,N)=(3,9): "
            f"mean 1/5 and Beta(4,6) mixture: {mean_ok}"), gap < 1e-13 and mean_ok
