"""Vanishing gradients: a deep sigmoid network's first layers starve, ReLU's do not.

The sigmoid's derivative is at most 0.25, and backpropagation multiplies one
such factor per layer, so the gradient reaching the first layer of a
10-layer sigmoid stack is orders of magnitude smaller than at the last. ReLU
passes a derivative of 1 wherever it is active. nncore.diagnostics
.gradient_norms shows it after one backward pass (no optimizer step).

    python examples/vanishing_gradients.py
"""
import numpy as np

import nncore
from _common import parse_args
from nncore.diagnostics import gradient_norms
from nncore.layers import Dense, Flatten


def deep_model(activation, depth, seed=0):
    layers = [Flatten(input_shape=(16, 16))]
    layers += [Dense(64, activation=activation) for _ in range(depth)]
    layers.append(Dense(10, activation="softmax"))
    model = nncore.Sequential(layers, seed=seed)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def main():
    args = parse_args(__doc__.splitlines()[0])
    (x, y), _ = nncore.datasets.load_digits16()
    x, y = x[:256].astype(np.float32), y[:256]
    depth = 6 if args.quick else 10
    for activation in ("sigmoid", "tanh", "relu"):
        norms = list(gradient_norms(deep_model(activation, depth), x, y).values())
        print(f"{activation:>7}: first/last layer gradient norm = {norms[0] / norms[-1]:.1e}; "
              f"per layer " + " ".join(f"{n:.0e}" for n in norms))


if __name__ == "__main__":
    main()
