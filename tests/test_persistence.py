"""Pickle, joblib (also mmap_mode='r'), deepcopy and clone at every stage.

A round trip must keep the predictions and all the training state: continuing
with partial_fit gives exactly the model that continuing without the round
trip gives (one thread, fixed random_state), table rebuilds and optimizer
state included.
"""

import copy
import pickle
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import (
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted
from sklearn_lsh._tables import HashTables

from sklearn_lsh import LSHMLPClassifier, LSHMLPRegressor, __version__, _table_io
from sklearn_lsh._base import InconsistentLSHVersionWarning
from sklearn_lsh._table_io import ARRAYS_FORMAT, load_tables, pack_tables

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

# Rebuilds every few batches and new hash functions every other rebuild, so
# that the schedule and the hash functions change while training goes on.
COMMON = dict(random_state=0, n_jobs=1, max_iter=3, rebuild_interval=1,
              rebuild_decay=0.2, rehash_interval=2)


def _data(name):
    if name == "3 classes":
        X, y = make_classification(n_samples=600, n_features=20, n_informative=8,
                                   n_classes=3, random_state=0)
    elif name == "300 classes":
        X, y = make_classification(n_samples=1200, n_features=40,
                                   n_informative=30, n_classes=300,
                                   n_clusters_per_class=1, class_sep=3,
                                   random_state=0)
    elif name == "300 classes, sparse X":
        X, y = _data("300 classes")
        X[np.abs(X) < 1.0] = 0
        X = sp.csr_matrix(X)
    elif name == "multilabel":
        X, y = make_multilabel_classification(n_samples=600, n_features=20,
                                              n_classes=300, n_labels=4,
                                              random_state=0)
    elif name == "strings, float32":
        X, y = make_classification(n_samples=600, n_features=20, n_informative=8,
                                   n_classes=2, random_state=0)
        X = X.astype(np.float32)
        y = np.array(["no", "yes"])[y]
    else:
        X, y = make_regression(n_samples=600, n_features=20, n_targets=2,
                               noise=1.0, random_state=0)
        y = y / y.std()
    return X, y


CONFIGS = {
    # A hashed hidden layer (256 neurons) with tables, 3 classes. (Under
    # selection='auto' layers this narrow score every neuron exactly.)
    "clf-hashed-hidden": (
        lambda: LSHMLPClassifier(hidden_layer_sizes=(256,), active_fraction=0.25,
                                 selection="lsh", **COMMON), "3 classes"),
    # A hashed output layer: 300 classes behind 64 hidden units.
    "clf-hashed-output": (
        lambda: LSHMLPClassifier(hidden_layer_sizes=(64,), active_fraction=0.1,
                                 **COMMON), "300 classes"),
    # The same over a sparse X: the first layer stored by input.
    "clf-hashed-output-sparse-input": (
        lambda: LSHMLPClassifier(hidden_layer_sizes=(64,), active_fraction=0.1,
                                 **COMMON), "300 classes, sparse X"),
    "clf-multilabel-hashed-output": (
        lambda: LSHMLPClassifier(hidden_layer_sizes=(64,), active_fraction=0.1,
                                 hash_family="simhash", selection="lsh", **COMMON),
        "multilabel"),
    # Two hashed hidden layers, both scored exactly (selection='auto': 20
    # features, then a hashed layer's output), sgd with invscaling: the
    # learning rate is state.
    "reg-hashed-hidden-sgd": (
        lambda: LSHMLPRegressor(hidden_layer_sizes=(300, 256), active_fraction=0.1,
                                solver="sgd", learning_rate="invscaling",
                                learning_rate_init=0.01, **COMMON), "regression"),
    "clf-dense-float32": (
        lambda: LSHMLPClassifier(hidden_layer_sizes=(32,), lsh_layers="none",
                                 **COMMON), "strings, float32"),
}


@pytest.fixture(scope="module")
def datasets():
    return {name: _data(name) for name in {d for _, d in CONFIGS.values()}}


def _to_file(est, tmp_path, **load_kwargs):
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    return joblib.load(path, **load_kwargs)


ROUND_TRIPS = {
    "pickle": lambda est, tmp_path: pickle.loads(pickle.dumps(est)),
    "joblib": lambda est, tmp_path: _to_file(est, tmp_path),
    "joblib-mmap": lambda est, tmp_path: _to_file(est, tmp_path, mmap_mode="r"),
    "deepcopy": lambda est, tmp_path: copy.deepcopy(est),
}


def _chunks(X, y, n=3):
    bounds = np.linspace(0, X.shape[0], n + 1).astype(int)
    return [(X[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def _classes(y):
    # Required on the first call even for a multilabel y (its columns).
    return np.arange(y.shape[1]) if y.ndim == 2 else np.unique(y)


def _start(est, stage, X, y):
    """Bring a fresh estimator to ``stage``: fit on all the data (the chunks
    may lack classes), or a first partial_fit on the first chunk."""
    X0, y0 = _chunks(X, y)[0]
    if stage == "fit":
        est.fit(X, y)
    elif stage == "partial_fit":
        if isinstance(est, LSHMLPClassifier):
            est.partial_fit(X0, y0, classes=_classes(y))
        else:
            est.partial_fit(X0, y0)
    return est


def _continue(est, X, y):
    for Xc, yc in 2 * _chunks(X, y)[1:]:
        est.partial_fit(Xc, yc)
    return est


def _outputs(est, X):
    out = [est.predict(X)]
    if isinstance(est, LSHMLPClassifier):
        out += [est.predict_proba(X), est.predict_log_proba(X)]
        if est.lsh_layers_[-1]:
            # Through the output layer's tables too.
            inference = est.inference
            est.set_params(inference="lsh")
            out += [est.predict(X), *est.predict_topk(X, k=3)]
            est.set_params(inference=inference)
    return out


def _assert_same_model(a, b, X):
    for name in ("coefs_", "intercepts_"):
        for p, q in zip(getattr(a, name), getattr(b, name), strict=True):
            assert p.dtype == q.dtype and np.array_equal(p, q), name
    for la, lb in zip(a._network.layers, b._network.layers, strict=True):
        for key in ("moment1_w", "moment2_w", "moment1_b", "moment2_b"):
            p, q = getattr(la, key), getattr(lb, key)
            assert (p is None and q is None) or np.array_equal(p, q), key
    assert a._optimizer.learning_rate == b._optimizer.learning_rate
    assert a._network.n_batches == b._network.n_batches
    for name in ("t_", "n_iter_", "loss_", "loss_curve_", "best_loss_",
                 "_no_improvement_count", "lsh_layers_", "n_hash_bits_",
                 "n_tables_", "active_budget_", "n_features_in_"):
        assert getattr(a, name) == getattr(b, name), name
    for la, lb in zip(a._network.layers, b._network.layers, strict=True):
        ha, hb = la.hashing, lb.hashing
        assert (ha is None) == (hb is None)
        if ha is None:
            continue
        assert ha.next_rebuild == hb.next_rebuild
        assert ha.n_rebuilds == hb.n_rebuilds
        assert ha.selection == hb.selection
        if ha.selection == "exact":
            assert ha.tables is hb.tables is ha.functions is hb.functions is None
            continue
        assert repr(ha.functions) == repr(hb.functions)
        assert repr(ha.tables) == repr(hb.tables)
        assert np.array_equal(ha.tables.offsets, hb.tables.offsets)
        assert np.array_equal(ha.tables.ids, hb.tables.ids)
    for p, q in zip(_outputs(a, X), _outputs(b, X), strict=True):
        assert np.array_equal(p, q)


@pytest.mark.parametrize("method", ROUND_TRIPS)
@pytest.mark.parametrize("stage", ["fit", "partial_fit"])
@pytest.mark.parametrize("config", CONFIGS)
def test_round_trip_predicts_and_continues_identically(config, stage, method,
                                                       datasets, tmp_path):
    make, data = CONFIGS[config]
    X, y = datasets[data]
    original = _start(make(), stage, X, y)
    keys = set(vars(original))
    loaded = ROUND_TRIPS[method](original, tmp_path)
    # Saving leaves the model as it was.
    assert set(vars(original)) == keys
    assert type(loaded) is type(original)
    if method == "joblib-mmap":
        # Training below goes on from read-only arrays.
        assert not loaded.coefs_[0].flags.writeable
    _assert_same_model(original, loaded, X)

    n_rebuilds = sum(h.n_rebuilds for h in original._network.hashed)
    _continue(original, X, y)
    _continue(loaded, X, y)
    if any(h.selection != "exact" for h in original._network.hashed):
        assert sum(h.n_rebuilds for h in original._network.hashed) > n_rebuilds
    _assert_same_model(original, loaded, X)


@pytest.mark.parametrize("method", ROUND_TRIPS)
def test_round_trip_with_a_random_state_instance(method, datasets, tmp_path):
    """The generator given as random_state travels with the model."""
    X, y = datasets["3 classes"]
    original = LSHMLPClassifier(
        hidden_layer_sizes=(256,), active_fraction=0.25,
        **{**COMMON, "random_state": np.random.RandomState(0)})
    _start(original, "partial_fit", X, y)
    loaded = ROUND_TRIPS[method](original, tmp_path)
    _continue(original, X, y)
    _continue(loaded, X, y)
    _assert_same_model(original, loaded, X)


@pytest.mark.parametrize("method", ROUND_TRIPS)
@pytest.mark.parametrize("config", CONFIGS)
def test_round_trip_unfitted(config, method, datasets, tmp_path):
    make, data = CONFIGS[config]
    X, y = datasets[data]
    original = make()
    loaded = ROUND_TRIPS[method](original, tmp_path)
    assert type(loaded) is type(original)
    assert loaded.get_params() == original.get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(loaded)
    _assert_same_model(_start(original, "fit", X, y), _start(loaded, "fit", X, y),
                       X)


@pytest.mark.parametrize("stage", [None, "fit", "partial_fit"])
@pytest.mark.parametrize("config", CONFIGS)
def test_clone_at_every_stage(config, stage, datasets):
    make, data = CONFIGS[config]
    X, y = datasets[data]
    original = _start(make(), stage, X, y)
    cloned = clone(original)
    assert cloned.get_params() == make().get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(cloned)
    if stage is not None:
        # A clone trains as the original did.
        _assert_same_model(original, _start(cloned, stage, X, y), X)


def _state_nbytes(est):
    arrays = [*est.coefs_, *est.intercepts_,
              *(getattr(layer, key) for layer in est._network.layers
                for key in ("moment1_w", "moment2_w", "moment1_b", "moment2_b")
                if getattr(layer, key) is not None)]
    return sum(a.nbytes for a in arrays)


@pytest.mark.parametrize("config", CONFIGS)
def test_saved_model_is_compact(config, datasets, tmp_path):
    make, data = CONFIGS[config]
    X, y = datasets[data]
    est = _start(make(), "fit", X, y)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    ratio = path.stat().st_size / _state_nbytes(est)
    assert ratio <= 1.5, ratio


def test_saved_model_is_compact_with_many_tables(tmp_path):
    X, y = make_classification(n_samples=400, n_features=64, n_informative=20,
                               n_classes=10, random_state=0)
    for active_fraction in (0.01, 0.05):
        est = LSHMLPClassifier(hidden_layer_sizes=(1000,), n_tables=256,
                               active_fraction=active_fraction, max_iter=2,
                               random_state=0).fit(X, y)
        raw_tables = sum(h.tables.nbytes for h in est._network.hashed)
        path = tmp_path / "model.joblib"
        joblib.dump(est, path)
        size = path.stat().st_size
        # Saved as they are, these tables alone would break the bound.
        assert raw_tables > 0.5 * _state_nbytes(est)
        assert size <= 1.5 * _state_nbytes(est), size / _state_nbytes(est)


@pytest.mark.parametrize("n_buckets, n_items, n_tables", [
    (1, 5, 2), (2, 1, 1), (512, 1000, 3), (1 << 13, 70000, 1), (1 << 24, 300, 1),
])
def test_packed_tables_are_the_tables(n_buckets, n_items, n_tables):
    rng = np.random.RandomState(0)
    keys = rng.randint(0, n_buckets, size=(n_items, n_tables))
    tables = HashTables(n_tables, n_buckets, n_items, seed=3).build(keys)
    packed = pack_tables(tables)
    assert isinstance(packed, dict)
    bits = max(1, (n_buckets - 1).bit_length())
    assert packed["keys"].nbytes <= n_tables * (n_items * bits // 8 + 8)
    unpacked = load_tables(pickle.loads(pickle.dumps(packed)))
    assert repr(unpacked) == repr(tables)
    assert np.array_equal(unpacked.offsets, tables.offsets)
    assert np.array_equal(unpacked.ids, tables.ids)
    # And it queries as the original.
    np.testing.assert_array_equal(unpacked.query(keys[:10])[1],
                                  tables.query(keys[:10])[1])


def test_tables_that_keys_cannot_describe_are_saved_as_they_are():
    keys = np.zeros((10, 2), dtype=np.uint32)
    tables = HashTables(2, 4, 10, capacity=3).build(keys)
    packed = pack_tables(tables)
    assert packed["format"] == ARRAYS_FORMAT and packed["ids"] is tables.ids
    assert np.array_equal(load_tables(packed).ids, tables.ids)


def test_unpacked_hash_tables_read_only_load_continues(monkeypatch, tmp_path,
                                                       datasets):
    """Tables saved as HashTables and loaded read-only go on training."""
    pack = _table_io.pack_tables
    monkeypatch.setattr(_table_io, "pack_tables",
                        lambda tables: pack(tables, compact=False))
    make, data = CONFIGS["clf-hashed-output"]
    X, y = datasets[data]
    original = _start(make(), "partial_fit", X, y)
    loaded = _to_file(original, tmp_path, mmap_mode="r")
    _continue(original, X, y)
    _continue(loaded, X, y)
    _assert_same_model(original, loaded, X)


def test_unknown_table_format_is_a_clear_error(datasets):
    make, data = CONFIGS["clf-hashed-hidden"]
    X, y = datasets[data]
    est = _start(make(), "fit", X, y)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_table_io, "PACKED_FORMAT", "sklearn_lsh.tables.keys/99")
        saved = pickle.dumps(est)
    with pytest.raises(ValueError, match="format 'sklearn_lsh.tables.keys/99'"):
        pickle.loads(saved)


@pytest.mark.parametrize("stage", [None, "fit"])
def test_loading_another_version_warns(stage, datasets):
    make, data = CONFIGS["clf-hashed-hidden"]
    X, y = datasets[data]
    est = _start(make(), stage, X, y)
    # The same version loads silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentLSHVersionWarning)
        pickle.loads(pickle.dumps(est))

    state = est.__getstate__()
    assert state["_sklearn_lsh_version"] == __version__
    state["_sklearn_lsh_version"] = "0.0.1"
    other = type(est).__new__(type(est))
    with pytest.warns(InconsistentLSHVersionWarning,
                      match=rf"saved by sklearn_lsh 0\.0\.1 into sklearn_lsh "
                            rf"{__version__}") as record:
        other.__setstate__(state)
    assert record[0].message.original_version == "0.0.1"
    assert record[0].message.current_version == __version__
    assert "_sklearn_lsh_version" not in vars(other)

    state = est.__getstate__()
    del state["_sklearn_lsh_version"]
    with pytest.warns(InconsistentLSHVersionWarning,
                      match=r"no version stamp\) into .* Refit the model\.$"):
        type(est).__new__(type(est)).__setstate__(state)


def test_version_stamp_in_the_saved_bytes(datasets):
    make, data = CONFIGS["clf-dense-float32"]
    X, y = datasets[data]
    data = pickle.dumps(_start(make(), "fit", X, y))
    fake = "9" * len(__version__)
    tampered = data.replace(__version__.encode(), fake.encode())
    assert tampered != data
    with pytest.warns(InconsistentLSHVersionWarning, match=f"sklearn_lsh {fake}"):
        loaded = pickle.loads(tampered)
    np.testing.assert_array_equal(loaded.predict(X), pickle.loads(data).predict(X))
