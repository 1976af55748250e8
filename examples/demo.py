"""Side by side: LSHMLPClassifier against scikit-learn's MLPClassifier.

Two problems that a fresh install has, trained with the same architecture,
optimizer, batch size and epochs:

1. digits (scikit-learn's bundled 8x8 images): 64 -> 1000 ReLU -> 10, the
   hidden layer hashed with 10% of its neurons active per sample;
2. a wide output: 4,000 classes generated with a seed (sparse 2,000-feature
   rows), 2,000 -> 128 ReLU -> 4,000, the output layer hashed.

Prints test accuracy, fit time, the speed-up and the share of multiply-adds
computed relative to the dense network (the KDD 2017 "multiplications").

Run: ``python examples/demo.py`` (``--quick`` for a shorter run).
"""

import argparse
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

from sklearn_lsh import LSHMLPClassifier


def wide_problem(n_samples, n_features, n_classes, seed=0):
    """Each class owns a sparse prototype; a sample is a noisy copy of one."""
    rng = np.random.default_rng(seed)
    prototypes = [rng.choice(n_features, size=12, replace=False)
                  for _ in range(n_classes)]
    y = rng.integers(n_classes, size=n_samples)
    rows, cols = [], []
    for i, label in enumerate(y):
        keep = prototypes[label][rng.random(12) < 0.7]
        noise = rng.choice(n_features, size=5, replace=False)
        features = np.unique(np.concatenate([keep, noise]))
        rows.append(np.full(features.size, i))
        cols.append(features)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    X = sp.csr_matrix((np.ones(rows.size), (rows, cols)),
                      shape=(n_samples, n_features))
    return X, y


def run(name, ours, dense, X_train, X_test, y_train, y_test):
    results = []
    for est in (dense, ours):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        results.append((est.score(X_test, y_test), seconds))
    (acc_d, t_d), (acc_o, t_o) = results
    print(f"\n{name}")
    header = f"{'test accuracy':>14}{'fit seconds':>13}{'multiplications':>17}"
    print(f"  {'model':<18}{header}")
    print(f"  {'MLPClassifier':<18}{acc_d:>14.4f}{t_d:>13.2f}{'100.0%':>17}")
    share = 100 * ours.multiplication_share_
    print(f"  {'LSHMLPClassifier':<18}{acc_o:>14.4f}{t_o:>13.2f}{share:>16.1f}%")
    print(f"  speed-up {t_d / t_o:.1f}x, accuracy difference "
          f"{100 * (acc_o - acc_d):+.1f} points")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs")
    args = parser.parse_args()
    epochs = 10 if args.quick else 30

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16, y, random_state=0, stratify=y)
    common = dict(hidden_layer_sizes=(1000,), max_iter=epochs, random_state=0)
    run("digits: 64 -> 1000 -> 10, 10% of the hidden layer active",
        LSHMLPClassifier(active_fraction=0.1, **common), MLPClassifier(**common),
        X_train, X_test, y_train, y_test)

    n_classes = 4000
    X, y = wide_problem(40_000, 2_000, n_classes)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    common = dict(hidden_layer_sizes=(128,), max_iter=3 if args.quick else 5,
                  batch_size=128, random_state=0)
    run(f"wide output: sparse 2,000 features -> 128 -> {n_classes:,} classes, "
        "output hashed (2% active)",
        LSHMLPClassifier(active_fraction=0.02, **common), MLPClassifier(**common),
        X_train, X_test, y_train, y_test)


if __name__ == "__main__":
    main()
