"""Helpers every encoder shares: padding masks, the last real step, and reversal within each
sequence's own length (how a bidirectional encoder runs its backward direction on right-padded
batches without reading the pads first)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


# How a recurrence with a parallel form runs: all steps at once (a scan), a loop over time through
# autograd, or a loop with its own backward (seqbench.models.scan); auto picks per device. The same
# function each way, so the mode is not part of a run's identity (config.NOT_IDENTITY_MODEL_KEYS).
MODES = ("auto", "fused", "parallel", "sequential")
# What auto runs, by device type, as measured (results/bench_speed.md, "scan"): on a CPU the fused
# loop; elsewhere (CUDA) the scan over all steps, whose few whole-tensor kernels beat 2T small
# launches per layer (reasoned, not measured: no GPU here).
AUTO_MODE = {"cpu": "fused"}


def check_mode(mode: str) -> str:
    if mode not in MODES:
        from ..config import ConfigError
        raise ConfigError(f"model.mode={mode!r}: unknown mode; valid: {', '.join(MODES)}")
    return mode


def resolve_mode(mode: str, device: torch.device) -> str:
    """The mode that runs on ``device``: ``mode`` itself, or what auto picks there."""
    return AUTO_MODE.get(device.type, "parallel") if mode == "auto" else mode


def padding_mask(lengths: torch.Tensor, steps: int, device=None) -> torch.Tensor:
    """(B, T) True at the real steps of each row."""
    device = device if device is not None else lengths.device
    return torch.arange(steps, device=device).unsqueeze(0) < lengths.to(device).unsqueeze(1)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` steps of each row of ``x`` (B, T, ...); pads stay put.

    Applying it twice gives back ``x``.
    """
    batch, steps = x.shape[:2]
    positions = torch.arange(steps, device=x.device).expand(batch, steps)  # (B, T)
    lengths = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    source = torch.where(positions < lengths, lengths - 1 - positions, positions)  # (B, T)
    index = source.view(batch, steps, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def gather_last_step(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, D): the output at each sequence's last real step."""
    index = (lengths.to(x.device) - 1).view(-1, 1, 1).expand(-1, 1, x.size(-1))
    return x.gather(1, index).squeeze(1)


def run_directions(forward, backward, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """One layer of a (bi)directional causal encoder: ``forward`` and (if given) ``backward``
    map (B, T, I) -> (B, T, H) causally; the backward one reads each sequence reversed within
    its length. Returns (B, T, H) or (B, T, 2H)."""
    forward_out = forward(x)
    if backward is None:
        return forward_out
    backward_out = reverse_within_length(backward(reverse_within_length(x, lengths)), lengths)
    return torch.cat([forward_out, backward_out], dim=-1)  # (B, T, 2H)


def directional_summary(outputs: torch.Tensor, lengths: torch.Tensor, hidden_size: int,
                        bidirectional: bool) -> torch.Tensor:
    """The state after each sequence's last real step (forward direction) and, when
    bidirectional, the backward direction's state at step 0 (it has read the whole sequence)."""
    summary = gather_last_step(outputs[..., :hidden_size], lengths)  # (B, H)
    if bidirectional:
        summary = torch.cat([summary, outputs[:, 0, hidden_size:]], dim=-1)  # (B, 2H)
    return summary


class DirectionalStack(nn.Module):
    """``num_layers`` layers of a causal recurrent cell, one or two directions each (each its own
    module, reading the whole output of the layer below, as in ``torch.nn.LSTM``), dropout between
    layers. ``make_layer(input_size)`` builds one direction of one layer; ``run_layer`` maps a
    layer and (B, T, I) to (B, T, H).

    forward(x (B, T, E), lengths (B,)) returns
      outputs (B, T, D)   D = hidden_size * num_directions; rows past a length are undefined
      summary (B, D)      forward state after the last real step [; backward state at step 0]
    """

    def __init__(self, make_layer: Callable[[int], nn.Module], input_size: int, hidden_size: int, num_layers: int,
                 bidirectional: bool, dropout: float):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.hidden_size = hidden_size
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions
        self.layers = nn.ModuleList(
            nn.ModuleList(make_layer(input_size if depth == 0 else self.output_size)
                          for _ in range(self.num_directions))
            for depth in range(num_layers))
        self.inter_layer_dropout = nn.Dropout(dropout)

    @property
    def bidirectional(self) -> bool:
        return self.num_directions == 2

    def run_layer(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return layer(x)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for depth, directions in enumerate(self.layers):
            if depth > 0:
                x = self.inter_layer_dropout(x)
            backward = directions[1] if self.bidirectional else None
            x = run_directions(lambda inputs: self.run_layer(directions[0], inputs),
                               (lambda inputs: self.run_layer(backward, inputs)) if backward is not None else None,
                               x, lengths)  # (B, T, D)
        return x, directional_summary(x, lengths, self.hidden_size, self.bidirectional)
