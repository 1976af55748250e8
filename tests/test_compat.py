"""LSHMLPClassifier and LSHMLPRegressor among scikit-learn's tools."""

import os

import numpy as np
import pandas as pd
import pytest
from joblib import cpu_count
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits, make_classification, make_regression
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_dataframe_column_names_consistency
from sklearn_lsh._openmp_helpers import (
    _openmp_effective_n_threads,
    _openmp_parallelism_enabled,
    per_thread_rows,
)
from threadpoolctl import threadpool_info

from sklearn_lsh import LSHMLPClassifier, LSHMLPRegressor

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, random_state=0, stratify=y)


def test_pipeline_standard_scaler(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(
        StandardScaler(),
        LSHMLPClassifier(hidden_layer_sizes=(512,), active_fraction=0.1,
                         max_iter=20, random_state=0))
    pipe.fit(X_train, y_train)
    assert pipe[-1].lsh_layers_ == [True, False]
    assert pipe.score(X_test, y_test) > 0.85
    assert pipe.predict_proba(X_test).shape == (len(X_test), 10)

    X, y = make_regression(n_samples=300, n_features=10, noise=1.0, random_state=0)
    reg = make_pipeline(StandardScaler(), LSHMLPRegressor(
        hidden_layer_sizes=(256,), active_fraction=0.25, max_iter=100,
        random_state=0))
    reg.fit(X, (y - y.mean()) / y.std())
    assert reg.score(X, (y - y.mean()) / y.std()) > 0.8


def _texts(n_per_class=60, seed=0):
    """Short documents of three topics sharing a common vocabulary."""
    rng = np.random.RandomState(seed)
    topics = {
        "sport": "goal match team score league coach player season win cup",
        "cooking": "recipe oven salt flour butter bake dinner taste sauce pan",
        "space": "orbit rocket planet star launch moon galaxy probe mission nasa",
    }
    common = "the a of and to in is it that for on with as was".split()
    docs, labels = [], []
    for label, words in topics.items():
        words = words.split()
        for _ in range(n_per_class):
            n = rng.randint(6, 14)
            doc = list(rng.choice(words, n // 2)) + list(rng.choice(common, n - n // 2))
            rng.shuffle(doc)
            docs.append(" ".join(doc))
            labels.append(label)
    return np.array(docs), np.array(labels)


def test_pipeline_tfidf_text():
    docs, labels = _texts()
    train, test = train_test_split(np.arange(len(docs)), random_state=0,
                                   stratify=labels)
    pipe = make_pipeline(
        TfidfVectorizer(),
        LSHMLPClassifier(hidden_layer_sizes=(256,), active_fraction=0.25,
                         max_iter=30, random_state=0))
    pipe.fit(docs[train], labels[train])
    assert pipe[-1].lsh_layers_ == [True, False]
    assert pipe[-1].n_features_in_ == len(pipe[0].vocabulary_)
    assert set(pipe.predict(docs[test])) <= {"sport", "cooking", "space"}
    assert pipe.score(docs[test], labels[test]) > 0.9


def _threads_in_worker(estimator, X, y):
    """OpenMP threads sklearn_lsh would use here (a scorer run in the worker)."""
    return float(_openmp_effective_n_threads())


def _openmp_pool_in_worker(estimator, X, y):
    """The largest OpenMP thread pool threadpoolctl finds here."""
    pools = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]
    return float(max(pools))


def _pid(estimator, X, y):
    return float(os.getpid())


@pytest.mark.skipif(not _openmp_parallelism_enabled(), reason="built without OpenMP")
def test_grid_search_two_workers_do_not_oversubscribe():
    X, y = make_classification(n_samples=300, n_features=20, n_informative=10,
                               n_classes=3, random_state=0)
    grid = GridSearchCV(
        LSHMLPClassifier(max_iter=30, random_state=0),
        {"active_fraction": [0.1, 0.25], "hidden_layer_sizes": [(256,), (300,)]},
        scoring={"accuracy": "accuracy", "threads": _threads_in_worker,
                 "openmp": _openmp_pool_in_worker, "pid": _pid},
        refit="accuracy", cv=2, n_jobs=2)
    grid.fit(X, y)
    results = grid.cv_results_
    # The fits ran in other processes...
    pids = np.concatenate([results[f"split{i}_test_pid"] for i in range(2)])
    assert os.getpid() not in pids
    # ...each with its share of the cores: joblib limits OpenMP in its workers
    # (OMP_NUM_THREADS = cores // n_jobs) and sklearn_lsh follows the runtime.
    per_worker = max(1, cpu_count() // 2)
    for name in ("threads", "openmp"):
        values = np.concatenate([results[f"split{i}_test_{name}"] for i in range(2)])
        assert np.all(values == per_worker), (name, values)
    if cpu_count() == 2:
        assert per_worker == 1
    if "OMP_NUM_THREADS" not in os.environ and cpu_count(only_physical_cores=True) > 1:
        # Here, without a limit, sklearn_lsh would use more.
        assert _openmp_effective_n_threads() > per_worker
    assert np.all(results["mean_test_accuracy"] > 0.5)
    assert grid.best_estimator_.active_fraction in (0.1, 0.25)
    assert grid.best_estimator_.lsh_layers_ == [True, False]


@pytest.mark.parametrize("Estimator, kind", [(LSHMLPClassifier, "clf"),
                                             (LSHMLPRegressor, "reg")])
def test_cross_val_score(Estimator, kind):
    if kind == "clf":
        X, y = make_classification(n_samples=300, n_features=20, n_informative=10,
                                   n_classes=3, random_state=0)
        threshold = 0.6
    else:
        X, y = make_regression(n_samples=300, n_features=10, noise=1.0,
                               random_state=0)
        y = (y - y.mean()) / y.std()
        threshold = 0.6
    est = Estimator(hidden_layer_sizes=(256,), active_fraction=0.25, max_iter=50,
                    random_state=0, n_jobs=1)
    scores = cross_val_score(est, X, y, cv=3)
    assert scores.shape == (3,)
    assert np.all(scores > threshold), scores
    # Deterministic: the same scores again.
    np.testing.assert_array_equal(scores, cross_val_score(est, X, y, cv=3))


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_calibrated_classifier(method, digits):
    X_train, X_test, y_train, y_test = digits
    base = LSHMLPClassifier(hidden_layer_sizes=(512,), active_fraction=0.1,
                            max_iter=10, random_state=0)
    calibrated = CalibratedClassifierCV(base, method=method, cv=3)
    calibrated.fit(X_train / 16, y_train)
    assert len(calibrated.calibrated_classifiers_) == 3
    proba = calibrated.predict_proba(X_test / 16)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert calibrated.score(X_test / 16, y_test) > 0.8
    # Binary: the calibrators see (n, 2) probabilities.
    mask = y_train < 2
    binary = CalibratedClassifierCV(base, method=method, cv=3).fit(
        X_train[mask] / 16, y_train[mask])
    assert binary.predict_proba(X_test / 16).shape == (len(X_test), 2)


@pytest.mark.parametrize("Estimator", [LSHMLPClassifier, LSHMLPRegressor])
def test_dataframe_keeps_feature_names(Estimator):
    X, y = make_classification(n_samples=200, n_features=8, random_state=0)
    columns = [f"feature_{i}" for i in range(8)]
    df = pd.DataFrame(X, columns=columns)
    est = Estimator(hidden_layer_sizes=(256,), active_fraction=0.25, max_iter=5,
                    random_state=0).fit(df, y)
    np.testing.assert_array_equal(est.feature_names_in_, columns)
    assert est.n_features_in_ == 8
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        np.testing.assert_array_equal(est.predict(df), est.predict(X))
    # Without names, none are kept (a refit forgets the old ones).
    est_plain = clone(est).fit(df, y).fit(X, y)
    assert not hasattr(est_plain, "feature_names_in_")
    with pytest.raises(ValueError, match="The feature names should match"):
        est.predict(df[columns[::-1]])
    # partial_fit keeps them too, and checks them on later calls.
    est = Estimator(hidden_layer_sizes=(256,), max_iter=5, random_state=0)
    kwargs = {"classes": np.unique(y)} if Estimator is LSHMLPClassifier else {}
    est.partial_fit(df, y, **kwargs)
    np.testing.assert_array_equal(est.feature_names_in_, columns)
    with pytest.raises(ValueError, match="The feature names should match"):
        est.partial_fit(df[columns[::-1]], y)


@pytest.mark.parametrize("Estimator", [LSHMLPClassifier, LSHMLPRegressor])
def test_check_dataframe_column_names_consistency(Estimator):
    est = Estimator(hidden_layer_sizes=(256,), active_fraction=0.25, max_iter=5,
                    random_state=0)
    check_dataframe_column_names_consistency(Estimator.__name__, est)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int32, np.uint32])
@pytest.mark.parametrize("n", [1, 7, 300])
@pytest.mark.parametrize("fill", [0, 5])
def test_per_thread_rows_never_share_a_cache_line(dtype, n, fill):
    rows = per_thread_rows(3, n, dtype, fill=fill)
    assert rows.flags.c_contiguous and rows.dtype == dtype
    assert np.all(rows == fill)
    for t in range(2):
        end = rows[t].ctypes.data + n * rows.itemsize  # past the usable part
        assert rows[t + 1].ctypes.data - end >= 64

