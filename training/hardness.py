"""Best sampler hardness against K on planted data (the paper's Figs. 8-11, Guideline 2).

The paper trains MF with DNS(M, N) and Softmax-v(rho, N) over grids of M, N and rho and
reports that the smaller K, the harder the best sampler: the best M shrinks, the best N
grows and the best rho grows as K shrinks.  :func:`hardness_sweep` repeats that on a
planted data set (:func:`training.planted.planted_dataset`) small enough to train a whole
grid in seconds, and evaluates every model both on its training interactions (in-sample,
where Theorem 1 speaks) and on the held-out split.

The grids (``GRIDS``) follow the paper's shape at a pool size that suits 400 items:

* ``"M"``: DNS(M, N = 50), M in (1, 2, 5, 10, 25) -- harder = smaller M;
* ``"N"``: DNS(M = 5, N), N in (10, 20, 50, 100, 200) -- harder = larger N;
* ``"rho"``: Softmax-v(rho, N = 50), rho in (0.01, 0.1, 1, 10, 100) -- harder = larger rho.
"""
from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import scipy.sparse as sp

from training import sampling as S
from training import trainer as T
from training.evaluation import evaluate_full_ranking
from training.planted import planted_dataset
from training.split import split_per_user

__all__ = [
    "GRIDS",
    "GRID_PARAMS",
    "HARDER_WHEN_LARGER",
    "best_per_k",
    "hardness_index",
    "hardness_sweep",
    "planted_models",
    "planted_split",
    "train_grid",
]

GRIDS = {
    "M": tuple((m, S.dns(m, 50)) for m in (1, 2, 5, 10, 25)),
    "N": tuple((n, S.dns(5, n)) for n in (10, 20, 50, 100, 200)),
    "rho": tuple((rho, S.softmax_v(rho, 50)) for rho in (0.01, 0.1, 1.0, 10.0, 100.0)),
}
#: The (sampler, parameter) that each grid varies.
GRID_PARAMS = {"M": ("dns", "m"), "N": ("dns", "n"), "rho": ("softmax_v", "rho")}
#: Direction of hardness of each grid's parameter (paper Section 5, Fig. 7), from the
#: sampler registry (``training.sampling.SAMPLERS[kind].hardness``).
HARDER_WHEN_LARGER = {grid: S.hardness_direction(kind, param) > 0
                      for grid, (kind, param) in GRID_PARAMS.items()}


def hardness_index(grid: str, value: float) -> int:
    """0 for the easiest value of ``GRIDS[grid]``, up to ``len(GRIDS[grid]) - 1``."""
    values = sorted(v for v, _ in GRIDS[grid])
    if not HARDER_WHEN_LARGER[grid]:
        values = values[::-1]
    return values.index(value)


#: Training options of the planted runs: 100 epochs of Adam with a large step (small data).
TRAIN_OPTIONS = dict(epochs=100, lr=0.05, batch_size=256, weight_decay=0.001, dim=8,
                     lr_decay=False)


def planted_split(seed: int = 0, n_users: int = 600, n_items: int = 400):
    """A planted data set split per user 80/20 with ``seed``: (train, test)."""
    data = planted_dataset(n_users, n_items, seed=seed)
    split = split_per_user(data.matrix, 0.8, seed)
    return split.train, split.test


def train_grid(train, test, samplers, seed: int = 0, **options) -> dict:
    """Train one MF model per sampler with the same seed and options; {key: MF}.

    ``samplers`` is an iterable of (key, Sampler) pairs; ``options`` override
    :data:`TRAIN_OPTIONS`.
    """
    opts = dict(TRAIN_OPTIONS, **options)
    return {key: T.train_model(train, test, sampler, seed=seed, handle_sigint=False, **opts).model
            for key, sampler in samplers}


@functools.lru_cache(maxsize=8)
def planted_models(seed: int, grid: str, n_users: int = 600, n_items: int = 400):
    """(train, test, {value: MF}) of one grid on :func:`planted_split`, trained once per
    process and shared by its callers (the G2 and E4 checks and the Figs. 8-11 data train the
    same models); the models must not be modified."""
    train, test = planted_split(seed, n_users, n_items)
    return train, test, train_grid(train, test, GRIDS[grid], seed=seed)


def hardness_sweep(seed: int = 0, grids=("M", "N", "rho"), ks=(5, 20, 50), n_users: int = 600,
                   n_items: int = 400) -> pd.DataFrame:
    """Recall@K and NDCG@K of MF trained over hardness grids on planted data.

    Parameters
    ----------
    seed : int
        Seeds the data, the split and every model (all models of a grid share it).
    grids : names in :data:`GRIDS`
    ks : Top-K cut-offs.
    n_users, n_items : size of the planted data set.

    Returns
    -------
    DataFrame
        One row per (grid, value, split, k): columns grid, value, sampler, split
        ("train": ranking every item, scored against the training interactions;
        "held-out": training items masked, scored against the test split), k, recall,
        ndcg (means over users), recall_se (standard error over users), seed.
    """
    unknown = set(grids) - set(GRIDS)
    if unknown:
        raise ValueError(f"grids must be among {sorted(GRIDS)}; got {sorted(unknown)}")
    records = []
    for grid in grids:
        train, test, models = planted_models(int(seed), grid, n_users, n_items)
        nothing = sp.csr_matrix(train.shape, dtype=bool)
        labels = {value: sampler.label() for value, sampler in GRIDS[grid]}
        for value, model in models.items():
            for split, masked, target in (("train", nothing, train), ("held-out", train, test)):
                ev = evaluate_full_ranking(model.user_factors, model.item_factors, masked, target,
                                           ks=ks)
                n = ev.recall.shape[0]
                for c, k in enumerate(sorted(ks)):
                    records.append({"grid": grid, "value": float(value), "sampler": labels[value],
                                    "split": split, "k": int(k),
                                    "recall": float(ev.recall[:, c].mean()),
                                    "ndcg": float(ev.ndcg[:, c].mean()),
                                    "recall_se": float(ev.recall[:, c].std(ddof=1) / np.sqrt(n)),
                                    "seed": int(seed)})
    return pd.DataFrame.from_records(records)


def best_per_k(sweep: pd.DataFrame, metric: str = "recall", split: str = "train") -> pd.DataFrame:
    """The grid value with the best mean ``metric`` at each (grid, k): columns grid, k, best."""
    if metric not in ("recall", "ndcg"):
        raise ValueError(f"metric must be 'recall' or 'ndcg'; got {metric!r}")
    part = sweep[sweep["split"] == split]
    if part.empty:
        raise ValueError(f"split {split!r} has no rows; the sweep holds {sorted(set(sweep['split']))}")
    idx = part.groupby(["grid", "k"])[metric].idxmax()
    return part.loc[idx, ["grid", "k", "value"]].rename(columns={"value": "best"}).reset_index(drop=True)

