"""Recurrent encoders that never read padding.

Sequences arrive right-padded: ``x`` is (B, T, E) and ``lengths`` (B,) counts the real
steps. A forward recurrence is causal, so its outputs at real steps cannot depend on the
pads that come after them. The backward direction is where padded batches usually go
wrong: run naively it starts on the pads. Instead of ``pack_padded_sequence`` (correct
but 3-4x slower), each sequence is reversed *within its own length* (pads stay at the
end), the backward cell runs forward over that, and the result is reversed back.
"""
from __future__ import annotations

import torch
from torch import nn

from .scratch import ScratchRecurrentLayer

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
IMPLEMENTATIONS = ("native", "scratch")  # torch.nn's fused kernels | hand-written cells, loop over time


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise ValueError(f"unknown recurrent cell {cell!r}; valid cells: {', '.join(sorted(CELLS))}")
    return cell


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


def check_impl(impl: str) -> str:
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown impl {impl!r}; valid: {', '.join(IMPLEMENTATIONS)}")
    return impl


NONLINEARITIES = ("tanh", "relu")   # of the plain RNN
INITS = ("default", "identity")     # identity: the IRNN of Le et al. (2015)


def make_layer(cell: str, impl: str, input_size: int, hidden_size: int, nonlinearity: str = "tanh",
               init: str = "default", forget_bias: float | None = None) -> nn.Module:
    """One single-layer, unidirectional, batch-first recurrent layer.

    ``nonlinearity`` (rnn only): tanh or relu. ``init="identity"``: recurrent weights = I and
    biases = 0 (with relu, the IRNN). ``forget_bias`` (lstm only): the forget gate's bias
    starts at this value (split as b_ih = forget_bias, b_hh = 0), so the cell remembers by
    default (Jozefowicz et al., 2015).
    """
    check_cell(cell)
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}; valid: {', '.join(NONLINEARITIES)}")
    if nonlinearity != "tanh" and cell != "rnn":
        raise ValueError(f"model.nonlinearity={nonlinearity} applies to the plain rnn only, not {cell}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    if forget_bias is not None and cell != "lstm":
        raise ValueError(f"model.forget_bias applies to lstm only, not {cell}")
    if check_impl(impl) == "scratch":
        layer = ScratchRecurrentLayer(cell, input_size, hidden_size, nonlinearity=nonlinearity)
    elif cell == "rnn":
        layer = nn.RNN(input_size, hidden_size, batch_first=True, nonlinearity=nonlinearity)
    else:
        layer = CELLS[cell](input_size, hidden_size, batch_first=True)
    initialise(layer, cell, hidden_size, init, forget_bias)
    return layer


@torch.no_grad()
def initialise(layer: nn.Module, cell: str, hidden_size: int, init: str, forget_bias: float | None) -> None:
    """The same rules for torch.nn and scratch layers (same parameter names and gate order)."""
    if init == "identity":
        gates = layer.weight_hh_l0.size(0) // hidden_size
        layer.weight_hh_l0.copy_(torch.eye(hidden_size).repeat(gates, 1))
        layer.bias_ih_l0.zero_()
        layer.bias_hh_l0.zero_()
    if forget_bias is not None:  # PyTorch's LSTM gate order: input, forget, cell, output
        layer.bias_ih_l0[hidden_size: 2 * hidden_size] = forget_bias
        layer.bias_hh_l0[hidden_size: 2 * hidden_size] = 0.0


def gather_last_step(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, T, D) -> (B, D): the output at each sequence's last real step."""
    index = (lengths.to(x.device) - 1).view(-1, 1, 1).expand(-1, 1, x.size(-1))
    return x.gather(1, index).squeeze(1)


class RecurrentEncoder(nn.Module):
    """A stack of RNN/LSTM/GRU layers, optionally bidirectional, padding-invariant.

    Each layer and direction is its own single-layer ``torch.nn`` module, so both
    directions of layer k see the full output of layer k-1 (as in ``torch.nn.LSTM``).

    forward(x (B, T, E), lengths (B,)) returns
      outputs (B, T, D)   D = hidden_size * num_directions; rows past a length are undefined
      summary (B, D)      forward state after the last real step, [; backward state at step 0]
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, bidirectional: bool = False, impl: str = "native",
                 nonlinearity: str = "tanh", init: str = "default", forget_bias: float | None = None):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions
        self.layers = nn.ModuleList()
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else self.output_size
            self.layers.append(nn.ModuleList(
                make_layer(cell, impl, layer_input, hidden_size, nonlinearity, init, forget_bias)
                for _ in range(self.num_directions)))
        self.inter_layer_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for depth, directions in enumerate(self.layers):
            if depth > 0:
                x = self.inter_layer_dropout(x)
            forward_out, _ = directions[0](x)  # (B, T, H)
            if self.num_directions == 1:
                x = forward_out
                continue
            backward_out, _ = directions[1](reverse_within_length(x, lengths))
            x = torch.cat([forward_out, reverse_within_length(backward_out, lengths)], dim=-1)  # (B, T, 2H)
        summary = gather_last_step(x[..., : self.hidden_size], lengths)  # (B, H)
        if self.num_directions == 2:
            # The backward direction has read the whole sequence when it reaches step 0.
            summary = torch.cat([summary, x[:, 0, self.hidden_size:]], dim=-1)  # (B, 2H)
        return x, summary
