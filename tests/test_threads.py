"""The OpenMP thread count of an estimator call (sklearn_lsh._threads).

The Dask side (a real worker's thread count, the threads a task starts) is in
test_dask.py.
"""

import importlib.util
import os
from pathlib import Path

import joblib
import pytest
from sklearn.datasets import load_digits
from sklearn_lsh._openmp_helpers import (
    _openmp_effective_n_threads,
    _openmp_parallelism_enabled,
)
from threadpoolctl import threadpool_limits

from sklearn_lsh import LSHMLPClassifier, _threads

needs_openmp = pytest.mark.skipif(not _openmp_parallelism_enabled(),
                                  reason="built without OpenMP")


def test_outside_dask_the_openmp_runtime_decides():
    assert _threads._dask_worker_nthreads() is None
    assert _threads.effective_n_threads() == _openmp_effective_n_threads()
    assert _threads.effective_n_threads(1) == 1
    assert LSHMLPClassifier()._n_threads() == _openmp_effective_n_threads()


@needs_openmp
def test_threadpoolctl_is_honoured():
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _threads.effective_n_threads() == 1
        assert LSHMLPClassifier()._n_threads() == 1
        # An explicit n_jobs is the user's choice.
        assert LSHMLPClassifier(n_jobs=2)._n_threads() == 2


def test_inside_a_dask_task_the_default_is_capped(monkeypatch):
    monkeypatch.setattr(_threads, "_dask_worker_nthreads", lambda: 1)
    assert _threads.effective_n_threads() == 1
    assert LSHMLPClassifier()._n_threads() == 1
    assert LSHMLPClassifier(n_jobs=3)._n_threads() == (
        3 if _openmp_parallelism_enabled() else 1)
    # A worker with more threads than OpenMP allows does not raise the count.
    monkeypatch.setattr(_threads, "_dask_worker_nthreads", lambda: 64)
    assert _threads.effective_n_threads() == _openmp_effective_n_threads()


def test_default_gives_each_thread_enough_work(monkeypatch):
    monkeypatch.setattr(_threads, "_openmp_effective_n_threads",
                        lambda n_jobs=None: 4 if n_jobs is None else n_jobs)
    unit = _threads.MIN_WORK_PER_THREAD
    assert _threads.effective_n_threads(work=0) == 1
    assert _threads.effective_n_threads(work=unit - 1) == 1
    assert _threads.effective_n_threads(work=3 * unit) == 3
    assert _threads.effective_n_threads(work=100 * unit) == 4
    assert _threads.effective_n_threads(work=None) == 4
    # An explicit n_jobs is the user's choice.
    assert _threads.effective_n_threads(2, work=1) == 2


def test_estimator_runs_small_batches_on_one_thread(monkeypatch):
    monkeypatch.setattr(_threads, "_openmp_effective_n_threads",
                        lambda n_jobs=None: 2 if n_jobs is None else n_jobs)
    X, y = load_digits(return_X_y=True)
    small = LSHMLPClassifier(hidden_layer_sizes=(16,), max_iter=1).fit(X[:50], y[:50])
    # 64 x 16 + 16 x 10 multiply-adds a row.
    assert small._n_threads(200) == 1
    assert small._n_threads() == 2
    wide = LSHMLPClassifier(hidden_layer_sizes=(4096,), max_iter=1).fit(X[:50], y[:50])
    assert wide._n_threads(200) == 2
    assert LSHMLPClassifier(hidden_layer_sizes=(16,), n_jobs=2, max_iter=1).fit(
        X[:50], y[:50])._n_threads(200) == 2


def _default_threads():
    return LSHMLPClassifier()._n_threads()


@needs_openmp
def test_loky_workers_get_their_share_of_the_cores():
    # loky sets OMP_NUM_THREADS=max(cpu_count() // n_jobs, 1) in its workers
    # (unless it is set already), and the default follows it.
    if "OMP_NUM_THREADS" in os.environ:
        expected = int(os.environ["OMP_NUM_THREADS"])
    else:
        expected = max(joblib.cpu_count() // 2, 1)
    got = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(_default_threads)() for _ in range(2))
    assert got == [expected, expected]


def _fashion_mnist():
    """Fashion-MNIST's training rows from the Debian package (optional: the
    benchmarks' data), or None."""
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "data.py"
    spec = importlib.util.spec_from_file_location("benchmarks_data", path)
    data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(data)
    try:
        return data.load_fashion_mnist(kind="train", return_X_y=True)
    except data.DatasetNotFoundError:
        return None


@pytest.mark.skipif((os.cpu_count() or 1) < 2,
                    reason="a threaded BLAS needs 2 cores to sum differently")
def test_fit_gives_the_same_bits_whatever_the_blas_threads():
    """The compiled step gives the same bits for any thread count; so must the
    fit around it, whose set-up runs BLAS products (the input's principal
    directions, the projected weights) that a threaded BLAS may sum in
    another order. The case found: T1's network on Fashion-MNIST, whose fit on
    2 threads ended with other weights than on 1."""
    data = _fashion_mnist()
    if data is None:
        pytest.skip("Fashion-MNIST (Debian package dataset-fashion-mnist, the "
                    "benchmarks' optional data) is not installed")
    X, y = data
    params = dict(hidden_layer_sizes=(1000, 1000, 1000), max_iter=1,
                  random_state=0, batch_size=128)
    with threadpool_limits(limits=1):
        one = LSHMLPClassifier(n_jobs=1, **params).fit(X, y)
    with threadpool_limits(limits=2):
        two = LSHMLPClassifier(n_jobs=2, **params).fit(X, y)
    assert one.layer_selection_[0] == "subspace"
    for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_,
                    strict=True):
        assert a.tobytes() == b.tobytes()
