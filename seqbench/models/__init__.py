"""Sequence models: an input layer, an encoder from the registry (one file per kind), a head.

Only what every network uses is imported here; each encoder's file is imported by the registry's
discovery (or by name), so a run's code fingerprint holds its own encoder's file, not the others'."""
from ..config import network_config
from .attention import ATTENTION_RULES, AttentionPooling, masked_softmax
from .network import RecurrentNet
from .sequence import reverse_within_length

NetworkConfig = network_config  # NetworkConfig(cell="gru", hidden_size=8) reads as the config it builds

__all__ = ["ATTENTION_RULES", "AttentionPooling", "masked_softmax", "reverse_within_length", "NetworkConfig",
           "network_config", "RecurrentNet"]
