"""The Linear Recurrent Unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for
Long Sequences", arXiv:2303.06349).

Each layer is a block around a complex diagonal linear recurrence (state size N, width H):

  u_t = P x_t                       (P: a linear map to H when the input is not H wide, else u = x)
  v_t = LayerNorm(u_t)
  h_t = λ ⊙ h_{t-1} + γ ⊙ (B v_t)   h_0 = 0, λ, γ ∈ C^N / R^N, B ∈ C^{N×H}
  y_t = Re(C h_t) + D ⊙ v_t         C ∈ C^{H×N}, D ∈ R^H
  out_t = u_t + GLU(GELU(y_t))      GLU(s) = (W_1 s) ⊙ σ(W_2 s): the nonlinearity lives outside the recurrence

with λ = exp(-exp(ν_log) + i·exp(θ_log)) (|λ| < 1 for any ν_log: stable by construction),
|λ| drawn uniformly on the ring r_min <= |λ| <= r_max (uniform in area) and its phase uniformly in
[0, max_phase], and γ = sqrt(1 - |λ|²) at initialisation (stored as γ_log, trained), which keeps
the state's scale independent of how close |λ| is to 1.

``model.mode=parallel`` runs the recurrence as an associative scan of log depth (Hillis–Steele:
log2(T) rounds of h_t += λ^o ⊙ h_{t-o}, o = 1, 2, 4, ...), in torch ops. It only ever
multiplies by powers λ^o with |λ^o| <= 1, never divides by them (the λ^{-k} cumulative-sum
trick overflows on long sequences). ``model.mode=sequential`` is a loop over time; ``fused`` the
loop with its backward written out (``seqbench.models.scan``), the fastest on a CPU; ``auto`` (the
default) picks per device. All are causal, so right-padding is never read; the backward direction runs through ``run_directions``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..config import ConfigError, NetworkSchema, model_defaults, not_identity
from ..registry import register_model
from ..optim import set_lr_factor
from .scan import linear_scan
from .sequence import DirectionalStack, check_mode, resolve_mode

LRU = model_defaults("lru")
LRU_DEEP = model_defaults("lru_deep")


@dataclass
class LRUSchema(NetworkSchema):
    """The LRU's own keys; defaults: conf/model/lru.yaml."""
    state_size: int | None = LRU["state_size"]   # N, complex state per layer; None: hidden_size
    r_min: float = LRU["r_min"]                  # initial |λ| uniform on the ring [r_min, r_max]
    r_max: float = LRU["r_max"]
    max_phase: float = LRU["max_phase"]          # initial arg λ uniform in [0, max_phase]
    mode: str = not_identity(LRU["mode"])        # auto | fused | parallel | sequential: the same function

    def __post_init__(self):
        super().__post_init__()
        if self.state_size is not None and (isinstance(self.state_size, bool) or not isinstance(self.state_size, int)
                                            or self.state_size <= 0):
            raise ConfigError(f"model.state_size={self.state_size!r}: must be a whole number > 0, or null for "
                              f"hidden_size")
        for key in ("r_min", "r_max", "max_phase"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"model.{key}={value!r}: must be a number")
        if not 0 <= self.r_min < self.r_max < 1:
            raise ConfigError(f"model.r_min={self.r_min!r}, model.r_max={self.r_max!r}: need "
                              f"0 <= r_min < r_max < 1 (|λ| >= 1 would not be stable)")
        if self.max_phase <= 0:
            raise ConfigError(f"model.max_phase={self.max_phase!r}: must be a number > 0")
        check_mode(self.mode)


@dataclass
class LRUDeepSchema(LRUSchema):
    """``model.cell=lru_deep``: the LRU's keys and a learning-rate factor on the recurrence's own
    parameters (ν_log, θ_log, γ_log), as Orvieto et al. train them; defaults: conf/model/lru_deep.yaml."""
    recurrence_lr_factor: float = LRU_DEEP["recurrence_lr_factor"]  # their lr = optimizer lr * this

    def __post_init__(self):
        super().__post_init__()
        value = self.recurrence_lr_factor
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"model.recurrence_lr_factor={value!r}: must be a number > 0")


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32, or the input's dtype when wider (complex half precision is barely supported)."""
    return torch.promote_types(dtype, torch.float32)


def parallel_linear_scan(coefficient: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """h_t = λ ⊙ h_{t-1} + inputs_t with h_{-1} = 0, for all t at once: coefficient λ (N,), inputs (B, T, N).

    Hillis–Steele scan: after the round with offset o, h_t holds Σ_{k=t-2o+1}^{t} λ^{t-k} inputs_k
    (the terms before step 0 being 0). Each round reads only earlier steps, so it stays causal;
    ceil(log2 T) rounds, O(T log T) work.
    """
    h = inputs
    power = coefficient  # λ^o for the current offset o
    offset = 1
    steps = inputs.size(1)
    while offset < steps:
        h = torch.cat([h[:, :offset], h[:, offset:] + power * h[:, :-offset]], dim=1)  # (B, T, N)
        power = power * power
        offset *= 2
    return h


def sequential_linear_scan(coefficient: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """The same recurrence, one step at a time."""
    h = torch.zeros_like(inputs[:, 0])  # (B, N)
    states = []
    for step in inputs.unbind(1):  # unbind: no full-size zero tensor per step in backward
        h = coefficient * h + step
        states.append(h)
    return torch.stack(states, dim=1)  # (B, T, N)


SCANS = {"parallel": parallel_linear_scan, "sequential": sequential_linear_scan, "fused": linear_scan}


class LinearRecurrentUnit(nn.Module):
    """The recurrence alone: v (B, T, H) -> y (B, T, H), y_t = Re(C h_t) + D ⊙ v_t."""

    def __init__(self, hidden_size: int, state_size: int, r_min: float = 0.0, r_max: float = 0.99,
                 max_phase: float = 2 * math.pi, mode: str = "auto"):
        super().__init__()
        self.mode = check_mode(mode)
        # Ring initialisation: |λ|² uniform in [r_min², r_max²] makes λ uniform in area on the ring.
        # Drawn in float64, so r_max just below 1 does not round to |λ| = 1.
        radius_squared = torch.rand(state_size, dtype=torch.float64) * (r_max ** 2 - r_min ** 2) + r_min ** 2
        radius_squared = radius_squared.clamp_min(1e-300)  # |λ| = 0 has no ν_log
        phase = (torch.rand(state_size, dtype=torch.float64) * max_phase).clamp_min(1e-12)  # θ = 0 has no θ_log
        dtype = torch.get_default_dtype()
        # |λ| = exp(-exp(ν_log))  =>  ν_log = log(-log|λ|) = log(-½ log|λ|²).
        self.nu_log = nn.Parameter(torch.log(-0.5 * torch.log(radius_squared)).to(dtype))
        self.theta_log = nn.Parameter(torch.log(phase).to(dtype))
        self.gamma_log = nn.Parameter((0.5 * torch.log1p(-radius_squared)).to(dtype))  # γ = sqrt(1 - |λ|²)
        # Complex B and C as real and imaginary parts (Glorot-like scales of the paper), D real.
        self.B_re = nn.Parameter(torch.randn(state_size, hidden_size) / math.sqrt(2 * hidden_size))
        self.B_im = nn.Parameter(torch.randn(state_size, hidden_size) / math.sqrt(2 * hidden_size))
        self.C_re = nn.Parameter(torch.randn(hidden_size, state_size) / math.sqrt(state_size))
        self.C_im = nn.Parameter(torch.randn(hidden_size, state_size) / math.sqrt(state_size))
        self.D = nn.Parameter(torch.randn(hidden_size))

    def eigenvalues(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """λ (N,) complex: exp(-exp(ν_log)) · e^{i·exp(θ_log)}."""
        dtype = dtype or compute_dtype(self.nu_log.dtype)
        modulus = torch.exp(-torch.exp(self.nu_log.to(dtype)))  # (N,) in (0, 1)
        phase = torch.exp(self.theta_log.to(dtype))  # (N,)
        return torch.complex(modulus * torch.cos(phase), modulus * torch.sin(phase))

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        # Complex tensors need float32 or wider: keep autocast (mixed precision) from narrowing the products.
        with torch.autocast(device_type=v.device.type, enabled=False):
            return self._forward(v)

    def _forward(self, v: torch.Tensor) -> torch.Tensor:
        dtype = compute_dtype(v.dtype)
        v_wide = v.to(dtype)
        batch, steps, _ = v.shape
        state = self.B_re.size(0)
        gamma = torch.exp(self.gamma_log.to(dtype))  # (N,)
        # B v_t as one real product whose rows interleave Re and Im, viewed as complex without a copy
        # (two products joined by torch.complex, and Re/Im read back through strided views, spent
        # more time copying than multiplying: results/bench_speed.md, "lru").
        # γ ⊙ (B v_t) = (γ ⊙ B) v_t: scaling B's rows costs N·H, scaling the product B·T·N forward and backward.
        b_interleaved = (torch.stack([self.B_re, self.B_im], dim=1).to(dtype) * gamma.view(state, 1, 1)).reshape(2 * state, -1)
        driven = torch.view_as_complex(F.linear(v_wide, b_interleaved).reshape(batch, steps, state, 2))  # (B, T, N)
        h = SCANS[resolve_mode(self.mode, v.device)](self.eigenvalues(dtype), driven)  # (B, T, N) complex
        # Re(C h) = C_re Re(h) - C_im Im(h), as one product over h's contiguous (Re, Im) pairs.
        c_interleaved = torch.stack([self.C_re, -self.C_im], dim=2).reshape(self.C_re.size(0), 2 * state).to(dtype)
        y = F.linear(torch.view_as_real(h).reshape(batch, steps, 2 * state), c_interleaved)  # (B, T, H)
        return (y + self.D.to(dtype) * v_wide).to(v.dtype)


class LRUBlock(nn.Module):
    """One causal LRU layer in one direction: x (B, T, I) -> (B, T, H).

    Pre-LayerNorm, the recurrence, GELU then GLU, and a residual connection around it all, as in
    the paper's Figure 1 (LayerNorm rather than BatchNorm: per step, so it never mixes in pads).
    """

    def __init__(self, input_size: int, hidden_size: int, state_size: int, r_min: float, r_max: float,
                 max_phase: float, mode: str):
        super().__init__()
        # The residual needs the input at width H: project it when it is not.
        self.input_projection = nn.Linear(input_size, hidden_size) if input_size != hidden_size else nn.Identity()
        self.norm = nn.LayerNorm(hidden_size)
        self.recurrence = LinearRecurrentUnit(hidden_size, state_size, r_min, r_max, max_phase, mode)
        self.glu = nn.Linear(hidden_size, 2 * hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.input_projection(x)  # (B, T, H)
        y = self.recurrence(self.norm(u))  # (B, T, H)
        return u + F.glu(self.glu(F.gelu(y)), dim=-1)  # (B, T, H)


@register_model("lru", schema=LRUSchema)
@register_model("lru_deep", schema=LRUDeepSchema)
class LRUEncoder(DirectionalStack):
    """A stack of LRU blocks (``model.cell=lru``), dropout between layers, optionally
    bidirectional (see ``DirectionalStack``: the backward block reads each sequence reversed
    within its length). ``model.cell=lru_deep`` is the same network whose recurrence parameters
    (ν_log, θ_log, γ_log of every block) ask the optimiser for ``recurrence_lr_factor`` times
    its learning rate (``seqbench.optim.set_lr_factor``)."""

    def __init__(self, input_size: int, config: LRUSchema):
        state_size = config.state_size or config.hidden_size
        super().__init__(lambda size: LRUBlock(size, config.hidden_size, state_size, config.r_min, config.r_max,
                                               config.max_phase, config.mode),
                         input_size, config.hidden_size, config.num_layers, config.bidirectional, config.dropout)
        factor = getattr(config, "recurrence_lr_factor", 1.0)
        for directions in self.layers:
            for block in directions:
                set_lr_factor(block.recurrence, factor, "nu_log", "theta_log", "gamma_log")

    @property
    def mode(self) -> str:
        return self.layers[0][0].recurrence.mode

    @mode.setter
    def mode(self, mode: str) -> None:
        """Switch every layer between parallel and sequential: same parameters, same function."""
        check_mode(mode)
        for directions in self.layers:
            for block in directions:
                block.recurrence.mode = mode
