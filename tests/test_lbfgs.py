"""``solver='lbfgs'``: the dense network's objective, gradient and training."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import (
    make_classification,
    make_multilabel_classification,
    make_regression,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from sklearn_lsh import LSHMLPClassifier, LSHMLPRegressor, _lbfgs
from sklearn_lsh._layers import Layer

ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


def _layers(rng, units, out_activation, dtype=np.float64):
    return [Layer(rng.normal(size=(n_out, n_in)).astype(dtype) * 0.5,
                  rng.normal(size=n_out).astype(dtype) * 0.1, None)
            for n_in, n_out in zip(units[:-1], units[1:])]


def _targets(rng, out_activation, n, n_out):
    if out_activation == "softmax":
        return np.eye(n_out)[rng.randint(n_out, size=n)]
    if out_activation == "logistic":
        return (rng.rand(n, n_out) < 0.5).astype(float)
    if out_activation == "exp":
        return rng.poisson(2.0, size=(n, n_out)).astype(float)
    return rng.normal(size=(n, n_out))


def _objective(layers, X, Y, sw, activation, out_activation, alpha=0.3):
    n = len(layers)
    work = ([X] + [None] * n, [None] * n, [None] * n, [None] * n)

    def fun(params):
        _lbfgs.unpack(params, layers)
        loss = _lbfgs.loss_and_gradient(layers, X, Y, sw, alpha, activation,
                                        out_activation, *work)
        return loss, _lbfgs.pack([*work[2], *work[3]])
    return fun


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("out_activation",
                         ["softmax", "logistic", "identity", "exp"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("sparse", [False, True])
def test_gradient_matches_finite_differences(activation, out_activation,
                                             weighted, sparse):
    rng = np.random.RandomState(0)
    units = [6, 5, 4, 3]
    layers = _layers(rng, units, out_activation)
    X = rng.normal(size=(7, units[0]))
    X[X < 0.3] = 0  # zeros for the sparse form
    X = sp.csr_matrix(X) if sparse else X
    Y = _targets(rng, out_activation, 7, units[-1])
    sw = rng.uniform(0.5, 2.0, size=7) if weighted else None
    fun = _objective(layers, X, Y, sw, activation, out_activation)
    params = _lbfgs.pack([*(layer.weights.T for layer in layers),
                          *(layer.bias for layer in layers)])
    _, grad = fun(params)
    step = 1e-6
    numeric = np.empty_like(params)
    for i in range(params.shape[0]):
        e = np.zeros_like(params)
        e[i] = step
        numeric[i] = (fun(params + e)[0] - fun(params - e)[0]) / (2 * step)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_pack_and_unpack_are_inverse_and_in_place():
    rng = np.random.RandomState(1)
    layers = _layers(rng, [4, 3, 2], "softmax")
    views = [layer.weights for layer in layers]
    params = rng.normal(size=4 * 3 + 3 * 2 + 3 + 2)
    _lbfgs.unpack(params, layers)
    assert all(layer.weights is view for layer, view in zip(layers, views))
    coefs = [layer.weights.T for layer in layers]
    # coefs_ (fan_in, fan_out) in C order, then the intercepts: MLP's layout.
    np.testing.assert_array_equal(coefs[0].ravel(), params[:12])
    np.testing.assert_array_equal(
        _lbfgs.pack([*coefs, *(layer.bias for layer in layers)]), params)


def _fit_both(ours, theirs, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ours.fit(X, y), theirs.fit(X, y)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("n_classes", [2, 3])
def test_classifier_trains_as_mlp_lbfgs(activation, n_classes):
    X, y = make_classification(n_samples=80, n_features=8, n_informative=5,
                               n_classes=n_classes, random_state=0)
    params = dict(solver="lbfgs", hidden_layer_sizes=(12,), max_iter=15,
                  activation=activation, random_state=0)
    ours, theirs = _fit_both(LSHMLPClassifier(**params), MLPClassifier(**params),
                             X, y)
    # Same initial draws, objective and scipy solver: the same optimisation,
    # up to BLAS rounding carried through 15 quasi-Newton steps.
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    for a, b in zip(ours.coefs_ + ours.intercepts_,
                    theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X),
                               rtol=1e-4, atol=1e-6)
    assert ours.multiplication_share_ == 1.0
    assert ours.lsh_layers_ == [False, False]


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_trains_as_mlp_lbfgs(loss):
    X, y = make_regression(n_samples=60, n_features=6, noise=1.0, random_state=0)
    y = np.abs(y) / y.std() if loss == "poisson" else y / y.std()
    params = dict(solver="lbfgs", hidden_layer_sizes=(10,), max_iter=20,
                  loss=loss, random_state=0)
    ours, theirs = _fit_both(LSHMLPRegressor(**params), MLPRegressor(**params),
                             X, y)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-4,
                               atol=1e-6)


def test_multilabel_and_sparse_input():
    X, Y = make_multilabel_classification(n_samples=60, random_state=0)
    params = dict(solver="lbfgs", hidden_layer_sizes=(20,), random_state=0,
                  max_iter=50)
    dense, _ = _fit_both(LSHMLPClassifier(**params), MLPClassifier(**params), X, Y)
    sparse = LSHMLPClassifier(**params)
    _fit_both(sparse, MLPClassifier(), sp.csr_matrix(X), Y)
    np.testing.assert_allclose(sparse.predict_proba(X), dense.predict_proba(X),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("Estimator", [LSHMLPClassifier, LSHMLPRegressor])
def test_partial_fit_is_absent(Estimator):
    est = Estimator(solver="lbfgs")
    assert not hasattr(est, "partial_fit")
    with pytest.raises(AttributeError, match="no attribute 'partial_fit'") as exc:
        getattr(est, "partial_fit")  # noqa: B009 (the access is the test)
    assert "lbfgs is not stochastic" in str(exc.value.__cause__)
    assert hasattr(Estimator(solver="adam"), "partial_fit")


def test_hashing_parameters_warn_that_they_are_unused():
    X, y = make_classification(n_samples=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        LSHMLPClassifier(solver="lbfgs", max_iter=5).fit(X, y)
    with pytest.warns(UserWarning, match=(
            "solver='lbfgs' trains the dense network.*hash_family, "
            "active_fraction are not used")), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        LSHMLPClassifier(solver="lbfgs", max_iter=5, hash_family="simhash",
                         active_fraction=0.2).fit(X, y)


def test_warm_start_from_a_hashed_fit_rebuilds_the_tables():
    X, y = make_classification(n_samples=200, n_features=20, random_state=0)
    clf = LSHMLPClassifier(hidden_layer_sizes=(300,), selection="lsh",
                           max_iter=2, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        hashing = clf._network.layers[0].hashing
        before = hashing.tables.copy()
        clf.set_params(solver="lbfgs", max_iter=5).fit(X, y)
    built = hashing.tables.copy()
    hashing.rebuild(clf._network.layers[0].weights, clf._network.layers[0].bias, 1)
    # The tables after the fit are those of the weights it ended with.
    np.testing.assert_array_equal(built.ids, hashing.tables.ids)
    assert not np.array_equal(before.ids, built.ids)
    assert clf.multiplication_share_ == 1.0
    assert clf.active_set_recall_[0] is not None
    # And stochastic training goes on from there.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.set_params(solver="adam", max_iter=1).fit(X, y)
    # The curve of the first (stochastic) fit goes on.
    assert len(clf.loss_curve_) == 3


def test_interrupt_keeps_the_best_point(monkeypatch):
    X, y = make_classification(n_samples=60, random_state=0)
    calls = []
    original = _lbfgs.loss_and_gradient

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(_lbfgs, "loss_and_gradient", interrupted)
    clf = LSHMLPClassifier(solver="lbfgs", hidden_layer_sizes=(8,),
                           random_state=0)
    with pytest.warns(UserWarning, match="interrupted"):
        clf.fit(X, y)
    monkeypatch.setattr(_lbfgs, "loss_and_gradient", original)
    params = _lbfgs.pack([*clf.coefs_, *clf.intercepts_])
    n = len(clf.coefs_)
    loss = original(clf._network.layers, X, clf._dense_targets(
        clf._encode_targets(y), X.shape[0]).astype(float), None, clf.alpha,
        clf.activation, clf.out_activation_, [X] + [None] * n, [None] * n,
        [None] * n, [None] * n)
    assert loss == pytest.approx(clf.loss_, rel=1e-12)
    # Five evaluations: the start, then at least one iteration ended.
    assert 1 <= clf.n_iter_ <= 4
    assert np.isfinite(params).all()


def test_verbose_prints_iterations(capsys):
    X, y = make_classification(n_samples=40, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        LSHMLPClassifier(solver="lbfgs", max_iter=3, verbose=True).fit(X, y)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ")
    assert len(lines) == 3


def test_max_iter_warns_and_counts_iterations():
    X, y = make_classification(n_samples=60, random_state=0)
    clf = LSHMLPClassifier(solver="lbfgs", max_iter=4, tol=0, random_state=0)
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge after 4"):
        clf.fit(X, y)
    assert clf.n_iter_ == 4
    assert not hasattr(clf, "loss_curve_")


def test_grid_over_solvers():
    from sklearn.model_selection import GridSearchCV

    X, y = make_classification(n_samples=120, random_state=0)
    grid = GridSearchCV(LSHMLPClassifier(hidden_layer_sizes=(16,), max_iter=30,
                                         random_state=0),
                        {"solver": ["adam", "sgd", "lbfgs"]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        grid.fit(X, y)
    assert np.isfinite(grid.cv_results_["mean_test_score"]).all()
    assert grid.best_estimator_.score(X, y) > 0.8
