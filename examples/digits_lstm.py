"""Digits read row by row: an LSTM classifies digits16 images as sequences.

Each 16 x 16 image is a sequence of 16 rows of 16 pixels; an LSTM reads the
rows top to bottom and a softmax layer names the digit from its last state.

    python examples/digits_lstm.py                 # 60,000 images, 4 epochs
    python examples/digits_lstm.py --epochs 2 --train 20000
    python examples/digits_lstm.py --quick   # 3,000 images, 1 epoch (or NNCORE_EXAMPLES_QUICK=1)
"""
import argparse
import os
import time

import numpy as np

import nncore
from nncore.layers import LSTM, Dense


def run(n_train=None, epochs=4, units=64, batch_size=64, seed=0, verbose=0):
    """Train on the first n_train images (all by default); returns
    (test accuracy on all 10,000 test images, the trained model)."""
    (x_train, y_train), (x_test, y_test) = nncore.datasets.load_digits16()
    if n_train is not None:
        x_train, y_train = x_train[:n_train], y_train[:n_train]
    x_train = x_train.astype(np.float32)  # (n, 16 steps, 16 pixels), 0/1
    x_test = x_test.astype(np.float32)
    model = nncore.Sequential([LSTM(units, input_shape=(16, 16)),
                               Dense(10, activation="softmax")], seed=seed)
    model.compile(optimizer=nncore.optimizers.Adam(learning_rate=3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=verbose)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    return float(accuracy), model


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=None, help="training images (all)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="3,000 images, 1 epoch")
    args = parser.parse_args()
    if args.quick or os.environ.get("NNCORE_EXAMPLES_QUICK") == "1":
        args.train, args.epochs = 3000, 1
    start = time.perf_counter()
    acc, _ = run(args.train, args.epochs, args.units, verbose=1)
    print(f"LSTM({args.units}) on digits16 rows: test accuracy {acc:.4f} "
          f"({time.perf_counter() - start:.0f} s)")
