"""A small pre-LayerNorm Transformer encoder (Vaswani et al. 2017, "Attention Is All You Need",
with the LayerNorm placement of Xiong et al. 2020, "On Layer Normalization in the Transformer
Architecture"): the attention-only reference beside the recurrent encoders.

  x_0 = W_in e + PE                          sinusoidal positions PE (Vaswani et al. 2017)
  x_l = x_{l-1} + MHA(LN(x_{l-1}))           self-attention, padded keys masked out
  x_l = x_l + W_2 GELU(W_1 LN(x_l))          feed-forward of width ff_size
  outputs = LN(x_L)

``model.bidirectional=false`` adds a causal mask: step t attends to steps <= t only, like a
unidirectional RNN, so per-step tasks see no future input. ``model.bidirectional=true`` attends
to every real step. Either way output_size = hidden_size (d_model). Summary: the output at the
last real step (causal) or the mean over the real steps (full attention).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..config import ConfigError, NetworkSchema, check_positive, model_defaults
from ..registry import register_model
from .sequence import gather_last_step, padding_mask


TRANSFORMER = model_defaults("transformer")
BITRANSFORMER = model_defaults("bitransformer")


@dataclass
class TransformerSchema(NetworkSchema):
    """The Transformer's own keys (hidden_size is d_model); defaults: conf/model/transformer.yaml."""
    heads: int = TRANSFORMER["heads"]            # attention heads; hidden_size must be divisible by it
    ff_size: int | None = TRANSFORMER["ff_size"]  # feed-forward width; None: 4 * hidden_size

    def __post_init__(self):
        super().__post_init__()
        for key in ("heads", "ff_size"):
            value = getattr(self, key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(f"model.{key}={value!r}: must be a whole number > 0")
        if self.heads is None:
            raise ConfigError("model.heads=None: must be a whole number > 0")
        if self.hidden_size % self.heads:
            raise ConfigError(f"model.heads={self.heads}: must divide model.hidden_size={self.hidden_size}")


@dataclass
class BiTransformerSchema(TransformerSchema):
    """``model.cell=bitransformer``: the Transformer's keys and how it is trained, as encoders are
    (Vaswani et al. 2017, Devlin et al. 2019): a peak learning rate scaled from the optimizer's and a
    linear warmup to it (``seqbench.optim.configure``); defaults: conf/model/bitransformer.yaml.
    A scale, not a rate of its own: a search over optimizer.lr still moves this model's rate."""
    lr_scale: float = BITRANSFORMER["lr_scale"]             # peak learning rate = optimizer.lr x lr_scale
    warmup_steps: int = BITRANSFORMER["warmup_steps"]       # optimiser steps of linear warmup (0: none)

    def __post_init__(self):
        super().__post_init__()
        check_positive("model", lr_scale=self.lr_scale)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ConfigError(f"model.warmup_steps={self.warmup_steps!r}: must be a whole number >= 0")


def sinusoidal_positions(steps: int, size: int, dtype: torch.dtype, device=None) -> torch.Tensor:
    """(T, size): PE[t, 2i] = sin(t / 10000^{2i/size}), PE[t, 2i+1] = cos(t / 10000^{2i/size})."""
    positions = torch.arange(steps, dtype=dtype, device=device).unsqueeze(1)  # (T, 1)
    frequencies = torch.exp(torch.arange(0, size, 2, dtype=dtype, device=device) * (-math.log(10000.0) / size))
    angles = positions * frequencies  # (T, ceil(size/2))
    # Interleave sin and cos; an odd size drops the last cos.
    return torch.stack([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(1)[:, :size]  # (T, size)


def attention_mask(lengths: torch.Tensor, steps: int, causal: bool, device=None) -> torch.Tensor:
    """(B, 1, T, T) True where query t may attend to key s: s is a real step (and s <= t when causal).

    Only a row with no real step at all (length 0) would see no key, and masked softmax over no
    key is NaN: such rows may see every key instead (their outputs are undefined, but finite).
    """
    allowed = padding_mask(lengths, steps, device)[:, None, None, :]  # (B, 1, 1, T) keys
    if causal:
        allowed = allowed & torch.ones(steps, steps, dtype=torch.bool, device=device).tril()  # (B, 1, T, T)
    allowed = allowed.expand(-1, 1, steps, steps)
    return allowed | ~allowed.any(dim=-1, keepdim=True)


class SelfAttention(nn.Module):
    """Multi-head self-attention; masked keys get exactly zero weight (softmax of -inf)."""

    def __init__(self, hidden_size: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.out = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, steps, size = x.shape
        heads = self.qkv(x).view(batch, steps, 3, self.heads, size // self.heads)  # (B, T, 3, h, d)
        q, k, v = heads.permute(2, 0, 3, 1, 4)  # (B, h, T, d) each
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, T, d)
        return self.out(attended.transpose(1, 2).reshape(batch, steps, size))  # (B, T, H)


class TransformerLayer(nn.Module):
    """Pre-LN: x + Attn(LN x), then x + FF(LN x); dropout on each branch before the residual sum."""

    def __init__(self, hidden_size: int, heads: int, ff_size: int, dropout: float):
        super().__init__()
        self.attention_norm = nn.LayerNorm(hidden_size)
        self.attention = SelfAttention(hidden_size, heads)
        self.feed_forward_norm = nn.LayerNorm(hidden_size)
        self.feed_forward = nn.Sequential(nn.Linear(hidden_size, ff_size), nn.GELU(), nn.Linear(ff_size, hidden_size))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.attention_norm(x), mask))  # (B, T, H)
        return x + self.dropout(self.feed_forward(self.feed_forward_norm(x)))  # (B, T, H)


@register_model("transformer", schema=TransformerSchema)
@register_model("bitransformer", schema=BiTransformerSchema)
class TransformerEncoder(nn.Module):
    """``model.cell=transformer``; ``model.cell=bitransformer`` is the same network with the keys
    of its training (``BiTransformerSchema``: lr_scale, warmup_steps), read by the optimiser's builder.

    forward(x (B, T, E), lengths (B,)) returns
      outputs (B, T, H)   rows past a length are undefined (finite)
      summary (B, H)      causal: the output at the last real step; full attention: the mean over real steps
    """

    def __init__(self, input_size: int, config: TransformerSchema):
        super().__init__()
        self.causal = not config.bidirectional
        self.output_size = config.hidden_size
        self.input_projection = nn.Linear(input_size, config.hidden_size)
        self.layers = nn.ModuleList(
            TransformerLayer(config.hidden_size, config.heads, config.ff_size or 4 * config.hidden_size,
                             config.dropout) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, steps, _ = x.shape
        real = padding_mask(lengths, steps, x.device)  # (B, T)
        # Pads get zero weight, but 0 * inf is NaN: clear them so any pad value is harmless.
        x = x.masked_fill(~real.unsqueeze(-1), 0.0)
        hidden = self.input_projection(x)  # (B, T, H)
        hidden = hidden + sinusoidal_positions(steps, hidden.size(-1), hidden.dtype, x.device)
        mask = attention_mask(lengths, steps, self.causal, x.device)  # (B, 1, T, T)
        for layer in self.layers:
            hidden = layer(hidden, mask)
        outputs = self.final_norm(hidden)  # (B, T, H)
        if self.causal:
            return outputs, gather_last_step(outputs, lengths.clamp_min(1))  # an empty row: its first (pad) step
        weights = real.to(outputs.dtype).unsqueeze(-1)  # (B, T, 1)
        summary = (outputs * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)  # (B, H)
        return outputs, summary
