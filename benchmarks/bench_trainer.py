"""Benchmark: MF-BPR epochs on Gowalla per sampler, their profile, and PyTorch CPU side by side.

Workload: Gowalla (29,858 users x 40,988 items, 822,358 training pairs), dim 32, batch 4096,
pool N = 200, Adam (lr 1e-3, weight decay 0.01 on all parameters).

Sides, each in its own process (two OpenMP pools in one process slow each other down),
alternating (hnslab 2 threads, hnslab 1 thread, torch, hnslab 2 threads, ...) so that all
see the same machine load; medians over the repeats, spread = min-max over the repeats:

- hnslab: full epochs of DNS(5, 200) (paper's loss), DNS(5, 200) with the authors' loss
  (pool over all items, top-5 losses summed), Softmax-v(1, 200), score-softmax(1, 200),
  uniform (N = 1), timed by ``Trainer.run_epoch`` (training only); the JIT compilation is
  done by a warm-up batch and reported apart.  Per batch, a profile of the parts timed
  alone (the same batch, repeated): pool draws, draw + score, weights (top-M selection for
  DNS; losses, variance and softmax for Softmax-v), gradient (the forward kernel without
  draws minus score and weights, plus the item and user gradient accumulation), Adam; and
  how close the batch is to the sum of its parts.  Peak resident memory of the process.
- torch "authors": the authors' forward (``user_id.unsqueeze(1).repeat(1, N)`` embedding
  lookup, elementwise product, sum), ``torch.topk``, ``-logsigmoid``, autograd, Adam, with
  the authors' DNS(5, 200) loss; epoch = median batch x number of batches (a torch epoch
  takes minutes).  The ratio is against hnslab's authors'-loss DNS epoch of the same repeat.

Also: loss and gradients of hnslab and torch on the *same* batch (same users, positives and
pools).  The last lines print the ratios Softmax-v / DNS and PyTorch / DNS.

Usage::

    python benchmarks/bench_trainer.py [--data ../shared/data/gowalla.mat] [--threads 2]
        [--batches 8] [--repeats 3] [--skip-torch] [--json out.json]

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
from numba import njit, prange

from training import kernels as K
from training import sampling as S
from training import trainer as T
from training.datasets import data_folder
from training.loaders import load_mat
from training.split import split_per_user

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
    sampler = S.dns(M, N, reduction="sum", pool="all")
    trainer = T.Trainer(train, sampler, dim=DIM, seed=1)
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
    return split_per_user(load_mat(path), 0.8, 0)


def samplers():
    """(key, sampler) of the timed hnslab epochs."""
    return [("dns", S.dns(M, N)), ("dns_authors", S.dns(M, N, reduction="sum", pool="all")),
            ("softmax_v", S.softmax_v(1.0, N)), ("score_softmax", S.score_softmax(1.0, N)),
            ("uniform", S.uniform(1))]


# Parts of a batch, as kernels of their own (the trainer fuses them).
# cache=False here: numba keys a cached function on its own file only, so a cached copy would
# keep running the training kernels it inlined before they were edited (it did: an earlier
# profile timed stale Softmax-v weights).  The first of the median's repeats compiles.
@njit(parallel=True, cache=False, fastmath={"reassoc", "contract", "nsz"})
def _score_pools(U, V, users, pos, pools, chunk, pos_out, out):
    n_pairs, n = pools.shape
    for c in prange((n_pairs + chunk - 1) // chunk):
        urow = np.empty(U.shape[1])
        for b in range(c * chunk, min(n_pairs, (c + 1) * chunk)):
            for d in range(U.shape[1]):
                urow[d] = U[users[b], d]
            pos_out[b] = K._dot(urow, V, pos[b])
            for k in range(n):
                out[b, k] = K._dot(urow, V, pools[b, k])


@njit(parallel=True, cache=False)
def _weights(pos_scores, scores, states, chunk, sampler, loss_out):
    n_pairs, n = scores.shape
    for c in prange((n_pairs + chunk - 1) // chunk):
        scratch = S.new_scratch(n)
        for b in range(c * chunk, min(n_pairs, (c + 1) * chunk)):
            loss_out[b], _ = S.pool_loss_weights(sampler, pos_scores[b], scores[b], states[c],
                                                 scratch)


def _median_ms(fn, repeats):
    secs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        secs.append(time.perf_counter() - start)
    return float(np.median(secs)) * 1e3


def profile_batch(trainer, repeats):
    """Median wall milliseconds of the parts of one batch (the first of epoch 0), each timed
    alone on the same batch, and of the whole batch."""
    order, states, per = trainer.epoch_plan(0)
    idx = order[:trainer.batch_size]
    users, pos = trainer.pair_users[idx], trainer.pair_items[idx]
    st = states[:per]
    s, ws, n = trainer.sampler, trainer._ws, idx.size
    U, V = trainer.model.embeddings()
    gU, gV, tU, tV = trainer._grad[0], trainer._grad[1], trainer._touched[0], trainer._touched[1]
    exclude = s.pool == "negatives"
    pools = S.draw_pools(users, s, trainer.train, seed=0)
    scores, pos_scores, loss = np.empty(pools.shape), np.empty(n), np.empty(n)

    def draw():
        S._draw_pools_kernel(users, V.shape[0], trainer.indptr, trainer.indices, exclude,
                             st.copy(), K.PAIR_CHUNK, ws.pools[:n])

    def forward(drawn):
        if not drawn:
            ws.pools[:n] = pools
        batch = K.PairBatch(users, pos, ws.pools[:n], drawn, exclude, st.copy(), trainer.indptr,
                            trainer.indices)
        K.forward(U, V, batch, s.kernel, 0.0, ws.outputs(n), ws.entries(n), s.spec.full_pool)

    def accumulate():
        K.accumulate_items(U, V, ws.entries(n), 0.0, gV, tV)
        K.accumulate_users(users, ws.gu[:n], gU, tU)

    def adam():
        trainer.adam.step(trainer._grad, trainer._touched, 1e-9, WD)

    def batch():
        trainer.train_batch(users, pos, st.copy(), 1e-9)  # tiny lr: the model stays put

    out = {}
    out["draw"] = _median_ms(draw, repeats)
    out["score"] = _median_ms(lambda: _score_pools(U, V, users, pos, pools, K.PAIR_CHUNK,
                                                   pos_scores, scores), repeats)
    out["weights"] = _median_ms(lambda: _weights(pos_scores, scores, st.copy(), K.PAIR_CHUNK,
                                                 s.kernel, loss), repeats)
    forward_nodraw = _median_ms(lambda: forward(False), repeats)
    accumulate_ms = _median_ms(accumulate, repeats)
    out["gradient"] = max(forward_nodraw - out["score"] - out["weights"], 0.0) + accumulate_ms
    out["pair_pass"], out["item_accumulation"] = forward_nodraw, accumulate_ms
    out["adam"] = _median_ms(adam, repeats)
    out["sum"] = sum(out[k] for k in ("draw", "score", "weights", "gradient", "adam"))
    out["batch"] = _median_ms(batch, repeats)
    return out


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def worker(side, data, threads, batches, epochs):
    """One side of the benchmark in its own process (no two OpenMP pools in one process)."""
    import numba

    train, _ = _load(data)
    n_users, n_items = train.shape
    result = {"side": side}
    if side.startswith("hnslab"):
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        result["epoch_seconds"], result["compile_seconds"], result["profile"] = {}, {}, {}
        for key, sampler in samplers():
            trainer = T.Trainer(train, sampler, dim=DIM, batch_size=BATCH, lr=LR,
                                weight_decay=WD, seed=0, threads=threads)
            order, states, per = trainer.epoch_plan(0)
            start = time.perf_counter()  # first batch: JIT compilation (or cache load)
            trainer.train_batch(trainer.pair_users[order[:BATCH]],
                                trainer.pair_items[order[:BATCH]], states[:per], LR)
            result["compile_seconds"][key] = time.perf_counter() - start
            result["epoch_seconds"][key] = [trainer.run_epoch()["seconds"]
                                            for _ in range(epochs)]
            if side == "hnslab" and key != "dns_authors":
                result["profile"][key] = profile_batch(trainer, batches)
            result["n_batches"] = trainer.n_batches
        result["peak_rss_mb"] = _peak_rss_mb()
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
        result["peak_rss_mb"] = _peak_rss_mb()
    return result


def _run_worker(side, args, threads):
    import subprocess

    cmd = [sys.executable, __file__, "--worker", side, "--data", str(args.data), "--threads",
           str(threads), "--batches", str(args.batches), "--epochs", str(args.epochs)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker {side} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _spread(values, fmt="{:.2f}"):
    v = np.asarray(values, float)
    return f"{fmt.format(np.median(v))} ({fmt.format(v.min())}-{fmt.format(v.max())})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=data_folder() / "gowalla.mat")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batches", type=int, default=8,
                        help="repeats of each profiled part; timed torch batches per run")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per side")
    parser.add_argument("--epochs", type=int, default=1, help="full hnslab epochs per run")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    if not args.data.exists():
        print(f"Gowalla not found at {args.data}; set HNSLAB_DATA or pass --data", file=sys.stderr)
        return 2
    for name in ("threads", "batches", "repeats", "epochs"):
        if getattr(args, name) < 1:
            parser.error(f"argument --{name}: must be >= 1")
    if args.worker:
        print(json.dumps(worker(args.worker, args.data, args.threads, args.batches, args.epochs)))
        return 0
    have_torch = not args.skip_torch
    if have_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch not installed: torch side skipped", file=sys.stderr)
            have_torch = False
    sides = [("hnslab", args.threads)]
    if args.threads > 1:
        sides.append(("hnslab_1thread", 1))
    if have_torch:
        sides.append(("torch_authors", args.threads))
    runs = {side: [] for side, _ in sides}
    load = []
    for _ in range(args.repeats):  # alternate the sides: all see the same machine load
        for side, threads in sides:
            load.append(os.getloadavg()[0])
            runs[side].append(_run_worker(side, args, threads))
    keys = [k for k, _ in samplers()]
    main_runs = runs["hnslab"]
    n_batches = main_runs[0]["n_batches"]
    epoch = {side: {k: [float(np.median(r["epoch_seconds"][k])) for r in runs[side]] for k in keys}
             for side, _ in sides if side.startswith("hnslab")}
    out = {"threads": args.threads, "repeats": args.repeats, "n_batches": n_batches,
           "load_average_1min": load, "epoch_seconds": epoch,
           "compile_seconds": [r["compile_seconds"] for r in main_runs],
           "peak_rss_mb": {side: max(r["peak_rss_mb"] for r in runs[side]) for side, _ in sides}}
    labels = {k: s.label() + (" authors' loss" if k == "dns_authors" else "")
              for k, s in samplers()}
    print(f"Gowalla, {out['n_batches']} batches of {BATCH}, dim {DIM}; medians over "
          f"{args.repeats} alternating runs per side (min-max in brackets); 1-min load average "
          f"during the runs {min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores (a busy "
          "machine: absolute times are inflated, ratios measured side by side)")
    first_compile = main_runs[0]["compile_seconds"]
    print("JIT compile (first batch of each sampler, first run; later runs load numba's cache): "
          + ", ".join(f"{labels[k]} {first_compile[k]:.1f} s" for k in keys))
    print("\nEpoch seconds (training only)      " + "".join(
        f"{side + (f' ({t} thr)' if side == 'hnslab' else ''):>26}" for side, t in sides
        if side.startswith("hnslab")) + "   1 thr / 2 thr")
    for k in keys:
        row = f"  {labels[k]:<33}" + "".join(f"{_spread(epoch[side][k]):>26}" for side, _ in sides
                                             if side.startswith("hnslab"))
        if "hnslab_1thread" in epoch:
            row += "   " + _spread(np.array(epoch["hnslab_1thread"][k]) / np.array(epoch["hnslab"][k]))
        print(row)
    parts = ("draw", "score", "weights", "gradient", "adam")
    print(f"\nProfile of one batch ({args.threads} threads; ms, median of {args.batches} repeats of "
          "each part alone, median over runs); 'gradient' = forward without draws - score - "
          "weights + item/user accumulation; weights = top-M selection for DNS")
    print(f"  {'sampler':<20}" + "".join(f"{p:>10}" for p in parts)
          + f"{'sum':>10}{'batch':>10}{'batch/sum':>11}{'epoch/(sum x batches)':>23}")
    for k in keys:
        if k not in main_runs[0]["profile"]:
            continue
        prof = {p: float(np.median([r["profile"][k][p] for r in main_runs]))
                for p in parts + ("sum", "batch")}
        closeness = np.median(epoch["hnslab"][k]) / (prof["sum"] * 1e-3 * n_batches)
        print(f"  {labels[k]:<20}" + "".join(f"{prof[p]:10.1f}" for p in parts)
              + f"{prof['sum']:10.1f}{prof['batch']:10.1f}{prof['batch'] / prof['sum']:11.2f}"
              + f"{closeness:23.2f}")
        out.setdefault("profile_ms", {})[k] = prof
    print("  Softmax-v's unavoidable parts are draw + score (pools), weights (N losses, variance, "
          "N exponentials), gradient (through all N items) and Adam: the row above.")
    print("\nPeak resident memory: " + ", ".join(f"{side} {mb:.0f} MB"
                                                 for side, mb in out["peak_rss_mb"].items()))
    if have_torch:
        tb = [float(np.median(r["batch_seconds"])) for r in runs["torch_authors"]]
        out["torch_authors_seconds_per_batch"] = tb
        out.update(same_batch_comparison(_load(args.data)[0], args.threads))
        print(f"PyTorch authors' DNS({M},{N}): {_spread(np.array(tb) * 1e3, '{:.0f}')} ms/batch, "
              f"epoch {_spread(np.array(tb) * n_batches, '{:.0f}')} s (median batch x {n_batches})")
        print(f"  same batch: loss hnslab {out['loss_hnslab']:.6f} torch {out['loss_torch']:.6f} "
              f"(rel. diff {out['loss_total_rel_diff']:.1e}; per pair max "
              f"{out['loss_per_pair_max_rel_diff']:.1e}); gradient rel. diff users "
              f"{out['grad_user_rel_diff']:.1e}, items {out['grad_item_rel_diff']:.1e}")
    sv = np.array(epoch["hnslab"]["softmax_v"]) / np.array(epoch["hnslab"]["dns"])
    ss = np.array(epoch["hnslab"]["score_softmax"]) / np.array(epoch["hnslab"]["dns"])
    out["ratio_softmax_v_over_dns"] = sv.tolist()
    out["ratio_score_softmax_over_dns"] = ss.tolist()
    print(f"\nSoftmax-v(1,{N}) / DNS({M},{N}) epoch ({args.threads} threads, same run): "
          f"{_spread(sv)}   (score-softmax / DNS: {_spread(ss)})")
    if have_torch:
        tr = np.array(tb) * n_batches / np.array(epoch["hnslab"]["dns_authors"])
        out["ratio_torch_over_dns"] = tr.tolist()
        print(f"PyTorch CPU / hnslab DNS({M},{N}) epoch, authors' loss ({args.threads} threads, "
              f"same run): {_spread(tr, '{:.1f}')}x")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
