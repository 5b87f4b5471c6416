"""scikit-learn style estimators: fit / predict / score, pipelines and grid search.

MLPClassifier, MLPRegressor and Perceptron take scikit-learn's parameter
names and follow its conventions, so scikit-learn's Pipeline and
GridSearchCV drive them (when scikit-learn is installed; nncore does not
need it).

    python examples/estimators.py
"""
import warnings

import numpy as np

import nncore
from _common import parse_args
from nncore.estimators import ConvergenceWarning, MLPClassifier, MLPRegressor, Perceptron


def main():
    args = parse_args(__doc__.splitlines()[0])
    warnings.simplefilter("ignore", ConvergenceWarning)
    (x, y), (xt, yt) = nncore.datasets.load_digits16()
    n = 2000 if args.quick else 20000
    x, y, xt, yt = x[:n].reshape(n, -1), y[:n], xt[:2000].reshape(2000, -1), yt[:2000]

    clf = MLPClassifier(hidden_layer_sizes=(128,), batch_size=64,
                        max_iter=5 if args.quick else 20, early_stopping=True, random_state=0)
    clf.fit(x, y)
    print(f"{clf!r}: {clf.n_iter_} epochs, test accuracy {clf.score(xt, yt):.4f}, "
          f"loss curve {[round(v, 3) for v in clf.loss_curve_[:5]]}...")
    per = Perceptron(max_iter=10, random_state=0).fit(x, y)
    print(f"{per!r} (one-vs-rest, {per.n_iter_} epochs): test accuracy {per.score(xt, yt):.4f}")

    xr, yr = nncore.datasets.linear(n=500, noise=0.5, seed=1)
    reg = MLPRegressor(hidden_layer_sizes=(), learning_rate_init=0.05, max_iter=300,
                       random_state=0).fit(xr, yr)
    print(f"MLPRegressor without hidden layers on y = 2x + 1: W = {reg.coefs_[0][0, 0]:.3f}, "
          f"b = {reg.intercepts_[0][0]:.3f}, R^2 = {reg.score(xr, yr):.3f}")

    try:
        from sklearn.model_selection import GridSearchCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        print("scikit-learn is not installed: skipping the Pipeline / GridSearchCV part")
        return
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=10, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(32,), (64,)],
                               "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3)
    grid.fit(x[:1000], y[:1000])
    print(f"GridSearchCV over a Pipeline: best {grid.best_params_}, "
          f"cv accuracy {grid.best_score_:.4f}, test accuracy {grid.score(xt, yt):.4f}")


if __name__ == "__main__":
    main()
