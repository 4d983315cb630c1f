"""Early learning on Gowalla: hnslab's trainer beside a PyTorch version of the authors' step.

Issue 14, item 5: with the authors' semantics hnslab seemed to trail the authors' PyTorch code
at equal early epochs.  This script trains, on one split and from **the same initial factors**
(hnslab's ``init_model`` for the seed: N(0, 0.1), float32):

(a) hnslab: ``training.trainer.Trainer`` (MF) with the authors' semantics (pool drawn with
    replacement over all items, DNS top-M losses summed, unbiased variance for Softmax-v,
    batch loss summed, Adam(lr 1e-3, weight_decay on every parameter), lr x0.95 every 5
    epochs);
(b) torch: :class:`AuthorsTorchTrainer`, a PyTorch re-statement (written for hnslab, from a
    reading of the authors' ``model.py`` / ``sampler.py`` / ``main_more.py``) of their training
    step: one epoch = one shuffled pass over the training (user, positive) pairs in batches of
    4096; per pair N draws of ``randint(0, n_items)``; ``-logsigmoid(r_ui - r_uj)`` losses; DNS
    (their ``loss_type=1``): the M highest-scored draws' losses summed; Softmax-v
    (``loss_type=2``): weights ``softmax(L / tau)`` with ``tau = sqrt(var_unbiased(L) /
    (2 rho))`` computed without gradient; uniform (``loss_type=0`` unweighted): mean over the N
    draws; sum over the batch; dense embedding gradients; ``torch.optim.Adam(weight_decay=wd)``
    and ``StepLR(5, 0.95)``,

and evaluates both after the requested epochs with hnslab's evaluation
(``training.evaluation.evaluate_full_ranking``) and with :func:`authors_evaluation`, a numpy
re-statement of the authors' ``utils.Evaluate`` (float32 scores, training items set to -inf,
top 50 by ``topk``, Recall = hits / #test items, NDCG with the ideal DCG over min(#test, K)
positions, users without test items dropped).  The two evaluations differ only in how exact
score ties are broken (hnslab: expected value under random tie-breaking; theirs: topk order),
which continuous scores make irrelevant: the script prints both.

Splits (``--split``): ``hnslab`` is ``training.split.split_per_user(matrix, 0.8, seed)``;
``authors`` re-creates the authors' split itself: their ``setup_seed(10)`` seeds Python's
``random`` and nothing draws from it before ``dataloader.RecData.split_matrix``, which takes,
user by user in row order, ``random.sample(range(n_u), round(0.8 n_u))`` as training
positions of the user's items (sorted by item id, as ``csc.tocsr()`` leaves them).  That is
deterministic, so :func:`authors_split` rebuilds it with ``random.Random(10)``.

The script prints a table; ``--results PATH`` appends one row per record to a CSV (the README
quotes ``results/early_learning_gowalla.csv``) and ``--json PATH`` writes every record.
Timings are printed for orientation only (the two sides run one after the other in one
process on a shared machine; this is not a speed benchmark).

Usage::

    python benchmarks/early_learning.py --sampler dns --m 5 --epochs 1 5 10 --seeds 0
    python benchmarks/early_learning.py --sampler uniform --epochs 6 --split authors --skip-torch
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from simulations.files import atomic_write_text
from theory.validation import check_int, check_real
from training import sampling as S
from training import trainer as T
from training.datasets import data_folder
from training.evaluation import evaluate_full_ranking
from training.loaders import load_mat
from training.models import init_model
from training.results import append_rows, git_revision
from training.split import split_per_user

DIM, BATCH, LR, LR_STEP, LR_GAMMA, INIT_STD = 32, 4096, 1e-3, 5, 0.95, 0.1
KS = (5, 20, 50)

#: The authors' code on their own split (``--fix_seed``, seed 10), as reported in issue 14:
#: (sampler, epochs) -> (Recall@50, NDCG@50 or None).
ISSUE_REFERENCE = {("dns", 10): (0.1946, 0.1181), ("uniform", 6): (0.0949, None),
                   ("softmax_v", 4): (0.0918, None)}


# --------------------------------------------------------------------------------------
# The authors' split and evaluation (numpy re-statements)
# --------------------------------------------------------------------------------------
def authors_split(matrix, ratio: float = 0.8, seed: int = 10):
    """(train, test) as the authors' ``split_matrix`` draws them after ``random.seed(seed)``.

    For each user in row order, ``round(ratio * n_u)`` of the positions ``0..n_u-1`` of the
    user's items (sorted by item id) are drawn by ``random.Random.sample``; those go to train,
    the others to test.  Python's ``random.sample`` and Mersenne Twister are the same in every
    Python 3 release used by the authors (3.8) and here.
    """
    ratio = check_real(ratio, "ratio", low=0.0, high=1.0, include_low=False, include_high=False)
    m = sp.csr_matrix(matrix)
    m.sort_indices()
    rng = random.Random(seed)
    in_train = np.zeros(m.nnz, dtype=bool)
    for u in range(m.shape[0]):
        lo, hi = m.indptr[u], m.indptr[u + 1]
        chosen = rng.sample(range(hi - lo), round(ratio * (hi - lo)))
        in_train[lo + np.asarray(chosen, dtype=np.int64)] = True
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))

    def part(mask):
        return sp.csr_matrix((np.ones(int(mask.sum()), dtype=bool),
                              (rows[mask], m.indices[mask])), shape=m.shape)

    return part(in_train), part(~in_train)


def authors_evaluation(user_factors, item_factors, train, test, ks=KS, users_per_block=1024):
    """Mean Recall@K and NDCG@K as the authors' ``utils.Evaluate`` computes them (numpy).

    float32 scores ``U @ V.T``; training items get -inf; the top ``max(ks)`` items in
    decreasing score; hit indicators against the test items; per user Recall@K = hits in the
    top K / #test items and NDCG@K = DCG@K / IDCG over the first min(#test, K) positions
    (discount 1 / log2(position + 1)); averaged over users with at least one test item.
    """
    U = np.asarray(user_factors, dtype=np.float32)
    V = np.asarray(item_factors, dtype=np.float32)
    train, test = sp.csr_matrix(train), sp.csr_matrix(test)
    kmax = max(ks)
    n_test = np.diff(test.indptr)
    users = np.flatnonzero(n_test > 0)
    hits = np.zeros((users.size, kmax))
    for start in range(0, users.size, users_per_block):
        block = users[start:start + users_per_block]
        scores = U[block] @ V.T
        tr = train[block]
        scores[np.repeat(np.arange(block.size), np.diff(tr.indptr)), tr.indices] = -np.inf
        top = np.argpartition(-scores, kmax - 1, axis=1)[:, :kmax]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        te = test[block]
        hits[start:start + block.size] = np.take_along_axis(te.toarray(), top, axis=1) > 0
    discount = 1.0 / np.log2(np.arange(2, kmax + 2))
    dcg = np.cumsum(hits * discount, axis=1)
    idcg_all = np.cumsum(discount)
    n_pos = n_test[users]
    out = {}
    for k in ks:
        out[f"recall@{k}"] = float(np.mean(hits[:, :k].sum(axis=1) / n_pos))
        ideal = idcg_all[np.minimum(n_pos, k) - 1]
        out[f"ndcg@{k}"] = float(np.mean(dcg[:, k - 1] / ideal))
    return out


# --------------------------------------------------------------------------------------
# The authors' training step in PyTorch
# --------------------------------------------------------------------------------------
def authors_batch_loss(torch, U, V, users, pos, neg, kind, m=1, rho=1.0, ddof=1):
    """The authors' batch loss (a re-statement of their ``loss_function``).

    Parameters
    ----------
    torch : the torch module.
    U, V : torch.nn.Embedding (users, items).
    users, pos : LongTensor (B,); neg : LongTensor (B, N), the pool of draws.
    kind : {"uniform", "dns", "softmax_v"}
    m : DNS M (the authors' ``lambda_w``); rho : Softmax-v rho (also ``lambda_w``);
    ddof : Softmax-v variance correction (1: ``torch.var``'s default, the authors').

    Returns
    -------
    (total, per_pair)
        ``per_pair[b] = sum_k w_bk * (-logsigmoid(r_ub,ib - r_ub,jbk))`` with DNS weights 1
        on the M highest-scored draws (paper Eq. 2 with the sum, Algorithm 1), Softmax-v
        weights ``softmax(L / tau)``, ``tau = sqrt(Var L / (2 rho))`` held constant (Eqs.
        17-18, 25), uniform weights 1/N (Eq. 1); ``total = per_pair.sum()``.
    """
    import torch.nn.functional as F

    ue = U(users)
    pos_score = (ue * V(pos)).sum(-1)
    neg_score = torch.bmm(V(neg), ue.unsqueeze(-1)).squeeze(-1)
    if kind == "dns":
        top = torch.topk(neg_score, m, dim=-1).values
        per_pair = -F.logsigmoid(pos_score.unsqueeze(1) - top).sum(-1)
        return per_pair.sum(), per_pair
    losses = -F.logsigmoid(pos_score.unsqueeze(1) - neg_score)
    with torch.no_grad():  # the weights are constants: no gradient through them
        if kind == "softmax_v":
            tau = torch.sqrt(torch.var(losses, dim=1, keepdim=True, correction=ddof) / (2 * rho))
            weights = torch.softmax(losses / tau, dim=1)
        elif kind == "uniform":
            weights = torch.full_like(losses, 1.0 / losses.shape[1])
        else:
            raise ValueError(f"kind must be 'uniform', 'dns' or 'softmax_v', got {kind!r}")
    per_pair = (weights * losses).sum(-1)
    return per_pair.sum(), per_pair


class AuthorsTorchTrainer:
    """MF trained with the authors' step in PyTorch, from given initial factors.

    Parameters
    ----------
    train : sparse matrix (n_users, n_items), the training pairs.
    user_factors, item_factors : float32 arrays, the initial factors (copied).
    sampler : training.sampling.Sampler (kind, n, m, rho, ddof are read; the pool is always
        drawn over all items, the DNS losses always summed, as in the authors' code).
    weight_decay : Adam's L2 coefficient, added to the gradient of every parameter.
    seed : int; the pair order comes from ``numpy.random.default_rng([seed, 1])``, the pools
        from a ``torch.Generator`` seeded with ``seed``.
    threads : torch intra-op threads.
    """

    def __init__(self, train, user_factors, item_factors, sampler, *, weight_decay=0.01,
                 lr=LR, batch_size=BATCH, seed=0, threads=2):
        import torch

        self.torch = torch
        torch.set_num_threads(threads)
        coo = sp.csr_matrix(train).tocoo()  # row-major pairs, as the authors' tocoo() of CSR
        self.pair_users = torch.from_numpy(coo.row.astype(np.int64))
        self.pair_items = torch.from_numpy(coo.col.astype(np.int64))
        self.n_items = train.shape[1]
        self.sampler = sampler
        self.batch_size = batch_size
        self.U = torch.nn.Embedding.from_pretrained(torch.from_numpy(np.array(user_factors, np.float32)),
                                                    freeze=False)
        self.V = torch.nn.Embedding.from_pretrained(torch.from_numpy(np.array(item_factors, np.float32)),
                                                    freeze=False)
        params = list(self.U.parameters()) + list(self.V.parameters())
        self.opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, LR_STEP, LR_GAMMA)
        self.order_rng = np.random.default_rng([seed, 1])
        self.gen = torch.Generator().manual_seed(seed)
        self.epoch = 0

    def step(self, users, pos):
        """One Adam step on a batch (pools drawn here); returns the summed batch loss."""
        torch = self.torch
        s = self.sampler
        neg = torch.randint(0, self.n_items, (users.shape[0], s.n), generator=self.gen)
        self.opt.zero_grad()
        total, _ = authors_batch_loss(torch, self.U, self.V, users, pos, neg, s.kind, s.m, s.rho,
                                      s.ddof)
        total.backward()
        self.opt.step()
        return float(total.detach())

    def run_epoch(self):
        """One epoch: a fresh permutation of all pairs, ``nnz // batch + 1`` batches (the
        authors' count; the last one partial, or empty when the batch size divides nnz,
        in which case Adam still steps on the weight decay alone), then the lr schedule."""
        torch = self.torch
        n = self.pair_users.shape[0]
        order = torch.from_numpy(self.order_rng.permutation(n))
        start = time.perf_counter()
        total = 0.0
        for t in range(n // self.batch_size + 1):
            idx = order[t * self.batch_size:(t + 1) * self.batch_size]
            total += self.step(self.pair_users[idx], self.pair_items[idx])
        self.sched.step()
        self.epoch += 1
        return {"loss": total / n, "seconds": time.perf_counter() - start}

    def factors(self):
        return (self.U.weight.detach().numpy().copy(), self.V.weight.detach().numpy().copy())


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------
def make_sampler(kind, n, m, rho, ddof):
    """The authors' semantics in hnslab's terms: pool over all items, DNS sum."""
    if kind == "dns":
        return S.dns(m, n, reduction="sum", pool="all")
    if kind == "softmax_v":
        return S.softmax_v(rho, n, ddof=ddof, pool="all")
    return S.uniform(n, pool="all")


def _evaluate(U, V, train, test, authors_eval):
    hn = evaluate_full_ranking(U, V, train, test, ks=KS).mean()
    out = {k: hn[k] for k in hn if k.startswith(("recall", "ndcg"))}
    if authors_eval:
        out.update({f"authors_{k}": v for k, v in authors_evaluation(U, V, train, test).items()})
    return out


def run_side(side, train, test, init, sampler, args, seed, checkpoints, log):
    """Train one side to max(checkpoints) epochs; one record per checkpoint."""
    records = []
    if side == "hnslab":
        import numba

        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
        trainer = T.Trainer(train, sampler, dim=DIM, batch_size=BATCH, lr=LR,
                              weight_decay=args.weight_decay, weight_decay_mode="adam",
                              lr_decay=True, seed=seed, threads=args.threads)
        if not (np.array_equal(trainer.model.user_factors, init[0])
                and np.array_equal(trainer.model.item_factors, init[1])):
            raise RuntimeError("the trainer's initial factors differ from init_model(seed)")
        epoch_fn = trainer.run_epoch
        factors = lambda: (trainer.model.user_factors, trainer.model.item_factors)  # noqa: E731
    else:
        trainer = AuthorsTorchTrainer(train, init[0], init[1], sampler,
                                      weight_decay=args.weight_decay, seed=seed,
                                      threads=args.threads)
        epoch_fn = trainer.run_epoch
        factors = trainer.factors
    for e in range(1, max(checkpoints) + 1):
        rec = epoch_fn()
        log(f"  seed {seed} {side:<6} epoch {e:>3}: loss/pair {rec['loss']:.5f} "
            f"({rec['seconds']:.1f} s)")
        if e in checkpoints:
            U, V = factors()
            row = {"seed": seed, "side": side, "epoch": e, "loss": rec["loss"],
                   "seconds": rec["seconds"]}
            row.update(_evaluate(U, V, train, test, args.authors_eval))
            log(f"  seed {seed} {side:<6} epoch {e:>3}: Recall@50 {row['recall@50']:.4f} "
                f"NDCG@50 {row['ndcg@50']:.4f}")
            records.append(row)
    return records


def _parser():
    default_data = data_folder() / "gowalla.mat"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=default_data, help="Gowalla .mat file")
    p.add_argument("--sampler", choices=("uniform", "dns", "softmax_v"), default="dns")
    p.add_argument("--m", type=int, default=5, help="DNS M (default 5)")
    p.add_argument("--n", type=int, default=None, help="pool size N (default 200; uniform 1)")
    p.add_argument("--rho", type=float, default=1.0, help="Softmax-v rho (default 1)")
    p.add_argument("--ddof", type=int, choices=(0, 1), default=1,
                   help="Softmax-v variance (default 1, the authors' torch.var)")
    p.add_argument("--epochs", type=int, nargs="+", default=[1, 5, 10],
                   help="evaluate after these epochs (one run to the largest)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--split", choices=("hnslab", "authors"), default="hnslab",
                   help="hnslab: split_per_user(seed); authors: their random.seed(10) split")
    p.add_argument("--authors-split-seed", type=int, default=10)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-torch", action="store_true", help="hnslab side only")
    p.add_argument("--skip-hnslab", action="store_true", help="torch side only")
    p.add_argument("--no-authors-eval", dest="authors_eval", action="store_false",
                   help="skip the numpy re-statement of the authors' evaluation")
    p.add_argument("--json", type=Path, default=None, help="also write all records here")
    p.add_argument("--results", type=Path, default=None,
                   help="append one row per record to this CSV (e.g. "
                        "results/early_learning_gowalla.csv, which the README quotes)")
    p.add_argument("--import-json", type=Path, nargs="+", default=None, metavar="FILE",
                   help="append the records of earlier --json files to --results and exit")
    p.add_argument("--revision", default=None,
                   help="with --import-json: the git revision that produced them")
    return p


def _mean_sd(values):
    v = np.asarray(values, dtype=float)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else float("nan"))


RESULT_CONFIG = ("sampler_label", "split", "weight_decay", "ddof")


def append_records(path: Path, payload: dict, revision: str) -> int:
    """Append the records of one run (a --json payload) to the CSV ``path``, atomically; a
    record already there (same configuration, side, seed and epoch) is not added twice."""
    config = payload["config"]
    rows = [{"sampler_label": payload["sampler"], "split": config["split"],
             "weight_decay": config["weight_decay"], "ddof": config["ddof"], **record,
             "git_revision": revision or git_revision()} for record in payload["records"]]
    return append_rows(path, rows, [*RESULT_CONFIG, "side", "seed", "epoch"])


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.import_json:
        if args.results is None or not args.revision:
            parser.error("--import-json needs --results and --revision")
        added = sum(append_records(args.results, json.loads(f.read_text()), args.revision)
                    for f in args.import_json)
        print(f"{added} records appended to {args.results}")
        return 0
    if args.n is None:
        args.n = 1 if args.sampler == "uniform" else 200
    try:  # argparse has the types; the ranges are theory.validation's, named by option
        check_int(args.n, "--n", low=1)
        if args.sampler == "dns":
            check_int(args.m, "--m", low=1, high=args.n, high_name="--n")
        if args.sampler == "softmax_v":
            check_int(args.n, f"--n (Softmax-v with --ddof {args.ddof})", low=args.ddof + 1)
        check_real(args.rho, "--rho", low=0.0, include_low=False)
        for epochs in args.epochs:
            check_int(epochs, "--epochs", low=1)
        for seed in args.seeds:
            check_int(seed, "--seeds", low=0)
        check_int(args.threads, "--threads", low=1)
    except ValueError as exc:
        parser.error(f"argument {exc}")
    if not args.data.exists():
        parser.error(f"--data: {args.data} not found (set HNSLAB_DATA or pass --data)")
    sides = [s for s, skip in (("hnslab", args.skip_hnslab), ("torch", args.skip_torch))
             if not skip]
    if not sides:
        parser.error("nothing to run (--skip-torch and --skip-hnslab)")
    if "torch" in sides:
        try:
            import torch  # noqa: F401
        except ImportError:
            parser.error("torch is not installed (pip install torch, CPU build), or --skip-torch")
    checkpoints = sorted(set(args.epochs))
    sampler = make_sampler(args.sampler, args.n, args.m, args.rho, args.ddof)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    matrix = load_mat(args.data)
    records = []
    for seed in args.seeds:
        if args.split == "hnslab":
            train, test = split_per_user(matrix, 0.8, seed)
        else:
            train, test = authors_split(matrix, 0.8, args.authors_split_seed)
        log(f"seed {seed}: {args.split} split, {train.nnz} train / {test.nnz} test pairs")
        init = init_model(train.shape[0], train.shape[1], DIM, INIT_STD, seed)
        init = (init.user_factors, init.item_factors)
        for side in sides:
            records.extend(run_side(side, train, test, init, sampler, args, seed, checkpoints,
                                    log))
    # Side-by-side table: one row per (seed, epoch).
    label = sampler.label()
    print(f"Gowalla, {label} with the authors' semantics (pool over all items, sum, "
          f"ddof {args.ddof}), weight decay {args.weight_decay}, {args.split} split; same init "
          "per seed")
    evals = [("", "hnslab eval")] + ([("authors_", "authors' eval")] if args.authors_eval else [])
    for prefix, name in evals:
        print(f"[{name}]  seed epoch " + "  ".join(f"{s:>6} R@50  N@50" for s in sides))
        for seed in args.seeds:
            for e in checkpoints:
                cells = []
                for s in sides:
                    r = next(r for r in records if r["seed"] == seed and r["epoch"] == e
                             and r["side"] == s)
                    cells.append(f"{r[prefix + 'recall@50']:.4f} {r[prefix + 'ndcg@50']:.4f}")
                print(f"{'':>15}{seed:>4} {e:>5}  " + "   ".join(f"{c:>17}" for c in cells))
        if len(args.seeds) > 1:
            for e in checkpoints:
                cells = []
                for s in sides:
                    rs = [r for r in records if r["epoch"] == e and r["side"] == s]
                    m, sd = _mean_sd([r[prefix + "recall@50"] for r in rs])
                    cells.append(f"{m:.4f}+-{sd:.4f}")
                print(f"{'mean+-sd':>19} {e:>5}  " + "   ".join(cells))
    for e in checkpoints:
        ref = ISSUE_REFERENCE.get((args.sampler, e))
        if ref and (args.sampler != "dns" or (args.m, args.n) == (5, 200)) \
                and (args.sampler != "softmax_v" or (args.rho, args.n) == (1.0, 200)):
            print(f"issue 14: the authors' code on their split after {e} epochs: Recall@50 "
                  f"{ref[0]:.4f}" + (f", NDCG@50 {ref[1]:.4f}" if ref[1] else ""))
    if args.json:
        atomic_write_text(args.json, json.dumps({"config": {k: (str(v) if isinstance(v, Path) else v)
                                              for k, v in vars(args).items()},
                                   "sampler": label, "records": records}, indent=2))
    if args.results:
        append_records(args.results, {"config": vars(args), "sampler": label,
                                      "records": records}, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
