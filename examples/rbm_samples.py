"""Train a Bernoulli RBM on digits16 and draw new digits from it.

    python examples/rbm_samples.py [--epochs 10] [--out rbm_samples.png]

Trains 256 hidden units by persistent CD-1 (batch 64) on the 60,000 training
images, printing the reconstruction error of every epoch and the test
pseudo-likelihood, then runs 64 Gibbs chains from random noise for 1,000
steps. The samples are saved as an 8 x 8 PNG grid (beside the filters) when
matplotlib is installed, and a few are printed as text either way.
"""
import argparse
import time

import numpy as np

import nncore
from nncore.rbm import BernoulliRBM


def ascii_digit(img):
    return "\n".join("".join("#" if p > 0.5 else "." for p in row) for row in img.reshape(16, 16))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--steps", type=int, default=1000, help="Gibbs steps per sample")
    ap.add_argument("--out", default="rbm_samples.png")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    (x, _), (xt, _) = nncore.datasets.load_digits16()
    x = x.reshape(len(x), -1).astype(np.float32)
    xt = xt.reshape(len(xt), -1).astype(np.float32)
    rbm = BernoulliRBM(args.hidden, learning_rate=0.05, batch_size=64, n_iter=args.epochs,
                       momentum=0.5, random_state=args.seed)
    start = time.perf_counter()
    rbm.fit(x)
    print(f"trained {args.hidden} hidden units for {args.epochs} epochs in "
          f"{time.perf_counter() - start:.1f} s")
    for epoch, err in enumerate(rbm.reconstruction_errors_, 1):
        print(f"  epoch {epoch:2d}: reconstruction error {err:.4f} per pixel")
    print(f"test pseudo-likelihood: {np.mean([rbm.score_samples(xt).mean() for _ in range(5)]):.2f}")

    rng = np.random.default_rng(args.seed)
    noise = (rng.random((64, 256)) < x.mean()).astype(np.float32)
    samples = rbm.gibbs(noise, n_steps=args.steps)
    # the last step's probabilities look smoother than its 0/1 draw
    h = rbm.transform(samples)
    means = 1 / (1 + np.exp(-(h @ rbm.components_ + rbm.intercept_visible_)))
    for img in samples[:3]:
        print(ascii_digit(img), end="\n\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no PNG written")
        return
    fig, axes = plt.subplots(8, 16, figsize=(16, 8))
    filters = rbm.components_[:64]
    for i in range(64):
        ax = axes[i // 8, i % 8]
        ax.imshow(means[i].reshape(16, 16), cmap="gray_r")
        ax = axes[i // 8, 8 + i % 8]
        ax.imshow(filters[i].reshape(16, 16), cmap="RdBu")
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"left: samples after {args.steps} Gibbs steps; right: 64 of the filters")
    fig.savefig(args.out, dpi=80)
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
