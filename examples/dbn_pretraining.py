"""Does unsupervised pre-training help when labels are scarce? Measured on digits16.

    python examples/dbn_pretraining.py [--labelled 1000] [--seeds 3]

The course's claim: a deep belief network pre-trained greedily on unlabelled
images gives an MLP a better start than random weights, which shows when
only a few images carry labels. Here a DBN (256-128 sigmoid units) is
pre-trained on the 60,000 training images without their labels; then two
identical MLPs (256 -> 256 -> 128 -> 10, sigmoid hidden units) are
fine-tuned with the same optimizer, epochs and batches on only the first
1,000 labelled images: one initialised from the DBN, one at random (Glorot).
Both are scored on the 10,000 test images, for a few seeds.
"""
import argparse
import time

import numpy as np

import nncore
from nncore.layers import Dense, Flatten
from nncore.rbm import DBN


def finetune(model, x, y, xt, yt, epochs):
    model.compile(optimizer=nncore.optimizers.Adam(learning_rate=0.001),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    return model.evaluate(xt, yt, verbose=0)[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labelled", type=int, default=1000)
    ap.add_argument("--pretrain-epochs", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=30, help="fine-tuning epochs")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()

    (x, y), (xt, yt) = nncore.datasets.load_digits16()
    x = x.astype(np.float32)
    xt = xt.astype(np.float32)
    xl, yl = x[:args.labelled], y[:args.labelled]
    rows = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        dbn = DBN((256, 128), learning_rate=0.05, batch_size=64, momentum=0.5,
                  n_iter=args.pretrain_epochs, random_state=seed).fit(x)  # no labels used
        took = time.perf_counter() - start
        pre = finetune(dbn.to_sequential(10, seed=seed), xl, yl, xt, yt, args.epochs)
        scratch = nncore.Sequential([Flatten(input_shape=(16, 16)),
                                     Dense(256, activation="sigmoid"),
                                     Dense(128, activation="sigmoid"),
                                     Dense(10, activation="softmax")], seed=seed)
        rnd = finetune(scratch, xl, yl, xt, yt, args.epochs)
        rows.append((pre, rnd))
        print(f"seed {seed}: pre-training {took:.1f} s; test accuracy with DBN start "
              f"{pre:.4f}, random start {rnd:.4f}")
    pre, rnd = np.array(rows).T
    print(f"\n{args.labelled} labelled images, {args.epochs} fine-tuning epochs, "
          f"{args.seeds} seeds:")
    print(f"  DBN-pretrained MLP: test accuracy {pre.mean():.4f} (+- {pre.std():.4f})")
    print(f"  random-init MLP:    test accuracy {rnd.mean():.4f} (+- {rnd.std():.4f})")


if __name__ == "__main__":
    main()
