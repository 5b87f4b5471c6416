"""Layers, with Keras' names and arguments.

Each layer has ``forward(x, training)`` and ``backward(dy)`` usable by hand
(for teaching and embedding), and runs its numerics in the C engine.
"""
from nncore.layers.base import Layer
from nncore.layers.conv import Conv2D
from nncore.layers.core import Activation, Dense, Flatten, Input
from nncore.layers.normalization import BatchNormalization
from nncore.layers.pooling import (AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D,
                                   MaxPooling2D, Reshape)
from nncore.layers.recurrent import GRU, LSTM, SimpleRNN
from nncore.layers.regularization import Dropout

__all__ = ["Layer", "Input", "Dense", "Activation", "Flatten", "Dropout", "BatchNormalization",
           "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D",
           "GlobalMaxPooling2D", "Reshape", "SimpleRNN", "LSTM", "GRU"]
