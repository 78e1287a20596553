"""Helpers every encoder shares: padding masks, the last real step, and reversal within each
sequence's own length (how a bidirectional encoder runs its backward direction on right-padded
batches without reading the pads first)."""
from __future__ import annotations

import torch


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
