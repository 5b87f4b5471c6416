"""Linear regression H(x) = W x + b by gradient descent, with the MSE cost.

First the course's worked example: on x = y = (1, 2, 3) the cost is 4.67 at
W = 0, 0 at W = 1 and 4.67 at W = 2, and gradient descent walks W to 1. Then
noisy points on y = 2x + 1 (nncore.datasets.linear): gradient descent
recovers W and b. --plot draws the cost per epoch (needs matplotlib).

    python examples/linear_regression.py [--plot]
"""
import numpy as np

import nncore
from _common import parse_args, plot_curve
from nncore.layers import Dense


def fit_line(x, y, epochs, learning_rate, use_bias=True, seed=0):
    """One Dense unit, full-batch gradient descent on the MSE; returns (W, b, History)."""
    model = nncore.Sequential([Dense(1, use_bias=use_bias, input_dim=1,
                                     kernel_initializer="zeros")], seed=seed, dtype="float64")
    model.compile(optimizer=nncore.optimizers.SGD(learning_rate), loss="mse")
    history = model.fit(x, y, batch_size=len(x), epochs=epochs, shuffle=False, verbose=0)
    w = model.get_weights()
    return float(w[0][0, 0]), (float(w[1][0]) if use_bias else 0.0), history


def main():
    args = parse_args(__doc__.splitlines()[0], plot="plot the cost per epoch")
    x = np.array([[1.0], [2.0], [3.0]])
    y = np.array([1.0, 2.0, 3.0])
    for w in (0.0, 1.0, 2.0):
        print(f"cost(W={w:.0f}) = {nncore.losses.mse(y, w * x[:, 0]):.2f}")
    w, _, history = fit_line(x, y, epochs=50, learning_rate=0.05, use_bias=False)
    print(f"gradient descent from W=0: W = {w:.4f} after 50 epochs "
          f"(cost {history.history['loss'][-1]:.2e})")

    xs, ys = nncore.datasets.linear(n=200, w=2.0, b=1.0, noise=0.5, seed=0)
    epochs = 100 if args.quick else 300
    w, b, history = fit_line(xs.astype(np.float64), ys.astype(np.float64), epochs, 0.1)
    costs = history.history["loss"]
    print(f"noisy y = 2x + 1: W = {w:.3f}, b = {b:.3f}; cost {costs[0]:.3f} -> {costs[-1]:.3f}")
    print("cost per epoch (every 20th):", " ".join(f"{c:.3f}" for c in costs[::20]))
    if args.plot:
        plot_curve(costs, "linear regression: MSE per epoch", "cost", "linear_regression_cost.png")


if __name__ == "__main__":
    main()
