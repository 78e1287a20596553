from .attention import ATTENTION_RULES, AttentionPooling, masked_softmax
from .encoders import CELLS, RecurrentEncoder, reverse_within_length
from .network import NetworkConfig, RecurrentNet

__all__ = ["ATTENTION_RULES", "AttentionPooling", "masked_softmax", "CELLS", "RecurrentEncoder",
           "reverse_within_length", "NetworkConfig", "RecurrentNet"]
