"""Kernel workloads, one function computed two or three ways and timed forward + backward: the
hand-written cells' step loop (x[:, t] before, unbind now), the scan cells in every model.mode,
and the LRU's complex products before (strided) and now (interleaved)."""
from __future__ import annotations

from unittest import mock

import torch
from torch.nn import functional as F

from ..models import network_config
from ..models.lru import LinearRecurrentUnit, LRUEncoder, parallel_linear_scan, sequential_linear_scan
from ..models.minrnn import MinRNNLayer
from ..models.scratch import ScratchRecurrentLayer
from .cells import SCAN_CELLS, SCAN_MODES
from .timing import format_step_rows, interleaved_forward_backward, one_torch_thread

def sliced_scratch_forward(layer, x: torch.Tensor) -> torch.Tensor:
    """A hand-written cell's loop as it was written before (``from_input[:, t]`` at every step),
    kept as the reference its ``unbind`` loop is timed and tested against."""
    h = x.new_zeros(x.size(0), layer.hidden_size)
    c = x.new_zeros(x.size(0), layer.hidden_size)
    from_input = torch.nn.functional.linear(x, layer.weight_ih_l0, layer.bias_ih_l0)
    outputs = []
    for t in range(x.size(1)):
        from_hidden = torch.nn.functional.linear(h, layer.weight_hh_l0, layer.bias_hh_l0)
        a = from_input[:, t]
        if layer.cell == "rnn":
            h = layer.activation(a + from_hidden)
        elif layer.cell == "lstm":
            i, f, g, o = (a + from_hidden).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            a_r, a_z, a_n = a.chunk(3, dim=1)
            b_r, b_z, b_n = from_hidden.chunk(3, dim=1)
            r, z = torch.sigmoid(a_r + b_r), torch.sigmoid(a_z + b_z)
            h = (1 - z) * torch.tanh(a_n + r * b_n) + z * h
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def measure_loops(lengths: list[int], hidden: int, repeats: int) -> dict[int, dict[str, dict]]:
    """Forward + backward of the hand-written GRU (model.impl=scratch) over T steps, taking each step
    with ``x[:, t]`` (as before) and with ``unbind`` (as now); batch 32, one thread, denormals flushed."""
    torch.manual_seed(0)
    layer = ScratchRecurrentLayer("gru", 64, hidden)
    paths = {"sliced x[:, t] (before)": lambda x: sliced_scratch_forward(layer, x),
             "unbind (now)": lambda x: layer(x)[0]}
    out = {}
    with one_torch_thread():
        for length in lengths:
            x = torch.randn(32, length, 64)
            out[length] = interleaved_forward_backward({name: (path, layer) for name, path in paths.items()}, x, repeats)
    return out


def scan_layer(cell: str, size: int, mode: str) -> torch.nn.Module:
    return LinearRecurrentUnit(size, size, mode=mode) if cell == "lru" else MinRNNLayer(cell, size, size, mode)


def measure_scan(lengths: list[int], widths: list[int], repeats: int, batch: int = 50) -> dict[tuple[str, int, int], dict]:
    """Forward + backward of one layer of each scan cell over T steps in every ``model.mode`` (the same
    parameters, the same function): batch 50 as the memory grid trains them, one thread, denormals
    flushed. What ``model.mode=auto`` picks on a CPU follows these ratios."""
    out = {}
    with one_torch_thread():
        for cell in SCAN_CELLS:
            for width in widths:
                for length in lengths:
                    torch.manual_seed(0)
                    layers = {mode: scan_layer(cell, width, mode) for mode in SCAN_MODES}
                    for layer in layers.values():
                        layer.load_state_dict(layers[SCAN_MODES[0]].state_dict())
                    x = torch.randn(batch, length, width)
                    out[(cell, width, length)] = interleaved_forward_backward(
                        {mode: (layer, layer) for mode, layer in layers.items()}, x, repeats)
    return out


def format_scan(measured: dict[tuple[str, int, int], dict]) -> list[str]:
    lines = []
    for (cell, width, length), rows in measured.items():
        label = f"{cell}, width {width}, T = {length}"
        lines += format_step_rows(label, rows, SCAN_MODES[0], "s per step")
        seconds = {mode: row["median_seconds"] for mode, row in rows.items()}
        lines += [f"{label}: fused against sequential: {seconds['sequential'] / seconds['fused']:.2f}x; "
                  f"fused against parallel: {seconds['parallel'] / seconds['fused']:.2f}x", ""]
    return lines


def strided_lru_forward(unit, v: torch.Tensor) -> torch.Tensor:
    """``LinearRecurrentUnit._forward`` as it was before the interleaved products: B v through two
    real products joined by ``torch.complex``, Re(C h) through the strided views ``h.real``/``h.imag``
    (the same function; each strided view is copied, forward and backward)."""
    gamma = torch.exp(unit.gamma_log)
    driven = torch.complex(F.linear(v, unit.B_re), F.linear(v, unit.B_im)) * gamma
    scan = parallel_linear_scan if unit.mode == "parallel" else sequential_linear_scan
    h = scan(unit.eigenvalues(v.dtype), driven)
    return F.linear(h.real, unit.C_re) - F.linear(h.imag, unit.C_im) + unit.D * v


def measure_lru(lengths: list[int], hidden: int, repeats: int, batch: int = 50) -> dict[tuple[str, int], dict]:
    """Forward + backward of the LRU in model.mode=sequential with its products before (strided) and now
    (interleaved): one layer (``lru``) and the 4-block encoder of ``lru_deep``; batch 50, width ``hidden``
    as the memory grid trains them, one thread, denormals flushed."""
    out = {}
    with one_torch_thread():
        for name, layers in (("lru", 1), ("lru_deep", 4)):
            for length in lengths:
                torch.manual_seed(0)
                encoder = LRUEncoder(2, network_config(cell=name, hidden_size=hidden, num_layers=layers, mode="sequential"))
                lengths_ = torch.full((batch,), length)

                def now(x):
                    return encoder(x, lengths_)[0]

                def before(x):
                    with mock.patch.object(LinearRecurrentUnit, "_forward", strided_lru_forward):
                        return encoder(x, lengths_)[0]
                x = torch.randn(batch, length, 2)
                out[(name, length)] = interleaved_forward_backward(
                    {"strided Re/Im, torch.complex (before)": (before, encoder), "interleaved products (now)": (now, encoder)},
                    x, repeats)
    return out
