"""What the compiled core trusts is checked where it enters.

One test (or more) per finding of the architecture review: each failed on
the code before the boundary existed (a crash, a write out of bounds, a
silent wrong result) and must give a clear error or a correct result now.
"""

import gc
import os
import pickle
import signal
import threading
import weakref
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification, make_regression
from sklearn_lsh._hashing import HashFunctions
from sklearn_lsh._network import BatchTrainer
from sklearn_lsh._tables import HashTables

from sklearn_lsh import LSHMLPClassifier


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=300, n_features=40, n_informative=10,
                               n_classes=3, random_state=0)
    return np.abs(X), y


def _layer(n_in, n_out, hashing=None, second_moment=True, dtype=np.float64):
    rng = np.random.RandomState(0)
    W = rng.uniform(-0.5, 0.5, (n_out, n_in)).astype(dtype)
    b = np.zeros(n_out, dtype)
    return SimpleNamespace(
        weights=W, bias=b, activation="relu", hashing=hashing,
        moment1_w=np.zeros_like(W), moment1_b=np.zeros_like(b),
        moment2_w=np.zeros_like(W) if second_moment else np.zeros((1, 1), dtype),
        moment2_b=np.zeros_like(b) if second_moment else np.zeros(1, dtype))


def _hashing(family, n_in, n_out, n_tables=4, seed=0):
    functions = HashFunctions(family, 2, n_tables, n_in, bin_size=2, seed=seed)
    tables = HashTables(n_tables, functions.n_buckets, n_out, seed=seed)
    tables.build_from_rows(functions, np.ones((n_out, n_in)))
    return SimpleNamespace(selection="lsh", functions=functions, tables=tables,
                           budget=5, n_candidates=5, min_active=2,
                           strategy="union", min_count=1)


# 1. An optimizer state of the wrong shape ------------------------------------
def test_solver_switch_between_partial_fits_is_refused(data):
    X, y = data
    clf = LSHMLPClassifier(hidden_layer_sizes=(300,), solver="sgd",
                           random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    before = [c.copy() for c in clf.coefs_]
    clf.set_params(solver="adam")
    with pytest.raises(ValueError, match="'solver' parameter is 'adam'.*"
                                         "solver='sgd'"):
        clf.partial_fit(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, clf.coefs_))
    # Still usable, and a fit (which starts a new optimizer) may change it.
    clf.set_params(solver="sgd").partial_fit(X, y)
    clf.set_params(solver="adam", warm_start=True, max_iter=2)
    with pytest.warns(Warning):
        clf.fit(X, y)
    assert np.isfinite(clf.coefs_[0]).all()


def test_worker_refuses_state_of_the_wrong_shape():
    layers = [_layer(6, 8, second_moment=False)]
    with pytest.raises(ValueError, match=r"moment2_w of layer 0 must be .* shape "
                                         r"\(8, 6\), aligned; got float64 \(1, 1\)"):
        BatchTrainer(layers, 4, 1)
    layers = [_layer(6, 8), _layer(7, 3)]
    with pytest.raises(ValueError, match="layer 1 has 7 inputs; layer 0 has 8"):
        BatchTrainer(layers, 4, 1)


def test_worker_checks_the_batch_data():
    worker = BatchTrainer([_layer(6, 8), _layer(8, 3)], 4, 1)
    X = np.ones((5, 6))
    with pytest.raises(ValueError, match=r"Y must be .* shape \(5, 3\)"):
        worker.set_data(X, Y=np.ones((4, 3)))
    worker.set_data(X, Y=np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"rows must be in \[0, 5\)"):
        worker.run(np.array([0, 5], dtype=np.intp))
    with pytest.raises(ValueError, match="exceeds the worker's 4"):
        worker.run(np.arange(5, dtype=np.intp))
    assert worker.step == 0
    bad = sp.csr_matrix(np.ones((2, 6)))
    bad.indices[1] = 9
    with pytest.raises(ValueError, match=r"X ids must be in \[0, 6\); got 9"):
        worker.set_data(bad)


# 2. Structural parameters change under a network that exists ------------------
@pytest.mark.parametrize("name, value", [
    ("hash_family", "simhash"), ("n_tables", 7), ("n_hash_bits", 3),
    ("active_fraction", 0.2), ("candidate_factor", 2.0), ("min_active", 3),
    ("lsh_layers", "none"), ("selection", "exact"),
])
@pytest.mark.parametrize("call", ["partial_fit", "warm fit"])
def test_structural_change_is_refused(data, name, value, call):
    X, y = data
    clf = LSHMLPClassifier(hidden_layer_sizes=(300,), max_iter=1, random_state=0,
                           warm_start=call == "warm fit")
    clf.partial_fit(X, y, classes=[0, 1, 2])
    proba = clf.predict_proba(X)
    clf.set_params(**{name: value})
    with pytest.raises(ValueError, match=f"'{name}' parameter is {value!r}, but "
                                         "the network was built with"):
        if call == "partial_fit":
            clf.partial_fit(X, y)
        else:
            clf.fit(X, y)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


def test_set_hashing_refuses_functions_that_need_more_scratch():
    n_in, n_out = 64, 40
    layers = [_layer(n_in, n_out, _hashing("dwta", n_in, n_out)), _layer(n_out, 3)]
    worker = BatchTrainer(layers, 4, 1)
    wide = _hashing("wta", n_in, n_out)  # scratch of n_features, not n_hashes
    with pytest.raises(ValueError, match="need more scratch"):
        worker.set_hashing(0, wide.functions, wide.tables)
    other = _hashing("dwta", n_in, n_out + 1)
    with pytest.raises(ValueError, match="cannot use hash functions"):
        worker.set_hashing(0, other.functions, other.tables)


# 3. CSR rows with duplicate columns ------------------------------------------
def test_duplicate_csr_entries_count_as_their_sum(data):
    X, y = data
    X = sp.csr_matrix(np.where(X > 1, X, 0))
    # One entry per token: each value split in two halves (exact in floats).
    dup = sp.csr_matrix((np.repeat(X.data / 2, 2), np.repeat(X.indices, 2),
                         2 * X.indptr), shape=X.shape)
    stored = (dup.data.copy(), dup.indices.copy(), dup.indptr.copy())
    assert dup.nnz == 2 * X.nnz
    make = LSHMLPClassifier(hidden_layer_sizes=(300,), lsh_layers=[0], max_iter=3,
                            random_state=0).set_params
    with pytest.warns(Warning):
        a = make().fit(dup, y)
    with pytest.warns(Warning):
        b = make().fit(X, y)
    for p, q in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(a.predict_proba(dup), b.predict_proba(X))
    # The caller's matrix is left as it was.
    for before, after in zip(stored, (dup.data, dup.indices, dup.indptr)):
        np.testing.assert_array_equal(before, after)


# 4. An interrupt during a table build ------------------------------------------
def test_interrupted_table_build_leaves_valid_tables():
    rng = np.random.default_rng(0)
    n_items, n_features = 200_000, 32
    # Not C-contiguous: the rows are converted before the build.
    rows = np.asfortranarray(rng.standard_normal((n_items, n_features),
                                                 dtype=np.float32))
    functions = HashFunctions("dwta", 3, 4, n_features, bin_size=4, seed=1)
    expected = HashTables(4, functions.n_buckets, n_items).build(functions.hash(rows))
    tables = HashTables(4, functions.n_buckets, n_items)
    tables.build_from_rows(functions, rows)
    # Python's own handler, whatever this process inherited (a background job
    # of a non-interactive shell starts with SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_builds(tables, functions, rows, expected)
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_builds(tables, functions, rows, expected):
    interrupted = 0
    for delay in (0.01, 0.03, 0.07, 0.12):
        timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
        try:
            timer.start()
            for _ in range(10_000):  # until the signal arrives
                tables.build_from_rows(functions, rows)
        except KeyboardInterrupt:
            interrupted += 1
        timer.join()
        # Interrupted before or after a build, never within: every build
        # gives these tables.
        np.testing.assert_array_equal(tables.offsets, expected.offsets)
        np.testing.assert_array_equal(tables.ids, expected.ids)
    assert interrupted == 4


# 5. Hash functions are saved, not drawn again on load ---------------------------
@pytest.mark.parametrize("family", ["simhash", "wta", "dwta", "minhash"])
def test_loaded_hash_functions_do_not_depend_on_numpy_streams(family, monkeypatch):
    functions = HashFunctions(family, 3, 5, 30, bin_size=4, seed=7)
    X = np.random.default_rng(0).random((50, 30))
    keys = functions.hash(X)
    saved = pickle.dumps(functions)
    real = np.random.default_rng
    # Another NumPy could draw other streams from the same seed.
    monkeypatch.setattr(np.random, "default_rng", lambda seed=None: real(
        None if seed is None else seed + 1))
    loaded = pickle.loads(saved)
    assert repr(loaded) == repr(functions)
    np.testing.assert_array_equal(loaded.hash(X), keys)


def test_corrupted_hash_functions_are_refused_at_load():
    functions = HashFunctions("wta", 2, 3, 10, bin_size=4, seed=0)
    load, (params, arrays) = functions.__reduce__()
    bad = dict(arrays, positions=np.full_like(arrays["positions"], 10))
    with pytest.raises(ValueError, match="permutations are not valid"):
        load(params, bad)
    bad = dict(arrays, positions=arrays["positions"][:, :2].copy())
    with pytest.raises(ValueError, match=r"positions .* shape \(6, 4\)"):
        load(params, bad)


# 6. A rehash releases the old functions and tables ---------------------------
def test_set_hashing_releases_the_old_pair():
    n_in, n_out = 16, 30
    first = _hashing("dwta", n_in, n_out)
    layers = [_layer(n_in, n_out, first), _layer(n_out, 3)]
    worker = BatchTrainer(layers, 4, 1)
    old = [weakref.ref(first.functions), weakref.ref(first.tables)]
    for seed in range(1, 4):
        new = _hashing("dwta", n_in, n_out, seed=seed)
        worker.set_hashing(0, new.functions, new.tables)
    del first, layers[0].hashing, new
    gc.collect()
    assert all(ref() is None for ref in old)


# 7. A damaged saved model is refused at load, not at first use ---------------
def _damage_weights(clf):
    layer = clf._network.layers[0]
    layer.weights = layer.weights[:, :-1].copy()


def _damage_bias(clf):
    layer = clf._network.layers[1]
    layer.bias = layer.bias[:-1].copy()


def _damage_chain(clf):
    layer = clf._network.layers[1]
    layer.weights = np.zeros((3, 7), dtype=layer.weights.dtype)
    layer.bias = np.zeros(3, dtype=layer.weights.dtype)


def _damage_moment(clf):
    layer = clf._network.layers[0]
    layer.moment2_w = layer.moment2_w[:5].copy()


def _damage_tables(clf):
    # The tables of another layer's neurons.
    hashing = clf._network.layers[0].hashing
    hashing.tables = HashTables(hashing.tables.n_tables, hashing.tables.n_buckets,
                                17, seed=0)


def _damage_attribute(clf):
    clf.n_features_in_ += 1


@pytest.mark.parametrize("damage, match", [
    (_damage_weights, "cannot use hash functions of 40 features"),
    (_damage_bias, r"bias of layer 1 .* shape \(3,\)"),
    (_damage_chain, "layer 1 has 7 inputs; layer 0 has 120 outputs"),
    (_damage_moment, r"moment2_w of layer 0 has shape \(5, 40\)"),
    (_damage_tables, "tables of 17 items"),
    (_damage_attribute, "n_features_in_ is 41, the network's is 40"),
])
def test_damaged_model_is_refused_at_load(data, damage, match):
    X, y = data
    clf = LSHMLPClassifier(hidden_layer_sizes=(120,), lsh_layers="all",
                           selection="lsh", max_iter=1, random_state=0)
    with pytest.warns(Warning):  # one epoch does not converge
        clf.fit(X, y)
    damage(clf)
    saved = pickle.dumps(clf)
    with pytest.raises(ValueError, match="The saved LSHMLPClassifier is "
                                         f"inconsistent: .*{match}.*corrupted"):
        pickle.loads(saved)


def test_truncated_model_is_refused_at_load(data):
    X, y = data
    clf = LSHMLPClassifier(hidden_layer_sizes=(120,), max_iter=1, random_state=0)
    with pytest.warns(Warning):
        clf.fit(X, y)
    saved = pickle.dumps(clf)
    with pytest.raises(pickle.UnpicklingError, match="truncated"):
        pickle.loads(saved[:len(saved) // 2])


# 8. A network too large for the memory is refused before it is allocated -----
def test_a_network_larger_than_the_memory_is_refused_before_allocation(
        data, monkeypatch):
    X, y = data
    from sklearn_lsh import _base
    monkeypatch.setattr(_base, "available_memory", lambda: 10 * 2**20)
    clf = LSHMLPClassifier(hidden_layer_sizes=(20_000,), max_iter=1)
    with pytest.raises(MemoryError, match=(
            r"The network \[40, 20000, 3\] needs about 4\d.\d MiB .* 10.0 MiB "
            "of memory is available")):
        clf.fit(X, y)
    assert not hasattr(clf, "coefs_")
    # Far beyond any machine: refused at once, whatever the memory.
    monkeypatch.undo()
    X_wide = sp.random(10, 10**6, density=1e-5, format="csr", random_state=0)
    with pytest.raises(MemoryError, match="needs about 5960[0-9].\\d GiB"):
        LSHMLPClassifier(hidden_layer_sizes=(2 * 10**6,)).fit(
            X_wide, np.arange(10) % 2)


# 9. Predictions from several Python threads at once --------------------------
@pytest.mark.parametrize("inference", ["auto", "lsh"])
def test_concurrent_predictions_equal_serial(data, inference):
    X, y = data
    clf = LSHMLPClassifier(hidden_layer_sizes=(300,), lsh_layers="all",
                           inference=inference, max_iter=2, random_state=0)
    with pytest.warns(Warning):
        clf.fit(X, y)
    serial = [clf.predict_proba(X[i::4]) for i in range(4)]
    results = [None] * 4

    def predict(i):
        for _ in range(5):
            results[i] = clf.predict_proba(X[i::4])

    threads = [threading.Thread(target=predict, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, expected in zip(results, serial):
        np.testing.assert_array_equal(got, expected)


# 10. Divergence: a non-finite loss stops the call ----------------------------
def _state(est):
    """Everything a call may change, as comparable values."""
    layers = est._network.layers
    arrays = [a for layer in layers for a in (
        layer.weights, layer.bias, layer.moment1_w, layer.moment1_b,
        layer.moment2_w, layer.moment2_b)]
    return arrays, (est._optimizer.steps, est._network.n_batches, est.t_,
                    est.n_iter_, list(est.loss_curve_))


def _assert_same_state(est, other):
    arrays, scalars = _state(est)
    other_arrays, other_scalars = _state(other)
    for a, b in zip(arrays, other_arrays, strict=True):
        np.testing.assert_array_equal(a, b)
    assert scalars == other_scalars


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(n_samples=300, n_features=40, noise=1, random_state=0)
    return X, y / y.std()


def _regressor(**params):
    from sklearn_lsh import LSHMLPRegressor

    return LSHMLPRegressor(hidden_layer_sizes=(300,), lsh_layers="all",
                           max_iter=2, random_state=0, **params)


# float64: the loss overflows; float32: a gradient would (its square would
# overflow float32) while the float64 loss does not.
@pytest.mark.parametrize("dtype, huge, reason", [
    (np.float64, 1e200, "the loss of batch 1 of epoch 1 is inf"),
    (np.float32, 1e30, "a gradient of batch 1 of epoch 1 would overflow")])
def test_diverged_fit_leaves_the_estimator_as_before(regression, dtype, huge,
                                                     reason):
    X, y = regression
    X = X.astype(dtype)
    reg = _regressor()
    with pytest.warns(Warning):
        reg.fit(X, y)
    before = pickle.loads(pickle.dumps(reg))
    y_huge = np.full_like(y, huge)
    with pytest.raises(ValueError, match=(
            r"^Solver produced non-finite parameter weights\. The input data may "
            r"contain large values and need to be preprocessed\. Training "
            rf"diverged: {reason}, and that step was not taken\. The estimator "
            r"is left as it was before this call\. "
            r"Lower learning_rate_init \(now 0.001\) or scale the data")):
        reg.fit(X, y_huge)
    _assert_same_state(reg, before)
    np.testing.assert_array_equal(reg.predict(X), before.predict(X))
    # Unfitted stays unfitted.
    fresh = _regressor()
    with pytest.raises(ValueError, match="Training diverged"):
        fresh.fit(X, y_huge)
    assert not hasattr(fresh, "coefs_")


@pytest.mark.parametrize("call", ["partial_fit", "warm_start"])
def test_call_diverged_on_its_first_batch_changes_nothing(regression, call):
    X, y = regression
    reg = _regressor()
    with pytest.warns(Warning):
        reg.fit(X, y)
    before = pickle.loads(pickle.dumps(reg))
    y_huge = np.full_like(y, 1e200)
    with pytest.raises(ValueError, match="left as it was before this call"):
        if call == "partial_fit":
            reg.partial_fit(X, y_huge)
        else:
            reg.set_params(warm_start=True).fit(X, y_huge)
    reg.set_params(warm_start=False)
    _assert_same_state(reg, before)
    # Bit for bit the same model: training on goes the same way.
    reg.partial_fit(X, y)
    before.partial_fit(X, y)
    _assert_same_state(reg, before)


def test_call_diverged_later_keeps_its_finite_steps(regression):
    X, y = regression
    reg = _regressor(batch_size=50, shuffle=False)
    with pytest.warns(Warning):
        reg.fit(X, y)
    steps = reg._optimizer.steps
    y_bad = y.copy()
    y_bad[-1] = 1e200
    with pytest.raises(ValueError, match=(
            "batch 6 of epoch 1 is inf.* before the diverged one took their "
            "steps; that one took none")):
        reg.partial_fit(X, y_bad)
    # Five batches stepped, the sixth did not; every weight is finite and
    # the model trains on.
    assert reg._optimizer.steps == steps + 5
    assert all(np.isfinite(a).all() for a in _state(reg)[0])
    reg.partial_fit(X, y)
    assert np.isfinite(reg.predict(X)).all()


def test_diverged_fit_with_early_stopping_keeps_the_best_network():
    # scikit-learn's test_mlp_diverging_loss: MLP records a NaN validation
    # score and keeps its best network; so do we, and stop at once.
    from sklearn.datasets import load_iris
    from sklearn.exceptions import ConvergenceWarning

    from sklearn_lsh import LSHMLPRegressor

    X, y = load_iris(return_X_y=True)
    reg = LSHMLPRegressor(hidden_layer_sizes=100, activation="identity",
                          solver="sgd", learning_rate_init=1, max_iter=20,
                          early_stopping=True, n_iter_no_change=10,
                          random_state=0)
    with pytest.warns(ConvergenceWarning, match="Training diverged: .* of batch "
                      "1 of epoch [0-9]+ .*best validation score"):
        reg.fit(X, y)
    assert np.isnan(reg.validation_scores_[-1]) and np.isnan(reg.loss_curve_[-1])
    assert len(reg.validation_scores_) == len(reg.loss_curve_) == reg.n_iter_ < 20
    assert np.isfinite(reg.predict(X)).all()
    assert reg.best_validation_score_ == np.nanmax(reg.validation_scores_)
