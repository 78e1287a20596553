"""The plain ``nn.Module`` every run trains: input layer -> recurrent encoder -> head.

Kept apart from Lightning so it can be used and tested on its own.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import ATTENTION_RULES, AttentionPooling
from .encoders import RecurrentEncoder, check_cell, check_impl

POOLINGS = ("last", "attention")


@dataclass
class NetworkConfig:
    cell: str = "lstm"               # rnn | lstm | gru
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0             # between recurrent layers and before the output layer
    bidirectional: bool = False
    pooling: str = "last"            # last (state at the last real step) | attention
    attention: str | None = None     # additive | concat | scaled_dot, with pooling=attention
    attention_dim: int | None = None  # additive only; defaults to the encoder's output size
    embedding_dim: int = 128         # size of the token embedding / signal projection
    embedding_dropout: float = 0.0   # on the embedded inputs
    impl: str = "native"             # native (torch.nn fused kernels) | scratch (hand-written cells)
    nonlinearity: str = "tanh"       # rnn only: tanh | relu
    init: str = "default"            # default (torch.nn's) | identity (recurrent weights = I: with relu, the IRNN)
    forget_bias: float | None = None  # lstm only: initial forget-gate bias (1.0: Jozefowicz et al. 2015)

    def __post_init__(self):
        check_cell(self.cell)
        check_impl(self.impl)
        if self.hidden_size < 1 or self.num_layers < 1 or self.embedding_dim < 1:
            raise ValueError(f"hidden_size, num_layers and embedding_dim must be >= 1; got {self.hidden_size}, "
                             f"{self.num_layers}, {self.embedding_dim}")
        for name in ("dropout", "embedding_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; valid: {', '.join(POOLINGS)}")
        if self.pooling == "attention" and self.attention not in ATTENTION_RULES:
            raise ValueError(f"unknown attention {self.attention!r}; valid attention rules: {', '.join(ATTENTION_RULES)}")


class RecurrentNet(nn.Module):
    """Sequence classifier or per-step regressor.

    Text: ``vocab_size`` given, input ids (B, T) with 0 = pad. Signals: ``input_dim`` given,
    input (B, T, input_dim). ``per_step=False`` gives logits (B, num_outputs); ``per_step=True``
    gives values (B, T, num_outputs). forward returns (output, attention weights (B, T) or None).
    """

    def __init__(self, config: NetworkConfig, num_outputs: int, vocab_size: int | None = None,
                 input_dim: int | None = None, per_step: bool = False, pad_id: int = 0):
        super().__init__()
        if (vocab_size is None) == (input_dim is None):
            raise ValueError("give exactly one of vocab_size (text) or input_dim (signals)")
        self.config = config
        self.per_step = per_step
        if vocab_size is not None:
            self.input_layer = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=pad_id)
        else:
            self.input_layer = nn.Linear(input_dim, config.embedding_dim)
        self.input_dropout = nn.Dropout(config.embedding_dropout)
        self.encoder = RecurrentEncoder(config.cell, config.embedding_dim, config.hidden_size,
                                        config.num_layers, config.dropout, config.bidirectional, config.impl,
                                        config.nonlinearity, config.init, config.forget_bias)
        features = self.encoder.output_size
        self.attention = None
        if config.pooling == "attention":
            self.attention = AttentionPooling(config.attention, features, config.attention_dim)
        head_input = features * 2 if (per_step and self.attention is not None) else features
        self.output_dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(head_input, num_outputs)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor):
        steps = inputs.size(1)
        mask = torch.arange(steps, device=inputs.device).unsqueeze(0) < lengths.to(inputs.device).unsqueeze(1)  # (B, T)
        outputs, final_state = self.encoder(self.input_dropout(self.input_layer(inputs)), lengths)  # (B, T, D), (B, D)
        weights = None
        if self.attention is not None:
            pooled, weights = self.attention(outputs, final_state, mask)  # (B, D), (B, T)
        else:
            pooled = final_state
        if self.per_step:
            features = outputs
            if self.attention is not None:
                # Each step sees its own state and the attention summary of the whole sequence.
                features = torch.cat([outputs, pooled.unsqueeze(1).expand_as(outputs)], dim=-1)  # (B, T, 2D)
            return self.head(self.output_dropout(features)), weights  # (B, T, num_outputs)
        return self.head(self.output_dropout(pooled)), weights  # (B, num_outputs)
