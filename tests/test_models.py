"""The parts every network shares: the classic cells against torch's packed reference, reversal
within a sequence's length, the masked softmax and the attention rules' equations. (What every
model must do, padding first, is tests/test_model_contract.py, generated from the registry.)"""
import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqbench.models import NetworkConfig, masked_softmax, reverse_within_length
from seqbench.models.classic import RecurrentEncoder
from seqbench.registry import models


@pytest.fixture(autouse=True)
def float64():
    """Equivalence checks compare to 1e-10, far below float32 noise."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.mark.parametrize("cell,reference", [("lstm", nn.LSTM), ("gru", nn.GRU), ("rnn", nn.RNN)])
def test_bidirectional_encoder_equals_packed_torch_reference(cell, reference):
    torch.manual_seed(1)
    ours = RecurrentEncoder(cell, input_size=4, hidden_size=5, num_layers=2, bidirectional=True)
    packed_reference = reference(4, 5, num_layers=2, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for layer in range(2):
            for direction, suffix in enumerate(["", "_reverse"]):
                for kind in ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]:
                    getattr(packed_reference, f"{kind}_l{layer}{suffix}").copy_(
                        getattr(ours.layers[layer][direction], f"{kind}_l0"))
    x = torch.randn(3, 7, 4)
    lengths = torch.tensor([7, 3, 5])
    outputs, summary = ours(x, lengths)
    packed_out, state = packed_reference(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    expected, _ = pad_packed_sequence(packed_out, batch_first=True)
    hidden = state[0] if cell == "lstm" else state
    for row, length in enumerate(lengths):
        torch.testing.assert_close(outputs[row, :length], expected[row, :length], rtol=0, atol=1e-10)
    # The summary is the top layer's final state of both directions, as torch reports it.
    torch.testing.assert_close(summary, torch.cat([hidden[-2], hidden[-1]], dim=-1), rtol=0, atol=1e-10)


def test_reverse_within_length_reverses_only_real_steps_and_undoes_itself():
    x = torch.arange(12.0).view(2, 6, 1)
    lengths = torch.tensor([4, 6])
    flipped = reverse_within_length(x, lengths)
    assert flipped[0, :, 0].tolist() == [3, 2, 1, 0, 4, 5]
    assert flipped[1, :, 0].tolist() == [11, 10, 9, 8, 7, 6]
    torch.testing.assert_close(reverse_within_length(flipped, lengths), x)


def test_masked_softmax_matches_torch_softmax_and_zeroes_pads():
    torch.manual_seed(0)
    scores = torch.randn(4, 9) * 30
    lengths = torch.tensor([9, 1, 5, 3])
    mask = torch.arange(9).unsqueeze(0) < lengths.unsqueeze(1)
    weights = masked_softmax(scores, mask)
    for row, length in enumerate(lengths):
        torch.testing.assert_close(weights[row, :length], torch.softmax(scores[row, :length], dim=-1))
        assert torch.all(weights[row, length:] == 0)


def test_masked_softmax_is_stable_for_huge_scores_and_ignores_inf_in_pads():
    scores = torch.tensor([[1e4, 1e4 - 1.0, float("inf")]])
    mask = torch.tensor([[True, True, False]])
    weights = masked_softmax(scores, mask)
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights, torch.tensor([[1 / (1 + math.exp(-1)), 1 / (1 + math.e), 0.0]]))


def test_attention_rules_follow_their_equations():
    torch.manual_seed(0)
    h = torch.randn(2, 4, 6)
    q = torch.randn(2, 6)
    from seqbench.models.attention import AdditiveAttention, ConcatAttention, ScaledDotAttention
    additive = AdditiveAttention(6, attention_dim=3)
    expected = torch.tanh(h @ additive.key_projection.weight.T + (q @ additive.query_projection.weight.T
                          + additive.query_projection.bias).unsqueeze(1)) @ additive.score_vector.weight.squeeze(0)
    torch.testing.assert_close(additive.score(h, q), expected)
    concat = ConcatAttention(6)
    joined = torch.cat([h, q.unsqueeze(1).expand(-1, 4, -1)], dim=-1)  # [h_t ; q]
    torch.testing.assert_close(concat.score(h, q), concat.score_layer(joined).squeeze(-1))
    torch.testing.assert_close(ScaledDotAttention(6).score(h, q), (h * q.unsqueeze(1)).sum(-1) / math.sqrt(6))


def test_wrong_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=f"valid: {', '.join(sorted(models()))}, or a dotted path"):
        NetworkConfig(cell="mamba")
    with pytest.raises(ValueError, match="additive, concat, scaled_dot"):
        NetworkConfig(cell="lstm", bidirectional=True, pooling="attention", attention="luong")
    with pytest.raises(ValueError, match="last, attention"):
        NetworkConfig(cell="gru", pooling="max")
