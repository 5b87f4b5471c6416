"""Rosenblatt's perceptron learns AND and OR, and cannot learn XOR.

The perceptron rule (w += lr * (y - y_hat) * x, b likewise) runs in the C
engine, one call per epoch. AND and OR are linearly separable, so it stops at
the first epoch without a mistake; XOR is not, so it stops at max_iter and
warns that it did not converge.

    python examples/perceptron_and_or.py
"""
import warnings

import numpy as np

from _common import parse_args
from nncore.datasets import xor
from nncore.estimators import ConvergenceWarning, Perceptron


def main():
    args = parse_args(__doc__.splitlines()[0])
    x, y_xor = xor()
    gates = {"AND": np.array([0, 0, 0, 1]), "OR": np.array([0, 1, 1, 1]), "XOR": y_xor}
    for name, y in gates.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            p = Perceptron(eta0=0.1, max_iter=20 if args.quick else 100, random_state=0)
            p.fit(x, y)
        w, b = p.coef_[0], p.intercept_[0]
        print(f"{name:>3}: w = ({w[0]:+.1f}, {w[1]:+.1f}), b = {b:+.1f}, epochs = {p.n_iter_:3d}, "
              f"mistakes per epoch {p.errors_[:6]}{'...' if p.n_iter_ > 6 else ''}, "
              f"accuracy {p.score(x, y):.0%}")
        for warning in caught:
            print(f"     warning: {warning.message}")


if __name__ == "__main__":
    main()
