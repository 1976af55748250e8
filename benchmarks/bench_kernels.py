"""T5: the sparse training step's rate against the machine's float32 GEMM.

Trains the KDD 2017 network (Fashion-MNIST, 784 -> 1000 x 3 -> 10, batch 128,
5% active, the defaults) for one epoch with ``partial_fit`` after a warm-up
epoch, and counts the multiply-adds the sparse network actually needs per
sample: for each layer, its active neurons times its input's non-zeros, once
forward, once for the weight gradient and, above the first layer, once for the
delta sent down. Their rate over the epoch's time is set against NumPy's
float32 matmul of two 2048 x 2048 matrices in the same run, with as many BLAS
threads as our OpenMP threads.

Two rates are given: over the whole epoch (hashing, selection, optimizer,
table rebuilds and Python's per-batch work included) and over the epoch
without its table rebuilds.

Run: ``python benchmarks/bench_kernels.py [--n-train N] [--json FILE]``.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from data import load_fashion_mnist  # noqa: E402

from sklearn_lsh import LSHMLPClassifier  # noqa: E402
from sklearn_lsh._threads import effective_n_threads  # noqa: E402


def gemm_macs_per_second(n_threads, size=2048, repeats=5):
    """Best rate of NumPy's float32 matmul, in multiply-adds a second."""
    rng = np.random.default_rng(0)
    a = rng.random((size, size), dtype=np.float32)
    b = rng.random((size, size), dtype=np.float32)
    with threadpool_limits(limits=n_threads, user_api="blas"):
        a @ b  # warm up
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
    return size**3 / best


def needed_macs_per_sample(clf, X):
    """Forward and backward multiply-adds a sample needs, from the layers'
    mean active counts over the last epoch."""
    inputs = float(np.count_nonzero(X) / X.shape[0])
    total = 0.0
    for i, active in enumerate(clf.mean_active_):
        passes = 2 if i == 0 else 3  # no delta below the first layer
        total += passes * active * inputs
        inputs = active
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=20_000)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    X, y = load_fashion_mnist(kind="train", return_X_y=True)
    X, y = X[:args.n_train], y[:args.n_train]
    n_threads = effective_n_threads(None)
    clf = LSHMLPClassifier(hidden_layer_sizes=(1000, 1000, 1000), batch_size=128,
                           random_state=0)
    classes = np.unique(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.partial_fit(X, y, classes=classes)  # builds the tables, warms up
        start = time.perf_counter()
        clf.partial_fit(X, y)
        seconds = time.perf_counter() - start
    needed = needed_macs_per_sample(clf, X) * X.shape[0]
    gemm = gemm_macs_per_second(n_threads)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "n_threads": n_threads,
        "n_train": int(X.shape[0]),
        "mean_active": [round(float(a), 1) for a in clf.mean_active_],
        "multiplication_share": clf.multiplication_share_,
        "needed_gmacs": needed / 1e9,
        "epoch_seconds": seconds,
        "rebuild_seconds": clf.rebuild_time_,
        "sparse_gmacs_per_s": needed / seconds / 1e9,
        "sparse_gmacs_per_s_without_rebuilds":
            needed / (seconds - clf.rebuild_time_) / 1e9,
        "gemm_gmacs_per_s": gemm / 1e9,
    }
    result["share_of_gemm"] = result["sparse_gmacs_per_s"] / result["gemm_gmacs_per_s"]
    result["share_of_gemm_without_rebuilds"] = (
        result["sparse_gmacs_per_s_without_rebuilds"] / result["gemm_gmacs_per_s"])
    for key, value in result.items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else
              f"{key}: {value}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
