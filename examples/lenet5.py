"""LeNet-5 on handwritten digits, with nncore's Conv2D and MaxPooling2D.

    python examples/lenet5.py --data mnist      # ../shared/data/mnist.npz
    python examples/lenet5.py --data digits16   # bundled 16 x 16 digits
    python examples/lenet5.py --data /path/to/mnist.npz --epochs 8 --threads 2

LeNet-5 (LeCun et al., 1998) in its common modern form: ReLU in place of
the scaled tanh, max pooling in place of the trainable subsampling, and a
softmax output (fused with the cross-entropy by the model):

    conv 5x5, 6 maps, "same"  -> max pool 2x2 -> conv 5x5, 16 maps
    -> max pool 2x2 -> dense 120 -> dense 84 -> dense 10 (softmax)

(the second convolution pads its border on images smaller than 28 x 28).

The bundled digits16 are MNIST reduced to 16 x 16 binary pixels: they hold
less per pixel, and LeNet-5's 6 and 16 maps level off near 98 % there, so
for them the example widens the maps to 16 and 32 and trains 9 epochs
(DIGITS16_FILTERS, DIGITS16_EPOCHS).

Trained with Adam (learning rate 1e-3, halved every two epochs), batch 64. Prints the test accuracy of each epoch.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, REPO)

import nncore  # noqa: E402
from nncore.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D  # noqa: E402

MNIST_PATH = os.path.join(REPO, "..", "shared", "data", "mnist.npz")
DIGITS16_FILTERS = (16, 32)
DIGITS16_EPOCHS = 9


def lenet5(input_shape=(28, 28, 1), seed: int = 0, dtype="float32",
           steps_per_epoch: int = 938, filters=(6, 16)) -> nncore.Sequential:
    """LeNet-5 for (h, w, 1) images and 10 classes, compiled with Adam whose
    learning rate (1e-3) halves every two epochs. ``filters``: the maps of the
    two convolutions (LeNet-5's 6 and 16).

    Images smaller than 28 x 28 (the 16 x 16 digits) keep the second
    convolution's border ("same"): a "valid" one would leave 2 x 2 maps.
    """
    conv2_padding = "valid" if min(input_shape[:2]) >= 28 else "same"
    model = nncore.Sequential([
        Input(input_shape),
        Conv2D(filters[0], 5, padding="same", activation="relu"),
        MaxPooling2D(2),
        Conv2D(filters[1], 5, padding=conv2_padding, activation="relu"),
        MaxPooling2D(2),
        Flatten(),
        Dense(120, activation="relu"),
        Dense(84, activation="relu"),
        Dense(10, activation="softmax"),
    ], seed=seed, dtype=dtype)
    schedule = nncore.optimizers.ExponentialDecay(1e-3, decay_steps=2 * steps_per_epoch,
                                                  decay_rate=0.5, staircase=True)
    model.compile(optimizer=nncore.optimizers.Adam(learning_rate=schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def load(data: str):
    """((x_train, y_train), (x_test, y_test)) as float32 (n, h, w, 1) in [0, 1]."""
    if data == "digits16":
        (xt, yt), (xs, ys) = nncore.datasets.load_digits16()
        scale = 1.0
    else:
        path = MNIST_PATH if data == "mnist" else data
        (xt, yt), (xs, ys) = nncore.datasets.load_mnist(path)
        scale = 1.0 / 255.0
    def prep(x):
        return (np.asarray(x, np.float32) * np.float32(scale))[..., None]
    return (prep(xt), np.asarray(yt, np.int64)), (prep(xs), np.asarray(ys, np.int64))


class _Report(nncore.callbacks.Callback):
    def __init__(self, x_test, y_test, verbose=True):
        super().__init__()
        self.x_test, self.y_test, self.verbose = x_test, y_test, verbose
        self.accuracies = []
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        _, acc = self.model.evaluate(self.x_test, self.y_test, batch_size=500)
        self.accuracies.append(acc)
        if self.verbose:
            print(f"epoch {epoch + 1}: loss {logs['loss']:.4f}, train accuracy "
                  f"{logs['accuracy']:.4f}, test accuracy {acc:.4f} "
                  f"({time.perf_counter() - self.start:.0f} s)", flush=True)


def train(data="mnist", epochs=None, batch_size=64, seed=0, limit=None, verbose=True):
    """Train LeNet-5 and return (model, test accuracy after each epoch).

    epochs: 6 for MNIST, DIGITS16_EPOCHS for digits16 unless given."""
    (xt, yt), (xs, ys) = load(data)
    if limit:
        xt, yt = xt[:limit], yt[:limit]
    small = data == "digits16"
    if epochs is None:
        epochs = DIGITS16_EPOCHS if small else 6
    model = lenet5(xt.shape[1:], seed=seed, steps_per_epoch=-(-len(xt) // batch_size),
                   filters=DIGITS16_FILTERS if small else (6, 16))
    report = _Report(xs, ys, verbose)
    model.fit(xt, yt, batch_size=batch_size, epochs=epochs, verbose=0,
              callbacks=[report])
    return model, report.accuracies


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="mnist",
                   help="mnist (../shared/data/mnist.npz), digits16, or a path to mnist.npz")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"default: 6 for MNIST, {DIGITS16_EPOCHS} for digits16")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--save", default=None, help="save the trained model here")
    args = p.parse_args(argv)
    if args.threads:
        nncore.set_num_threads(args.threads)
    model, acc = train(args.data, args.epochs, args.batch_size, args.seed)
    print(f"test accuracy: {acc[-1]:.4f}")
    if args.save:
        model.save(args.save)
    return acc[-1]


if __name__ == "__main__":
    main()
