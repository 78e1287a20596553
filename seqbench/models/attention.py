"""Attention pooling over encoder outputs, as in the classic ``attention_net(lstm_output, final_state)``.

Every rule scores each position t of the outputs h (B, T, D) against a query q (B, D),
usually the encoder's final state; the scores become weights through a masked softmax
written out by hand, and the context is the weighted sum of the outputs.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis of ``scores`` (B, T) counting only positions where ``mask`` is True.

    Written out as the tutorials do, in its numerically stable form: subtract the max
    over real positions, exponentiate, zero the pads, normalise. Pads get exactly 0.
    """
    very_negative = torch.finfo(scores.dtype).min
    row_max = scores.masked_fill(~mask, very_negative).max(dim=-1, keepdim=True).values  # (B, 1)
    # Pads may hold anything (even inf): replace them before exp so they cannot overflow.
    shifted = torch.where(mask, scores - row_max, torch.zeros_like(scores))
    exps = torch.exp(shifted) * mask
    total = exps.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(scores.dtype).tiny)
    return exps / total


class AdditiveAttention(nn.Module):
    """Bahdanau: e_t = vᵀ tanh(W_h h_t + W_q q)."""

    def __init__(self, dim: int, attention_dim: int | None = None):
        super().__init__()
        attention_dim = attention_dim or dim
        self.key_projection = nn.Linear(dim, attention_dim, bias=False)
        self.query_projection = nn.Linear(dim, attention_dim)
        self.score_vector = nn.Linear(attention_dim, 1, bias=False)

    def score(self, outputs: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        hidden = torch.tanh(self.key_projection(outputs) + self.query_projection(query).unsqueeze(1))  # (B, T, A)
        return self.score_vector(hidden).squeeze(-1)  # (B, T)


class ConcatAttention(nn.Module):
    """Concat: e_t = wᵀ [h_t ; q] + b, one linear map over the concatenation."""

    def __init__(self, dim: int, attention_dim: int | None = None):
        super().__init__()
        self.score_layer = nn.Linear(2 * dim, 1)

    def score(self, outputs: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        # [h_t ; q] @ w = h_t @ w_h + q @ w_q: splitting the map avoids building (B, T, 2D).
        w_h, w_q = self.score_layer.weight.squeeze(0).chunk(2)
        return outputs @ w_h + (query @ w_q + self.score_layer.bias).unsqueeze(1)  # (B, T)


class ScaledDotAttention(nn.Module):
    """Scaled dot product: e_t = qᵀ h_t / sqrt(d). No parameters."""

    def __init__(self, dim: int, attention_dim: int | None = None):
        super().__init__()
        self.scale = 1.0 / math.sqrt(dim)

    def score(self, outputs: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return torch.einsum("btd,bd->bt", outputs, query) * self.scale  # (B, T)


ATTENTION_RULES = {"additive": AdditiveAttention, "concat": ConcatAttention, "scaled_dot": ScaledDotAttention}


class AttentionPooling(nn.Module):
    """Scores with one of ``ATTENTION_RULES``, returns (context (B, D), weights (B, T))."""

    def __init__(self, rule: str, dim: int, attention_dim: int | None = None):
        super().__init__()
        if rule not in ATTENTION_RULES:
            raise ValueError(f"unknown attention {rule!r}; valid attention rules: {', '.join(ATTENTION_RULES)}")
        self.rule = rule
        self.scorer = ATTENTION_RULES[rule](dim, attention_dim)

    def forward(self, outputs: torch.Tensor, query: torch.Tensor, mask: torch.Tensor):
        weights = masked_softmax(self.scorer.score(outputs, query), mask)  # (B, T)
        context = torch.einsum("bt,btd->bd", weights, outputs)  # (B, D)
        return context, weights
