"""The one spelling of a model variant, used for folders, TensorBoard runs, records and tables.

Cheap to import (no torch): Hydra resolves run-folder names with it before anything is built.
"""
from __future__ import annotations

def variant_of(model: dict) -> str:
    """``bilstm_attn_additive`` (what ``model=bilstm_attn_additive`` selects, also reached as
    ``model=bilstm_attn model.attention=additive``), ``gru``, ``lstm_bi``, ``irnn``..."""
    name = str(model.get("name") or model.get("cell"))  # a config without a name is labelled by its cell
    if model.get("pooling") == "attention" and model.get("attention") and str(model["attention"]) not in name:
        return f"{name}_{model['attention']}"
    if model.get("bidirectional") and not name.startswith("bi"):
        return f"{name}_bi"
    return name


def register_resolvers() -> None:
    """``${variant:${model}}`` in config strings (run and sweep folder names)."""
    from omegaconf import OmegaConf
    if not OmegaConf.has_resolver("variant"):
        OmegaConf.register_new_resolver("variant", lambda model: variant_of(dict(model)))
