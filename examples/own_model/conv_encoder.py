"""Your own sequence encoder, used by seqbench without editing it: a stack of causal, dilated
1-D convolutions (as in WaveNet, van den Oord et al. 2016).

The protocol (seqbench/registry.py):
- the class is built as ``CausalConvEncoder(input_size, config)``: ``input_size`` is the width of
  the embedded inputs, ``config`` the model config checked against the schema you register (a
  dataclass subclassing ``NetworkSchema``: the shared keys plus your own, here ``kernel_size``);
- ``forward(x (B, T, input_size), lengths (B,))`` returns ``outputs (B, T, D)`` and
  ``summary (B, D)``, with ``self.output_size = D``; batches are right-padded, and outputs at real
  steps and the summary must not depend on what follows a sequence's length;
- ``@register_model(name, schema=..., bidirectional=False, note=...)`` declares what it supports:
  here no bidirectional form (a causal convolution reads the past only), which seqbench refuses
  with the note when a config asks for it.
seqbench's heads (the summary or attention pooling, or per-step outputs) go on top, for every
data set.
"""
from dataclasses import dataclass

import torch
from torch import nn

from seqbench.config import ConfigError, NetworkSchema
from seqbench.models.sequence import gather_last_step
from seqbench.registry import register_model


@dataclass
class ConvSchema(NetworkSchema):
    kernel_size: int = 3     # taps per layer; layer k is dilated by 2**k

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.kernel_size, int) or self.kernel_size < 1:
            raise ConfigError(f"model.kernel_size={self.kernel_size!r}: must be a whole number >= 1")


@register_model("causal_conv", schema=ConvSchema, bidirectional=False,
                note="a causal convolution reads only the past; use pooling=attention to see the whole sequence")
class CausalConvEncoder(nn.Module):
    def __init__(self, input_size: int, config: ConvSchema):
        super().__init__()
        self.output_size = config.hidden_size
        self.layers = nn.ModuleList()
        for depth in range(config.num_layers):
            self.layers.append(nn.Conv1d(input_size if depth == 0 else config.hidden_size, config.hidden_size,
                                         config.kernel_size, dilation=2 ** depth))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        h = x.transpose(1, 2)  # (B, E, T)
        for depth, conv in enumerate(self.layers):
            if depth > 0:
                h = self.dropout(h)
            # Pad on the left only: step t sees steps <= t, never the pads after a sequence.
            h = torch.relu(conv(nn.functional.pad(h, ((conv.kernel_size[0] - 1) * conv.dilation[0], 0))))
        outputs = h.transpose(1, 2)  # (B, T, H)
        return outputs, gather_last_step(outputs, lengths)  # (B, T, H), (B, H)
