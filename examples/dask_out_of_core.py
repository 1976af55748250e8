"""
Training on a file larger than a worker's memory, on a Dask LocalCluster
=========================================================================

Not run when the documentation is built (it starts a cluster and writes a
file of hundreds of MB); run it as a script. The steps:

1. write a file in the Extreme Classification Repository's text format
   (``make_extreme_classification``: 135,909 sparse features, 75 non-zeros a
   row), ``--size-mb`` MB, and a small held-out file;
2. start a ``LocalCluster`` of 2 worker processes of 1 thread, each capped at
   ``--memory-limit`` (its Nanny kills it if it goes over 95% of that);
3. cut the file into byte ranges; one task per range reads its rows with
   ``sklearn_lsh.io.iter_xc_blocks(offset=, length=)`` on a worker, in blocks,
   and passes them to ``partial_fit`` of the model the previous task
   returned: the model moves from worker to worker, the data never leaves
   the file;
4. report each worker's peak resident memory, and precision@1 on the
   held-out rows.

A real cluster needs the file on storage every worker can read (a shared
filesystem); the ranges are plain byte offsets. See ``doc/scale_out.md`` for
the other routes (dask-ml's ``Incremental`` over Dask arrays,
``ParallelPostFit``, joblib's Dask backend).

Run: ``python examples/dask_out_of_core.py [--size-mb 800] [--memory-limit 600MiB]``
(needs ``pip install 'sklearn-lsh[dask]'``). The default file takes a couple of
minutes to write and about ten to train on 2 cores (the tasks run one after the
other, on one OpenMP thread each: the Nanny's ``OMP_NUM_THREADS=1``);
``--size-mb 30`` runs in a minute. A worker process starts at about 280 MiB
(Python, NumPy, SciPy, scikit-learn, Dask); the text file is larger than the
limit, the same rows held as one float32 CSR matrix take about a third of it.
"""

import argparse
import os
import resource
import sys
import tempfile
import time

import dask
import numpy as np
import scipy.sparse as sp
from distributed import Client, LocalCluster

from sklearn_lsh import LSHMLPClassifier
from sklearn_lsh.datasets import make_extreme_classification
from sklearn_lsh.io import dump_xc_file, iter_xc_blocks, read_xc_header
from sklearn_lsh.metrics import precision_at_k

N_CLASSES = 2_000
BYTES_PER_ROW = 1_920  # measured for this shape (values written in full)


def write_files(directory, size_mb, n_test=2_000, seed=0):
    """The training file (about ``size_mb`` MB) and a held-out file."""
    n_train = int(size_mb * 1e6 / BYTES_PER_ROW)
    train = os.path.join(directory, "train.txt")
    test = os.path.join(directory, "test.txt")
    # One call, so that train and test rows share the classes' prototypes;
    # written 20,000 rows at a time.
    X, y = make_extreme_classification(n_train + n_test, n_classes=N_CLASSES,
                                       random_state=seed)
    with open(train, "wb") as f:
        for start in range(0, n_train, 20_000):
            stop = min(start + 20_000, n_train)
            dump_xc_file(X[start:stop], y[start:stop], f, n_labels=N_CLASSES,
                         header=start == 0, n_rows=n_train)
    dump_xc_file(X[n_train:], y[n_train:], test, n_labels=N_CLASSES)
    return train, test


def train_range(model, path, offset, length, classes, block_rows):
    """A task: the rows of one byte range, block by block, into the model."""
    nnz = 0
    for X, y in iter_xc_blocks(path, block_rows, multilabel=False,
                               offset=offset, length=length):
        model.partial_fit(X, y, classes=classes)
        nnz += X.nnz
    model.nnz_read_ = getattr(model, "nnz_read_", 0) + nnz
    return model


def peak_rss_mb():
    """This process's peak resident memory (Linux: kB; macOS: bytes)."""
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=800)
    parser.add_argument("--memory-limit", default="600MiB")
    parser.add_argument("--range-mb", type=float, default=50,
                        help="bytes of the file per task")
    parser.add_argument("--block-rows", type=int, default=10_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sklearn_lsh_example_") as tmp:
        t0 = time.perf_counter()
        train, test = write_files(tmp, args.size_mb)
        size = os.path.getsize(train)
        n_rows, n_features, n_labels = read_xc_header(train)
        print(f"{train}: {size / 1e6:.0f} MB, {n_rows:,} rows, {n_features:,} "
              f"features, {n_labels:,} classes "
              f"(written in {time.perf_counter() - t0:.0f} s)")

        # Byte ranges: each task reads the rows whose lines start in its range.
        step = int(args.range_mb * 1e6)
        ranges = [(offset, step) for offset in range(0, size, step)]
        classes = np.arange(n_labels)
        model = LSHMLPClassifier(hidden_layer_sizes=(32,), active_fraction=200,
                                 weight_init="fan_in", batch_size=256,
                                 random_state=0)

        # No spilling or pausing (there is nothing to spill): the limit is
        # the point at which the Nanny kills the worker.
        with dask.config.set({"distributed.worker.memory.target": False,
                              "distributed.worker.memory.spill": False,
                              "distributed.worker.memory.pause": False}), \
                LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                             memory_limit=args.memory_limit,
                             dashboard_address=None) as cluster, \
                Client(cluster) as client:
            workers = sorted(client.scheduler_info()["workers"])
            baseline = client.run(peak_rss_mb)
            t0 = time.perf_counter()
            future = client.scatter(model, workers=[workers[0]])
            for i, (offset, length) in enumerate(ranges):
                # Alternate the workers: the model is pickled and moved on
                # each step, as it would be between machines.
                future = client.submit(train_range, future, train, offset, length,
                                       classes, args.block_rows,
                                       workers=[workers[i % 2]], pure=False)
            model = future.result()
            elapsed = time.perf_counter() - t0
            peaks = client.run(peak_rss_mb)
            limit = cluster.workers[0].memory_manager.memory_limit

        csr_mb = (model.nnz_read_ * 8 + (n_rows + 1) * 8) / 2**20
        print(f"trained one epoch in {elapsed:.0f} s, {len(ranges)} tasks "
              f"of {args.range_mb:g} MB, blocks of {args.block_rows:,} rows")
        print(f"the whole file as one float32 CSR matrix: {csr_mb:.0f} MiB; "
              f"the file: {size / 2**20:.0f} MiB; "
              f"worker memory limit: {limit / 2**20:.0f} MiB")
        for worker in workers:
            print(f"  worker {worker}: peak RSS {peaks[worker]:.0f} MiB "
                  f"(before training {baseline[worker]:.0f} MiB)")

        X_test, y_test = zip(*iter_xc_blocks(test, multilabel=False))
        top, _ = model.predict_topk(sp.vstack(X_test, format="csr"), k=1)
        print(f"P@1 on {len(np.concatenate(y_test)):,} held-out rows: "
              f"{precision_at_k(np.concatenate(y_test), top, k=1):.3f}")


if __name__ == "__main__":
    main()
