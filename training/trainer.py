"""The training loop: any model of :mod:`training.models` trained with BPR under a sampler.

Objective
---------
One epoch is one pass over all training (user, positive) pairs in a random order, in
batches of ``batch_size`` (4096) pairs.  Each pair draws a pool of N negatives and its loss
is ``sum_k w_k l(r_ui - r_uk)`` (paper Eq. 1 with the sampler's weights, Eqs. 2, 3, 17-18,
25; :mod:`training.sampling`; weights are constants), scored with the model's embeddings.
The batch loss is the **sum** over the batch's pairs (the authors' ``reduction=False``);
Adam is invariant to that scale except through its eps and through weight decay, so the
choice matters only relative to ``weight_decay``.

One batch (:meth:`Trainer.train_batch`) goes through the model seam
(:mod:`training.models`): ``model.embeddings()``; the kernels of :mod:`training.kernels`
accumulate the float64 gradient of the batch loss with respect to the embeddings;
``model.backward`` maps it to the parameters; :class:`Adam` steps the parameters in place.

Optimizer (torch.optim.Adam, re-implemented)
--------------------------------------------
``beta1 = 0.9, beta2 = 0.999, eps = 1e-8``, bias-corrected, applied densely to every row of
every parameter at every step, as torch does with the dense gradients of ``nn.Embedding``.
Learning rate ``lr * lr_decay_gamma ** (epoch // lr_decay_step)`` (the authors' ``StepLR(5,
0.95)``; ``lr_decay=False`` keeps it constant).

Weight decay (``weight_decay_mode``):

* ``"adam"`` (default; the authors' code): ``torch.optim.Adam(weight_decay=wd)``, i.e. the
  L2 gradient ``wd * theta`` is added to the gradient of **every** parameter at every step
  (rows absent from the batch included), before the Adam moments.
* ``"batch"``: L2 on the batch's rows of the parameters only (LightGCN style): the
  gradient of ``wd/2 * sum over pairs (|e_u|^2 + |e_i|^2 + sum over the pair's negatives of
  non-zero weight |e_j|^2)``, one term per occurrence, with ``e`` the rows of the
  *parameters* (MF: the factors, fused into the loss kernels; LightGCN: the ego embeddings,
  as LightGCN's own code regularises ``userEmb0``, ``posEmb0``, ``negEmb0``, added to the
  ego gradients after ``model.backward`` by :func:`add_batch_l2`; never the propagated
  embeddings).

Seeds: the model's initialization, the pair orders and the pools come from disjoint
branches (0, 1, 2) of the root seed; random numbers depend only on (seed, epoch, batch,
chunk), so the same seed gives bit-identical parameters for any thread count.

Checkpoints: a run's trajectory depends only on its settings, its seed and the epoch, so the
state after epoch E (parameters, Adam moments and step count, E; :meth:`Trainer.save_checkpoint`)
is all a later process needs to continue it: :func:`train_model` with ``checkpoint=PATH``
resumes from PATH when it is there and writes it every ``checkpoint_every`` epochs, and the
resumed run ends with the same bits as an uninterrupted one.  A checkpoint records a
fingerprint of the run (settings, seed, training matrix); another run refuses it.

Evaluation: :func:`training.evaluation.evaluate_full_ranking` on ``model.embeddings()``:
full ranking over all items, training items masked, averaged over users with test items.
The command line is :mod:`training.cli` (``python -m training``).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from simulations.files import save_npz
from simulations.rng import as_generator, as_seed_sequence, branch_seed_sequence, chunk_states, n_chunks
from theory.validation import check_choice, check_int, check_real
from training import kernels as K
from training import sampling as S
from training.evaluation import evaluate_full_ranking
from training.loaders import to_interactions
from training.models import check_finite_scores, make_model

__all__ = [
    "WEIGHT_DECAY_MODES",
    "Adam",
    "BatchResult",
    "CheckpointError",
    "TrainResult",
    "Trainer",
    "add_batch_l2",
    "batch_loss_and_grad",
    "train_model",
]

WEIGHT_DECAY_MODES = ("adam", "batch")
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

# Spawn-key branches of the root seed (models.BRANCH_INIT = 0 is the initialization).
_BRANCH_ORDER, _BRANCH_POOLS = 1, 2


class CheckpointError(ValueError):
    """A checkpoint file that cannot continue this run (another run's, or unreadable)."""


class BatchResult(NamedTuple):
    """Loss and gradient of one batch (see :func:`batch_loss_and_grad`)."""

    losses: np.ndarray     # (B,) per-pair loss sum_k w_k l(r_ui - r_uk), float64
    grad_user: np.ndarray  # float64 gradient of losses.sum() w.r.t. model.parameters[0]
    grad_item: np.ndarray  # float64, w.r.t. model.parameters[1]
    pools: np.ndarray      # (B, N) int64, the pools used


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`."""

    model: object                     # the trained model (training.models seam)
    metrics: dict                     # final evaluation (recall@k, ndcg@k, precision@k, opauc@b)
    history: list = field(default_factory=list)  # one dict per completed epoch
    epochs_completed: int = 0
    interrupted: bool = False
    seconds_per_epoch: float = float("nan")  # mean training time per completed epoch (no eval)
    eval_seconds: float = float("nan")      # time of the final evaluation
    n_train: int = 0
    n_test: int = 0
    config: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Flat JSON-ready dict: metrics, sizes, timing and configuration."""
        out = dict(self.metrics)
        out.update(n_train=self.n_train, n_test=self.n_test,
                   seconds_per_epoch=self.seconds_per_epoch, eval_seconds=self.eval_seconds,
                   epochs_completed=self.epochs_completed, interrupted=self.interrupted,
                   final_loss=self.history[-1]["loss"] if self.history else None)
        out.update(self.config)
        return out


class Adam:
    """torch.optim.Adam over a model's parameters (dense, float32 moments, in place).

    Parameters
    ----------
    parameters : tuple of float32 C-contiguous arrays (rows, dim), updated in place.
    """

    def __init__(self, parameters):
        self.parameters = tuple(parameters)
        self.m1 = [np.zeros_like(p) for p in self.parameters]
        self.m2 = [np.zeros_like(p) for p in self.parameters]
        self.step_count = 0

    def step(self, grads, touched, lr: float, weight_decay: float) -> None:
        """One bias-corrected step: ``g = grad + weight_decay * p`` for every entry; rows
        flagged in ``touched`` read their gradient row, which is then zeroed with its flag."""
        self.step_count += 1
        b1, b2 = ADAM_BETAS
        step_size = lr / (1.0 - b1 ** self.step_count)
        inv_sqrt_bc2 = 1.0 / math.sqrt(1.0 - b2 ** self.step_count)
        P, G, T, M1, M2 = (list(x) for x in (self.parameters, grads, touched, self.m1, self.m2))
        if len(P) % 2:  # the kernel steps two arrays at a time: pad with an empty one
            dim = P[-1].shape[1]
            P.append(np.zeros((0, dim), np.float32))
            G.append(np.zeros((0, dim)))
            T.append(np.zeros(0, np.uint8))
            M1.append(P[-1])
            M2.append(P[-1])
        for a in range(0, len(P), 2):
            b = a + 1
            K.adam(P[a], G[a], T[a], M1[a], M2[a], P[b], G[b], T[b], M1[b], M2[b],
                   step_size, b1, b2, ADAM_EPS, inv_sqrt_bc2, weight_decay)


def add_batch_l2(parameters, grads, touched, users, pos, negs, n_used, l2: float) -> None:
    """Add the gradient of the batch L2 on parameter rows (``weight_decay_mode="batch"``).

    The regulariser is ``l2/2 * sum over pairs b (|P_u[users[b]]|^2 + |P_i[pos[b]]|^2 +
    sum_{t < n_used[b]} |P_i[negs[b, t]]|^2)``, one term per occurrence (LightGCN's own
    code: the ego embeddings of the batch's users, positives and negatives), so its gradient
    is ``l2 * count(row) * P[row]``.  Rows that get a term are flagged in ``touched``.

    Parameters
    ----------
    parameters : (user table, item table), float32 (rows, dim): ``model.parameters``.
    grads : float64 arrays of the same shapes, updated in place; touched : uint8 flags.
    users, pos : (B,) int; negs : (B, >= max n_used) int; n_used : (B,) int.
    l2 : float >= 0
    """
    used = negs[np.arange(negs.shape[1])[None, :] < np.asarray(n_used)[:, None]]
    counts = (np.bincount(users, minlength=parameters[0].shape[0]),
              np.bincount(pos, minlength=parameters[1].shape[0])
              + np.bincount(used, minlength=parameters[1].shape[0]))
    for p, g, t, c in zip(parameters[:2], grads, touched, counts):
        rows = np.flatnonzero(c)
        g[rows] += (l2 * c[rows])[:, None] * p[rows]
        t[rows] = 1


def _check_model_sampler(model, sampler) -> None:
    """A model may list the sampler kinds it supports (``model.samplers``; default: all)."""
    allowed = getattr(model, "samplers", tuple(S.SAMPLERS))
    if sampler.kind not in allowed:
        raise ValueError(f"sampler: model {model.name!r} supports {tuple(allowed)}, got "
                         f"{sampler.kind!r}")


def _batch_ids(users, pos_items, n_users: int, n_items: int):
    """``users`` and ``pos_items`` as int64 1-D arrays of the same length, ids in range."""
    users = np.ascontiguousarray(users, dtype=np.int64)
    pos = np.ascontiguousarray(pos_items, dtype=np.int64)
    if users.shape != pos.shape or users.ndim != 1:
        raise ValueError("users and pos_items must be 1-D arrays of the same length")
    if users.size and (users.min() < 0 or users.max() >= n_users
                       or pos.min() < 0 or pos.max() >= n_items):
        raise ValueError("user or item id out of range")
    return users, pos


def _batch_pools(sampler: S.Sampler, users, pools, train, n_users: int, n_items: int):
    """``(pool_size, explicit pools or None, indptr, indices)``: explicit pools checked
    against the items and the sampler, or the training rows to draw pools from."""
    if pools is None:
        if train is None:
            raise ValueError("train is needed to draw pools")
        tr = to_interactions(train, name="train")
        indptr, indices = tr.indptr.astype(np.int64), tr.indices.astype(np.int64)
        if sampler.pool == "negatives" and users.size and np.any(np.diff(indptr)[users] >= n_items):
            raise ValueError("a user has no negative item")
        return sampler.n, None, indptr, indices
    pools = np.array(pools, dtype=np.int64, copy=True)
    if pools.ndim != 2 or pools.shape[0] != users.size or pools.shape[1] < 1:
        raise ValueError(f"pools must have shape (B, N) with B = {users.size}")
    if pools.size and (pools.min() < 0 or pools.max() >= n_items):
        raise ValueError("pool item id out of range")
    sampler.check_pool(pools.shape[1])
    return pools.shape[1], pools, np.zeros(n_users + 1, np.int64), np.zeros(0, np.int64)


def _take_gradients(grads, flags) -> list:
    """Copies of the first two parameter gradients; the model's buffers (and flags) are left
    zeroed, as Adam leaves them."""
    out = [g.copy() for g in grads[:2]]
    for g, t in zip(grads, flags):
        g.fill(0.0)
        t.fill(0)
    return out


def batch_loss_and_grad(model, users, pos_items, sampler: S.Sampler, pools=None,
                        train=None, seed=0, weight_decay: float = 0.0) -> BatchResult:
    """Per-pair losses and the gradient of their sum, with the trainer's own kernels.

    Parameters
    ----------
    model : a model of :mod:`training.models` (e.g. ``MF(U, V)``).
    users, pos_items : array_like of int, shape (B,)
    sampler : training.sampling.Sampler
    pools : array_like of int, shape (B, N), optional
        Explicit pools (any N >= the sampler's M for DNS); e.g. every negative of the user
        to compute the exact objectives of Theorems 1-2.  Default: drawn as in training
        (``sampler.n`` draws per pair, rejecting ``train`` positives if ``pool="negatives"``).
    train : sparse matrix, needed when pools are drawn.
    seed : seeds the pools (and the pick-one DNS variant); chunk c of
        :data:`training.kernels.PAIR_CHUNK` pairs uses
        ``simulations.rng.chunk_states(seed, n_chunks)[c]``.
    weight_decay : float >= 0, default 0
        The batch L2 of ``weight_decay_mode="batch"`` (module docstring), added to the
        gradients as the trainer adds it; Adam's weight decay is not part of a batch.

    Returns
    -------
    BatchResult
        Gradients of ``losses.sum()`` (plus the batch L2 if ``weight_decay > 0``) with
        respect to ``model.parameters`` (weights held constant; MF: the factors, LightGCN:
        the ego embeddings).  ``losses`` never include the L2 term.
    """
    _check_model_sampler(model, sampler)
    weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
    fused = getattr(model, "embeddings_are_parameters", False)
    U, V = model.embeddings()
    users, pos = _batch_ids(users, pos_items, U.shape[0], V.shape[0])
    n = users.size
    states = chunk_states(seed, n_chunks(n, K.PAIR_CHUNK))
    pool_size, given, indptr, indices = _batch_pools(sampler, users, pools, train, U.shape[0],
                                                     V.shape[0])
    ws = K.Workspace(max(n, 1), pool_size, sampler.n_used(pool_size), U.shape[1], V.shape[0])
    if given is not None:
        ws.pools[:n] = given
    gU, gV = np.zeros(U.shape), np.zeros(V.shape)
    tU, tV = np.zeros(U.shape[0], np.uint8), np.zeros(V.shape[0], np.uint8)
    if n:
        batch = K.PairBatch(users, pos, ws.pools[:n], given is None, sampler.pool == "negatives",
                            states, indptr, indices)
        K.batch_gradients(ws, U, V, batch, sampler, weight_decay if fused else 0.0, gU, gV,
                          tU, tV)
    grads, flags = model.backward(gU, gV, tU, tV)
    if weight_decay > 0 and not fused and n:
        add_batch_l2(model.parameters, grads, flags, users, pos, ws.used_negatives(n, sampler),
                     ws.n_used[:n], weight_decay)
    grad_user, grad_item = _take_gradients(grads, flags)
    return BatchResult(ws.loss[:n].copy(), grad_user, grad_item, ws.pools[:n].copy())


class _InterruptFlag:
    """SIGINT -> set a flag (first press); a second press raises KeyboardInterrupt.

    A process that ignores SIGINT (started with ``nohup`` or as a background job of a
    non-interactive shell) keeps ignoring it; the previous handler is restored on exit.
    """

    def __init__(self):
        self.set = False
        self._old = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            old = signal.getsignal(signal.SIGINT)
            if old is not signal.SIG_IGN:
                self._old = old
                signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True
        print("\ninterrupt: stopping after the current batch (press Ctrl-C again to abort)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


class Trainer:
    """Stateful trainer (model, Adam state, epoch counter) of any model of the seam.

    Parameters
    ----------
    train : sparse matrix (n_users, n_items)
        Training interactions (the pairs and, with ``pool="negatives"``, the exclusions).
    sampler : training.sampling.Sampler
    model : str, a key of :data:`training.models.MODELS` ("mf", "lightgcn").
    dim : int, embedding dimension (32).
    batch_size : int, pairs per batch (4096).
    lr : float, Adam learning rate (1e-3).
    weight_decay : float >= 0 (0.01, the authors' default).
    weight_decay_mode : {"adam", "batch"}; see the module docstring.
    lr_decay : bool, step decay ``lr * gamma ** (epoch // step)`` (True: the authors' code).
    lr_decay_gamma, lr_decay_step : 0.95, 5.
    seed : int, SeedSequence or Generator.  Init, pair orders and pools come from disjoint
        branches of it; the same seed gives the same model for any thread count.
    threads : int, optional
        numba threads for training.  Default: the current ``numba.get_num_threads()`` when a
        batch is big enough to pay for a fork-join (batch x N x dim >=
        :data:`training.kernels.PARALLEL_MIN_WORK`), else 1 (tiny batches run faster on one
        thread, and a fork-join waits for every thread, which costs a whole time slice on a
        busy machine).  Results never depend on it.
    exclude : sparse matrix (n_users, n_items), optional
        Items never drawn into a user's negative pool besides the user's training items
        (``pool="negatives"`` only), e.g. the held-out positives, to measure what drawing
        them as negatives costs (false negatives; ``benchmarks/false_negatives.py``).  The
        pairs still come from ``train`` only.  Default: none.
    **model_options : passed to :func:`training.models.make_model` (MF: ``init_std``, 0.1).

    Examples
    --------
    Two epochs of MF under DNS(2, 10) on tiny planted data; the same seed gives the same
    factors.

    >>> from training.planted import planted_dataset
    >>> from training.sampling import dns
    >>> train = planted_dataset(60, 40, seed=0).matrix
    >>> trainer = Trainer(train, dns(2, 10), dim=4, batch_size=128, lr=0.01, seed=1)
    >>> losses = [trainer.run_epoch()["loss"] for _ in range(2)]
    >>> trainer.epoch, bool(losses[1] < losses[0])
    (2, True)
    >>> again = Trainer(train, dns(2, 10), dim=4, batch_size=128, lr=0.01, seed=1)
    >>> _ = [again.run_epoch() for _ in range(2)]
    >>> bool(np.array_equal(again.model.user_factors, trainer.model.user_factors))
    True
    """

    def __init__(self, train, sampler: S.Sampler, *, model: str = "mf", dim: int = 32,
                 batch_size: int = 4096, lr: float = 1e-3, weight_decay: float = 0.01,
                 weight_decay_mode: str = "adam", lr_decay: bool = True,
                 lr_decay_gamma: float = 0.95, lr_decay_step: int = 5, seed=0,
                 threads: int | None = None, exclude=None, **model_options):
        if not isinstance(sampler, S.Sampler):
            raise ValueError("sampler must be a training.sampling.Sampler")
        self.train = to_interactions(train, name="train")
        n_users, n_items = self.train.shape
        self.sampler = sampler
        self.dim = check_int(dim, "dim", low=1, integral_floats=True)
        self.batch_size = check_int(batch_size, "batch_size", low=1, integral_floats=True)
        self.lr = check_real(lr, "lr", low=0.0, include_low=False)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self.weight_decay_mode = check_choice(weight_decay_mode, "weight_decay_mode",
                                              WEIGHT_DECAY_MODES)
        self.lr_decay = bool(lr_decay)
        self.lr_decay_gamma = check_real(lr_decay_gamma, "lr_decay_gamma", low=0.0,
                                         include_low=False)
        self.lr_decay_step = check_int(lr_decay_step, "lr_decay_step", low=1,
                                       integral_floats=True)
        self.root = as_seed_sequence(seed)
        # The items each user's negative pools never draw (pool="negatives"): train's, and
        # exclude's when given.
        never = self.train
        self.exclude = None
        if exclude is not None:
            self.exclude = to_interactions(exclude, name="exclude")
            if self.exclude.shape != self.train.shape:
                raise ValueError(f"exclude must have train's shape {self.train.shape}, got "
                                 f"{self.exclude.shape}")
            if sampler.pool != "negatives":
                raise ValueError("exclude needs a sampler that draws from the negatives "
                                 f"(pool='negatives'), got pool={sampler.pool!r}")
            never = to_interactions(self.train + self.exclude, name="train + exclude")
        self.indptr = never.indptr.astype(np.int64)
        self.indices = never.indices.astype(np.int64)
        if sampler.pool == "negatives" and np.any(np.diff(self.indptr) >= n_items):
            raise ValueError("a user has every item in train (and exclude): no negative to "
                             "sample")
        self.pair_users = np.repeat(np.arange(n_users, dtype=np.int64),
                                    np.diff(self.train.indptr))
        self.pair_items = self.train.indices.astype(np.int64)
        if self.pair_users.size == 0:
            raise ValueError("train has no interaction")
        self.model_options = dict(model_options)
        self.model = make_model(model, n_users, n_items, self.dim, self.root, self.train,
                                **model_options)
        _check_model_sampler(self.model, sampler)
        # Batch L2 inside the loss kernels when they see the parameters themselves (MF);
        # otherwise on the parameter rows after backward (add_batch_l2).
        self._l2_fused = bool(getattr(self.model, "embeddings_are_parameters", False))
        self.adam = Adam(self.model.parameters)
        # Gradients w.r.t. the embeddings (float64) and their per-row touched flags.
        self._grad = [np.zeros((n_users, self.dim)), np.zeros((n_items, self.dim))]
        self._touched = [np.zeros(n_users, np.uint8), np.zeros(n_items, np.uint8)]
        self.epoch = 0
        if threads is not None:
            threads = check_int(threads, "threads", low=1, integral_floats=True)
        self.threads = threads
        n = min(self.batch_size, self.pair_users.size)
        self._ws = K.Workspace(n, sampler.n, sampler.n_used(sampler.n), self.dim, n_items)

    @property
    def step(self) -> int:
        """Adam steps taken."""
        return self.adam.step_count

    @property
    def n_pairs(self) -> int:
        return int(self.pair_users.size)

    @property
    def n_batches(self) -> int:
        return -(-self.n_pairs // self.batch_size)

    def n_threads(self) -> int:
        """Threads the training kernels use (see the ``threads`` parameter)."""
        import numba

        if self.threads is not None:
            return min(self.threads, numba.config.NUMBA_NUM_THREADS)
        work = min(self.batch_size, self.n_pairs) * self.sampler.n * self.dim
        return numba.get_num_threads() if work >= K.PARALLEL_MIN_WORK else 1

    def current_lr(self, epoch=None) -> float:
        e = self.epoch if epoch is None else epoch
        if not self.lr_decay:
            return self.lr
        return self.lr * self.lr_decay_gamma ** (e // self.lr_decay_step)

    def epoch_plan(self, epoch: int):
        """(pair order, xoshiro states[n_batches * chunks_per_batch, 4]) of an epoch."""
        # as_generator(SeedSequence) is Generator(PCG64(SeedSequence)): the same orders.
        order = as_generator(branch_seed_sequence(self.root, _BRANCH_ORDER, epoch)
                             ).permutation(self.n_pairs)
        per_batch = n_chunks(self.batch_size, K.PAIR_CHUNK)
        states = chunk_states(self.root, self.n_batches * per_batch, branch=(_BRANCH_POOLS, epoch))
        return order, states, per_batch

    def train_batch(self, users, pos, states, lr) -> float:
        """One Adam step on a batch; returns the summed loss of the batch."""
        batch_l2 = self.weight_decay if self.weight_decay_mode == "batch" else 0.0
        adam_wd = self.weight_decay if self.weight_decay_mode == "adam" else 0.0
        U, V = self.model.embeddings()
        batch = K.PairBatch(users, pos, self._ws.pools[: users.size], True,
                            self.sampler.pool == "negatives", states, self.indptr, self.indices)
        K.batch_gradients(self._ws, U, V, batch, self.sampler,
                          batch_l2 if self._l2_fused else 0.0, self._grad[0], self._grad[1],
                          self._touched[0], self._touched[1])
        grads, touched = self.model.backward(self._grad[0], self._grad[1], self._touched[0],
                                             self._touched[1])
        if batch_l2 > 0 and not self._l2_fused:
            n = users.size
            add_batch_l2(self.model.parameters, grads, touched, users, pos,
                         self._ws.used_negatives(n, self.sampler), self._ws.n_used[:n], batch_l2)
        self.adam.step(grads, touched, lr, adam_wd)
        return float(self._ws.loss[: users.size].sum())

    def run_epoch(self, progress: bool = False, stop=None) -> dict:
        """Train one epoch.  ``stop()`` is polled after every batch; when it returns True the
        epoch ends early and the returned record has ``"completed": False``."""
        lr = self.current_lr()
        order, states, per_batch = self.epoch_plan(self.epoch)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=self.n_batches, desc=f"epoch {self.epoch + 1}", unit="batch",
                       leave=False, file=sys.stderr)
        import numba

        previous_threads = numba.get_num_threads()
        numba.set_num_threads(self.n_threads())
        start = time.perf_counter()
        total = 0.0
        completed = True
        try:
            for t in range(self.n_batches):
                idx = order[t * self.batch_size:(t + 1) * self.batch_size]
                total += self.train_batch(self.pair_users[idx], self.pair_items[idx],
                                          states[t * per_batch:(t + 1) * per_batch], lr)
                if bar is not None:
                    bar.update(1)
                    if t % 16 == 0:
                        bar.set_postfix(loss=f"{total / min(self.n_pairs, (t + 1) * self.batch_size):.4f}")
                if stop is not None and stop():
                    completed = t == self.n_batches - 1
                    break
        finally:
            numba.set_num_threads(previous_threads)
            if bar is not None:
                bar.close()
        seconds = time.perf_counter() - start
        record = {"epoch": self.epoch + 1, "loss": total / self.n_pairs, "lr": lr,
                  "seconds": seconds, "completed": completed}
        if completed:
            self.epoch += 1
        return record


    # ------------------------------------------------------------------------------------
    def fingerprint(self) -> str:
        """sha256 (hex) of everything that fixes this run's trajectory: the model and its
        options, the sampler, dim, batch size, learning rate and its schedule, weight decay
        and its mode, the root seed, the training matrix and ``exclude`` (not the thread
        count, which never changes the results)."""
        settings = {k: v for k, v in _config_dict(self, None).items() if k != "epochs"}
        settings.update(model_options=self.model_options, lr_decay_gamma=self.lr_decay_gamma,
                        lr_decay_step=self.lr_decay_step,
                        seed=[repr(self.root.entropy), list(self.root.spawn_key)])
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=repr).encode())
        arrays = [self.indptr, self.indices]
        if self.exclude is not None:  # the pools' exclusions are then more than train
            arrays += [self.train.indptr, self.train.indices]
        for a in arrays:
            digest.update(np.ascontiguousarray(a).tobytes())
        return digest.hexdigest()

    def save_checkpoint(self, path: str | os.PathLike, history=()) -> None:
        """Write the state after the last completed epoch to the .npz file ``path``
        (atomically: a temporary file renamed into place): parameters, Adam moments and step
        count, the epoch, :meth:`fingerprint` and ``history`` (the epoch records of
        :meth:`run_epoch`, plain Python numbers; floats round-trip exactly through JSON)."""
        arrays = {"epoch": np.int64(self.epoch), "adam_step": np.int64(self.adam.step_count),
                  "fingerprint": np.str_(self.fingerprint()),
                  "history": np.str_(json.dumps(list(history)))}
        for k, (p, m1, m2) in enumerate(zip(self.model.parameters, self.adam.m1, self.adam.m2)):
            arrays.update({f"param{k}": p, f"adam_m1_{k}": m1, f"adam_m2_{k}": m2})
        save_npz(path, arrays)

    def load_checkpoint(self, path: str | os.PathLike) -> list:
        """Continue from the checkpoint ``path`` (written by :meth:`save_checkpoint` for this
        same run): restores parameters, Adam state and epoch in place; returns its history.
        Raises CheckpointError if the file is another run's or unreadable."""
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"checkpoint {os.fspath(path)!r} cannot be read: {exc}") from exc
        if str(data.get("fingerprint", "")) != self.fingerprint():
            raise CheckpointError(
                f"checkpoint {os.fspath(path)!r} belongs to another run (other settings, seed or "
                "training data); delete it or choose another checkpoint path")
        for k, (p, m1, m2) in enumerate(zip(self.model.parameters, self.adam.m1, self.adam.m2)):
            for target, key in ((p, f"param{k}"), (m1, f"adam_m1_{k}"), (m2, f"adam_m2_{k}")):
                if data[key].shape != target.shape or data[key].dtype != target.dtype:
                    raise CheckpointError(f"checkpoint {os.fspath(path)!r}: {key} has shape "
                                          f"{data[key].shape}, expected {target.shape}")
                target[...] = data[key]
        self.epoch = int(data["epoch"])
        self.adam.step_count = int(data["adam_step"])
        return json.loads(str(data["history"]))


def _config_dict(trainer: Trainer, epochs) -> dict:
    s = trainer.sampler
    # Every registered sampler parameter (own value or default): the results' columns.
    params = {k: v for k, v in s.to_dict().items() if k != "kind"}
    config = {"model": trainer.model.name, "sampler": s.kind, "sampler_label": s.label(),
              **params, "dim": trainer.dim, "batch_size": trainer.batch_size, "lr": trainer.lr,
              "weight_decay": trainer.weight_decay,
              "weight_decay_mode": trainer.weight_decay_mode, "lr_decay": trainer.lr_decay,
              "epochs": epochs, "n_users": trainer.train.shape[0],
              "n_items": trainer.train.shape[1]}
    if "layers" in trainer.model_options:
        config["layers"] = trainer.model_options["layers"]
    return config


def train_model(train, test, sampler: S.Sampler, *, model: str = "mf", epochs: int = 20,
                ks=(5, 20, 50), betas=(), eval_every: int = 0, progress: bool = False,
                handle_sigint: bool = True, checkpoint: str | os.PathLike | None = None,
                checkpoint_every: int = 5, **trainer_options) -> TrainResult:
    """Train ``model`` with BPR under ``sampler`` for ``epochs`` epochs, then evaluate on ``test``.

    Parameters
    ----------
    train, test : sparse matrices (n_users, n_items), disjoint.
    sampler : training.sampling.Sampler
    model : a key of :data:`training.models.MODELS` ("mf").
    epochs : int >= 0
    ks : Top-K cut-offs of the evaluation; betas : OPAUC levels (raw area, optional).
    eval_every : evaluate every this many epochs into ``history`` (0: only at the end).
    progress : tqdm bar per epoch (stderr).
    handle_sigint : the first Ctrl-C stops after the current batch (a second one aborts);
        the partial epoch is then discarded: the parameters of the last completed epoch are
        restored and evaluated (``interrupted=True``, ``epochs_completed`` says how many).
    checkpoint : path of a .npz checkpoint, optional.  When the file exists the run continues
        from it (:meth:`Trainer.load_checkpoint`: same settings, seed and data, else
        CheckpointError; its epoch records come back into ``history``); the state is written
        there every ``checkpoint_every`` epochs and after the last one.  The caller deletes it
        once the result is kept.  Resumed or not, the run ends with the same parameters.
    checkpoint_every : int >= 1, epochs between checkpoints (5).
    **trainer_options : passed to :class:`Trainer` (dim, batch_size, lr, weight_decay,
        weight_decay_mode, lr_decay, lr_decay_gamma, lr_decay_step, seed, threads, and the
        model's options, e.g. init_std for MF).

    Returns
    -------
    TrainResult
        ``seconds_per_epoch`` is training time only; ``eval_seconds`` the final evaluation.

    Examples
    --------
    >>> from training.planted import planted_dataset
    >>> from training.sampling import softmax_v
    >>> from training.split import split_per_user
    >>> train, test = split_per_user(planted_dataset(80, 50, seed=0).matrix, 0.8, 0)
    >>> result = train_model(train, test, softmax_v(1.0, 10), epochs=2, dim=4, batch_size=128,
    ...                      ks=(5,), seed=0, handle_sigint=False)
    >>> result.epochs_completed, result.config["sampler_label"], result.config["rho"]
    (2, 'Softmax-v(1,10)', 1.0)
    >>> 0.0 <= result.metrics["recall@5"] <= 1.0
    True
    """
    epochs = check_int(epochs, "epochs", low=0, integral_floats=True)
    eval_every = check_int(eval_every, "eval_every", low=0, integral_floats=True)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", low=1,
                                 integral_floats=True)
    trainer = Trainer(train, sampler, model=model, **trainer_options)
    test = to_interactions(test, name="test")
    if test.shape != trainer.train.shape:
        raise ValueError(f"test must have shape {trainer.train.shape}, got {test.shape}")

    def evaluate(m):
        check_finite_scores(m, trainer.epoch)
        return evaluate_full_ranking(*m.embeddings(), trainer.train, test, ks=ks,
                                     betas=betas).mean()

    history = []
    if checkpoint is not None and os.path.exists(checkpoint):
        history = trainer.load_checkpoint(checkpoint)
        if trainer.epoch > epochs:
            raise CheckpointError(f"checkpoint {os.fspath(checkpoint)!r} is at epoch "
                                  f"{trainer.epoch}, after the {epochs} epochs asked for")
    interrupted = False
    flag = _InterruptFlag()
    params = trainer.model.parameters
    snapshot = [p.copy() for p in params]
    with (flag if handle_sigint else _NullContext()):
        while trainer.epoch < epochs:
            record = trainer.run_epoch(progress=progress, stop=lambda: flag.set)
            if not record["completed"]:
                interrupted = True
                for p, s in zip(params, snapshot):
                    p[...] = s
                break
            if eval_every and trainer.epoch % eval_every == 0 and trainer.epoch < epochs:
                start = time.perf_counter()
                record.update(evaluate(trainer.model))
                record["eval_seconds"] = time.perf_counter() - start
            history.append(record)
            if checkpoint is not None and (trainer.epoch % checkpoint_every == 0
                                           or trainer.epoch == epochs or flag.set):
                trainer.save_checkpoint(checkpoint, history)
            if flag.set:
                interrupted = trainer.epoch < epochs
                break
            for p, s in zip(params, snapshot):
                s[...] = p
    start = time.perf_counter()
    metrics = evaluate(trainer.model)
    eval_seconds = time.perf_counter() - start
    if history:
        history[-1].update(metrics)
    secs = [h["seconds"] for h in history]
    return TrainResult(model=trainer.model, metrics=metrics, history=history,
                       epochs_completed=trainer.epoch, interrupted=interrupted,
                       seconds_per_epoch=float(np.mean(secs)) if secs else float("nan"),
                       eval_seconds=eval_seconds, n_train=int(trainer.train.nnz),
                       n_test=int(test.nnz), config=_config_dict(trainer, epochs))


class _NullContext:
    set = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
