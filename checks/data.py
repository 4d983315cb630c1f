"""Checks on the real data set, Gowalla (paper Table 1, Theorem 1, Table 2); each reports SKIP
when ``gowalla.mat`` is absent from :func:`checks.data_dir`."""
from __future__ import annotations

import functools

from checks import check, data_dir

PAPER_GOWALLA = {"users": 29_858, "items": 40_988, "train": 822_358, "test": 205_106}


@check("D1", "Table 1", "per-user 80/20 split of Gowalla gives the paper's 29,858 users, 40,988 items, "
       "822,358 train / 205,106 test interactions")
def _gowalla_table1(seed: int, full: bool):
    if (reason := _missing()) is not None:
        return reason, None
    split = _gowalla_split(seed)
    got = {"users": split.train.shape[0], "items": split.train.shape[1], "train": split.train.nnz,
           "test": split.test.nnz}
    return (f"{got['users']:,} users, {got['items']:,} items, {got['train']:,} train / "
            f"{got['test']:,} test (seed {seed})"), got == PAPER_GOWALLA


@functools.lru_cache(maxsize=2)
def _gowalla_split(seed: int):
    from training.data import load_mat, split_per_user

    return split_per_user(load_mat(data_dir() / "gowalla.mat"), 0.8, seed=seed)


def _missing():
    path = data_dir() / "gowalla.mat"
    return None if path.exists() else f"gowalla.mat not found in {path.parent} (set --data or HNSLAB_DATA)"


@check("D2", "Thm 1, Eq. 14 (Gowalla)",
       "on Gowalla users, the trainer's DNS loss with the pool = all negatives and M = beta*n_neg, "
       "summed over the user's positives, = n_pos x the OPAUC(beta) surrogate")
def _gowalla_theorem1(seed: int, full: bool):
    if (reason := _missing()) is not None:
        return reason, None
    import numpy as np

    from checks.training import theorem1_gap
    from training import trainer as T

    train = _gowalla_split(seed).train
    model = T.init_model(*train.shape, dim=32, seed=seed)  # the trainer's N(0, 0.1) start
    rng = np.random.default_rng([seed, 201])
    users = rng.choice(np.flatnonzero(np.diff(train.indptr) >= 2), 40 if full else 10, replace=False)
    worst, cases = 0.0, 0
    for u in users:
        n_neg = train.shape[1] - train[u].nnz
        ms = [max(1, int(beta * n_neg)) for beta in (1 / n_neg, 0.001, 0.01, 0.1, 1.0)]
        worst, cases = max(worst, theorem1_gap(model, train, u, ms)), cases + len(ms)
    return f"max rel. gap {worst:.1e} over {cases} (user, M) cases, 40,988 items", worst < 1e-9


#: Table 2 (Gowalla, MF, K = 50): (Recall@50, NDCG@50) of the paper, after 200 epochs.
PAPER_TABLE2 = {"BPR": (0.2048, 0.1216), "DNS(M,N)": (0.2989, 0.1811),
                "Softmax-v(rho,N)": (0.2993, 0.1837)}


@check("D3", "Table 2, Fig. 1 (Gowalla)",
       "hard negative samplers beat uniform sampling: DNS(10, 200) and Softmax-v(1, 200) above "
       "BPR in Recall@50 and NDCG@50 (paper settings; 2 epochs, --full 200)")
def _gowalla_table2(seed: int, full: bool):
    if (reason := _missing()) is not None:
        return reason, None
    from training import sampling as S
    from training import trainer as T

    split = _gowalla_split(seed)
    epochs = 200 if full else 2
    samplers = {"BPR": S.uniform(1), "DNS(M,N)": S.dns(10, 200),
                "Softmax-v(rho,N)": S.softmax_v(1.0, 200)}
    got = {}
    for name, sampler in samplers.items():
        result = T.train_mf(split.train, split.test, sampler, epochs=epochs, ks=(50,), dim=32,
                            batch_size=4096, lr=1e-3, weight_decay=0.01, lr_decay=True,
                            seed=seed, handle_sigint=False)
        got[name] = (result.metrics["recall@50"], result.metrics["ndcg@50"])
    passed = all(got[h][i] > got["BPR"][i] for h in ("DNS(M,N)", "Softmax-v(rho,N)") for i in (0, 1))
    text = "; ".join(f"{name} {r:.4f} / {n:.4f} (paper {PAPER_TABLE2[name][0]:.4f} / "
                     f"{PAPER_TABLE2[name][1]:.4f})" for name, (r, n) in got.items())
    return f"Recall@50 / NDCG@50 after {epochs} epochs: {text}", passed
