"""Sparse updates of a large embedding table (``optimizer.sparse_embedding=true``).

With a dense embedding every step writes a gradient for all rows of the table (10 MB for TREC's
vocabulary) and Adam updates every row; a batch touches a few hundred. ``nn.Embedding(sparse=True)``
gives a gradient for the touched rows only, and ``torch.optim.SparseAdam`` (a lazy Adam) updates
only those rows and their moments; the rest of the network keeps the configured (fused) optimiser.
The price: a row that is not in a batch does not move on momentum (see README, "Speed").

``SparseAndDense`` puts the two optimisers behind the one ``torch.optim.Optimizer`` Lightning's
automatic optimisation expects: one step, one zero_grad, one list of parameter groups (so learning
rate monitors and schedulers see both), one checkpointable state.
"""
from __future__ import annotations

from collections.abc import MutableMapping

import torch


class _RoutedState(MutableMapping):
    """The two optimisers' per-parameter state seen as one mapping; each key stays with its owner."""

    def __init__(self, dense: torch.optim.Optimizer, sparse: torch.optim.Optimizer, sparse_parameters):
        self._dense, self._sparse = dense, sparse
        self._sparse_ids = {id(p) for p in sparse_parameters}

    def _owner(self, key) -> dict:
        return self._sparse.state if id(key) in self._sparse_ids else self._dense.state

    def __getitem__(self, key):
        return self._owner(key)[key]

    def __setitem__(self, key, value):
        self._owner(key)[key] = value

    def __delitem__(self, key):
        del self._owner(key)[key]

    def __iter__(self):
        yield from self._dense.state
        yield from self._sparse.state

    def __len__(self):
        return len(self._dense.state) + len(self._sparse.state)


class SparseAndDense(torch.optim.Optimizer):
    """``dense`` for the parameters with dense gradients, ``sparse`` (SparseAdam) for the embedding."""

    def __init__(self, dense: torch.optim.Optimizer, sparse: torch.optim.Optimizer):
        sparse_parameters = [p for group in sparse.param_groups for p in group["params"]]
        dense_parameters = [p for group in dense.param_groups for p in group["params"]]
        super().__init__(dense_parameters + sparse_parameters, dict(dense.defaults))
        self.dense, self.sparse = dense, sparse
        # The sub-optimisers' own group dicts: a learning rate set here is the one they use.
        self.param_groups = [*dense.param_groups, *sparse.param_groups]
        self.state = _RoutedState(dense, sparse, sparse_parameters)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.dense.step()
        self.sparse.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.dense.zero_grad(set_to_none=set_to_none)
        self.sparse.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"dense": self.dense.state_dict(), "sparse": self.sparse.state_dict()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.dense.load_state_dict(state_dict["dense"])
        self.sparse.load_state_dict(state_dict["sparse"])
        self.param_groups = [*self.dense.param_groups, *self.sparse.param_groups]


# Optimisers that take sparse gradients as they are (SGD's update of a row it does not see is nothing
# but its momentum, as the lazy Adam's).
SPARSE_CAPABLE = (torch.optim.SGD, torch.optim.Adagrad)


def _optimizer_class(factory) -> type:
    return getattr(factory, "func", factory) if isinstance(getattr(factory, "func", factory), type) else object


def with_sparse_embedding(factory, parameters, embedding: torch.nn.Parameter, groups=None) -> torch.optim.Optimizer:
    """The configured optimiser (``factory``, e.g. fused Adam) for every parameter but ``embedding``,
    SparseAdam with the same learning rate and betas for ``embedding`` (SGD and Adagrad take the
    sparse gradient themselves and get every parameter). SparseAdam has no weight
    decay: the embedding is not decayed (AdamW's default decay applies to the rest). ``groups``:
    parameters -> parameter groups (learning-rate factors, ``parameter_groups``), None for one group."""
    groups = groups or (lambda params: params)
    if issubclass(_optimizer_class(factory), SPARSE_CAPABLE):  # updates sparse gradients itself
        return factory(groups(parameters))
    rest = [p for p in parameters if p is not embedding]
    dense = factory(groups(rest))
    defaults = dense.defaults
    sparse = torch.optim.SparseAdam([embedding], lr=defaults["lr"], betas=defaults.get("betas", (0.9, 0.999)),
                                    eps=defaults.get("eps", 1e-8))
    return SparseAndDense(dense, sparse)


def clip_gradients(parameters, max_norm: float | None, algorithm: str | None) -> torch.Tensor:
    """Clip by total norm (or by value) over dense and sparse gradients alike; returns the total
    norm before clipping. A sparse gradient is coalesced first (an embedding's gradient lists a
    row once per occurrence in the batch; its norm is that of the summed rows)."""
    parameters = [p for p in parameters if p.grad is not None]
    dense, sparse = [], []
    for p in parameters:
        if p.grad.is_sparse:
            p.grad = p.grad.coalesce()
            sparse.append(p.grad)
        else:
            dense.append(p.grad)
    norms = [torch.nn.utils.get_total_norm(dense)] if dense else []
    norms += [g._values().norm() for g in sparse]
    total = torch.linalg.vector_norm(torch.stack(norms)) if norms else torch.tensor(0.0)
    if not max_norm:
        return total
    if algorithm in (None, "norm"):
        if dense:
            torch.nn.utils.clip_grads_with_norm_([p for p in parameters if not p.grad.is_sparse], max_norm, total)
        scale = (max_norm / (total + 1e-6)).clamp(max=1.0)
        for g in sparse:
            g._values().mul_(scale)
    else:
        for g in dense:
            g.clamp_(-max_norm, max_norm)
        for g in sparse:
            g._values().clamp_(-max_norm, max_norm)
    return total


# ------------------------------------------------------------------ what a model asks of the optimiser
# A model asks for a learning-rate factor on some of its parameters (the LRU's recurrence, Orvieto et
# al. 2023) with ``set_lr_factor``; a model schema with the keys ``lr_scale`` (its peak learning rate as
# a multiple of the optimizer's, so a search over optimizer.lr still moves it) or ``warmup_steps``
# (linear warmup) asks for those. A model that asks for nothing gets the optimiser it always had:
# ``factory(parameters)``, one group, no scheduler.
LR_FACTORS = "lr_factors"   # the module attribute: {its own parameter's name: factor}


def set_lr_factor(module: torch.nn.Module, factor: float, *names: str) -> None:
    """Train ``module``'s own parameters ``names`` at ``factor`` times the optimiser's learning rate
    (factor 1: nothing is asked, nothing changes)."""
    if factor == 1:
        return
    for name in names:
        if not isinstance(getattr(module, name, None), torch.nn.Parameter):
            raise ValueError(f"{type(module).__name__} has no parameter {name!r}")
    setattr(module, LR_FACTORS, {**getattr(module, LR_FACTORS, {}), **{name: float(factor) for name in names}})


def lr_factors(model: torch.nn.Module) -> dict[int, float]:
    """{id(parameter): factor} for every parameter a module of ``model`` asked a factor for."""
    return {id(getattr(module, name)): factor for module in model.modules()
            for name, factor in getattr(module, LR_FACTORS, {}).items()}


def parameter_groups(parameters, factors: dict[int, float]) -> list[dict]:
    """One optimiser group per learning-rate factor (in the parameters' order), each carrying
    ``lr_factor``: torch optimisers keep a group's own keys, so the factor stays readable."""
    groups: dict[float, list] = {}
    for parameter in parameters:
        groups.setdefault(factors.get(id(parameter), 1.0), []).append(parameter)
    return [{"params": params, "lr_factor": factor} for factor, params in groups.items()]


def warmup_factor(warmup_steps: int):
    """step -> lr multiplier: (step + 1) / warmup_steps for the first warmup_steps optimiser steps,
    then 1 (linear warmup to the peak, then constant)."""
    return lambda step: min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0


def configure(factory, model: torch.nn.Module, embedding: torch.nn.Parameter | None = None,
              lr_scale: float = 1.0, warmup_steps: int = 0):
    """The optimiser (and scheduler) Lightning gets for ``model``: ``factory`` (the configured
    optimiser, a partial without parameters) over its parameters, SparseAdam beside it for a sparse
    ``embedding`` (see ``with_sparse_embedding``); each group at the optimiser's rate times
    ``lr_scale`` times its factor; with ``warmup_steps``, a per-step linear warmup of every group's rate."""
    parameters = list(model.parameters())
    factors = lr_factors(model)
    if embedding is not None:
        optimizer = with_sparse_embedding(factory, parameters, embedding,
                                          groups=(lambda ps: parameter_groups(ps, factors)) if factors else None)
    else:
        optimizer = factory(parameter_groups(parameters, factors) if factors else parameters)
    if factors or lr_scale != 1.0:
        for group in optimizer.param_groups:
            group["lr"] = group["lr"] * lr_scale * group.get("lr_factor", 1.0)
    if not warmup_steps:
        return optimizer
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_factor(warmup_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
