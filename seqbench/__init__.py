"""seqbench: train, compare and look inside recurrent sequence models."""

__version__ = "0.1.0"


class SeqbenchError(Exception):
    """An error the user can fix; its message says what happened and what to do."""
