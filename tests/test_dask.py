"""The Dask route, on a real LocalCluster of two worker processes.

dask-ml's Incremental (partial_fit block by block, the model travelling
between worker processes), ParallelPostFit, GridSearchCV under joblib's Dask
backend, a worker killed during a search, and the OpenMP threads a task uses.
"""

import os
import signal
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp

_REASON = ("the 'dask' extra is not installed "
           "(pip install 'sklearn-lsh[dask]': dask[array], distributed, dask-ml)")
da = pytest.importorskip("dask.array", reason=_REASON)
distributed = pytest.importorskip("distributed", reason=_REASON)
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers", reason=_REASON)
dask_ml_model_selection = pytest.importorskip("dask_ml.model_selection",
                                              reason=_REASON)

import dask  # noqa: E402
import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

from sklearn_lsh import LSHMLPClassifier, LSHMLPRegressor  # noqa: E402

Incremental = dask_ml_wrappers.Incremental
ParallelPostFit = dask_ml_wrappers.ParallelPostFit

# The Nanny of a LocalCluster writes its workers' environment
# (OMP_NUM_THREADS=1, ...) into this process's os.environ; put it back after
# each cluster so that later tests (and their loky workers) are unaffected.
_NANNY_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")


def _cluster(**kwargs):
    kwargs = {"n_workers": 2, "threads_per_worker": 1, "processes": True,
              "dashboard_address": None, "host": "127.0.0.1",
              "silence_logs": 50, **kwargs}
    return distributed.LocalCluster(**kwargs)


class _RestoreEnv:
    def __enter__(self):
        self.saved = {k: os.environ.get(k) for k in _NANNY_ENV}

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def client():
    # OMP_NUM_THREADS=2 as if exported in the shell that starts the workers:
    # the Nanny then passes 2 on instead of its default 1, and without a cap
    # every task would start 2 OpenMP threads in a worker of one thread.
    with _RestoreEnv(), _cluster(env={"OMP_NUM_THREADS": "2"}) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def _threads_in_task(n_jobs):
    """Run in a Dask task: the threads an LSHMLP fit computes and starts."""
    from sklearn_lsh._openmp_helpers import _openmp_effective_n_threads

    def native_threads():
        python = {t.native_id for t in threading.enumerate()}
        return {int(t) for t in os.listdir("/proc/self/task")} - python

    X, y = _data(n=300)
    est = LSHMLPClassifier(hidden_layer_sizes=(300,), max_iter=2, random_state=0,
                           n_jobs=n_jobs)
    before = native_threads()
    est.fit(X, y)
    new = native_threads() - before
    return {
        "openmp_default": _openmp_effective_n_threads(None),
        "used": est._n_threads(),
        "new_native_threads": len(new),
        "worker_nthreads": distributed.get_worker().state.nthreads,
    }


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                    reason="counts threads through /proc (Linux)")
def test_task_uses_its_workers_threads_not_the_machines(client):
    # First test of the module: the workers have not run an OpenMP team yet.
    from sklearn_lsh._openmp_helpers import _openmp_parallelism_enabled

    if not _openmp_parallelism_enabled():
        pytest.skip("built without OpenMP")
    worker = sorted(client.scheduler_info()["workers"])[0]
    info = client.submit(_threads_in_task, None, workers=[worker],
                         pure=False).result()
    assert info["openmp_default"] == 2  # what the estimator used to take
    assert info["worker_nthreads"] == 1
    assert info["used"] == 1
    # libgomp starts n - 1 helper threads for a team of n (and keeps them):
    # none here, the fit ran on the task's own thread.
    assert info["new_native_threads"] == 0
    # Control: an explicit n_jobs=2 does start one helper thread, so the
    # count above would have seen an oversubscribed fit.
    info = client.submit(_threads_in_task, 2, workers=[worker],
                         pure=False).result()
    assert info["used"] == 2
    assert info["new_native_threads"] == 1


def _data(n=480, n_features=24, n_classes=3, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(size=(n_classes, n_features))
    y = rng.randint(n_classes, size=n)
    X = centers[y] + rng.normal(size=(n, n_features))
    X[X < 0.3] = 0  # sparse enough to be worth CSR
    return X, y


def _estimator(**params):
    # 300 hidden units: hashed under lsh_layers='auto', so the hash tables
    # travel with the model. One thread: the reference is serial.
    return LSHMLPClassifier(hidden_layer_sizes=(300,), active_fraction=0.2,
                            random_state=0, n_jobs=1, **params)


def _on_both_workers(client, blocks, meta):
    """A Dask array whose row blocks alternate between the two workers, so
    that the model has to move between processes on every step."""
    workers = sorted(client.scheduler_info()["workers"])
    assert len(workers) == 2
    parts = []
    for i, block in enumerate(blocks):
        future = client.scatter(block, workers=[workers[i % 2]])
        parts.append(da.from_delayed(dask.delayed(future), shape=block.shape,
                                     dtype=block.dtype, meta=meta))
    return da.concatenate(parts, axis=0)


def _assert_same_model(a, b):
    for name in ("coefs_", "intercepts_"):
        for u, v in zip(getattr(a, name), getattr(b, name)):
            np.testing.assert_array_equal(u, v)
    assert a.t_ == b.t_
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.classes_, b.classes_)


def _serial(blocks_X, blocks_y, classes):
    est = _estimator()
    for Xb, yb in zip(blocks_X, blocks_y):
        est.partial_fit(Xb, yb, classes=classes)
    return est


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_incremental_equals_serial_partial_fit(client, kind):
    X, y = _data()
    classes = np.unique(y)
    cuts = [0, 150, 300, 330, 480]  # unequal blocks
    blocks_X = [X[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    blocks_y = [y[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    if kind == "csr":
        blocks_X = [sp.csr_matrix(b) for b in blocks_X]
        meta = sp.csr_matrix((0, X.shape[1]))
    else:
        meta = np.empty((0, X.shape[1]))
    Xd = _on_both_workers(client, blocks_X, meta)
    yd = _on_both_workers(client, blocks_y, np.empty(0, dtype=y.dtype))
    assert Xd.chunks[0] == (150, 150, 30, 150)

    inc = Incremental(_estimator(), shuffle_blocks=False)
    inc.fit(Xd, yd, classes=classes)
    expected = _serial(blocks_X, blocks_y, classes)
    _assert_same_model(inc.estimator_, expected)
    # A second pass continues from the fitted model, as partial_fit does.
    inc.partial_fit(Xd, yd, classes=classes)
    expected = _serial(blocks_X * 2, blocks_y * 2, classes)
    _assert_same_model(inc.estimator_, expected)
    assert expected.t_ == 2 * X.shape[0]
    # Incremental's predict is chunk-wise and lazy.
    pred = inc.predict(Xd)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), expected.predict(X))


def test_incremental_on_a_dask_dataframe(client):
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe", reason=_REASON)
    X, y = _data(n=400)
    columns = [f"f{i}" for i in range(X.shape[1])]
    df = pd.DataFrame(X, columns=columns)
    target = pd.Series(y, name="y")
    ddf = dd.from_pandas(df, npartitions=4, sort=False)
    dy = dd.from_pandas(target, npartitions=4, sort=False)
    classes = np.unique(y)

    inc = Incremental(_estimator(), shuffle_blocks=False)
    inc.fit(ddf, dy, classes=classes)
    parts = [(ddf.get_partition(i).compute(), dy.get_partition(i).compute())
             for i in range(4)]
    assert [len(p[0]) for p in parts] == [100] * 4
    expected = _serial([p[0] for p in parts], [p[1] for p in parts], classes)
    _assert_same_model(inc.estimator_, expected)
    assert list(inc.estimator_.feature_names_in_) == columns


@pytest.mark.parametrize("kind", ["dense", "csr"])
def test_parallel_post_fit_equals_predict(client, kind):
    X, y = _data()
    X_test, _ = _data(n=300, seed=1)
    est = _estimator(max_iter=5).fit(X, y)
    ppf = ParallelPostFit(est)
    if kind == "csr":
        blocks = [sp.csr_matrix(X_test[i:i + 100]) for i in range(0, 300, 100)]
        Xd = _on_both_workers(client, blocks, sp.csr_matrix((0, X.shape[1])))
        X_test = sp.csr_matrix(X_test)
    else:
        Xd = da.from_array(X_test, chunks=(100, X.shape[1]))
    pred = ppf.predict(Xd)
    proba = ppf.predict_proba(Xd)
    assert isinstance(pred, da.Array) and pred.chunks[0] == (100, 100, 100)
    np.testing.assert_array_equal(pred.compute(), est.predict(X_test))
    np.testing.assert_allclose(proba.compute(), est.predict_proba(X_test),
                               rtol=0, atol=1e-12)
    # predict_topk block by block (doc/scale_out.md).
    top = Xd.map_blocks(lambda b: est.predict_topk(b, k=2)[0],
                        chunks=(Xd.chunks[0], (2,)),
                        meta=np.empty((0, 2), dtype=est.classes_.dtype))
    np.testing.assert_array_equal(top.compute(), est.predict_topk(X_test, k=2)[0])


def test_regressor_incremental_and_parallel_post_fit(client):
    X, _ = _data()
    target = X[:, :3].sum(axis=1)
    blocks_X = [X[i:i + 160] for i in range(0, 480, 160)]
    blocks_y = [target[i:i + 160] for i in range(0, 480, 160)]
    Xd = _on_both_workers(client, blocks_X, np.empty((0, X.shape[1])))
    yd = _on_both_workers(client, blocks_y, np.empty(0))
    params = dict(hidden_layer_sizes=(300,), random_state=0, n_jobs=1)
    inc = Incremental(LSHMLPRegressor(**params), shuffle_blocks=False)
    inc.fit(Xd, yd)
    expected = LSHMLPRegressor(**params)
    for Xb, yb in zip(blocks_X, blocks_y):
        expected.partial_fit(Xb, yb)
    for u, v in zip(inc.estimator_.coefs_, expected.coefs_):
        np.testing.assert_array_equal(u, v)
    pred = ParallelPostFit(expected).predict(Xd)
    np.testing.assert_array_equal(pred.compute(), expected.predict(X))


_SEARCH_DATA = _data(n=240)
_GRID = {"active_fraction": [0.1, 0.3], "alpha": [1e-4, 1e-1]}


def _grid_search(n_jobs=2):
    X, y = _SEARCH_DATA
    # n_jobs=None on purpose: the thread count comes from the worker.
    est = LSHMLPClassifier(hidden_layer_sizes=(256,), max_iter=3, random_state=0)
    return GridSearchCV(est, _GRID, cv=2, n_jobs=n_jobs).fit(X, y)


@pytest.fixture(scope="module")
def loky_search():
    with joblib.parallel_config(backend="loky"):
        return _grid_search()


def _assert_same_search(search, reference):
    assert search.best_params_ == reference.best_params_
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        assert np.isfinite(search.cv_results_[key]).all()
        np.testing.assert_allclose(search.cv_results_[key],
                                   reference.cv_results_[key], rtol=1e-12)


def test_dask_backend_grid_search_equals_loky(client, loky_search):
    with joblib.parallel_config(backend="dask"):
        search = _grid_search(n_jobs=-1)
    _assert_same_search(search, loky_search)
    _assert_same_model(search.best_estimator_, loky_search.best_estimator_)


def _kill_a_worker_while_busy(client, killed):
    """Kill (SIGKILL) a worker process while it runs a fit."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = [w for w, keys in client.processing().items()
                if any("fit" in str(key) for key in keys)]
        if busy and busy[0] in pids:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(pids[busy[0]])
            return
        time.sleep(0.005)


def _with_a_kill(client, search):
    """Run ``search()`` while one worker process is killed; the Nanny starts
    a new one in its place."""
    killed = []
    killer = threading.Thread(target=_kill_a_worker_while_busy,
                              args=(client, killed))
    killer.start()
    try:
        return search()
    finally:
        killer.join()
        assert len(killed) == 1
        client.wait_for_workers(2, timeout=60)
        assert killed[0] not in client.run(os.getpid).values()


def _joblib_dask_search():
    with joblib.parallel_config(backend="dask"):
        return _grid_search(n_jobs=-1)


def _dask_ml_search():
    X, y = _SEARCH_DATA
    est = LSHMLPClassifier(hidden_layer_sizes=(256,), max_iter=3, random_state=0)
    return dask_ml_model_selection.GridSearchCV(est, _GRID, cv=2).fit(X, y)


def test_worker_killed_during_joblib_dask_search(client, loky_search):
    # joblib's Dask backend sends each argument of the fits larger than 1 kB
    # (X, y, the cross-validation indices) to one worker, outside the task
    # graph. If the killed worker held the only copy of one, the fits
    # needing it are cancelled and the search raises FutureCancelledError;
    # otherwise the scheduler reruns the killed worker's fits elsewhere and
    # the result is complete. Which of the two happens depends on where the
    # data went; never a partial result.
    try:
        search = _with_a_kill(client, _joblib_dask_search)
    except distributed.client.FutureCancelledError as exc:
        assert "_fit_and_score" in str(exc)
        return
    _assert_same_search(search, loky_search)


def test_worker_killed_during_dask_ml_search_is_retried(client, loky_search):
    # dask-ml's GridSearchCV keeps the data and the splits in the task graph:
    # what the killed worker held or was running is recomputed elsewhere
    # (distributed.scheduler.allowed-failures, 3 by default), and the result
    # equals an undisturbed search.
    search = _with_a_kill(client, _dask_ml_search)
    _assert_same_search(search, loky_search)
