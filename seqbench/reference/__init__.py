"""From-scratch references: NumPy layers with backpropagation through time."""
from .numpy_rnn import LAYERS, Adam, NumpyGRU, NumpyLSTM, NumpyRNN, SequenceRegressor, SGD, gradient_check

__all__ = ["LAYERS", "Adam", "NumpyGRU", "NumpyLSTM", "NumpyRNN", "SequenceRegressor", "SGD", "gradient_check"]
