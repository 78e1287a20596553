"""minGRU and minLSTM: recurrent cells whose gates read only the input (Feng et al. 2024,
"Were RNNs All We Needed?", arXiv:2410.01201).

With no h_{t-1} inside the gates, every step is a linear recurrence h_t = a_t ⊙ h_{t-1} + b_t
whose coefficients a_t and values b_t are known for all steps before the recurrence runs:

  minGRU   z_t = σ(W_z x_t),  h̃_t = g(W_h x_t),  a_t = 1 - z_t,  b_t = z_t ⊙ h̃_t
  minLSTM  f_t = σ(W_f x_t),  i_t = σ(W_i x_t),  h̃_t = g(W_h x_t),
           a_t = f_t / (f_t + i_t),  b_t = i_t / (f_t + i_t) ⊙ h̃_t

with g(x) = x + 0.5 for x >= 0, σ(x) otherwise (h̃_t > 0, so log h̃_t exists) and h_0 = 0.

``model.mode=parallel`` runs that recurrence over all steps at once with the log-space scan of
Heinsen (2023, "Efficient Parallelization of a Ubiquitous Sequential Computation",
arXiv:2311.06281): log h_t = a*_t + logcumsumexp_{k<=t}(log b_k - a*_k), a*_t = Σ_{k<=t} log a_k.
``model.mode=sequential`` is a plain loop over time in linear space (the paper's equations as
written; ``MinRNNLayer.step`` advances one step for step-by-step use). ``model.mode=fused`` is that
loop with its gates and backward written out (``seqbench.models.scan.gated_scan``), the fastest on
a CPU; ``auto`` (the default) picks per device. All compute the same function from the same
parameters, by different formulas, so each checks the others.

Both are causal: on right-padded batches a step never reads the pads after it, and the
backward direction runs through ``run_directions`` (reversal within each sequence's length).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..config import ConfigError, NetworkSchema, model_defaults, not_identity
from ..registry import register_model
from .scan import gated_scan
from .sequence import DirectionalStack, check_mode, gather_last_step, resolve_mode

KINDS = {"mingru": 2, "minlstm": 3}  # input projections per kind: (z, h̃) | (f, i, h̃)


@dataclass
class MinRNNSchema(NetworkSchema):
    """Keys of minGRU and minLSTM; defaults: conf/model/_minrnn.yaml."""
    # auto | fused | parallel | sequential (seqbench.models.sequence.MODES): the same function, not identity
    mode: str = not_identity(model_defaults("_minrnn")["mode"])

    def __post_init__(self):
        super().__post_init__()
        check_mode(self.mode)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32, or the input's dtype when wider: the scan's exp/log lose too much in half precision."""
    return torch.promote_types(dtype, torch.float32)


def candidate(pre: torch.Tensor) -> torch.Tensor:
    """g(x) = x + 0.5 for x >= 0, σ(x) otherwise: continuous, increasing, always > 0."""
    return torch.where(pre >= 0, pre.clamp_min(0) + 0.5, torch.sigmoid(pre))


def log_candidate(pre: torch.Tensor) -> torch.Tensor:
    """log g(x), with log σ(x) = -softplus(-x); clamping keeps the unused branch finite (and its gradient)."""
    return torch.where(pre >= 0, torch.log(pre.clamp_min(0) + 0.5), -F.softplus(-pre))


def log_space_scan(log_coefficients: torch.Tensor, log_values: torch.Tensor) -> torch.Tensor:
    """h_t = a_t ⊙ h_{t-1} + b_t with h_0 = 0, from log a and log b (B, T, H); returns h (B, T, H).

    Heinsen (2023): h_t = Π_{j<=t} a_j · Σ_{k<=t} b_k / Π_{j<=k} a_j, evaluated in log space, where
    the products become cumulative sums and the sum a log-cumsum-exp (stable for any range).
    Prefix operations only, so h_t never reads a step after t.
    """
    a_star = torch.cumsum(log_coefficients, dim=1)  # (B, T, H)
    log_h = a_star + torch.logcumsumexp(log_values - a_star, dim=1)  # (B, T, H)
    return torch.exp(log_h)


class MinRNNLayer(nn.Module):
    """One unidirectional minGRU or minLSTM layer: x (B, T, I) -> h (B, T, H), h_0 = 0."""

    def __init__(self, kind: str, input_size: int, hidden_size: int, mode: str = "auto"):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown minimal cell {kind!r}; valid: {', '.join(KINDS)}")
        self.kind, self.hidden_size, self.mode = kind, hidden_size, check_mode(mode)
        # Every gate and the candidate read x_t only: one projection for all of them and all steps.
        self.input_projection = nn.Linear(input_size, KINDS[kind] * hidden_size)

    def preactivations(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(..., I) -> KINDS[kind] tensors (..., H), in the compute dtype."""
        return self.input_projection(x).to(compute_dtype(x.dtype)).chunk(KINDS[self.kind], dim=-1)

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """a_t and b_t of h_t = a_t ⊙ h_{t-1} + b_t, in linear space (the paper's equations)."""
        if self.kind == "mingru":
            z_pre, h_pre = self.preactivations(x)
            z = torch.sigmoid(z_pre)
            return torch.sigmoid(-z_pre), z * candidate(h_pre)  # 1 - z = σ(-z_pre), exact for large z_pre
        f_pre, i_pre, h_pre = self.preactivations(x)
        f, i = torch.sigmoid(f_pre), torch.sigmoid(i_pre)
        return f / (f + i), i / (f + i) * candidate(h_pre)  # normalised gates: f' + i' = 1

    def log_coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log a_t and log b_t, with log σ(x) = -softplus(-x) (no log of a rounded-to-0 gate)."""
        if self.kind == "mingru":
            z_pre, h_pre = self.preactivations(x)
            return -F.softplus(z_pre), -F.softplus(-z_pre) + log_candidate(h_pre)
        f_pre, i_pre, h_pre = self.preactivations(x)
        # log f' = -log(1 + i/f) = -softplus(log i - log f), with log i - log f = softplus(-f_pre) - softplus(-i_pre).
        log_ratio = F.softplus(-f_pre) - F.softplus(-i_pre)  # log(i / f)
        return -F.softplus(log_ratio), -F.softplus(-log_ratio) + log_candidate(h_pre)

    def step(self, x_t: torch.Tensor, h: torch.Tensor | None = None) -> torch.Tensor:
        """One step: x_t (B, I), h_{t-1} (B, H) or None for h_0 = 0 -> h_t (B, H), in x_t's dtype."""
        a, b = self.coefficients(x_t)  # (B, H) each
        h = torch.zeros_like(b) if h is None else h.to(b.dtype)
        return (a * h + b).to(x_t.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mode = resolve_mode(self.mode, x.device)
        if mode == "parallel":
            log_a, log_b = self.log_coefficients(x)  # (B, T, H) each
            return log_space_scan(log_a, log_b).to(x.dtype)
        if mode == "fused":
            projection = self.input_projection(x).to(compute_dtype(x.dtype))  # the chunks of preactivations()
            return gated_scan(projection, lstm=self.kind == "minlstm").to(x.dtype)
        a, b = self.coefficients(x)  # (B, T, H) each: the input-only part for all steps at once
        h = torch.zeros_like(b[:, 0])  # (B, H)
        states = []
        for a_t, b_t in zip(a.unbind(1), b.unbind(1)):  # unbind: no full-size zero tensor per step in backward
            h = a_t * h + b_t
            states.append(h)
        return torch.stack(states, dim=1).to(x.dtype)  # (B, T, H)


@register_model("mingru", schema=MinRNNSchema)
@register_model("minlstm", schema=MinRNNSchema)
class MinRNNEncoder(DirectionalStack):
    """A stack of minGRU or minLSTM layers (``model.cell=mingru|minlstm``), dropout between
    layers, optionally bidirectional (see ``DirectionalStack``)."""

    def __init__(self, input_size: int, config: MinRNNSchema):
        super().__init__(lambda size: MinRNNLayer(config.cell, size, config.hidden_size, config.mode), input_size,
                         config.hidden_size, config.num_layers, config.bidirectional, config.dropout)

    @property
    def mode(self) -> str:
        return self.layers[0][0].mode

    @mode.setter
    def mode(self, mode: str) -> None:
        """Switch every layer between parallel and sequential: same parameters, same function."""
        check_mode(mode)
        for directions in self.layers:
            for layer in directions:
                layer.mode = mode


# ------------------------------------------------------------------------------------- the deep stack
MIN_STACK = model_defaults("_minrnn_stack")


@dataclass
class MinRNNStackSchema(MinRNNSchema):
    """Keys of the residual minGRU / minLSTM stack; defaults: conf/model/_minrnn_stack.yaml."""
    ff_size: int | None = MIN_STACK["ff_size"]   # feed-forward width; None: 4 * hidden_size

    def __post_init__(self):
        super().__post_init__()
        if self.ff_size is not None and (isinstance(self.ff_size, bool) or not isinstance(self.ff_size, int)
                                         or self.ff_size <= 0):
            raise ConfigError(f"model.ff_size={self.ff_size!r}: must be a whole number > 0, or null for "
                              f"4 * hidden_size")


class ResidualMinRNNBlock(nn.Module):
    """One block of Feng et al.'s stacked models: x + minRNN(LN x), then x + FF(LN x), with
    FF(s) = W_2 GELU(W_1 s) of width ``ff_size``; dropout on each branch before the residual sum
    (the Transformer's pre-LN block with the recurrence in place of attention). Causal: the
    recurrence reads only the past and everything else acts on one step at a time."""

    def __init__(self, kind: str, hidden_size: int, ff_size: int, mode: str, dropout: float):
        super().__init__()
        self.recurrence_norm = nn.LayerNorm(hidden_size)
        self.recurrence = MinRNNLayer(kind, hidden_size, hidden_size, mode)
        self.feed_forward_norm = nn.LayerNorm(hidden_size)
        self.feed_forward = nn.Sequential(nn.Linear(hidden_size, ff_size), nn.GELU(), nn.Linear(ff_size, hidden_size))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.recurrence(self.recurrence_norm(x)))  # (B, T, H)
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))  # (B, T, H)


STACK_NOTE = "the residual stack reads only the past (as in Feng et al.); use mingru/minlstm for bidirectional=true"


@register_model("mingru_deep", schema=MinRNNStackSchema, bidirectional=False, note=STACK_NOTE)
@register_model("minlstm_deep", schema=MinRNNStackSchema, bidirectional=False, note=STACK_NOTE)
class ResidualMinRNNStack(nn.Module):
    """``model.cell=mingru_deep|minlstm_deep``: the input projected to hidden_size, ``num_layers``
    residual blocks (``ResidualMinRNNBlock``), a final LayerNorm (pre-LN stacks end with one, as
    in Xiong et al. 2020 and lucidrains/minGRU-pytorch's minLM).

    forward(x (B, T, E), lengths (B,)) returns
      outputs (B, T, H)   step t reads steps <= t only (rows past a length are undefined)
      summary (B, H)      the output at the last real step
    """

    def __init__(self, input_size: int, config: MinRNNStackSchema):
        super().__init__()
        kind = config.cell.removesuffix("_deep")
        size = config.hidden_size
        self.output_size = size
        self.input_projection = nn.Linear(input_size, size) if input_size != size else nn.Identity()
        self.blocks = nn.ModuleList(ResidualMinRNNBlock(kind, size, config.ff_size or 4 * size, config.mode,
                                                        config.dropout) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(size)

    @property
    def mode(self) -> str:
        return self.blocks[0].recurrence.mode

    @mode.setter
    def mode(self, mode: str) -> None:
        check_mode(mode)
        for block in self.blocks:
            block.recurrence.mode = mode

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.input_projection(x)  # (B, T, H)
        for block in self.blocks:
            hidden = block(hidden)
        outputs = self.final_norm(hidden)  # (B, T, H)
        return outputs, gather_last_step(outputs, lengths.clamp_min(1))
