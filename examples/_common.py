"""Shared by the examples: the --quick switch (also NNCORE_EXAMPLES_QUICK=1) and the
optional plot. Not part of nncore."""
import argparse
import os


def parse_args(description, **extra):
    """argparse with --quick (tiny settings, for the smoke test) and any extra flags."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings that finish in seconds (also NNCORE_EXAMPLES_QUICK=1)")
    for flag, help_text in extra.items():
        parser.add_argument(f"--{flag}", action="store_true", help=help_text)
    args = parser.parse_args()
    args.quick = args.quick or os.environ.get("NNCORE_EXAMPLES_QUICK") == "1"
    return args


def plot_curve(values, title, ylabel, path):
    """Save a line plot of values per epoch to path, if matplotlib is installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plotting needs matplotlib, which is not installed (pip install matplotlib); "
              "the values are printed above instead")
        return False
    fig, ax = plt.subplots()
    ax.plot(range(1, len(values) + 1), values)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.savefig(path)
    print(f"saved the plot to {path}")
    return True
