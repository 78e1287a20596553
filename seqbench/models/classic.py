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

from ..config import ConfigError, NetworkSchema, model_defaults
from ..registry import register_model
from .scratch import ScratchRecurrentLayer
from .sequence import DirectionalStack

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


CLASSIC = model_defaults("_classic")


@dataclass
class ClassicSchema(NetworkSchema):
    """The classic cells' own keys; defaults: conf/model/_classic.yaml."""
    impl: str = CLASSIC["impl"]                      # native (torch.nn fused kernels) | scratch (hand-written cells)
    nonlinearity: str = CLASSIC["nonlinearity"]      # rnn only: tanh | relu
    init: str = CLASSIC["init"]                      # default | identity (recurrent weights = I: with relu, the IRNN)
    forget_bias: float | None = CLASSIC["forget_bias"]  # lstm only: initial forget-gate bias (1.0: Jozefowicz 2015)

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


class RecurrentEncoder(DirectionalStack):
    """A stack of RNN/LSTM/GRU layers, optionally bidirectional, padding-invariant (see
    ``DirectionalStack``): ``torch.nn``'s single-layer modules, or the hand-written scratch cells."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0, bidirectional: bool = False, impl: str = "native",
                 nonlinearity: str = "tanh", init: str = "default", forget_bias: float | None = None):
        self.cell = cell
        super().__init__(lambda size: make_layer(cell, impl, size, hidden_size, nonlinearity, init, forget_bias),
                         input_size, hidden_size, num_layers, bidirectional, dropout)

    def run_layer(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        return layer(x)[0]  # torch.nn returns (outputs, final state)


@register_model("rnn", schema=ClassicSchema, gradient_flow=True)
@register_model("lstm", schema=ClassicSchema, gradient_flow=True)
@register_model("gru", schema=ClassicSchema, gradient_flow=True)
class ClassicEncoder(RecurrentEncoder):
    """The registered form: built from the model config (``model.cell=rnn|lstm|gru``)."""

    def __init__(self, input_size: int, config: ClassicSchema):
        super().__init__(config.cell, input_size, config.hidden_size, config.num_layers, config.dropout,
                         config.bidirectional, config.impl, config.nonlinearity, config.init, config.forget_bias)
