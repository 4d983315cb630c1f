"""Recommender models behind one seam: MF here; LightGCN plugs into the same interface.

The seam
--------
Everything the trainer (:mod:`training.trainer`), the loss kernels (:mod:`training.kernels`),
the evaluation and the checks need from a model is this, and nothing else:

``name``, ``n_users``, ``n_items``, ``dim``
    The registry name (``"mf"``, ``"lightgcn"``) and the shapes.
``parameters``
    A tuple of float32 C-contiguous arrays of shape (rows, dim) that the model owns.  Adam
    (``training.trainer.Adam``) updates them **in place**, densely (torch semantics).  MF:
    ``(user_factors, item_factors)``; LightGCN: ``(ego_users, ego_items)``.
``embeddings() -> (user_emb, item_emb)``
    float32 C-contiguous arrays of shapes (n_users, dim), (n_items, dim) whose row dot
    products are the scores ``r_ui = user_emb[u] . item_emb[i]``.  Called once per batch,
    after the previous Adam step, and for evaluation (and it must reflect the parameters as
    they are at the call).  MF returns its parameters themselves (no copy); LightGCN the
    propagated final embeddings (mean of layers 0..L).
``backward(grad_user_emb, grad_item_emb, touched_users, touched_items)
-> (param_grads, param_touched)``
    The loss kernels accumulate float64 gradients with respect to the embeddings into
    ``grad_*_emb`` and set ``touched_*[row] = 1`` (uint8) for every row they wrote.
    ``backward`` maps them to gradients of the parameters: one float64 array and one uint8
    flag vector per parameter, in the order of ``parameters``.  Adam reads the flagged rows and
    zeroes them together with their flags; unflagged gradient rows must be zero.  Whatever
    embedding buffers the model does not return as parameter gradients it must clear itself
    (rows and flags), so that the next batch starts from zero.  MF returns its inputs
    unchanged (zero cost: Adam clears them); LightGCN returns dense ego gradients (all rows
    flagged) and clears the embedding buffers itself.
``state_arrays() -> dict``
    Named arrays written by ``--save`` (MF: ``user_factors``, ``item_factors``).
``embeddings_are_parameters`` (optional bool, default False)
    True when ``embeddings()`` returns the parameters themselves (MF).  The batch L2 of
    ``weight_decay_mode="batch"`` is on the parameter rows of the batch (users, positives,
    used negatives): fused into the loss kernels when this is True, else added to the
    parameter gradients after ``backward`` (``training.trainer.add_batch_l2``; LightGCN: the
    ego embeddings, as LightGCN's own code).  Parameter 0 is the user table and parameter 1
    the item table (rows = ids) for both models.
``samplers`` (optional tuple of names of ``training.sampling.SAMPLERS``, default all)
    The sampler kinds the model supports; the trainer refuses others (ValueError naming
    ``sampler``).  MF and LightGCN support every kind: samplers only see scores.

Models are built by :func:`make_model` from the registry :data:`MODELS`: ``MODELS[name]`` is
a constructor ``f(n_users, n_items, dim, seed, train, **options)``; ``seed`` is the run's root
seed, of which a model draws its initialization from the branch :data:`BRANCH_INIT` (the
trainer draws the pair orders and pools from other branches); ``train`` is the training
matrix (LightGCN builds its graph from it; MF ignores it).  Unknown options raise ValueError.
"""
from __future__ import annotations

import numpy as np

from simulations.rng import as_generator, as_seed_sequence, branch_seed_sequence
from theory.validation import check_choice, check_int, check_real

__all__ = ["BRANCH_INIT", "MF", "MODELS", "check_finite_scores", "init_model", "make_model"]

#: Spawn-key branch of the root seed that model initializations draw from.
BRANCH_INIT = 0


def _factor_array(a, name):
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (rows, dim), got shape {a.shape}")
    return a


class MF:
    """Matrix factorization: ``score(u, i) = user_factors[u] . item_factors[i]``.

    Parameters
    ----------
    user_factors : array_like (n_users, dim), stored as float32 C-contiguous (no copy when it
        already is: the model then trains the caller's array in place).
    item_factors : array_like (n_items, dim), same.
    """

    name = "mf"
    embeddings_are_parameters = True

    def __init__(self, user_factors, item_factors):
        self.user_factors = _factor_array(user_factors, "user_factors")
        self.item_factors = _factor_array(item_factors, "item_factors")
        if self.user_factors.shape[1] != self.item_factors.shape[1]:
            raise ValueError("user_factors and item_factors must have the same dim, got "
                             f"{self.user_factors.shape[1]} and {self.item_factors.shape[1]}")

    n_users = property(lambda self: self.user_factors.shape[0])
    n_items = property(lambda self: self.item_factors.shape[0])
    dim = property(lambda self: self.user_factors.shape[1])

    @property
    def parameters(self) -> tuple:
        return (self.user_factors, self.item_factors)

    def embeddings(self):
        """The factors themselves (no copy): MF's embeddings are its parameters."""
        return self.user_factors, self.item_factors

    def backward(self, grad_user_emb, grad_item_emb, touched_users, touched_items):
        """Identity: the embedding gradients are the parameter gradients (Adam clears them)."""
        return (grad_user_emb, grad_item_emb), (touched_users, touched_items)

    def state_arrays(self) -> dict:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def scores(self, users=None) -> np.ndarray:
        """float64 score rows of ``users`` (all users by default) over all items."""
        U = self.user_factors if users is None else self.user_factors[users]
        return U.astype(np.float64) @ self.item_factors.astype(np.float64).T

    def copy(self) -> MF:
        return MF(self.user_factors.copy(), self.item_factors.copy())


def init_model(n_users: int, n_items: int, dim: int = 32, init_std: float = 0.1,
               seed=0) -> MF:
    """MF with N(0, init_std) float32 factors (the authors' ``nn.init.normal_(std=0.1)``),
    drawn from the seed's :data:`BRANCH_INIT` branch (users first, then items)."""
    rng = as_generator(branch_seed_sequence(as_seed_sequence(seed), BRANCH_INIT))
    U = (rng.standard_normal((n_users, dim)) * init_std).astype(np.float32)
    V = (rng.standard_normal((n_items, dim)) * init_std).astype(np.float32)
    return MF(U, V)


def _make_mf(n_users, n_items, dim, seed, train, *, init_std=0.1, **options):
    if options:
        raise ValueError(f"model 'mf' takes the option init_std only, got {sorted(options)}")
    init_std = check_real(init_std, "init_std", low=0.0, include_low=False)
    return init_model(n_users, n_items, dim, init_std, seed)


def _make_lightgcn(n_users, n_items, dim, seed, train, *, layers=3, **options):
    if options:
        raise ValueError(f"model 'lightgcn' takes the option layers only, got {sorted(options)}")
    from training.lightgcn import LightGCN  # its kernels compile only when it is used

    model = LightGCN(train, dim=dim, layers=layers, seed=seed)
    if (model.n_users, model.n_items) != (n_users, n_items):
        raise ValueError(f"train must have shape ({n_users}, {n_items}), got "
                         f"({model.n_users}, {model.n_items})")
    return model


#: Registry of model constructors ``f(n_users, n_items, dim, seed, train, **options)``.
MODELS = {"mf": _make_mf, "lightgcn": _make_lightgcn}


def make_model(name: str, n_users: int, n_items: int, dim: int, seed, train, **options
               ) -> object:
    """Build the model ``name`` of :data:`MODELS` (see the module docstring for the seam).

    Parameters
    ----------
    name : a key of :data:`MODELS`.
    n_users, n_items, dim : int >= 1
    seed : int, SeedSequence or Generator: the run's root seed (initialization from its
        :data:`BRANCH_INIT` branch).
    train : sparse matrix (n_users, n_items), the training interactions.
    **options : model options (MF: ``init_std``; LightGCN: ``layers``, ...).

    Examples
    --------
    >>> sorted(MODELS)
    ['lightgcn', 'mf']
    >>> mf = make_model("mf", 3, 5, 2, seed=0, train=None, init_std=0.1)
    >>> mf.name, mf.user_factors.shape, mf.item_factors.dtype
    ('mf', (3, 2), dtype('float32'))
    >>> make_model("gcn", 3, 5, 2, seed=0, train=None)
    Traceback (most recent call last):
    ...
    ValueError: model must be one of ('mf', 'lightgcn'); got 'gcn'
    """
    name = check_choice(name, "model", tuple(MODELS))
    n_users = check_int(n_users, "n_users", low=1, integral_floats=True)
    n_items = check_int(n_items, "n_items", low=1, integral_floats=True)
    dim = check_int(dim, "dim", low=1, integral_floats=True)
    return MODELS[name](n_users, n_items, dim, seed, train, **options)


def check_finite_scores(model, epoch: int) -> None:
    """Raise FloatingPointError if the embeddings are not finite or their products could
    overflow float32 (Cauchy-Schwarz bound): the evaluation needs finite scores."""
    norms = []
    for name, f in zip(("user embeddings", "item embeddings"), model.embeddings()):
        if not np.all(np.isfinite(f)):
            raise FloatingPointError(f"training diverged: non-finite {name} after epoch {epoch} "
                                     "(lower the learning rate)")
        norms.append(float(np.sqrt((f.astype(np.float64) ** 2).sum(axis=1).max(initial=0.0))))
    if norms[0] * norms[1] > 1e30:
        raise FloatingPointError(f"training diverged: scores up to {norms[0] * norms[1]:.3g} "
                                 f"after epoch {epoch} (lower the learning rate)")
