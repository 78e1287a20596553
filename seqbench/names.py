"""The one spelling of a model variant, used for folders, TensorBoard runs, records and tables.

Cheap to import (no torch): Hydra resolves run-folder names with it before anything is built.
"""
from __future__ import annotations

# The task a data set poses decides the head, the loss, the metric that picks the best epoch
# and which way it is better. It is a property of the data set, carried into records and tables.
TASKS = {
    "classification": ("acc", "max"),            # one label per sequence
    "per_step_regression": ("mse", "min"),       # a value at every step (sin -> cos)
    "last_step_regression": ("mse", "min"),      # one value read after the last step (adding)
    # a class at every step (copy): cross-entropy per step, the quantity its memoryless baseline is
    # stated in, smooth while accuracy on the recalled symbols is still flat at 0
    "per_step_classification": ("ce", "min"),
}


def variant_of(model: dict) -> str:
    """``bilstm_attn_additive`` (what ``model=bilstm_attn_additive`` selects, also reached as
    ``model=bilstm_attn model.attention=additive``), ``gru``, ``lstm_bi``, ``irnn``..."""
    name = str(model.get("name"))
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
