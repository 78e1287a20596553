"""Sequence models: an input layer, an encoder from the registry (one file per kind), a head."""
from ..config import network_config
from .attention import ATTENTION_RULES, AttentionPooling, masked_softmax
from .classic import CELLS, RecurrentEncoder
from .network import RecurrentNet
from .sequence import reverse_within_length

NetworkConfig = network_config  # NetworkConfig(cell="gru", hidden_size=8) reads as the config it builds

__all__ = ["ATTENTION_RULES", "AttentionPooling", "masked_softmax", "CELLS", "RecurrentEncoder",
           "reverse_within_length", "NetworkConfig", "network_config", "RecurrentNet"]
