"""Handwritten digits, 16 x 16 binary pixels: 256 inputs, 10 softmax outputs.

A 256-256-10 ReLU network (one hidden layer of 256 units) trained with Adam on digits16 (60,000 training
images) and evaluated on the 10,000 test images it never saw; argmax of the
ten probabilities is the answer. --quick trains on a subset for one epoch.

    python examples/digits_mlp.py
"""
import time

import numpy as np

import nncore
from _common import parse_args
from nncore.layers import Dense, Flatten


def main():
    args = parse_args(__doc__.splitlines()[0])
    (x_train, y_train), (x_test, y_test) = nncore.datasets.load_digits16()
    epochs = 10
    if args.quick:
        x_train, y_train, x_test, y_test, epochs = (x_train[:5000], y_train[:5000],
                                                    x_test[:2000], y_test[:2000], 1)
    model = nncore.Sequential([Flatten(input_shape=(16, 16)),
                               Dense(256, activation="relu"),
                               Dense(10, activation="softmax")], seed=0)
    model.compile(optimizer=nncore.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # the uint8 images as loaded: fit reads their bytes (no float copy of the set)
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    seconds = time.perf_counter() - start
    loss, acc = model.evaluate(x_test.astype(np.float32), y_test, batch_size=1000)
    print(f"{epochs} epochs on {len(x_train)} images in {seconds:.1f} s "
          f"({seconds / epochs:.2f} s/epoch); test accuracy {acc:.4f}, loss {loss:.4f}")
    probs = model.predict_one(x_test[0].astype(np.float32))
    print(f"first test image: label {y_test[0]}, predicted {int(np.argmax(probs))} "
          f"with probability {probs.max():.3f}")


if __name__ == "__main__":
    main()
