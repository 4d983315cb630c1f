"""Benchmark: MF-BPR with DNS(5, 200) on Gowalla, hnslab (numba) vs PyTorch CPU, side by side.

Workload (issue "Trainer"): Gowalla (29,858 users x 40,988 items, 822,358 training pairs),
dim 32, batch 4096, pool N = 200, M = 5, Adam (lr 1e-3, weight decay 0.01 on all parameters).
Both sides run the authors' loss: pool drawn over all items (``torch.randint``), the top-5
losses of the pool *summed* (``model.py``, ``loss_type=1``), summed over the batch.

Measured side by side: each side runs in its own process (two OpenMP thread pools in one
process slow each other down), the processes alternate (hnslab, torch, hnslab, ...) so that
both see the same machine load, and medians are taken over all runs:

- hnslab: ``MFTrainer.train_batch`` (pools, scores, top-M, loss, gradient, dense Adam);
- torch "authors": the authors' forward (``user_id.unsqueeze(1).repeat(1, N)`` embedding
  lookup, elementwise product, sum), ``torch.topk``, ``-logsigmoid``, autograd, Adam;
- torch "bmm": the same loss with ``torch.bmm`` scores (a faster PyTorch formulation).

Reported: median seconds per batch; seconds per epoch (hnslab: full epochs timed; torch:
median batch x 201 batches, since a torch epoch takes minutes); the ratio; the loss (per pair and total) and the gradients of
hnslab and torch on the *same* batch (same users, positives and pools); the full-ranking
evaluation time of all 29,858 users over 40,988 items (median of repeats).

Usage::

    python benchmarks/bench_trainer.py [--data ../shared/data/gowalla.mat] [--threads 2]
        [--batches 10] [--repeats 3] [--epochs 1] [--skip-torch] [--json out.json]

torch is an optional benchmark dependency (``pip install torch==2.13.0``, the CPU build).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training import data as D  # noqa: E402
from training import sampling as S  # noqa: E402
from training import trainer as T  # noqa: E402
from training.evaluation import evaluate_full_ranking  # noqa: E402

DIM, BATCH, N, M, LR, WD = 32, 4096, 200, 5, 1e-3, 0.01


def _torch_setup(n_users, n_items, threads, seed=0):
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    U = nn.Embedding(n_users, DIM)
    V = nn.Embedding(n_items, DIM)
    nn.init.normal_(U.weight, std=0.1)
    nn.init.normal_(V.weight, std=0.1)
    opt = torch.optim.Adam(list(U.parameters()) + list(V.parameters()), lr=LR, weight_decay=WD)
    return torch, U, V, opt


def torch_loss(torch, U, V, users, pos, neg, style):
    """The authors' DNS loss (model.py, loss_type=1): sum over the batch of the sum of the
    top-M pair losses of the pool."""
    import torch.nn.functional as F

    n = neg.shape[1]
    if style == "authors":
        pos_rat = (U(users) * V(pos)).sum(-1)
        neg_rat = (U(users.unsqueeze(1).repeat(1, n)) * V(neg)).sum(-1)
    else:
        ue = U(users)
        pos_rat = (ue * V(pos)).sum(-1)
        neg_rat = torch.bmm(V(neg), ue.unsqueeze(-1)).squeeze(-1)
    top, _ = torch.topk(neg_rat, M, dim=-1)
    per_pair = -F.logsigmoid(pos_rat.unsqueeze(1) - top).sum(-1)
    return per_pair.sum(), per_pair


def torch_step(torch, U, V, opt, users, pos, n_items, style):
    opt.zero_grad()
    neg = torch.randint(0, n_items, (users.shape[0], N))
    loss, _ = torch_loss(torch, U, V, users, pos, neg, style)
    loss.backward()
    opt.step()
    return float(loss.detach())


def same_batch_comparison(train, threads):
    """hnslab and torch losses and gradients on one batch with identical pools."""
    import torch

    torch.set_num_threads(threads)
    n_users, n_items = train.shape
    sampler = S.dns(M, N, reduction="sum", pool="all")
    trainer = T.MFTrainer(train, sampler, dim=DIM, seed=1)
    order, _, _ = trainer.epoch_plan(0)
    idx = order[:BATCH]
    users, pos = trainer.pair_users[idx], trainer.pair_items[idx]
    res = T.batch_loss_and_grad(trainer.model, users, pos, sampler, train=train, seed=3)
    Ut = torch.nn.Embedding.from_pretrained(torch.from_numpy(trainer.model.user_factors.copy()),
                                            freeze=False)
    Vt = torch.nn.Embedding.from_pretrained(torch.from_numpy(trainer.model.item_factors.copy()),
                                            freeze=False)
    total, per_pair = torch_loss(torch, Ut, Vt, torch.from_numpy(users), torch.from_numpy(pos),
                                 torch.from_numpy(res.pools), "authors")
    total.backward()
    tp = per_pair.detach().numpy().astype(np.float64)
    gU, gV = Ut.weight.grad.numpy().astype(np.float64), Vt.weight.grad.numpy().astype(np.float64)
    rel = lambda a, b: float(np.max(np.abs(a - b)) / np.max(np.abs(b)))  # noqa: E731
    return {
        "loss_hnslab": float(res.losses.sum()), "loss_torch": total.item(),
        "loss_total_rel_diff": abs(float(res.losses.sum()) - total.item()) / abs(total.item()),
        "loss_per_pair_max_rel_diff": float(np.max(np.abs(res.losses - tp) / np.abs(tp))),
        "grad_user_rel_diff": rel(res.grad_user, gU), "grad_item_rel_diff": rel(res.grad_item, gV),
    }


def _load(path):
    return D.split_per_user(D.load_mat(path), 0.8, 0)


def worker(side, data, threads, batches, epochs):
    """One side of the benchmark in its own process (no two OpenMP pools in one process):
    returns per-batch seconds (and full-epoch seconds for hnslab)."""
    import numba

    train, _ = _load(data)
    n_users, n_items = train.shape
    result = {"side": side}
    if side.startswith("hnslab"):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        sampler = S.dns(M, N, reduction="sum", pool="all") if side == "hnslab" else S.dns(M, N)
        trainer = T.MFTrainer(train, sampler, dim=DIM, batch_size=BATCH, lr=LR, weight_decay=WD,
                              seed=0, threads=threads)
        order, states, per = trainer.epoch_plan(0)
        idx = order[:BATCH]
        trainer.train_batch(trainer.pair_users[idx], trainer.pair_items[idx], states[:per], LR)
        secs = []
        for t in range(1, batches + 1):
            idx = order[t * BATCH:(t + 1) * BATCH]
            start = time.perf_counter()
            trainer.train_batch(trainer.pair_users[idx], trainer.pair_items[idx],
                                states[t * per:(t + 1) * per], LR)
            secs.append(time.perf_counter() - start)
        result["batch_seconds"] = secs
        result["epoch_seconds"] = [trainer.run_epoch()["seconds"] for _ in range(epochs)]
        result["n_batches"] = trainer.n_batches
    else:
        torch, U, V, opt = _torch_setup(n_users, n_items, threads)
        style = side.split("_", 1)[1]
        pairs_u = np.repeat(np.arange(n_users), np.diff(train.indptr))
        order = np.random.default_rng(0).permutation(train.nnz)
        tu, ti = torch.from_numpy(pairs_u), torch.from_numpy(train.indices.astype(np.int64))
        secs = []
        for t in range(batches + 1):
            b = torch.from_numpy(order[t * BATCH:(t + 1) * BATCH])
            start = time.perf_counter()
            torch_step(torch, U, V, opt, tu[b], ti[b], n_items, style)
            secs.append(time.perf_counter() - start)
        result["batch_seconds"] = secs[1:]  # the first batch warms up
    return result


def _run_worker(side, args):
    import subprocess

    cmd = [sys.executable, __file__, "--worker", side, "--data", str(args.data), "--threads",
           str(args.threads), "--batches", str(args.batches), "--epochs", str(args.epochs)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("HNSLAB_DATA", Path(__file__).resolve()
                                                    .parents[2] / "shared" / "data")) / "gowalla.mat")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=10, help="timed batches per run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per side")
    parser.add_argument("--epochs", type=int, default=1, help="full hnslab epochs per run")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--eval-repeats", type=int, default=3)
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"Gowalla not found at {args.data}; set HNSLAB_DATA or pass --data", file=sys.stderr)
        return 2
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.threads, args.batches, args.epochs)))
        return 0
    import numba

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    train, test = _load(args.data)
    n_users, n_items = train.shape
    out = {"threads": numba.get_num_threads(), "n_users": n_users, "n_items": n_items,
           "n_train": int(train.nnz), "dim": DIM, "batch": BATCH, "N": N, "M": M}
    have_torch = not args.skip_torch
    if have_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch not installed: torch side skipped", file=sys.stderr)
            have_torch = False
    sides = ["hnslab", "hnslab_paper"] + (["torch_authors", "torch_bmm"] if have_torch else [])
    runs = {side: [] for side in sides}
    for _ in range(args.repeats):  # alternate the sides: both see the same machine load
        for side in sides:
            runs[side].append(_run_worker(side, args))
    for side in sides:
        batch = np.concatenate([r["batch_seconds"] for r in runs[side]])
        out[f"{side}_seconds_per_batch"] = float(np.median(batch))
        if side.startswith("hnslab"):
            n_batches = runs[side][0]["n_batches"]
            out["n_batches"] = n_batches
            epochs = np.concatenate([r["epoch_seconds"] for r in runs[side]])
            out[f"{side}_seconds_per_epoch"] = float(np.median(epochs))
            out[f"{side}_epoch_runs"] = [round(float(e), 2) for e in epochs]
    for side in sides:
        if side.startswith("torch"):
            out[f"{side}_seconds_per_epoch"] = out[f"{side}_seconds_per_batch"] * out["n_batches"]
            out[f"ratio_{side}_over_hnslab"] = (out[f"{side}_seconds_per_epoch"]
                                                / out["hnslab_seconds_per_epoch"])
    trainer = T.MFTrainer(train, S.dns(M, N), dim=DIM, seed=0)
    trainer.run_epoch()
    # Full-ranking evaluation of every user with test items.
    secs = []
    for _ in range(args.eval_repeats):
        start = time.perf_counter()
        ev = evaluate_full_ranking(trainer.model.user_factors, trainer.model.item_factors, train,
                                   test, ks=(5, 20, 50))
        secs.append(time.perf_counter() - start)
    out["eval_users"] = int(ev.users.size)
    out["eval_seconds_median"] = float(np.median(secs))
    out["eval_seconds_all"] = [round(s, 3) for s in secs]
    if have_torch:  # after the timings: torch's thread pool stays in this process
        out.update(same_batch_comparison(train, args.threads))

    print(f"Gowalla {n_users} x {n_items}, {out['n_train']} training pairs, "
          f"{out['n_batches']} batches of {BATCH}; DNS({M},{N}), dim {DIM}, {args.threads} "
          f"threads; medians over {args.repeats} alternating runs per side")
    print(f"  hnslab (authors' loss)  {out['hnslab_seconds_per_batch'] * 1e3:8.1f} ms/batch "
          f"{out['hnslab_seconds_per_epoch']:8.2f} s/epoch (full epochs {out['hnslab_epoch_runs']})")
    print(f"  hnslab (paper's loss)   {out['hnslab_paper_seconds_per_batch'] * 1e3:8.1f} ms/batch "
          f"{out['hnslab_paper_seconds_per_epoch']:8.2f} s/epoch "
          f"(full epochs {out['hnslab_paper_epoch_runs']})")
    if have_torch:
        for side in ("torch_authors", "torch_bmm"):
            print(f"  {side:<23} {out[f'{side}_seconds_per_batch'] * 1e3:8.1f} ms/batch "
                  f"{out[f'{side}_seconds_per_epoch']:8.2f} s/epoch (x{out['n_batches']} batches)"
                  f"  ->  hnslab {out[f'ratio_{side}_over_hnslab']:.1f}x faster")
        print(f"  same batch: loss hnslab {out['loss_hnslab']:.6f} torch {out['loss_torch']:.6f} "
              f"(rel. diff {out['loss_total_rel_diff']:.1e}; per pair max "
              f"{out['loss_per_pair_max_rel_diff']:.1e}); gradient rel. diff users "
              f"{out['grad_user_rel_diff']:.1e}, items {out['grad_item_rel_diff']:.1e}")
    print(f"  full-ranking evaluation of {out['eval_users']} users x {n_items} items: median "
          f"{out['eval_seconds_median']:.2f} s (runs {out['eval_seconds_all']})")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
