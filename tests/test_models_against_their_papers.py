"""minGRU, minLSTM, LRU and the Transformer, each against its paper: parallel, fused and sequential
modes computing the same function, the equations step by step, the settings each paper fixes.
(Padding, heads, directions, precision and learning, for every model: test_model_contract.py.)"""
import math
from dataclasses import fields

import pytest
import torch

from seqbench.config import ConfigError
from seqbench.models import network_config
from seqbench.models.lru import LRUEncoder, parallel_linear_scan, sequential_linear_scan
from seqbench.models.minrnn import MinRNNLayer
from seqbench.models.transformer import TransformerEncoder
from seqbench.registry import models

# Every registered encoder with parallel, fused and sequential modes (model.mode).
WITH_MODES = sorted(name for name, entry in models().items()
                    if entry.schema is not None and "mode" in {f.name for f in fields(entry.schema)})
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}


@pytest.fixture
def float64():
    """Invariance checks compare to 1e-10, far below float32 noise."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def encoder_pair(cell: str, dtype: torch.dtype, bidirectional: bool, mode: str = "parallel", **keys):
    """The same 2-layer encoder in ``mode`` and in sequential mode (one set of weights)."""
    config = network_config(cell=cell, hidden_size=6, embedding_dim=5, num_layers=2, bidirectional=bidirectional,
                            mode=mode, **keys)
    cls = models()[cell].cls
    parallel = cls(5, config).to(dtype)
    sequential = cls(5, network_config(**{**vars(config), "mode": "sequential"})).to(dtype)
    sequential.load_state_dict(parallel.state_dict())
    return parallel.eval(), sequential.eval()


# ------------------------------------------------------------- parallel == fused == sequential
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("mode", ["parallel", "fused"])
@pytest.mark.parametrize("cell", WITH_MODES)
def test_every_mode_computes_the_loops_outputs_and_gradients(cell, mode, bidirectional, dtype):
    """Right-padded rows of different lengths: outputs at real steps, summaries, and gradients (of
    inputs and weights) equal to the loop's, in ``mode``."""
    if bidirectional and not models()[cell].bidirectional:
        pytest.skip(f"{cell} refuses bidirectional=true (the contract tests check the refusal)")
    torch.manual_seed(0)
    parallel, sequential = encoder_pair(cell, dtype, bidirectional, mode)
    assert (parallel.mode, sequential.mode) == (mode, "sequential")
    lengths = torch.tensor([9, 4, 1, 7])
    x = (torch.randn(4, 9, 5) * 2).to(dtype)
    tolerance = TOLERANCE[dtype]
    results = []
    for encoder in (parallel, sequential):
        inputs = x.clone().requires_grad_()
        outputs, summary = encoder(inputs, lengths)
        real = (torch.arange(9).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)  # (B, T, 1)
        # A loss over real steps only (pads' outputs are undefined) and the summary.
        weights = torch.linspace(-1, 1, outputs.numel(), dtype=dtype).view_as(outputs)
        loss = (outputs * weights * real).sum() + summary.square().sum()
        loss.backward()
        grads = {name: p.grad.clone() for name, p in encoder.named_parameters()}
        results.append((outputs.detach() * real, summary.detach(), inputs.grad, grads))
    (out_p, sum_p, dx_p, g_p), (out_s, sum_s, dx_s, g_s) = results
    torch.testing.assert_close(out_p, out_s, rtol=0, atol=tolerance)
    torch.testing.assert_close(sum_p, sum_s, rtol=0, atol=tolerance)
    torch.testing.assert_close(dx_p, dx_s, rtol=0, atol=tolerance)
    assert g_p.keys() == g_s.keys()
    for name in g_p:  # a weight's gradient sums many terms: compare to its own scale
        scale = max(1.0, g_p[name].abs().max().item())
        torch.testing.assert_close(g_p[name], g_s[name], rtol=0, atol=tolerance * scale)


@pytest.mark.parametrize("kind", ["mingru", "minlstm"])
def test_minimal_cells_follow_the_paper_equations_step_by_step(kind, float64):
    torch.manual_seed(0)
    layer = MinRNNLayer(kind, 3, 4)
    x = torch.randn(2, 6, 3) * 3
    g = lambda pre: torch.where(pre >= 0, pre + 0.5, torch.sigmoid(pre))  # noqa: E731
    h = torch.zeros(2, 4)
    expected = []
    for t in range(6):
        pre = layer.input_projection(x[:, t])
        if kind == "mingru":
            z_pre, h_pre = pre.chunk(2, dim=-1)
            z = torch.sigmoid(z_pre)
            h = (1 - z) * h + z * g(h_pre)
        else:
            f_pre, i_pre, h_pre = pre.chunk(3, dim=-1)
            f, i = torch.sigmoid(f_pre), torch.sigmoid(i_pre)
            h = f / (f + i) * h + i / (f + i) * g(h_pre)
        expected.append(h)
    expected = torch.stack(expected, dim=1)
    for mode in ("parallel", "fused", "sequential"):
        layer.mode = mode
        torch.testing.assert_close(layer(x), expected, rtol=0, atol=1e-10)
    h = None
    for t in range(6):  # step-by-step use
        h = layer.step(x[:, t], h)
        torch.testing.assert_close(h, expected[:, t], rtol=0, atol=1e-10)


def test_the_log_depth_scan_equals_the_loop_for_every_length(float64):
    torch.manual_seed(0)
    coefficient = torch.polar(torch.rand(5), torch.rand(5) * 6)
    for steps in (1, 2, 3, 5, 8, 13):
        inputs = torch.complex(torch.randn(2, steps, 5), torch.randn(2, steps, 5))
        expected = sequential_linear_scan(coefficient, inputs)
        torch.testing.assert_close(parallel_linear_scan(coefficient, inputs), expected, rtol=0, atol=1e-12)


# -------------------------------------------------------------------------- transformer
@pytest.mark.parametrize("layers", [1, 2])
def test_causal_transformer_never_reads_the_future(layers, float64):
    torch.manual_seed(0)
    encoder = TransformerEncoder(4, network_config(cell="transformer", hidden_size=8, heads=2, embedding_dim=4,
                                                   num_layers=layers)).eval()
    x = torch.randn(2, 10, 4)
    lengths = torch.tensor([10, 10])
    outputs, summary = encoder(x, lengths)
    for t in (0, 3, 8):
        changed = x.clone()
        changed[:, t + 1:] = torch.randn(2, 9 - t, 4) * 10
        after, _ = encoder(changed, lengths)
        torch.testing.assert_close(after[:, : t + 1], outputs[:, : t + 1], rtol=0, atol=1e-10)
        assert (after[:, t + 1:] - outputs[:, t + 1:]).abs().max() > 1e-3  # the future does reach later steps
    torch.testing.assert_close(summary, outputs[:, -1], rtol=0, atol=0)


def test_bidirectional_transformer_attends_to_everything_real_and_averages_it(float64):
    torch.manual_seed(0)
    encoder = TransformerEncoder(4, network_config(cell="transformer", hidden_size=8, heads=2, embedding_dim=4,
                                                   bidirectional=True)).eval()
    assert encoder.output_size == 8
    x = torch.randn(1, 6, 4)
    lengths = torch.tensor([4])
    outputs, summary = encoder(x, lengths)
    changed = x.clone()
    changed[:, 3] += 1.0  # the last real step reaches the first one
    assert (encoder(changed, lengths)[0][:, 0] - outputs[:, 0]).abs().max() > 1e-3
    torch.testing.assert_close(summary, outputs[:, :4].mean(dim=1), rtol=0, atol=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_transformer_outputs_stay_finite_for_any_pads_and_empty_rows(bidirectional):
    torch.manual_seed(0)
    encoder = TransformerEncoder(4, network_config(cell="transformer", hidden_size=8, heads=2, embedding_dim=4,
                                                   bidirectional=bidirectional)).eval()
    x = torch.randn(3, 5, 4)
    x[0, 2:] = float("inf")
    x[1, 3:] = float("nan")
    lengths = torch.tensor([2, 3, 0])  # the last row has no real step: its queries see no real key
    outputs, summary = encoder(x, lengths)
    assert torch.isfinite(outputs).all() and torch.isfinite(summary).all()
    clean = x.clone()
    clean[0, 2:], clean[1, 3:] = 0.0, 0.0
    torch.testing.assert_close(encoder(clean, lengths)[0][0, :2], outputs[0, :2])


# ----------------------------------------------------------------------------------- LRU
def test_lru_initialisation_lies_on_the_ring_with_normalised_inputs():
    torch.manual_seed(0)
    config = network_config(cell="lru", hidden_size=8, state_size=256, embedding_dim=8, r_min=0.4, r_max=0.9,
                            max_phase=math.pi / 10, num_layers=2, bidirectional=True)
    encoder = LRUEncoder(8, config)
    for directions in encoder.layers:
        for block in directions:
            recurrence = block.recurrence
            eigenvalues = recurrence.eigenvalues()
            assert eigenvalues.shape == (256,)
            modulus = eigenvalues.abs()
            assert modulus.min() >= 0.4 - 1e-6 and modulus.max() <= 0.9 + 1e-6
            assert modulus.min() < 0.45 and modulus.max() > 0.85  # spread over the whole ring
            phase = eigenvalues.angle()
            assert phase.min() >= 0 and phase.max() <= math.pi / 10 + 1e-6
            torch.testing.assert_close(recurrence.gamma_log.exp(), torch.sqrt(1 - modulus ** 2), rtol=1e-5, atol=1e-6)
    # state_size null means hidden_size
    assert LRUEncoder(5, network_config(cell="lru", hidden_size=6)).layers[0][0].recurrence.nu_log.shape == (6,)


@pytest.mark.parametrize("mode", ["parallel", "fused", "sequential"])
@pytest.mark.parametrize("float64", [False, True])
def test_lru_follows_the_paper_equations_step_by_step(mode, float64):
    """h_t = λ ⊙ h_{t-1} + γ ⊙ (B v_t), y_t = Re(C h_t) + D ⊙ v_t in plain complex arithmetic, one step at
    a time, against the unit (which multiplies by B and C as interleaved real products)."""
    from seqbench.models.lru import LinearRecurrentUnit
    dtype = torch.float64 if float64 else torch.float32
    torch.manual_seed(0)
    unit = LinearRecurrentUnit(5, 7, r_min=0.5, r_max=0.99, max_phase=math.pi, mode=mode).to(dtype)
    v = torch.randn(3, 9, 5, dtype=dtype, requires_grad=True)
    lam = unit.eigenvalues()
    gamma = unit.gamma_log.exp()
    B = torch.complex(unit.B_re, unit.B_im)
    C = torch.complex(unit.C_re, unit.C_im)
    h = torch.zeros(3, 7, dtype=lam.dtype)
    expected = []
    for t in range(9):
        h = lam * h + gamma * (v[:, t].to(lam.dtype) @ B.T)
        expected.append((h @ C.T).real + unit.D * v[:, t])
    expected = torch.stack(expected, dim=1)
    got = unit(v)
    torch.testing.assert_close(got, expected, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])
    weights = torch.randn_like(got)
    grads = torch.autograd.grad((got * weights).sum(), [v, *unit.parameters()])
    reference = torch.autograd.grad((expected * weights).sum(), [v, *unit.parameters()])
    for a, b in zip(grads, reference):
        torch.testing.assert_close(a, b, rtol=10 * TOLERANCE[dtype], atol=10 * TOLERANCE[dtype])


def test_parallel_lru_stays_finite_and_exact_over_2000_steps_with_eigenvalues_near_1():
    torch.manual_seed(0)
    config = network_config(cell="lru", hidden_size=4, state_size=30, embedding_dim=3, r_min=0.999, r_max=0.9999)
    encoder = LRUEncoder(3, config)
    with torch.no_grad():  # and some eigenvalues near 0, whose inverse powers would overflow at once
        encoder.layers[0][0].recurrence.nu_log[:5] = math.log(-math.log(1e-3))
    x = torch.randn(2, 2000, 3, requires_grad=True)
    lengths = torch.tensor([2000, 1500])
    outputs, summary = encoder(x, lengths)
    assert torch.isfinite(outputs).all() and torch.isfinite(summary).all()
    (outputs.sum() + summary.sum()).backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters())
    encoder.mode = "sequential"
    with torch.no_grad():
        looped, _ = encoder(x, lengths)
    torch.testing.assert_close(outputs, looped, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- wrong settings
@pytest.mark.parametrize("keys,message", [
    (dict(cell="mingru", mode="fast"), "model.mode='fast': unknown mode; valid: auto, fused, parallel, sequential"),
    (dict(cell="minlstm", mode="scan"), "model.mode='scan': unknown mode; valid: auto, fused, parallel, sequential"),
    (dict(cell="lru", mode="fast"), "model.mode='fast': unknown mode; valid: auto, fused, parallel, sequential"),
    (dict(cell="lru", r_max=1.0), "0 <= r_min < r_max < 1"),
    (dict(cell="lru", r_min=0.9, r_max=0.5), "0 <= r_min < r_max < 1"),
    (dict(cell="lru", r_min=-0.1), "0 <= r_min < r_max < 1"),
    (dict(cell="lru", max_phase=0), "model.max_phase=0: must be a number > 0"),
    (dict(cell="lru", state_size=0), "model.state_size=0"),
    (dict(cell="transformer", hidden_size=10, heads=4), "model.heads=4: must divide model.hidden_size=10"),
    (dict(cell="transformer", heads=0), "model.heads=0: must be a whole number > 0"),
    (dict(cell="transformer", ff_size=2.5), "model.ff_size=2.5"),
    (dict(cell="mingru", heads=2), "model.heads: unknown key"),
])
def test_wrong_settings_are_one_line_config_errors(keys, message):
    with pytest.raises(ConfigError) as error:
        network_config(**{"hidden_size": 8, **keys})
    assert message in str(error.value) and "\n" not in str(error.value)
