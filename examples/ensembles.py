"""Ensembles on digits16: bagging, hard and soft voting, stacking, beside their members.

Three different small networks (ReLU, tanh, and a softmax regression) vote
hard (majority) or soft (mean probability); bagging trains one architecture
on bootstrap samples; stacking lets a softmax regression learn how far to
trust each member from their out-of-fold probabilities.

    python examples/ensembles.py
"""
import warnings

import numpy as np

import nncore
from _common import parse_args
from nncore.ensemble import BaggingClassifier, StackingClassifier, VotingClassifier, clone
from nncore.estimators import ConvergenceWarning, MLPClassifier


def main():
    args = parse_args(__doc__.splitlines()[0])
    warnings.simplefilter("ignore", ConvergenceWarning)
    (x_train, y_train), (x_test, y_test) = nncore.datasets.load_digits16()
    n_train, n_test, iters = (1000, 2000, 15) if args.quick else (6000, 10000, 40)
    x_train, y_train = x_train[:n_train].reshape(n_train, -1), y_train[:n_train]
    x_test, y_test = x_test[:n_test].reshape(n_test, -1), y_test[:n_test]
    members = [("relu", MLPClassifier((64,), max_iter=iters, random_state=1)),
               ("tanh", MLPClassifier((64,), activation="tanh", max_iter=iters, random_state=2)),
               ("softmax", MLPClassifier((), learning_rate_init=0.01, max_iter=iters,
                                         random_state=3))]
    scores = {}
    for name, est in members:
        scores[f"member {name}"] = clone(est).fit(x_train, y_train).score(x_test, y_test)
    ensembles = {
        "hard voting": VotingClassifier(members, voting="hard"),
        "soft voting": VotingClassifier(members, voting="soft"),
        "bagging (5 x relu)": BaggingClassifier(members[0][1], n_estimators=5, random_state=0),
        "stacking": StackingClassifier(members, cv=3, random_state=0),
    }
    for name, ens in ensembles.items():
        scores[name] = ens.fit(x_train, y_train).score(x_test, y_test)
    best_member = max(v for k, v in scores.items() if k.startswith("member"))
    print(f"digits16, {n_train} training / {n_test} test images")
    for name, acc in scores.items():
        mark = "" if name.startswith("member") else (
            "  >= best member" if acc >= best_member else "  < best member")
        print(f"  {name:<20} {acc:.4f}{mark}")


if __name__ == "__main__":
    main()
