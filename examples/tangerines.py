"""Sorting tangerines: a hand-written rule against a threshold learnt from labels.

The rule "ripe if size > 7.5 cm" errs where the classes overlap. One sigmoid
neuron (logistic regression) trained on labelled fruit finds a threshold of
its own, -b / w, from the labels alone -- no one had to write it down.

    python examples/tangerines.py
"""
import numpy as np

import nncore
from _common import parse_args
from nncore.layers import Dense


def main():
    args = parse_args(__doc__.splitlines()[0])
    x, y = nncore.datasets.tangerines(n=2000, seed=0)
    x_train, x_test, y_train, y_test = nncore.data.train_test_split(x, y, test_size=0.25, seed=0)
    rule = np.mean((x_test[:, 0] > 7.5) == (y_test > 0.5))
    print(f"hand-written rule (size > 7.5 cm): test accuracy {rule:.3f}")

    # centring the input makes the threshold easy to reach for gradient descent
    centre = float(x_train.mean())
    model = nncore.Sequential([Dense(1, activation="sigmoid", input_dim=1)], seed=0)
    model.compile(optimizer=nncore.optimizers.Adam(0.05), loss="binary_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train - centre, y_train, epochs=10 if args.quick else 40, batch_size=32,
              verbose=0)
    (w,), (b,) = model.get_weights()[0][0], model.get_weights()[1]
    threshold = centre - b / w
    loss, acc = model.evaluate(x_test - centre, y_test)
    print(f"learnt neuron: ripe if size > {threshold:.2f} cm: test accuracy {acc:.3f} "
          f"(loss {loss:.3f})")


if __name__ == "__main__":
    main()
