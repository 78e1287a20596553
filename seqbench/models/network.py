"""The plain ``nn.Module`` every run trains: input layer -> encoder -> head.

The encoder comes from the model registry (``model.cell``: rnn, lstm, gru, the newer cells, or
your own class); the head is the same for all of them: the encoder's summary or attention
pooling for one output per sequence, the per-step outputs for per-step tasks. Kept apart from
Lightning so it can be used and tested on its own.
"""
from __future__ import annotations

import torch
from torch import nn

from ..config import NetworkSchema, network_config
from ..registry import model_entry
from .attention import AttentionPooling
from .sequence import padding_mask


class RecurrentNet(nn.Module):
    """Sequence classifier or per-step regressor.

    Text: ``vocab_size`` given, input ids (B, T) with 0 = pad. Signals: ``input_dim`` given,
    input (B, T, input_dim). ``per_step=False`` gives logits (B, num_outputs); ``per_step=True``
    gives values (B, T, num_outputs). forward returns (output, attention weights (B, T) or None).
    ``config``: the model config (a ``NetworkSchema`` of the encoder's kind, or a plain dict).
    ``sparse_embedding``: the embedding's gradient holds the rows a batch used only (training speed;
    the forward pass is the same, so checkpoints load either way).
    """

    def __init__(self, config: NetworkSchema | dict, num_outputs: int, vocab_size: int | None = None,
                 input_dim: int | None = None, per_step: bool = False, pad_id: int = 0,
                 sparse_embedding: bool = False):
        super().__init__()
        if (vocab_size is None) == (input_dim is None):
            raise ValueError("give exactly one of vocab_size (text) or input_dim (signals)")
        config = network_config(config) if isinstance(config, dict) else config
        self.config = config
        self.per_step = per_step
        if vocab_size is not None:
            # sparse: gradients for the rows a batch uses only (optimizer.sparse_embedding, seqbench/optim.py)
            self.input_layer = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=pad_id,
                                            sparse=sparse_embedding)
        else:
            self.input_layer = nn.Linear(input_dim, config.embedding_dim)
        self.input_dropout = nn.Dropout(config.embedding_dropout)
        self.encoder = model_entry(config.cell).cls(config.embedding_dim, config)
        features = self.encoder.output_size
        self.attention = None
        if config.pooling == "attention":
            self.attention = AttentionPooling(config.attention, features, config.attention_dim)
        head_input = features * 2 if (per_step and self.attention is not None) else features
        self.output_dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(head_input, num_outputs)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor):
        mask = padding_mask(lengths, inputs.size(1), inputs.device)  # (B, T)
        outputs, summary = self.encoder(self.input_dropout(self.input_layer(inputs)), lengths)  # (B, T, D), (B, D)
        weights = None
        if self.attention is not None:
            pooled, weights = self.attention(outputs, summary, mask)  # (B, D), (B, T)
        else:
            pooled = summary
        if self.per_step:
            features = outputs
            if self.attention is not None:
                # Each step sees its own state and the attention summary of the whole sequence.
                features = torch.cat([outputs, pooled.unsqueeze(1).expand_as(outputs)], dim=-1)  # (B, T, 2D)
            return self.head(self.output_dropout(features)), weights  # (B, T, num_outputs)
        return self.head(self.output_dropout(pooled)), weights  # (B, num_outputs)
