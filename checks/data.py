"""Checks on the real data set (paper Table 1); skipped when the data are absent."""
from __future__ import annotations

from checks import check, data_dir

PAPER_GOWALLA = {"users": 29_858, "items": 40_988, "train": 822_358, "test": 205_106}


@check("D1", "Table 1", "per-user 80/20 split of Gowalla gives the paper's 29,858 users, 40,988 items, "
       "822,358 train / 205,106 test interactions")
def _gowalla_table1(seed: int, full: bool):
    path = data_dir() / "gowalla.mat"
    if not path.exists():
        return f"gowalla.mat not found in {path.parent} (set --data or HNSLAB_DATA)", None
    from simulations.data import load_mat, split_per_user

    matrix = load_mat(path)
    split = split_per_user(matrix, 0.8, seed=seed)
    got = {"users": matrix.shape[0], "items": matrix.shape[1], "train": split.train.nnz,
           "test": split.test.nnz}
    return (f"{got['users']:,} users, {got['items']:,} items, {got['train']:,} train / "
            f"{got['test']:,} test (seed {seed})"), got == PAPER_GOWALLA
