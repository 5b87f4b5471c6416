"""Layers, with Keras' names and arguments.

Each layer has ``forward(x, training)`` and ``backward(dy)`` usable by hand
(for teaching and embedding), and runs its numerics in the C engine.
"""
from nncore.layers.base import Layer
from nncore.layers.core import Activation, Dense, Flatten, Input
from nncore.layers.normalization import BatchNormalization
from nncore.layers.regularization import Dropout
from nncore.layers.recurrent import GRU, LSTM, SimpleRNN

__all__ = ["Layer", "Input", "Dense", "Activation", "Flatten", "Dropout", "BatchNormalization",
           "SimpleRNN", "LSTM", "GRU"]
