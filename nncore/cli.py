"""The ``nncore`` command line: train on bundled data, predict, show the build.

    nncore train                       # an MLP on the bundled 16x16 digits
    nncore train --data xor            # also: tangerine, regression
    nncore train --layers 128,64 --epochs 5 --save digits.nncore --plot curves.png
    nncore predict digits.nncore images.npy
    nncore info
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import List, Optional

import numpy as np

# Per data set: hidden layers, activation, output layer, loss, optimizer,
# learning rate, epochs, batch size.
DEFAULTS = {
    "digits16": dict(layers="256,256", activation="relu", optimizer="adam", lr=1e-3,
                     epochs=10, batch_size=64),
    "xor": dict(layers="8", activation="tanh", optimizer="adam", lr=0.05, epochs=300,
                batch_size=4),
    "tangerine": dict(layers="", activation="relu", optimizer="adam", lr=0.05, epochs=50,
                      batch_size=32),
    "regression": dict(layers="", activation="relu", optimizer="sgd", lr=0.05, epochs=50,
                       batch_size=16),
}


def _parse_layers(text: str) -> List[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SystemExit(f"nncore: --layers takes sizes like 256,128, got {text!r}") from None
    if any(s <= 0 for s in sizes):
        raise SystemExit(f"nncore: layer sizes must be positive, got {text!r}")
    return sizes


def _load(name: str, seed: int):
    """(x_train, y_train, x_test, y_test, output units, output activation, loss, metrics)."""
    from nncore import data, datasets
    if name == "digits16":
        (xtr, ytr), (xte, yte) = datasets.load_digits16()
        return (xtr, ytr, xte, yte, 10, "softmax", "sparse_categorical_crossentropy",
                ["accuracy"])
    if name == "xor":
        x, y = datasets.xor()
        return x, y, x, y, 1, "sigmoid", "binary_crossentropy", ["accuracy"]
    if name == "tangerine":
        x, y = datasets.tangerines(seed=seed)
        xtr, xte, ytr, yte = data.train_test_split(x, y, test_size=0.25, seed=seed)
        return xtr, ytr, xte, yte, 1, "sigmoid", "binary_crossentropy", ["accuracy"]
    x, y = datasets.linear(200, seed=seed)
    xtr, xte, ytr, yte = data.train_test_split(x, y, test_size=0.25, seed=seed)
    return xtr, ytr, xte, yte, 1, None, "mse", ["mae"]


def _plot(history, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    keys = [k for k in history.history if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        epochs = np.arange(1, len(history.history[key]) + 1)
        ax.plot(epochs, history.history[key], label="train")
        if f"val_{key}" in history.history:
            ax.plot(epochs, history.history[f"val_{key}"], label="test")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cmd_train(args) -> int:
    import nncore
    from nncore.callbacks import _format_seconds
    from nncore.layers import Dense, Flatten
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("nncore: --plot needs matplotlib, which is not installed "
                  "(pip install matplotlib)", file=sys.stderr)
            return 2
    defaults = DEFAULTS[args.data]
    layers = _parse_layers(args.layers if args.layers is not None else defaults["layers"])
    activation = args.activation or defaults["activation"]
    epochs = args.epochs if args.epochs is not None else defaults["epochs"]
    batch_size = args.batch_size or defaults["batch_size"]
    lr = args.lr if args.lr is not None else defaults["lr"]
    if args.threads is not None:
        nncore.set_num_threads(args.threads)
    nncore.set_seed(args.seed)

    xtr, ytr, xte, yte, units, out_act, loss, metrics = _load(args.data, args.seed)
    scaler = None
    if args.data in ("tangerine", "regression"):
        scaler = nncore.data.StandardScaler().fit(xtr)
        xtr, xte = scaler.transform(xtr), scaler.transform(xte)
    stack = [Flatten(input_shape=xtr.shape[1:])] if xtr.ndim > 2 else []
    first = {} if stack else {"input_dim": xtr.shape[1]}
    for i, size in enumerate(layers):
        stack.append(Dense(size, activation=activation, **(first if i == 0 else {})))
    stack.append(Dense(units, activation=out_act, **(first if not layers else {})))
    model = nncore.Sequential(stack, seed=args.seed)
    try:
        optimizer = nncore.optimizers.get(args.optimizer)
    except (ValueError, TypeError) as e:
        print(f"nncore: {e}", file=sys.stderr)
        return 2
    optimizer.learning_rate = lr
    model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    if args.verbose:
        print(f"nncore {nncore.__version__}: training on {args.data} "
              f"({len(xtr)} training, {len(xte)} test samples), "
              f"layers {[s for s in layers] + [units]}, {activation}, {args.optimizer} "
              f"lr={lr:g}, batch {batch_size}, {epochs} epochs, "
              f"{nncore.get_num_threads()} thread(s), kernels {nncore._core.get_isa()}")
    start = time.perf_counter()
    history = model.fit(xtr, ytr, batch_size=batch_size, epochs=epochs,
                        verbose=1 if args.verbose else 0, validation_data=(xte, yte))
    seconds = time.perf_counter() - start
    results = model.evaluate(xte, yte, batch_size=1000, return_dict=True)
    summary = " - ".join(f"test {k}: {v:.4f}" for k, v in results.items())
    print(f"{summary} (trained in {_format_seconds(seconds)})")
    if args.data == "tangerine":
        kernel, bias = (w.ravel()[0] for w in model.get_weights()[-2:])
        threshold = float(scaler.inverse_transform(np.array([[-bias / kernel]]))[0, 0])
        x_cm = scaler.inverse_transform(xte)[:, 0]
        rule = float(((x_cm > 7.5) == (yte > 0.5)).mean())
        print(f"learned threshold: {threshold:.2f} cm (test accuracy "
              f"{results['accuracy']:.4f}); the fixed size > 7.5 rule: {rule:.4f}")
    if args.data == "regression":
        w, b = (v.ravel()[0] for v in model.get_weights())
        # undo the input scaling: y = w (x - mean) / scale + b
        slope = w / scaler.scale_[0]
        print(f"learned H(x) = {slope:.3f} x + {b - slope * scaler.mean_[0]:.3f} "
              f"(the data: 2.000 x + 1.000 plus noise)")
    if args.save:
        model.save(args.save)
        print(f"saved the model to {args.save}")
    if args.plot:
        _plot(history, args.plot)
        print(f"saved the learning curves to {args.plot}")
    return 0


def _read_input(path: str) -> np.ndarray:
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as d:
            key = "x" if "x" in d.files else d.files[0]
            return d[key]
    return np.loadtxt(path, delimiter="," if path.endswith(".csv") else None, ndmin=2)


def cmd_predict(args) -> int:
    import nncore
    from nncore.io import ModelFileError
    try:
        model = nncore.load_model(args.model, compile=False)
    except (OSError, ModelFileError) as e:
        print(f"nncore: {e}", file=sys.stderr)
        return 2
    try:
        x = _read_input(args.input)
    except (OSError, ValueError) as e:
        print(f"nncore: cannot read {args.input}: {e}", file=sys.stderr)
        return 2
    if x.shape == model.input_shape:
        x = x[None]
    try:
        out = model.predict(x, batch_size=256)
    except (ValueError, TypeError) as e:
        print(f"nncore: {e}", file=sys.stderr)
        return 2
    flat = out.reshape(len(out), -1)
    for row in flat:
        if args.proba or flat.shape[1] == 1:
            print(" ".join(f"{v:.6g}" for v in row))
        else:
            print(f"{int(row.argmax())}\t{row.max():.4f}")
    return 0


def cmd_info(args) -> int:
    import nncore
    nncore.show_config()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="nncore", description="A fast neural-network core.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a network on a bundled data set")
    train.add_argument("--data", choices=sorted(DEFAULTS), default="digits16",
                       help="the data set (default: digits16, 16x16 handwritten digits)")
    train.add_argument("--layers", help="hidden layer sizes, e.g. 256,256 ('' for none)")
    train.add_argument("--activation", help="hidden activation (relu, tanh, sigmoid, ...)")
    train.add_argument("--optimizer", default="adam",
                       help="sgd, adam, adamw, nadam, rmsprop, adagrad, adadelta")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, help="engine threads (default: all CPUs)")
    train.add_argument("--save", metavar="PATH", help="save the trained model")
    train.add_argument("--plot", metavar="PATH.png", help="draw the learning curves "
                       "(needs matplotlib)")
    train.add_argument("-q", "--quiet", dest="verbose", action="store_false",
                       help="no progress, only the final result")
    train.set_defaults(func=cmd_train)

    predict = sub.add_parser("predict", help="predict with a saved model")
    predict.add_argument("model", help="a file written by --save or model.save")
    predict.add_argument("input", help="samples: .npy, .npz (array 'x') or .csv")
    predict.add_argument("--proba", action="store_true", help="print every output, not the class")
    predict.set_defaults(func=cmd_predict)

    info = sub.add_parser("info", help="version, build, kernel level and threads")
    info.set_defaults(func=cmd_info)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("\nnncore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
