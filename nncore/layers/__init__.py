"""Layers, with Keras' names and arguments.

Each layer has ``forward(x, training)`` and ``backward(dy)`` usable by hand
(for teaching and embedding), and runs its numerics in the C engine.
"""
from nncore.layers.base import Layer
from nncore.layers.core import Activation, Dense, Flatten, Input

__all__ = ["Layer", "Input", "Dense", "Activation", "Flatten"]
