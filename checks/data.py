"""Checks on the real data set, Gowalla (paper Table 1, Theorem 1, Table 2); each reports SKIP
when ``gowalla.mat`` is absent from :func:`checks.data_dir`."""
from __future__ import annotations

import functools

from checks import check, data_dir
from checks import mutants as X
from checks.compare import Tally, compare

#: Users of the D2 / D3 runs when set (None: the checks' own sizes).  The mutation suite
#: (tests/test_mutations.py) sets a few so that a mutant costs seconds, not minutes: D2 then
#: checks that many users, D3 trains and evaluates on the first that many users (all items).
SUBSET_USERS: int | None = None

PAPER_GOWALLA = {"users": 29_858, "items": 40_988, "train": 822_358, "test": 205_106}


@check("D1", "Table 1", "per-user 80/20 split of Gowalla gives the paper's 29,858 users, 40,988 items, "
       "822,358 train / 205,106 test interactions",
       oracle="the counts printed in the paper's Table 1",
       verifies=("training.split.split_per_user",),
       mutants=[("training.split.split_per_user", "train fraction 0.79",
                 X.with_argument("train_fraction", lambda f: f - 0.01))])
def _gowalla_table1(seed: int, full: bool):
    if (reason := _missing()) is not None:
        return reason, None
    split = _gowalla_split(seed)
    got = {"users": split.train.shape[0], "items": split.train.shape[1], "train": split.train.nnz,
           "test": split.test.nnz}
    gap = compare([got[k] for k in PAPER_GOWALLA], list(PAPER_GOWALLA.values()),
                  where="(users, items, train, test)")  # counts: exact
    return (f"{got['users']:,} users, {got['items']:,} items, {got['train']:,} train / "
            f"{got['test']:,} test (seed {seed})"), gap.ok


@functools.lru_cache(maxsize=2)
def _gowalla_split(seed: int):
    from training.loaders import load_mat
    from training.split import split_per_user

    return split_per_user(load_mat(data_dir() / "gowalla.mat"), 0.8, seed=seed)


def _missing():
    path = data_dir() / "gowalla.mat"
    return None if path.exists() else f"gowalla.mat not found in {path.parent} (set --data or HNSLAB_DATA)"


@check("D2", "Thm 1, Eq. 14 (Gowalla)",
       "on Gowalla users, the trainer's DNS loss with the pool = all negatives and M = beta*n_neg, "
       "summed over the user's positives, = n_pos x the OPAUC(beta) surrogate",
       oracle="sort the user's negatives, mean numpy BPR loss of the top M per positive "
       "(checks.training.theorem1_gap)",
       verifies=("training.trainer.batch_loss_and_grad",),
       mutants=[("training.trainer.batch_loss_and_grad", "nan-row", X.nan_row(field=0))])
def _gowalla_theorem1(seed: int, full: bool):
    if (reason := _missing()) is not None:
        return reason, None
    import numpy as np

    from checks.training import theorem1_gap
    from training.models import init_model

    train = _gowalla_split(seed).train
    model = init_model(*train.shape, dim=32, seed=seed)  # the trainer's N(0, 0.1) start
    rng = np.random.default_rng([seed, 201])
    n_users = SUBSET_USERS or (40 if full else 10)
    users = rng.choice(np.flatnonzero(np.diff(train.indptr) >= 2), n_users, replace=False)
    tally, cases = Tally(), 0
    for u in users:
        n_neg = train.shape[1] - train[u].nnz
        ms = [max(1, int(beta * n_neg)) for beta in (1 / n_neg, 0.001, 0.01, 0.1, 1.0)]
        tally.add(theorem1_gap(model, train, u, ms))
        cases += len(ms)
    gap = tally.gap
    return f"{gap.text('max |diff|')} over {cases} (user, M) cases, 40,988 items", gap.ok


def _nan_metrics():
    """Mutant of train_model: no training (epochs 0, to stay cheap) and NaN metrics."""

    def factory(right):
        @functools.wraps(right)
        def wrong(*args, **kwargs):
            result = right(*args, **{**kwargs, "epochs": 0})
            result.metrics = {key: float("nan") for key in result.metrics}
            return result

        return wrong

    return factory


# D3 and D4 check the same ordering (hard samplers above uniform) with two models.
_TRAIN = "training.trainer.train_model"
_ORDERING = dict(verifies=(_TRAIN,),
                 mutants=[(_TRAIN, "epochs -> 0 (does not train)", X.with_argument("epochs", lambda e: 0)),
                          (_TRAIN, "nan metrics (untrained)", _nan_metrics())])
_WEAK = ("WEAK: an ordering of three trained models, it detects a{} that does not train, a "
         "sampler without effect or NaN metrics, not the size of the gains")

#: Table 2 (Gowalla, MF, K = 50): (Recall@50, NDCG@50) of the paper, after 200 epochs.
PAPER_TABLE2 = {"BPR": (0.2048, 0.1216), "DNS(M,N)": (0.2989, 0.1811),
                "Softmax-v(rho,N)": (0.2993, 0.1837)}
# Table 3 of the paper, Gowalla, LightGCN: (Recall@50, NDCG@50).
PAPER_TABLE3 = {"BPR": (0.2470, 0.1469), "DNS(M,N)": (0.3176, 0.1954),
                "Softmax-v(rho,N)": (0.3209, 0.1991)}


@check("D3", "Table 2, Fig. 1 (Gowalla)",
       "hard negative samplers beat uniform sampling: DNS(10, 200) and Softmax-v(1, 200) above "
       "BPR in Recall@50 and NDCG@50 (paper settings; 2 epochs, --full 200); "
       + _WEAK.format(" trainer"),
       oracle="the ordering only (the paper's Table 2 values are printed, not asserted)",
       **_ORDERING)
def _gowalla_table2(seed: int, full: bool):
    return _hard_above_uniform(seed, "mf", 10, 200 if full else 2, PAPER_TABLE2)


@check("D4", "Table 3, App. E (Gowalla)",
       "with LightGCN (3 layers) too, hard negative samplers beat uniform sampling: DNS(5, 200) "
       "and Softmax-v(1, 200) above BPR in Recall@50 and NDCG@50 (paper settings; 1 epoch, "
       "--full 200); " + _WEAK.format(" LightGCN"),
       oracle="the ordering only (the paper's Table 3 values are printed, not asserted)",
       **_ORDERING)
def _gowalla_table3(seed: int, full: bool):
    return _hard_above_uniform(seed, "lightgcn", 5, 200 if full else 1, PAPER_TABLE3)


def _hard_above_uniform(seed: int, model: str, m: int, epochs: int, paper: dict):
    """Train ``model`` on Gowalla with BPR, DNS(m, 200) and Softmax-v(1, 200) (the paper's
    settings) and check that both hard samplers are strictly above uniform sampling ("BPR") in
    Recall@50 and NDCG@50; SKIP without gowalla.mat."""
    if (reason := _missing()) is not None:
        return reason, None
    import numpy as np

    from training import sampling as S
    from training import trainer as T

    samplers = {"BPR": S.uniform(1), "DNS(M,N)": S.dns(m, 200),
                "Softmax-v(rho,N)": S.softmax_v(1.0, 200)}
    split = _gowalla_split(seed)
    train, test = split.train, split.test
    if SUBSET_USERS:
        train, test = train[:SUBSET_USERS], test[:SUBSET_USERS]
    got = {}
    for name, sampler in samplers.items():
        result = T.train_model(train, test, sampler, model=model, epochs=epochs, ks=(50,),
                               dim=32, batch_size=4096, lr=1e-3, weight_decay=0.01,
                               lr_decay=True, seed=seed, handle_sigint=False)
        got[name] = (result.metrics["recall@50"], result.metrics["ndcg@50"])
    tally = Tally()
    for h in samplers:
        if h != "BPR":
            # Strictly above BPR (any positive margin): the claim is an ordering.
            tally.within(np.subtract(got[h], got["BPR"]), low=1e-12, where=f"{h} - BPR (R@50, N@50)")
    text = "; ".join(f"{name} {r:.4f} / {n:.4f} (paper {paper[name][0]:.4f} / "
                     f"{paper[name][1]:.4f})" for name, (r, n) in got.items())
    return f"Recall@50 / NDCG@50 after {epochs} epochs: {text}", tally.ok
