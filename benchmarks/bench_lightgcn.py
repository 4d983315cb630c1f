"""Benchmark: LightGCN on Gowalla, hnslab (numba) vs PyTorch CPU and scipy, side by side.

Workload (issue 13, item 5): Gowalla (29,858 users x 40,988 items, 822,358 training pairs
after ``split_per_user(matrix, 0.8, seed=0)``), dim 32, L = 3 layers.

(a) One LightGCN propagation, forward (3 layers and the mean of layers 0..3), on the same
    normalised graph ``A_hat = D^-1/2 A D^-1/2``:

    - hnslab: ``LightGCN.embeddings()`` (numba CSR SpMM, float32); also one layer alone
      (``propagate``) and the backward pass (``backward``: 3 layers in float64);
    - torch: ``torch.sparse_csr_tensor`` ``@`` dense, float32, int32 and int64 indices (the
      faster is the baseline), 3 layers then ``torch.stack(...).mean(1)`` as the LightGCN
      authors' ``computer()``; one layer alone;
    - scipy: ``csr_matrix @ dense`` (float32), 3 layers and the mean; scipy is single-threaded.

(b) One training step of LightGCN with DNS(5, 200), batch 4096 pairs:

    - torch baseline, written from the paper and the authors' code: ego tables
      (``nn.Embedding``, xavier-normal), propagation with the CSR ``@`` (autograd flows back
      through it), pools of 200 uniform items (``torch.randint``), pool scores with the
      final embeddings (``bmm``), ``torch.topk`` 5, the BPR loss of each of the top-5 averaged
      (weights 1/M, the paper's Eq. 2; the authors' code sums them: same cost), summed over the
      batch, ``backward``, Adam (lr 1e-3, weight decay 0.01) step.  Timed per batch; per-epoch
      time = median batch x 201 batches (822,358 / 4096).
    - hnslab: real epochs of ``training.trainer.Trainer(model="lightgcn")`` (same sampler:
      DNS(5, 200), mean of the top 5, pools over all items) and its per-batch times.

Method: every (side, thread count) runs in its own process (two OpenMP pools in one process
slow each other down); the processes alternate (hnslab, torch, scipy, hnslab, ...) so that
all sides see the same machine load; medians over all timed calls of all repeats.  The first
call of each process is timed apart (numba: loading the cached compiled kernels, or compiling
them when the cache is cold; torch: first-touch allocations).  Threads: numba and torch set
to the same count (``numba.set_num_threads`` / ``torch.set_num_threads``).  Memory: each
process reports its peak resident set (``getrusage``) and its resident set before the model
was built; the hnslab processes also report tracemalloc's peak of numpy allocations from the
model's construction on (the steady state allocates no big arrays per batch).

Usage::

    python benchmarks/bench_lightgcn.py [--data ../shared/data/gowalla.mat] [--threads 1 2]
        [--repeats 3] [--calls 7] [--step-threads 2] [--batches 4] [--epochs 1]
        [--skip-torch] [--skip-step] [--json out.json]

Without the data file, a synthetic graph of Gowalla's shape (same numbers of users, items and
training pairs, power-law item popularity) stands in, and the output says so.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from training.datasets import data_folder
from training.lightgcn import LightGCN

DIM, LAYERS, BATCH, N, M, LR, WD = 32, 3, 4096, 200, 5, 1e-3, 0.01
GOWALLA_SHAPE, GOWALLA_TRAIN = (29_858, 40_988), 822_358


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
def _load_split(path: Path):
    """Gowalla's training matrix, split as the reproduction does."""
    from training.loaders import load_mat
    from training.split import split_per_user

    train, _ = split_per_user(load_mat(path), 0.8, seed=0)
    return sp.csr_matrix(train)


def _synthetic(seed=0):
    """Gowalla-shaped stand-in: uniform users, Pareto item popularity, duplicates topped up."""
    rng = np.random.default_rng(seed)
    (nu, ni), target = GOWALLA_SHAPE, GOWALLA_TRAIN
    keys = np.empty(0, np.int64)
    while keys.size < target:
        k = 2 * (target - keys.size)
        items = np.minimum((rng.pareto(1.0, k) * 50).astype(np.int64), ni - 1)
        keys = np.unique(np.concatenate([keys, rng.integers(0, nu, k) * ni + items]))
    keys = rng.permutation(keys)[:target]
    return sp.csr_matrix((np.ones(target), (keys // ni, keys % ni)), shape=(nu, ni))


def _rss_mb() -> float:
    """Current resident set (MB)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KB


# --------------------------------------------------------------------------------------
# (a) propagation workers
# --------------------------------------------------------------------------------------
def _set_threads(threads, with_torch):
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    if with_torch:
        import torch

        torch.set_num_threads(threads)


def _timed(f, calls):
    start = time.perf_counter()
    f()
    first = time.perf_counter() - start
    secs = []
    for _ in range(calls):
        start = time.perf_counter()
        f()
        secs.append(time.perf_counter() - start)
    return first, secs


def prop_worker(side, train, threads, calls):
    out = {"side": side, "threads": threads, "rss_before_mb": _rss_mb()}
    if side == "hnslab":
        import tracemalloc

        _set_threads(threads, False)
        tracemalloc.start()
        model = LightGCN(train, dim=DIM, layers=LAYERS, seed=0)
        after_init = tracemalloc.get_traced_memory()[0]
        xu, xi = model.parameters
        gu, gi = np.zeros((model.n_users, DIM)), np.zeros((model.n_items, DIM))
        tu, ti = np.zeros(model.n_users, np.uint8), np.zeros(model.n_items, np.uint8)
        out["forward_first"], out["forward"] = _timed(model.embeddings, calls)
        out["layer_first"], out["layer"] = _timed(lambda: model.propagate(xu, xi), calls)
        out["backward_first"], out["backward"] = _timed(
            lambda: model.backward(gu, gi, tu, ti), calls)
        out["tracemalloc_model_mb"] = after_init / 2**20
        out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    elif side == "torch":
        import torch

        _set_threads(threads, True)
        a = LightGCN(train, dim=DIM, layers=0, seed=0).adjacency().astype(np.float32)
        x = torch.from_numpy(np.vstack(LightGCN(train, dim=DIM, layers=0, seed=0).parameters))
        for itype in ("int32", "int64"):
            g = torch.sparse_csr_tensor(torch.from_numpy(a.indptr.astype(itype)),
                                        torch.from_numpy(a.indices.astype(itype)),
                                        torch.from_numpy(a.data), size=a.shape)

            def forward(g=g):
                embs, cur = [x], x
                for _ in range(LAYERS):
                    cur = g @ cur
                    embs.append(cur)
                return torch.stack(embs, dim=1).mean(dim=1)

            with torch.no_grad():
                out[f"forward_{itype}_first"], out[f"forward_{itype}"] = _timed(forward, calls)
                out[f"layer_{itype}_first"], out[f"layer_{itype}"] = _timed(lambda g=g: g @ x,
                                                                            calls)
    else:  # scipy (single-threaded whatever the setting)
        a = LightGCN(train, dim=DIM, layers=0, seed=0).adjacency().astype(np.float32)
        x = np.vstack(LightGCN(train, dim=DIM, layers=0, seed=0).parameters)

        def forward():
            cur, total = x, x.copy()
            for _ in range(LAYERS):
                cur = a @ cur
                total += cur
            return total / (LAYERS + 1)

        out["forward_first"], out["forward"] = _timed(forward, calls)
        out["layer_first"], out["layer"] = _timed(lambda: a @ x, calls)
    out["peak_rss_mb"] = _peak_mb()
    return out


# --------------------------------------------------------------------------------------
# (b) training-step workers
# --------------------------------------------------------------------------------------
def torch_step_worker(train, threads, batches):
    import torch
    import torch.nn.functional as F
    from torch import nn

    _set_threads(threads, True)
    torch.manual_seed(0)
    out = {"side": "torch_step", "threads": threads, "rss_before_mb": _rss_mb()}
    n_users, n_items = train.shape
    a = LightGCN(train, dim=DIM, layers=0, seed=0).adjacency().astype(np.float32)
    graph = torch.sparse_csr_tensor(torch.from_numpy(a.indptr.astype(np.int32)),
                                    torch.from_numpy(a.indices.astype(np.int32)),
                                    torch.from_numpy(a.data), size=a.shape)
    users_t, items_t = nn.Embedding(n_users, DIM), nn.Embedding(n_items, DIM)
    nn.init.xavier_normal_(users_t.weight)  # the LightGCN code's xavier init of the ego tables
    nn.init.xavier_normal_(items_t.weight)
    opt = torch.optim.Adam([users_t.weight, items_t.weight], lr=LR, weight_decay=WD)
    pair_users = torch.from_numpy(np.repeat(np.arange(n_users), np.diff(train.indptr)))
    pair_items = torch.from_numpy(train.indices.astype(np.int64))
    order = torch.from_numpy(np.random.default_rng(0).permutation(train.nnz))

    def step(t):
        idx = order[t * BATCH:(t + 1) * BATCH]
        users, pos = pair_users[idx], pair_items[idx]
        opt.zero_grad()
        # LightGCN computer(): propagate the ego tables, mean of layers 0..L.
        all_emb = torch.cat([users_t.weight, items_t.weight])
        embs = [all_emb]
        for _ in range(LAYERS):
            all_emb = graph @ all_emb
            embs.append(all_emb)
        final = torch.stack(embs, dim=1).mean(dim=1)
        user_emb, item_emb = torch.split(final, [n_users, n_items])
        u = user_emb[users]
        pos_scores = (u * item_emb[pos]).sum(-1)
        neg = torch.randint(0, n_items, (users.shape[0], N))
        neg_scores = torch.bmm(item_emb[neg], u.unsqueeze(-1)).squeeze(-1)
        top, _ = torch.topk(neg_scores, M, dim=-1)
        loss = (-F.logsigmoid(pos_scores.unsqueeze(1) - top)).mean(-1).sum()
        loss.backward()
        opt.step()
        return float(loss.detach())

    start = time.perf_counter()
    step(0)
    out["first_batch"] = time.perf_counter() - start
    secs = []
    for t in range(1, batches + 1):
        start = time.perf_counter()
        step(t)
        secs.append(time.perf_counter() - start)
    out["batch"] = secs
    out["peak_rss_mb"] = _peak_mb()
    return out


def hnslab_step_worker(train, threads, batches, epochs):
    import tracemalloc

    _set_threads(threads, False)
    out = {"side": "hnslab_step", "threads": threads, "rss_before_mb": _rss_mb()}
    tracemalloc.start()
    from training import sampling as S
    from training import trainer as T

    trainer = T.Trainer(train, S.dns(M, N, pool="all"), model="lightgcn", layers=LAYERS,
                        dim=DIM, batch_size=BATCH, lr=LR, weight_decay=WD, seed=0,
                        threads=threads)
    out["tracemalloc_model_mb"] = tracemalloc.get_traced_memory()[0] / 2**20
    order, states, per = trainer.epoch_plan(0)
    lr = trainer.current_lr()

    def batch(t):
        idx = order[t * BATCH:(t + 1) * BATCH]
        trainer.train_batch(trainer.pair_users[idx], trainer.pair_items[idx],
                            states[t * per:(t + 1) * per], lr)

    out["n_batches"] = trainer.n_batches
    start = time.perf_counter()
    batch(0)
    out["first_batch"] = time.perf_counter() - start
    secs = []
    for t in range(1, batches + 1):
        start = time.perf_counter()
        batch(t)
        secs.append(time.perf_counter() - start)
    out["batch"] = secs
    out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out["epoch"] = [trainer.run_epoch()["seconds"] for _ in range(epochs)]
    out["peak_rss_mb"] = _peak_mb()
    return out


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------
def _run(args, kind, side, threads, npz):
    cmd = [sys.executable, __file__, "--worker", f"{kind}:{side}:{threads}", "--npz", str(npz),
           "--calls", str(args.calls), "--batches", str(args.batches), "--epochs",
           str(args.epochs)]
    env = dict(os.environ, NUMBA_NUM_THREADS=str(max(args.threads + [args.step_threads])))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {kind}:{side}:{threads} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _med(runs, key):
    return float(np.median(np.concatenate([r[key] for r in runs])))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=data_folder() / "gowalla.mat")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="thread counts of part (a)")
    parser.add_argument("--repeats", type=int, default=3, help="alternating processes per side")
    parser.add_argument("--calls", type=int, default=7, help="timed calls per process")
    parser.add_argument("--step-threads", type=int, default=2, help="threads of part (b)")
    parser.add_argument("--batches", type=int, default=4, help="timed batches per process")
    parser.add_argument("--epochs", type=int, default=1, help="hnslab epochs per process "
                        "(when the trainer has LightGCN)")
    parser.add_argument("--skip-torch", action="store_true")
    parser.add_argument("--skip-step", action="store_true", help="part (a) only")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--npz", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*[Ss]parse.*")  # torch's beta-state notices

    if args.worker:
        kind, side, threads = args.worker.split(":")
        train = sp.load_npz(args.npz).tocsr()
        if kind == "prop":
            res = prop_worker(side, train, int(threads), args.calls)
        elif side == "torch":
            res = torch_step_worker(train, int(threads), args.batches)
        else:
            res = hnslab_step_worker(train, int(threads), args.batches, args.epochs)
        print(json.dumps(res))
        return 0

    synthetic = not args.data.exists()
    train = _synthetic() if synthetic else _load_split(args.data)
    have_torch = not args.skip_torch
    if have_torch:
        try:
            import torch  # noqa: F401
        except ImportError:
            print("torch not installed: torch sides skipped", file=sys.stderr)
            have_torch = False
    out = {"data": "synthetic Gowalla-shaped graph" if synthetic else str(args.data),
           "n_users": train.shape[0], "n_items": train.shape[1], "n_train": int(train.nnz),
           "dim": DIM, "layers": LAYERS, "load_avg": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "train.npz"
        sp.save_npz(npz, train)
        sides = ["hnslab"] + (["torch"] if have_torch else []) + ["scipy"]
        for threads in args.threads:
            runs = {s: [] for s in sides}
            for _ in range(args.repeats):
                for s in sides:
                    runs[s].append(_run(args, "prop", s, threads, npz))
            res = {}
            h = runs["hnslab"]
            for key in ("forward", "layer", "backward"):
                res[f"hnslab_{key}_ms"] = 1e3 * _med(h, key)
                res[f"hnslab_{key}_first_ms"] = [round(1e3 * r[f"{key}_first"], 1) for r in h]
            res["hnslab_peak_rss_mb"] = max(r["peak_rss_mb"] for r in h)
            res["hnslab_rss_before_mb"] = min(r["rss_before_mb"] for r in h)
            res["hnslab_tracemalloc_model_mb"] = h[0]["tracemalloc_model_mb"]
            res["hnslab_tracemalloc_peak_mb"] = max(r["tracemalloc_peak_mb"] for r in h)
            if have_torch:
                t = runs["torch"]
                for itype in ("int32", "int64"):
                    res[f"torch_forward_{itype}_ms"] = 1e3 * _med(t, f"forward_{itype}")
                    res[f"torch_layer_{itype}_ms"] = 1e3 * _med(t, f"layer_{itype}")
                best = min(("int32", "int64"), key=lambda i: res[f"torch_forward_{i}_ms"])
                res["torch_best_index"] = best
                res["torch_forward_ms"] = res[f"torch_forward_{best}_ms"]
                res["torch_layer_ms"] = res[f"torch_layer_{best}_ms"]
                res["ratio_torch_over_hnslab_forward"] = (res["torch_forward_ms"]
                                                          / res["hnslab_forward_ms"])
                res["ratio_torch_over_hnslab_layer"] = res["torch_layer_ms"] / res["hnslab_layer_ms"]
                res["torch_peak_rss_mb"] = max(r["peak_rss_mb"] for r in t)
            s = runs["scipy"]
            res["scipy_forward_ms"] = 1e3 * _med(s, "forward")
            res["scipy_layer_ms"] = 1e3 * _med(s, "layer")
            res["ratio_scipy_over_hnslab_forward"] = res["scipy_forward_ms"] / res["hnslab_forward_ms"]
            out[f"propagation_threads_{threads}"] = res
        if not args.skip_step:
            steps = {s: [] for s in (["hnslab"] + (["torch"] if have_torch else []))}
            for _ in range(args.repeats):
                for s, runs_s in steps.items():
                    runs_s.append(_run(args, "step", s, args.step_threads, npz))
            h = steps["hnslab"]
            res = {"threads": args.step_threads,
                   "n_batches": h[0]["n_batches"],
                   "hnslab_batch_ms": 1e3 * _med(h, "batch"),
                   "hnslab_first_batch_s": [round(r["first_batch"], 2) for r in h],
                   "hnslab_peak_rss_mb": max(r["peak_rss_mb"] for r in h),
                   "hnslab_rss_before_mb": min(r["rss_before_mb"] for r in h),
                   "hnslab_tracemalloc_model_mb": h[0]["tracemalloc_model_mb"],
                   "hnslab_tracemalloc_peak_mb": max(r["tracemalloc_peak_mb"] for r in h)}
            res["hnslab_epoch_s"] = _med(h, "epoch")
            if have_torch:
                t = steps["torch"]
                res["torch_batch_ms"] = 1e3 * _med(t, "batch")
                res["torch_epoch_s"] = res["torch_batch_ms"] * res["n_batches"] / 1e3
                res["torch_peak_rss_mb"] = max(r["peak_rss_mb"] for r in t)
                res["torch_rss_before_mb"] = min(r["rss_before_mb"] for r in t)
                res["ratio_torch_over_hnslab_epoch"] = res["torch_epoch_s"] / res["hnslab_epoch_s"]
            out["step"] = res
    out["load_avg_end"] = os.getloadavg()
    _report(out, args)
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(out, indent=2))
        tmp.replace(args.json)
    return 0


def _report(out, args):
    print(f"LightGCN on {out['data']}: {out['n_users']} x {out['n_items']}, {out['n_train']} "
          f"training pairs; dim {DIM}, {LAYERS} layers; medians over {args.repeats} alternating "
          f"processes x {args.calls} calls; load average {out['load_avg'][0]:.1f} at start, "
          f"{out['load_avg_end'][0]:.1f} at end (2 cores: the machine is shared and busy)")
    for threads in args.threads:
        r = out[f"propagation_threads_{threads}"]
        print(f" (a) propagation, {threads} thread(s), ms (forward = 3 layers + mean):")
        print(f"     hnslab  forward {r['hnslab_forward_ms']:7.1f}  one layer "
              f"{r['hnslab_layer_ms']:6.1f}  backward (float64) {r['hnslab_backward_ms']:7.1f}"
              f"  [first forward per process: {r['hnslab_forward_first_ms']} ms]")
        if "torch_forward_ms" in r:
            print(f"     torch   forward {r['torch_forward_ms']:7.1f}  one layer "
                  f"{r['torch_layer_ms']:6.1f}  ({r['torch_best_index']} indices; int32/int64 "
                  f"forward {r['torch_forward_int32_ms']:.1f}/{r['torch_forward_int64_ms']:.1f})"
                  f"  -> torch / hnslab: forward {r['ratio_torch_over_hnslab_forward']:.2f}x, "
                  f"layer {r['ratio_torch_over_hnslab_layer']:.2f}x")
        print(f"     scipy   forward {r['scipy_forward_ms']:7.1f}  one layer "
              f"{r['scipy_layer_ms']:6.1f}  -> scipy / hnslab forward "
              f"{r['ratio_scipy_over_hnslab_forward']:.2f}x (scipy is single-threaded)")
        print(f"     memory: hnslab peak RSS {r['hnslab_peak_rss_mb']:.0f} MB (before the model "
              f"{r['hnslab_rss_before_mb']:.0f} MB; model arrays {r['hnslab_tracemalloc_model_mb']:.0f}"
              f" MB, tracemalloc peak {r['hnslab_tracemalloc_peak_mb']:.0f} MB)"
              + (f"; torch peak RSS {r['torch_peak_rss_mb']:.0f} MB" if "torch_peak_rss_mb" in r
                 else ""))
    if "step" in out:
        r = out["step"]
        print(f" (b) LightGCN DNS({M},{N}) step, batch {BATCH}, {r['threads']} thread(s):")
        print(f"     hnslab  {r['hnslab_batch_ms']:8.1f} ms/batch  epoch "
              f"{r['hnslab_epoch_s']:.2f} s (real epochs)")
        if "torch_batch_ms" in r:
            print(f"     torch   {r['torch_batch_ms']:8.1f} ms/batch  epoch {r['torch_epoch_s']:.1f}"
                  f" s (x {r['n_batches']} batches)  -> torch / hnslab "
                  f"{r['ratio_torch_over_hnslab_epoch']:.1f}x")
        print(f"     memory: hnslab peak RSS {r['hnslab_peak_rss_mb']:.0f} MB (before "
              f"{r['hnslab_rss_before_mb']:.0f} MB; model arrays {r['hnslab_tracemalloc_model_mb']:.0f}"
              f" MB, tracemalloc peak {r['hnslab_tracemalloc_peak_mb']:.0f} MB)"
              + (f"; torch peak RSS {r['torch_peak_rss_mb']:.0f} MB (before "
                 f"{r['torch_rss_before_mb']:.0f} MB)" if "torch_peak_rss_mb" in r else ""))


if __name__ == "__main__":
    sys.exit(main())
