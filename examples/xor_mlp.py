"""XOR with one hidden layer: two lines where a perceptron has one.

A 2-4-1 network (tanh hidden units, sigmoid output, binary cross-entropy)
trained by backpropagation with Adam separates XOR that no single perceptron
can.

    python examples/xor_mlp.py
"""
import numpy as np

import nncore
from _common import parse_args
from nncore.layers import Dense


def main():
    args = parse_args(__doc__.splitlines()[0])
    x, y = nncore.datasets.xor()
    model = nncore.Sequential([Dense(4, activation="tanh", input_dim=2),
                               Dense(1, activation="sigmoid")], seed=1)
    model.compile(optimizer=nncore.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=300, batch_size=4, verbose=0)
    print(f"loss: {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.4f} "
          f"after {len(history.epoch)} epochs")
    p = model.predict(x)[:, 0]
    for xi, yi, pi in zip(x, y, p):
        print(f"  {xi.astype(int)} -> {pi:.3f} (target {int(yi)})")
    print(f"accuracy: {np.mean((p > 0.5) == y):.0%}")


if __name__ == "__main__":
    main()
