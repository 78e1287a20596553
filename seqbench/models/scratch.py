"""Hand-written recurrent cells in Torch ops: the gate equations of
``seqbench.reference.numpy_rnn`` with a Python loop over time; autograd does the backward.

Drop-in for a single-layer, unidirectional, batch-first ``torch.nn.RNN/LSTM/GRU``: same
parameter names and shapes (``weight_ih_l0``, ...), same outputs, so weights and
checkpoints move between ``model.impl=native`` and ``model.impl=scratch``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

GATES = {"rnn": 1, "lstm": 4, "gru": 3}


class ScratchRecurrentLayer(nn.Module):
    def __init__(self, cell: str, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__()
        self.cell, self.hidden_size = cell, hidden_size
        self.activation = torch.relu if nonlinearity == "relu" else torch.tanh  # plain RNN only
        rows = GATES[cell] * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh_l0 = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih_l0 = nn.Parameter(torch.empty(rows))
        self.bias_hh_l0 = nn.Parameter(torch.empty(rows))
        bound = 1.0 / math.sqrt(hidden_size)  # as torch.nn initialises them
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)
        # Diagnostics (seqbench.diagnostics) set this to keep every step's h with its gradient.
        self.keep_states = False
        self.states: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor):
        """x (B, T, I) -> outputs (B, T, H), final state as torch.nn returns it."""
        batch = x.size(0)
        h = x.new_zeros(batch, self.hidden_size)
        c = x.new_zeros(batch, self.hidden_size)
        # The input part of every gate does not depend on h: one matrix product for all steps.
        from_input = torch.nn.functional.linear(x, self.weight_ih_l0, self.bias_ih_l0)  # (B, T, G*H)
        outputs = []
        # unbind, not from_input[:, t]: the backward of each slice allocates a zero tensor of the
        # full (B, T, G*H) size, so slicing makes the loop's cost grow with T squared.
        for a in from_input.unbind(1):
            from_hidden = torch.nn.functional.linear(h, self.weight_hh_l0, self.bias_hh_l0)  # (B, G*H)
            if self.cell == "rnn":
                h = self.activation(a + from_hidden)
            elif self.cell == "lstm":
                i, f, g, o = (a + from_hidden).chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            else:  # gru
                a_r, a_z, a_n = a.chunk(3, dim=1)
                b_r, b_z, b_n = from_hidden.chunk(3, dim=1)
                r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
                n = torch.tanh(a_n + r * b_n)
                h = (1 - z) * n + z * h
            if self.keep_states:
                h.retain_grad()
            outputs.append(h)
        self.states = outputs if self.keep_states else []
        final = (h.unsqueeze(0), c.unsqueeze(0)) if self.cell == "lstm" else h.unsqueeze(0)
        return torch.stack(outputs, dim=1), final
