"""The synthetic generator make_extreme_classification, and precision@k."""

import time

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from sklearn_lsh.datasets import make_extreme_classification
from sklearn_lsh.metrics import precision_at_k

# --------------------------------------------------------------------------
# make_extreme_classification
# --------------------------------------------------------------------------

SMALL = dict(n_features=5000, n_classes=200, nnz_per_row=40)


def test_extreme_default_shape_is_amazon_670k():
    t0 = time.perf_counter()
    X, y = make_extreme_classification(100_000, random_state=0)
    elapsed = time.perf_counter() - t0
    assert X.shape == (100_000, 135_909)
    assert X.format == "csr" and X.has_canonical_format
    assert X.dtype == np.float32
    assert X.indices.dtype == np.int32 and X.indptr.dtype == np.int32
    assert y.shape == (100_000,) and y.dtype == np.int64
    assert 0 <= y.min() and y.max() < 670_091
    nnz = np.diff(X.indptr)
    assert nnz.max() == 75 and nnz.mean() > 74.5
    # Vectorised: a per-row Python loop would take minutes.
    assert elapsed < 30


def test_extreme_multilabel_shapes_and_label_counts():
    X, Y = make_extreme_classification(5000, n_labels=5.45, random_state=0)
    assert X.shape == (5000, 135_909)
    assert sp.issparse(Y) and Y.format == "csr" and Y.shape == (5000, 670_091)
    assert Y.indices.dtype == np.int32 and Y.has_canonical_format
    assert np.all(Y.data == 1)
    per_row = np.diff(Y.indptr)
    assert per_row.min() >= 1
    assert per_row.mean() == pytest.approx(5.45, abs=0.1)
    nnz = np.diff(X.indptr)
    assert nnz.max() <= 75 and nnz.mean() > 74.5


@pytest.mark.parametrize("n_labels", [1, 3.0])
def test_extreme_rows_are_unit_norm_and_nnz_bounded(n_labels):
    X, _ = make_extreme_classification(2000, n_labels=n_labels, random_state=3,
                                       **SMALL)
    assert np.all(X.data > 0)
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    np.testing.assert_allclose(norms, 1, rtol=1e-5)
    nnz = np.diff(X.indptr)
    assert nnz.max() <= 40
    # Collisions are rare with 5000 features (a few per cent of the rows).
    assert nnz.mean() > 39.5


def test_extreme_deterministic_with_seed():
    a = make_extreme_classification(500, n_labels=2.5, random_state=7, **SMALL)
    b = make_extreme_classification(500, n_labels=2.5, random_state=7, **SMALL)
    c = make_extreme_classification(500, n_labels=2.5, random_state=8, **SMALL)
    for u, v in zip(a, b):
        assert (u != v).nnz == 0
    assert (a[0] != c[0]).nnz > 0
    # A Generator seeded alike gives the same data as the int.
    d = make_extreme_classification(500, n_labels=2.5,
                                    random_state=np.random.default_rng(7), **SMALL)
    assert (a[0] != d[0]).nnz == 0


def test_extreme_prototypes_do_not_depend_on_n_samples():
    *_, P1, prior1 = make_extreme_classification(
        10, random_state=0, return_prototypes=True, **SMALL)
    *_, P2, prior2 = make_extreme_classification(
        1000, random_state=0, return_prototypes=True, **SMALL)
    assert (P1 != P2).nnz == 0
    np.testing.assert_array_equal(prior1, prior2)
    assert P1.shape == (200, 5000) and P1.dtype == np.float32
    assert np.all(P1.data == 1) and np.diff(P1.indptr).max() <= 40


def test_extreme_without_noise_rows_lie_in_their_prototype():
    X, y, P, _ = make_extreme_classification(
        300, noise=0.0, random_state=0, return_prototypes=True, **SMALL)
    for i in range(300):
        assert set(X[i].indices) <= set(P[y[i]].indices)
    # Multilabel: in the union of the row's classes' prototypes.
    X, Y, P, _ = make_extreme_classification(
        300, n_labels=4, noise=0.0, random_state=0, return_prototypes=True,
        **SMALL)
    for i in range(300):
        union = set(P[Y[i].indices].indices)
        assert set(X[i].indices) <= union


def test_extreme_power_law_head_and_tail():
    n, n_classes = 40_000, 1000
    _, y, _, prior = make_extreme_classification(
        n, n_features=2000, n_classes=n_classes, nnz_per_row=10, power_law=1.0,
        random_state=0, return_prototypes=True)
    assert prior.sum() == pytest.approx(1)
    by_rank = np.argsort(-prior, kind="stable")
    harmonic = np.cumsum(1 / np.arange(1, n_classes + 1))
    np.testing.assert_allclose(np.sort(prior)[::-1],
                               1 / np.arange(1, n_classes + 1) / harmonic[-1])
    counts = np.bincount(y, minlength=n_classes)[by_rank]
    # The 10 most frequent classes hold H(10) / H(1000) = 39% of the samples,
    # the 500 rarest (H(1000) - H(500)) / H(1000) = 9%.
    head = counts[:10].sum() / n
    tail = counts[500:].sum() / n
    assert head == pytest.approx(harmonic[9] / harmonic[-1], abs=0.015)
    assert tail == pytest.approx((harmonic[-1] - harmonic[499]) / harmonic[-1],
                                 abs=0.01)
    assert counts[0] / counts[9] == pytest.approx(10, rel=0.2)
    # Ranks are spread over class ids, not sorted.
    assert not np.array_equal(by_rank, np.arange(n_classes))
    # power_law=0: uniform classes.
    _, y0, _, prior0 = make_extreme_classification(
        n, n_features=2000, n_classes=n_classes, nnz_per_row=10, power_law=0,
        random_state=0, return_prototypes=True)
    np.testing.assert_allclose(prior0, 1 / n_classes)
    assert np.bincount(y0, minlength=n_classes).max() < 100


def test_extreme_is_learnable():
    """Nearest prototype, and class centroids learned from a training split."""
    X, y, P, _ = make_extreme_classification(
        6000, noise=0.5, random_state=1, return_prototypes=True, **SMALL)
    majority = np.bincount(y).max() / y.size
    assert majority < 0.25
    nearest_prototype = (X @ P.T).toarray().argmax(axis=1)
    assert np.mean(nearest_prototype == y) > 0.95
    X_train, X_test, y_train, y_test = X[:5000], X[5000:], y[:5000], y[5000:]
    onehot = sp.csr_matrix((np.ones(5000), (y_train, np.arange(5000))),
                           shape=(200, 5000))
    centroids = normalize(onehot @ X_train)
    pred = (X_test @ centroids.T).toarray().argmax(axis=1)
    # Share of test samples whose class is absent from training.
    unseen = np.mean(~np.isin(y_test, y_train))
    assert np.mean(pred == y_test) > 0.9 - unseen
    # Multilabel: the true classes rank first by prototype overlap.
    X, Y, P, _ = make_extreme_classification(
        2000, n_labels=3, noise=0.3, random_state=1, return_prototypes=True,
        **SMALL)
    top = np.argsort(-(X @ P.T).toarray(), axis=1)[:, :5]
    assert precision_at_k(Y, top, 1) > 0.95


@pytest.mark.parametrize("kwargs", [
    dict(n_samples=0), dict(n_labels=0.5), dict(noise=1.0), dict(noise=-0.1),
    dict(nnz_per_row=0), dict(power_law=-1), dict(n_classes=1.5),
    dict(prototype_size=0), dict(random_state="seed"),
])
def test_extreme_rejects_bad_parameters(kwargs):
    params = dict(n_samples=10, **SMALL)
    params.update(kwargs)
    with pytest.raises(ValueError):
        make_extreme_classification(**params)


# --------------------------------------------------------------------------
# precision_at_k
# --------------------------------------------------------------------------

def _brute_precision(label_sets, top, k):
    return np.mean([len(set(row[:k]) & labels) / k
                    for labels, row in zip(label_sets, top.tolist())])


@pytest.mark.parametrize("k", [1, 2, 5])
def test_precision_at_k_multiclass_matches_brute_force(k):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 8, 300)
    top = rng.integers(0, 8, (300, 6))  # repeats within a row count once
    top[:50, 0] = y[:50]
    expected = _brute_precision([{v} for v in y.tolist()], top, k)
    assert precision_at_k(y, top, k) == pytest.approx(expected)
    # String labels, as predict_topk returns classes_.
    names = np.array(list("abcdefgh"))
    assert precision_at_k(names[y], names[top], k) == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_precision_at_k_multilabel_matches_brute_force(k):
    rng = np.random.default_rng(1)
    dense = (rng.random((200, 30)) < 0.1).astype(np.int8)
    dense[3] = 0  # a row without labels
    Y = sp.csr_matrix(dense)
    Y.data[:5] = 0  # explicit zeros are not labels
    label_sets = [set(np.flatnonzero(Y[i].toarray()).tolist()) for i in range(200)]
    top = rng.integers(-1, 32, (200, 5))  # -1 and 30, 31: out of range, misses
    for i in range(0, 200, 3):
        if label_sets[i]:
            top[i, : min(2, len(label_sets[i]))] = sorted(label_sets[i])[:2]
    expected = _brute_precision(label_sets, top, k)
    assert precision_at_k(Y, top, k) == pytest.approx(expected)
    assert precision_at_k(Y.toarray(), top, k) == pytest.approx(expected)


def test_precision_at_k_checks_its_input():
    y = np.array([0, 1, 2])
    top = np.zeros((3, 2), dtype=int)
    assert precision_at_k(y, np.array([0, 1, 0]), 1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="at least k=3"):
        precision_at_k(y, top, 3)
    with pytest.raises(ValueError, match="rows"):
        precision_at_k(y, top[:2], 1)
    with pytest.raises(ValueError, match="positive int"):
        precision_at_k(y, top, 0)
    with pytest.raises(ValueError, match="integer column indices"):
        precision_at_k(sp.eye(3, format="csr"), top.astype(float), 1)
