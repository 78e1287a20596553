"""RNN, LSTM and GRU: the classic cells (torch.nn's fused kernels, or the hand-written ones of
``seqbench.models.scratch`` with ``model.impl=scratch``), stacked and optionally bidirectional.

Recurrent encoders that never read padding.

Sequences arrive right-padded: ``x`` is (B, T, E) and ``lengths`` (B,) counts the real
steps. A forward recurrence is causal, so its outputs at real steps cannot depend on the
pads that come after them. The backward direction is where padded batches usually go
wrong: run naively it starts on the pads. Instead of ``pack_padded_sequence`` (correct
but 3-4x slower), each sequence is reversed *within its own length* (pads stay at the
end), the backward cell runs forward over that, and the result is reversed back.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..config import ConfigError, NetworkSchema
from ..registry import register_model
from .scratch import ScratchRecurrentLayer
from .sequence import directional_summary, run_directions

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
IMPLEMENTATIONS = ("native", "scratch")  # torch.nn's fused kernels | hand-written cells, loop over time


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise ValueError(f"unknown recurrent cell {cell!r}; valid cells: {', '.join(sorted(CELLS))}")
    return cell


def check_impl(impl: str) -> str:
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown impl {impl!r}; valid: {', '.join(IMPLEMENTATIONS)}")
    return impl


NONLINEARITIES = ("tanh", "relu")   # of the plain RNN
INITS = ("default", "identity")     # identity: the IRNN of Le et al. (2015)


@dataclass
class ClassicSchema(NetworkSchema):
    """The classic cells' own keys."""
    impl: str = "native"             # native (torch.nn fused kernels) | scratch (hand-written cells)
    nonlinearity: str = "tanh"       # rnn only: tanh | relu
    init: str = "default"            # default (torch.nn's) | identity (recurrent weights = I: with relu, the IRNN)
    forget_bias: float | None = None  # lstm only: initial forget-gate bias (1.0: Jozefowicz et al. 2015)

    def __post_init__(self):
        super().__post_init__()
        for key, valid in (("impl", IMPLEMENTATIONS), ("nonlinearity", NONLINEARITIES), ("init", INITS)):
            if getattr(self, key) not in valid:
                raise ConfigError(f"model.{key}={getattr(self, key)!r}: unknown {key}; valid: {', '.join(valid)}")
        if self.nonlinearity != "tanh" and self.cell != "rnn":
            raise ConfigError(f"model.nonlinearity={self.nonlinearity} applies to the plain rnn only, not {self.cell}")
        if self.forget_bias is not None and self.cell != "lstm":
            raise ConfigError(f"model.forget_bias applies to lstm only, not {self.cell}")


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
            forward, backward = directions[0], (directions[1] if self.num_directions == 2 else None)
            x = run_directions(lambda inputs: forward(inputs)[0],
                               (lambda inputs: backward(inputs)[0]) if backward is not None else None, x, lengths)
        return x, directional_summary(x, lengths, self.hidden_size, self.num_directions == 2)


@register_model("rnn", schema=ClassicSchema, gradient_flow=True, files=("models/scratch.py",))
@register_model("lstm", schema=ClassicSchema, gradient_flow=True, files=("models/scratch.py",))
@register_model("gru", schema=ClassicSchema, gradient_flow=True, files=("models/scratch.py",))
class ClassicEncoder(RecurrentEncoder):
    """The registered form: built from the model config (``model.cell=rnn|lstm|gru``)."""

    def __init__(self, input_size: int, config: ClassicSchema):
        super().__init__(config.cell, input_size, config.hidden_size, config.num_layers, config.dropout,
                         config.bidirectional, config.impl, config.nonlinearity, config.init, config.forget_bias)
