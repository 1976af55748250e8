"""Behaviour shared with MLPClassifier and MLPRegressor.

Each shared behaviour is tested on scikit-learn's estimator and on ours (a
hashed configuration, and where it matters a dense one), with the same
assertions.
"""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import (
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning, NotFittedError
from sklearn.neural_network import MLPClassifier, MLPRegressor

from sklearn_lsh import LSHMLPClassifier, LSHMLPRegressor, _base

CLASSIFIERS = [
    pytest.param(lambda **kw: MLPClassifier(hidden_layer_sizes=(32,), **kw),
                 id="MLPClassifier"),
    pytest.param(lambda **kw: LSHMLPClassifier(
        hidden_layer_sizes=(256,), active_fraction=0.25, n_jobs=1, **kw),
        id="LSHMLPClassifier-hashed"),
]
CLASSIFIERS_WITH_DENSE = [*CLASSIFIERS, pytest.param(
    lambda **kw: LSHMLPClassifier(hidden_layer_sizes=(32,), lsh_layers="none",
                                  n_jobs=1, **kw),
    id="LSHMLPClassifier-dense")]
REGRESSORS = [
    pytest.param(lambda **kw: MLPRegressor(hidden_layer_sizes=(32,), **kw),
                 id="MLPRegressor"),
    pytest.param(lambda **kw: LSHMLPRegressor(
        hidden_layer_sizes=(256,), active_fraction=0.25, n_jobs=1, **kw),
        id="LSHMLPRegressor-hashed"),
]
REGRESSORS_WITH_DENSE = [*REGRESSORS, pytest.param(
    lambda **kw: LSHMLPRegressor(hidden_layer_sizes=(32,), lsh_layers="none",
                                 n_jobs=1, **kw),
    id="LSHMLPRegressor-dense")]
ALL = [*CLASSIFIERS, *REGRESSORS]


def _is_ours(est):
    return isinstance(est, (LSHMLPClassifier, LSHMLPRegressor))


def _data(est, n_samples=120, n_classes=3, seed=0):
    if isinstance(est, (MLPClassifier, LSHMLPClassifier)):
        return make_classification(n_samples=n_samples, n_features=10,
                                   n_informative=6, n_classes=n_classes,
                                   random_state=seed)
    X, y = make_regression(n_samples=n_samples, n_features=10, noise=1.0,
                           random_state=seed)
    return X, y / y.std()


def _partial_fit(est, X, y, **kwargs):
    if isinstance(est, (MLPClassifier, LSHMLPClassifier)) and "classes" not in kwargs:
        multilabel = y.ndim == 2 and y.shape[1] > 1
        kwargs["classes"] = np.arange(y.shape[1]) if multilabel else np.unique(y)
    return est.partial_fit(X, y, **kwargs)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# ------------------------------------------------------------------ warm_start
@pytest.mark.parametrize("make", ALL)
def test_warm_start_continues_from_the_fitted_weights(make):
    est = make(max_iter=2, random_state=0, tol=0)
    X, y = _data(est)
    _quiet(est.fit, X, y)
    first = [c.copy() for c in est.coefs_]
    curve = list(est.loss_curve_)
    est.set_params(warm_start=True)
    _quiet(est.fit, X, y)
    assert est.n_iter_ == 2
    assert est.t_ == 4 * len(X)
    assert est.loss_curve_[:2] == curve and len(est.loss_curve_) == 4
    # It went on from the first fit: the loss keeps going down from there...
    assert est.loss_curve_[2] < curve[0]
    # ...and a cold fit starts over.
    cold = _quiet(clone(est).set_params(warm_start=False).fit, X, y)
    assert cold.t_ == 2 * len(X)
    assert all(np.array_equal(a, b) for a, b in zip(cold.coefs_, first))


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_warm_start_needs_the_same_classes(make):
    est = make(max_iter=2, random_state=0, warm_start=True)
    X, y = _data(est)
    _quiet(est.fit, X, y)
    with pytest.raises(ValueError, match=r"warm_start can only be used where `y` "
                                         r"has the same classes.*Previously got "
                                         r"\[0 1 2\], `y` has \[0 1\]"):
        est.fit(X[y < 2], y[y < 2])


# ------------------------------------------------------------ early stopping
@pytest.mark.parametrize("make", ALL)
def test_early_stopping(make):
    est = make(early_stopping=True, validation_fraction=0.2, n_iter_no_change=2,
               tol=10.0, max_iter=50, random_state=0)
    X, y = _data(est)
    est.fit(X, y)
    # The first epoch improves on -inf; then count 1, 2, 3 > n_iter_no_change.
    assert est.n_iter_ == 4
    assert len(est.validation_scores_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.best_loss_ is None
    assert len(est.loss_curve_) == est.n_iter_

    est.set_params(early_stopping=False)
    est.fit(X, y)
    assert est.validation_scores_ is None
    assert est.best_validation_score_ is None
    assert est.best_loss_ == min(est.loss_curve_)


@pytest.mark.parametrize("make", [*CLASSIFIERS_WITH_DENSE, *REGRESSORS_WITH_DENSE])
def test_early_stopping_validation_set_too_small(make):
    est = make(early_stopping=True, validation_fraction=0.05, random_state=0)
    X, y = _data(est, n_samples=12, n_classes=2)
    if isinstance(est, (MLPClassifier, LSHMLPClassifier)):
        # Binary targets are split stratified, which fails first.
        match = ("The test_size = 1 should be greater or equal to the number of "
                 "classes = 2")
    else:
        match = ("The validation set is too small. Increase 'validation_fraction' "
                 "or the size of your dataset.")
    with pytest.raises(ValueError, match=re.escape(match)):
        est.fit(X, y)


def _record_split(monkeypatch):
    calls = []
    real = _base.train_test_split

    def spy(*arrays, **kwargs):
        out = real(*arrays, **kwargs)
        calls.append((kwargs.get("stratify"), out))
        return out

    monkeypatch.setattr(_base, "train_test_split", spy)
    return calls


@pytest.mark.parametrize("lsh_layers", ["none", "auto"])
def test_early_stopping_split_is_stratified_and_best_weights_restored(
        monkeypatch, lsh_layers):
    calls = _record_split(monkeypatch)
    # A rare class: a stratified 20% split holds out 2 of its 10 samples.
    X, y = make_classification(n_samples=200, n_features=10, n_informative=6,
                               n_classes=3, weights=[0.6, 0.35, 0.05],
                               random_state=0)
    est = LSHMLPClassifier(hidden_layer_sizes=(256,), lsh_layers=lsh_layers,
                           active_fraction=0.25, early_stopping=True,
                           validation_fraction=0.2, n_iter_no_change=3,
                           max_iter=30, random_state=0, n_jobs=1)
    est.fit(X, y)
    (stratify, (train_idx, val_idx)), = calls
    np.testing.assert_array_equal(stratify, y)
    np.testing.assert_array_equal(np.bincount(y[val_idx]),
                                  np.round(0.2 * np.bincount(y)))
    assert est.lsh_layers_ == [lsh_layers == "auto", False]
    # The network is that of the best validation epoch: its weights and, in
    # hashed layers, the tables it retrieved through.
    assert est.n_iter_ > np.argmax(est.validation_scores_) + 1
    assert est.score(X[val_idx], y[val_idx]) == est.best_validation_score_

    # Multilabel targets are not stratified.
    calls.clear()
    X, Y = make_multilabel_classification(n_samples=100, n_classes=5,
                                          random_state=0)
    est.fit(X, Y)
    assert calls[0][0] is None


def test_warm_start_switching_early_stopping():
    """MLP fails (None.append) when early_stopping changes between warm fits."""
    X, y = make_classification(n_samples=120, n_features=10, random_state=0)
    est = LSHMLPClassifier(hidden_layer_sizes=(256,), warm_start=True,
                           max_iter=3, random_state=0, n_jobs=1)
    _quiet(est.fit, X, y)
    est.set_params(early_stopping=True)
    _quiet(est.fit, X, y)
    assert len(est.validation_scores_) == est.n_iter_ and est.best_loss_ is None
    est.set_params(early_stopping=False)
    _quiet(est.fit, X, y)
    assert est.validation_scores_ is None and est.best_loss_ == min(
        est.loss_curve_[-3:])


# -------------------------------------------------------- tol, max_iter, verbose
@pytest.mark.parametrize("make", ALL)
def test_tol_stops_training(make, capsys):
    est = make(tol=1e3, n_iter_no_change=3, max_iter=50, random_state=0,
               verbose=True)
    X, y = _data(est)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ == 3 + 2
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == ("Training loss did not improve more than tol=1000.000000 "
                       "for 3 consecutive epochs. Stopping.")

    est.set_params(tol=0.0, max_iter=5, verbose=False)
    _quiet(est.fit, X, y)
    assert est.n_iter_ == 5


@pytest.mark.parametrize("make", ALL)
def test_convergence_warning_at_max_iter_not_from_partial_fit(make):
    est = make(max_iter=3, tol=0, random_state=0)
    X, y = _data(est)
    with pytest.warns(ConvergenceWarning,
                      match=r"Stochastic Optimizer: Maximum iterations \(3\) reached "
                            r"and the optimization hasn't converged yet."):
        est.fit(X, y)
    est = make(max_iter=1, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        for _ in range(3):
            _partial_fit(est, X, y)
    assert est.n_iter_ == 1


# MLP's line; ours adds the LSH figures after it.
ITERATION = re.compile(r"^Iteration (\d+), loss = (\d+\.\d{8})(.*)$")
LSH_FIGURES = re.compile(r"^, multiplications = \d+\.\d{2}%, hashing = \d+\.\d{3}s, "
                         r"rebuilding = \d+\.\d{3}s$")


@pytest.mark.parametrize("make", ALL)
def test_verbose_lines(make, capsys):
    est = make(verbose=True, early_stopping=True, n_iter_no_change=2, tol=10.0,
               max_iter=10, random_state=0)
    X, y = _data(est)
    est.fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * est.n_iter_ + 1
    for i in range(est.n_iter_):
        match = ITERATION.match(lines[2 * i])
        assert match, lines[2 * i]
        assert int(match[1]) == i + 1
        assert match[2] == "%.8f" % est.loss_curve_[i]
        if _is_ours(est):
            assert LSH_FIGURES.match(match[3]), match[3]
        else:
            assert match[3] == ""
        assert lines[2 * i + 1] == "Validation score: %f" % est.validation_scores_[i]
    assert lines[-1] == ("Validation score did not improve more than tol=10.000000 "
                         "for 2 consecutive epochs. Stopping.")


@pytest.mark.parametrize("make", ALL)
def test_verbose_adaptive_learning_rate(make, capsys):
    est = make(solver="sgd", learning_rate="adaptive", verbose=True, tol=1e3,
               n_iter_no_change=1, max_iter=8, random_state=0)
    X, y = _data(est)
    _quiet(est.fit, X, y)
    lines = [line for line in capsys.readouterr().out.splitlines()
             if not line.startswith("Iteration ")]
    assert lines[0] == ("Training loss did not improve more than tol=1000.000000 "
                        "for 1 consecutive epochs. Setting learning rate to "
                        "0.000200")


# --------------------------------------------------------------- sample_weight
@pytest.mark.parametrize("make", [*CLASSIFIERS_WITH_DENSE, *REGRESSORS_WITH_DENSE])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_sample_weight_zero_removes_and_integer_repeats(make, method):
    est = make(max_iter=5, random_state=0)
    X, y = _data(est, n_samples=60)
    sw = np.random.RandomState(1).randint(0, 4, size=len(X)).astype(float)
    assert (sw == 0).any()

    def train(*args, **kwargs):
        model = clone(est)
        if method == "fit":
            return _quiet(model.fit, *args, **kwargs)
        return _partial_fit(model, *args, **kwargs)

    # One batch holds all the data (at most 200 rows), so the weighted and
    # the expanded data take the same steps.
    pairs = [
        (train(X, y, sample_weight=(sw > 0).astype(float)),
         train(X[sw > 0], y[sw > 0])),
        (train(X, y, sample_weight=sw),
         train(np.repeat(X, sw.astype(int), axis=0), np.repeat(y, sw.astype(int)))),
    ]
    for weighted, expanded in pairs:
        for a, b in zip(weighted.coefs_ + weighted.intercepts_,
                        expanded.coefs_ + expanded.intercepts_):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(weighted.loss_, expanded.loss_, rtol=1e-10)
        np.testing.assert_allclose(weighted.predict(X), expanded.predict(X),
                                   rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("Estimator", [LSHMLPClassifier, LSHMLPRegressor])
def test_batch_of_zero_weights_takes_no_step(Estimator):
    """MLP divides by the batch's weight sum (ZeroDivisionError); ours skips
    the batch, as if its rows were not there."""
    kwargs = dict(hidden_layer_sizes=(256,), active_fraction=0.25, shuffle=False,
                  max_iter=3, random_state=0, n_jobs=1)
    X, y = _data(Estimator(), n_samples=300)
    sw = np.r_[np.zeros(200), np.ones(100)]
    weighted = _quiet(Estimator(**kwargs).fit, X, y, sample_weight=sw)
    removed = _quiet(Estimator(**kwargs).fit, X[200:], y[200:])
    for a, b in zip(weighted.coefs_, removed.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(weighted.loss_curve_, removed.loss_curve_,
                               rtol=1e-12)
    assert weighted._network.n_batches == removed._network.n_batches == 3


@pytest.mark.parametrize("Estimator", [LSHMLPClassifier, LSHMLPRegressor])
def test_sample_weight_errors(Estimator, monkeypatch):
    X, y = _data(Estimator(), n_samples=50)
    est = Estimator(max_iter=1, random_state=0)
    with pytest.raises(ValueError, match=r"sample_weight must be non-negative .*"
                                         r"got -2.0 at index 3"):
        est.fit(X, y, sample_weight=np.r_[1.0, 1.0, 1.0, -2.0, np.ones(46)])
    with pytest.raises(ValueError, match="at least one non-zero"):
        est.fit(X, y, sample_weight=np.zeros(50))
    # Early stopping would hold out the only rows that weigh.
    est.set_params(early_stopping=True, validation_fraction=0.2)
    calls = _record_split(monkeypatch)
    _quiet(clone(est).fit, X, y)
    val_idx = calls[0][1][1]
    sw = np.zeros(50)
    sw[val_idx] = 1.0
    with pytest.raises(ValueError, match="Every training row has sample_weight 0"):
        est.fit(X, y, sample_weight=sw)


@pytest.mark.parametrize("make", ALL)
def test_sample_weight_shape_error(make):
    est = make(max_iter=1)
    X, y = _data(est)
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(3,\), "
                                         r"expected \(120,\)"):
        est.fit(X, y, sample_weight=np.ones(3))


# ----------------------------------------------------------------------- labels
@pytest.mark.parametrize("make", CLASSIFIERS)
def test_string_and_bool_labels(make):
    est = make(max_iter=30, random_state=0)
    X, y = _data(est)
    names = np.array(["cat", "dog", "fish"])
    _quiet(est.fit, X, names[y])
    np.testing.assert_array_equal(est.classes_, names)
    pred = est.predict(X)
    assert pred.dtype == names.dtype and set(pred) <= set(names)
    assert est.score(X, names[y]) > 0.5

    yb = y == 1
    _quiet(est.fit, X, yb)
    np.testing.assert_array_equal(est.classes_, [False, True])
    assert est.predict(X).dtype == bool
    assert est.predict_proba(X).shape == (len(X), 2)
    # partial_fit with string classes.
    est = make(random_state=0)
    est.partial_fit(X, names[y], classes=names)
    assert set(est.predict(X)) <= set(names)


@pytest.mark.parametrize("make", ALL)
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_column_vector_y_warns(make, method):
    est = make(max_iter=2, random_state=0)
    X, y = _data(est)
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        if method == "fit":
            _quiet(est.fit, X, y.reshape(-1, 1))
        else:
            _partial_fit(est, X, y.reshape(-1, 1))
    assert est.predict(X).shape == (len(X),)


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_binary_predict_proba(make):
    est = make(max_iter=10, random_state=0)
    X, y = _data(est, n_classes=2)
    _quiet(est.fit, X, y)
    assert est.n_outputs_ == 1 and est.out_activation_ == "logistic"
    assert est.coefs_[-1].shape[1] == 1
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(proba))
    np.testing.assert_array_equal(est.predict(X), proba.argmax(axis=1))


@pytest.mark.parametrize("make", CLASSIFIERS)
def test_multilabel_predict_proba(make):
    est = make(max_iter=20, random_state=0)
    X, Y = make_multilabel_classification(n_samples=120, n_features=10,
                                          n_classes=4, random_state=0)
    _quiet(est.fit, X, Y)
    assert est.out_activation_ == "logistic"
    np.testing.assert_array_equal(est.classes_, np.arange(4))
    proba = est.predict_proba(X)
    assert proba.shape == Y.shape
    assert np.all((proba >= 0) & (proba <= 1))
    # Independent sigmoids: the rows need not sum to 1.
    assert not np.allclose(proba.sum(axis=1), 1)
    np.testing.assert_array_equal(est.predict(X), (proba > 0.5).astype(int))
    # Sparse input gives the same.
    np.testing.assert_allclose(est.predict_proba(sp.csr_matrix(X)), proba,
                               rtol=1e-10)


# ------------------------------------------------------------ partial_fit errors
@pytest.mark.parametrize("make", CLASSIFIERS)
def test_partial_fit_class_errors(make):
    est = make(random_state=0)
    X, y = _data(est)
    with pytest.raises(ValueError,
                       match="classes must be passed on the first call to "
                             "partial_fit."):
        est.partial_fit(X, y)
    est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    # Repeating the classes is fine.
    est.partial_fit(X, y, classes=[2, 1, 0])
    with pytest.raises(ValueError, match=r"`classes=\[0, 1\]` is not the same as "
                                         r"on last call to partial_fit, was: "
                                         r"array\(\[0, 1, 2\]\)"):
        est.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match=r"`y` has classes not in "
                                         r"`self.classes_`. `self.classes_` has "
                                         r"\[0 1 2\]. 'y' has \[0 1 2 3\]."):
        est.partial_fit(X, np.r_[y[:-1], 3])
    # A y missing some classes is fine.
    est.partial_fit(X[y == 0], y[y == 0])


def test_partial_fit_with_warm_start_accepts_a_subset_of_the_classes():
    """MLPClassifier applies warm_start's same-classes rule to partial_fit
    too, which then refuses batches lacking a class; ours does not."""
    X, y = make_classification(n_samples=120, n_features=10, n_informative=6,
                               n_classes=3, random_state=0)
    est = LSHMLPClassifier(hidden_layer_sizes=(256,), warm_start=True,
                           random_state=0)
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.partial_fit(X[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="`y` has classes not in"):
        est.partial_fit(X, np.r_[y[:-1], 3])


@pytest.mark.parametrize("make", ALL)
def test_partial_fit_refuses_early_stopping(make):
    est = make(early_stopping=True)
    X, y = _data(est)
    with pytest.raises(ValueError,
                       match="partial_fit does not support early_stopping=True"):
        _partial_fit(est, X, y)


# ------------------------------------------------------------------- divergence
@pytest.mark.parametrize("make", ALL)
def test_non_finite_weights_error(make):
    est = make(solver="sgd", learning_rate_init=1e10, max_iter=5, random_state=0)
    X, y = _data(est)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError,
                           match="Solver produced non-finite parameter weights. "
                                 "The input data may contain large values and "
                                 "need to be preprocessed."):
            _quiet(est.fit, X * 1e100, y)


# ------------------------------------------- ours: a failed call changes nothing
def _copied(value):
    """A deep copy of arrays in nested tuples and lists."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_copied(v) for v in value)
    return value


def _equal(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(a, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b or a is b


def _snapshot(est):
    snap = {}
    for key, value in vars(est).items():
        if key == "_network":
            value = ([(layer.weights, layer.bias, layer.moment1_w, layer.moment2_w,
                       layer.moment1_b, layer.moment2_b,
                       None if layer.hashing is None else (
                           layer.hashing.tables.offsets, layer.hashing.tables.ids,
                           repr(layer.hashing.functions),
                           layer.hashing.n_rebuilds, layer.hashing.next_rebuild))
                      for layer in value.layers], value.n_batches)
        elif key == "_optimizer" and value is not None:
            value = (value.solver, value.learning_rate, value.steps)
        snap[key] = _copied(value)
    return snap


def _assert_unchanged(est, snap):
    now = _snapshot(est)
    assert now.keys() == snap.keys()
    for key, value in snap.items():
        if key not in ("_random_state", "_label_binarizer"):
            assert _equal(value, now[key]), key


BAD_CALLS = {
    "nan in X": (lambda est, X, y: est.partial_fit(np.where(X > 2, np.nan, X), y),
                 "Input X contains NaN"),
    "n_features": (lambda est, X, y: est.partial_fit(X[:, :5], y),
                   "X has 5 features, but LSHMLPClassifier is expecting 10"),
    "unseen class": (lambda est, X, y: est.partial_fit(X, np.r_[y[:-1], 7]),
                     r"`y` has classes not in `self.classes_`"),
    "changed classes": (lambda est, X, y: est.partial_fit(X, y, classes=[0, 1]),
                        "is not the same as on last call"),
    "early stopping": (
        lambda est, X, y: est.set_params(early_stopping=True).partial_fit(X, y),
        "partial_fit does not support early_stopping=True"),
    "sample_weight": (lambda est, X, y: est.partial_fit(X, y, sample_weight=[1.0]),
                      r"sample_weight.shape == \(1,\)"),
    "bad parameter": (
        lambda est, X, y: est.set_params(active_fraction=2.5).partial_fit(X, y),
        r"active_fraction.*Got 2.5 instead"),
    "warm fit, other layers": (
        lambda est, X, y: est.set_params(warm_start=True,
                                         hidden_layer_sizes=(300,)).fit(X, y),
        r"layer sizes \[10, 256, 3\] differ from those of this call "
        r"\[10, 300, 3\]"),
    "refit, bad lsh_layers": (
        lambda est, X, y: est.set_params(lsh_layers=[3]).fit(X, y),
        "lsh_layers names layer 3"),
    "refit, too few for early stopping": (
        lambda est, X, y: est.set_params(early_stopping=True).fit(X[:12, :4],
                                                                  y[:12]),
        "test_size = 2 should be greater or equal to the number of classes = 3"),
    "refit, regression target": (
        lambda est, X, y: est.fit(X, X[:, 0]), "Unknown label type"),
}


@pytest.mark.parametrize("bad", BAD_CALLS)
def test_failed_call_leaves_the_model_as_it_was(bad):
    X, y = make_classification(n_samples=120, n_features=10, n_informative=6,
                               n_classes=3, random_state=0)
    # Tables, so that they are checked too (10 features would be scored
    # exactly under selection='auto').
    est = LSHMLPClassifier(hidden_layer_sizes=(256,), active_fraction=0.25,
                           rebuild_interval=1, random_state=0, n_jobs=1,
                           selection="lsh")
    est.partial_fit(X, y, classes=[0, 1, 2])
    est.partial_fit(X, y)
    params = est.get_params()
    snap = _snapshot(est)
    proba = est.predict_proba(X)
    call, match = BAD_CALLS[bad]
    with pytest.raises(ValueError, match=match):
        call(est, X, y)
    est.set_params(**params)
    _assert_unchanged(est, snap)
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    # And it goes on as if the call had not been made.
    twin = LSHMLPClassifier(**params)
    twin.partial_fit(X, y, classes=[0, 1, 2])
    twin.partial_fit(X, y)
    est.partial_fit(X, y)
    twin.partial_fit(X, y)
    for a, b in zip(est.coefs_, twin.coefs_):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("Estimator", [LSHMLPClassifier, LSHMLPRegressor])
def test_failed_first_partial_fit_leaves_the_model_unfitted(Estimator):
    X, y = make_classification(n_samples=60, n_features=10, random_state=0)
    est = Estimator(hidden_layer_sizes=(256,), random_state=0)
    kwargs = {"classes": [0, 1]} if Estimator is LSHMLPClassifier else {}
    before = set(vars(est))
    with pytest.raises(ValueError, match="NaN"):
        est.partial_fit(np.where(X > 1, np.nan, X), y, **kwargs)
    assert set(vars(est)) == before
    with pytest.raises(NotFittedError):
        est.predict(X)
    if Estimator is LSHMLPClassifier:
        with pytest.raises(ValueError, match="classes must be passed"):
            est.partial_fit(X, y)
    est.partial_fit(X, y, **kwargs)
    assert est.predict(X).shape == (60,)


# ------------------------------------------------------------------------ tags
def test_tags_state_the_truth():
    for ours, theirs in [(LSHMLPClassifier(), MLPClassifier()),
                         (LSHMLPRegressor(), MLPRegressor())]:
        tags, mlp_tags = ours.__sklearn_tags__(), theirs.__sklearn_tags__()
        assert tags.input_tags.sparse and mlp_tags.input_tags.sparse
        assert not tags.non_deterministic
        assert not tags.input_tags.allow_nan
        assert tags.estimator_type == mlp_tags.estimator_type
    assert LSHMLPClassifier().__sklearn_tags__().classifier_tags.multi_label
    assert not LSHMLPClassifier().__sklearn_tags__().target_tags.multi_output
    # MLPRegressor accepts 2-D y without saying so; ours says so.
    assert LSHMLPRegressor().__sklearn_tags__().target_tags.multi_output
    assert LSHMLPRegressor().__sklearn_tags__().target_tags.single_output


@pytest.mark.parametrize("Estimator", [LSHMLPClassifier, LSHMLPRegressor])
def test_deterministic_as_the_tags_say(Estimator):
    """Same random_state: identical models and predictions, whatever the thread
    count (the batch step does not depend on it)."""
    if Estimator is LSHMLPClassifier:
        X, y = make_classification(n_samples=300, n_features=20, n_informative=10,
                                   n_classes=3, random_state=0)
    else:
        X, y = make_regression(n_samples=300, n_features=20, n_targets=2,
                               random_state=0)
        y = y / y.std()
    Xs = sp.csr_matrix(np.where(np.abs(X) < 0.5, 0, X))
    for data in (X, Xs):
        fits = [
            _quiet(Estimator(hidden_layer_sizes=(256,), active_fraction=0.1,
                             max_iter=5, rebuild_interval=2, random_state=7,
                             n_jobs=n_jobs).fit, data, y)
            for n_jobs in (1, 1, 2)
        ]
        reference = fits[0].predict(data)
        for other in fits[1:]:
            for a, b in zip(fits[0].coefs_, other.coefs_):
                assert np.array_equal(a, b)
            np.testing.assert_array_equal(other.predict(data), reference)
        assert fits[0].lsh_layers_[0]


def test_sgd_step_from_given_weights_matches_worked_example():
    # scikit-learn's test_fit example (one logistic SGD step worked out by
    # hand), with the weights written into a built network: our first
    # partial_fit draws its own, so the example is not run as written there.
    X = np.array([[0.6, 0.8, 0.7]])
    clf = LSHMLPClassifier(solver="sgd", learning_rate_init=0.1, alpha=0.1,
                           activation="logistic", random_state=1,
                           hidden_layer_sizes=2, momentum=0)
    clf.partial_fit(X, [0], classes=[0, 1])
    clf.coefs_[0][...] = [[0.1, 0.2], [0.3, 0.1], [0.5, 0]]
    clf.coefs_[1][...] = [[0.1], [0.2]]
    clf.intercepts_[0][...] = [0.1, 0.1]
    clf.intercepts_[1][...] = [1.0]
    clf.partial_fit(X, [0])
    np.testing.assert_almost_equal(
        clf.coefs_[0],
        [[0.098, 0.195756], [0.2956664, 0.096008], [0.4939998, -0.002244]], 3)
    np.testing.assert_almost_equal(clf.coefs_[1], [[0.04706], [0.154089]], 3)
    np.testing.assert_almost_equal(clf.intercepts_[0], [0.098333, 0.09626], 3)
    np.testing.assert_almost_equal(clf.intercepts_[1], [0.9235], 3)
    np.testing.assert_almost_equal(clf.predict_proba(X)[0, 1], 0.739, 3)
